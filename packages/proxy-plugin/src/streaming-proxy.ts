import { pipeline, Transform } from 'node:stream'
import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify'
import fp from 'fastify-plugin'
import { BadGatewayError, BodyTooLargeError, GatewayTimeoutError, MissingTokenError } from './errors.js'
import { sendError } from './error-reply.js'
import { backendOrigin, forwardContext, rewriteRequestHeaders, rewriteResponseHeaders } from './headers.js'
import type { NormalizedProxyOptions, ProxyOptions } from './options.js'
import { redactUrl, stripTokenFromQuery } from './request-target.js'
import { contextOptions } from './token-auth.js'
import { ProxyMetrics, StreamSet } from './metrics.js'
import { attachWebSocketProxy, pendingUpgrade } from './ws-proxy.js'
import { sessionCookieName } from './isolation.js'

const METHODS: HTTPMethods[] = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

const TIMEOUT_CODES = new Set([
  'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_TIMEOUT', 'FST_REPLY_FROM_HTTP_REQUEST_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'
])

export interface StreamingProxyOptions extends ProxyOptions {
  /** Internal: this context serves session hosts (isolated mode). */
  sessionHosts?: boolean
  /** Internal: counters and open streams shared by the contexts of one gateway. */
  shared?: { metrics: ProxyMetrics, streams: StreamSet }
  /** Internal: options mcpGateway has checked already, for this context's prefix. */
  normalized?: NormalizedProxyOptions
}

async function streamingProxyPlugin (fastify: FastifyInstance, opts: StreamingProxyOptions): Promise<void> {
  const options = contextOptions(fastify, opts)
  const prefix = options.prefix
  const authenticator = fastify.mcpAuthenticator!
  const sessionHosts = opts.sessionHosts === true && options.isolation !== null
  const sessionCookie = sessionHosts ? sessionCookieName(options.isolation!) : null

  // Bodies stay streams: never parsed, never buffered; capped only when maxBodyBytes says so.
  const maxBody = options.maxBodyBytes
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', function passThrough (request, payload, done) {
    if (maxBody === 0) {
      done(null, payload)
      return
    }
    const declared = request.headers['content-length']
    if (declared !== undefined) {
      // Node's parser holds the body to exactly this length.
      if (Number(declared) > maxBody) done(new BodyTooLargeError(maxBody))
      else done(null, payload)
      return
    }
    let seen = 0
    const counted = new Transform({
      transform (chunk: Buffer, _encoding, callback) {
        seen += chunk.length
        if (seen > maxBody) callback(new BodyTooLargeError(maxBody))
        else callback(null, chunk)
      }
    })
    pipeline(payload, counted, () => {})
    done(null, counted)
  })

  await fastify.register(replyFrom, {
    disableRequestLogging: true,
    undici: {
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.upstreamHeadersTimeoutMs,
      bodyTimeout: options.upstreamIdleTimeoutMs,
      keepAliveTimeout: 30_000
    }
  })

  function onError (reply: FastifyReply, { error }: { error: Error & { code?: string } }): void {
    // reply-from types its reply for every server kind; ours is HTTP/1.
    const cause = (error.cause as { code?: string } | undefined)?.code
    const code = error.code ?? cause
    if (code === 'MCPGW_PROXY_BODY_TOO_LARGE' || cause === 'MCPGW_PROXY_BODY_TOO_LARGE') {
      // The rest of the body is not worth reading: answer and hang up.
      reply.header('connection', 'close')
      sendError(reply, new BodyTooLargeError(maxBody))
      return
    }
    // The one line an operator gets when access logs are off. The URL stays out: it holds the token.
    reply.log.warn({ code: cause ?? code, serverName: reply.request.mcpSession?.serverName }, 'backend request failed')
    sendError(reply, TIMEOUT_CODES.has(code ?? '') ? new GatewayTimeoutError({ cause: error }) : new BadGatewayError({ cause: error }))
  }

  // reply-from answers a backend's invalid status (600, say) with onError's 502 and then sends
  // the body anyway, which Fastify logs with the request URL, token and all: send it only once.
  // (reply-from types its callbacks for every server kind; ours is HTTP/1.)
  function sendUpstream (_request: FastifyRequest, reply: FastifyReply, res: { stream: NodeJS.ReadableStream & { destroy: () => void } }): void {
    if (reply.sent) res.stream.destroy()
    else reply.send(res.stream)
  }

  const metrics = opts.shared?.metrics ?? new ProxyMetrics()
  const streams = opts.shared?.streams ?? new StreamSet()
  fastify.addHook('onResponse', function count (request, reply, done) {
    if (request.mcpBackend !== null) metrics.observe(reply.statusCode, reply.elapsedTime)
    done()
  })

  const logSerializers = {
    req: (req: FastifyRequest) => ({
      method: req.method,
      url: redactUrl(req.url, prefix),
      remoteAddress: req.ip
    })
  }

  const ws = attachWebSocketProxy(fastify, options, authenticator, sessionCookie)
  // On a session host every path is the backend's, `/` included.
  const config = { mcpSessionHost: sessionHosts }
  const proxy = function proxy (request: FastifyRequest, reply: FastifyReply): Promise<void> | FastifyReply {
    const upgrade = pendingUpgrade(request)
    if (upgrade !== undefined) return ws.tunnel(request, reply, upgrade)
    const target = request.mcpTarget!
    const backend = request.mcpBackend!
    const ctx = forwardContext(request, options, sessionCookie, authenticator.proofFor)
    const search = options.forwardToken ? target.search : stripTokenFromQuery(target.search, target.token)
    // The query travels separately: reply-from vets the source path, and a query may hold `../`.
    return reply.from(backendOrigin(backend) + target.path, {
      queryString: () => search.slice(1),
      rewriteRequestHeaders: (_request, headers) => rewriteRequestHeaders(headers, ctx),
      rewriteHeaders: (headers) => {
        const type = headers['content-type']
        if (typeof type === 'string' && type.startsWith('text/event-stream')) streams.add(reply.raw)
        return rewriteResponseHeaders(headers, ctx) as typeof headers
      },
      onError: onError as never,
      onResponse: sendUpstream as never
    })
  }
  fastify.route({ method: METHODS, url: '/*', exposeHeadRoute: false, logSerializers, config, handler: proxy })
  fastify.route({
    method: METHODS,
    url: '/',
    exposeHeadRoute: false,
    logSerializers,
    config,
    // `<prefix>` and `<prefix>/` carry no token.
    handler: sessionHosts ? proxy : async () => { throw new MissingTokenError() }
  })

  if (!fastify.hasDecorator('mcpGateway')) fastify.decorate('mcpGateway', { authenticator, tunnels: ws.tunnels, streams, metrics })
}

/**
 * Proxies `<prefix>/<token>/<path>` to the session's backend: every method,
 * bodies streamed both ways, WebSocket upgrades tunnelled after the same
 * authentication. Runs after token-auth and discovery.
 */
export const streamingProxy = fp(streamingProxyPlugin, {
  fastify: '5.x',
  name: '@mcp-gw/proxy-plugin/streaming-proxy',
  dependencies: ['@mcp-gw/proxy-plugin/token-auth', '@mcp-gw/proxy-plugin/discovery'],
  decorators: { fastify: ['mcpAuthenticator'] }
})

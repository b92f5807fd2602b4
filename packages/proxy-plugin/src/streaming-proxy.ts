import { pipeline, Transform } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify'
import fp from 'fastify-plugin'
import { BodyTooLargeError, MissingTokenError, ShuttingDownError } from './errors.js'
import { forwardContext, rewriteRequestHeaders } from './headers.js'
import { backendAgent, proxyHttp } from './http-exchange.js'
import { answerForwardAuth, forwardAuthOf } from './forward-auth.js'
import type { ExchangeContext } from './http-exchange.js'
import type { NormalizedProxyOptions, ProxyOptions } from './options.js'
import { backendPath, redactUrl } from './request-target.js'
import { contextOptions } from './token-auth.js'
import { ProxyMetrics, StreamSet } from './metrics.js'
import { ANSWERED_CODE } from './error-reply.js'
import { SessionWatch } from './session-watch.js'
import { attachWebSocketProxy, pendingUpgrade } from './ws-proxy.js'
import { sessionCookieName } from './isolation.js'

const METHODS: HTTPMethods[] = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

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

  const metrics = opts.shared?.metrics ?? new ProxyMetrics()
  const streams = opts.shared?.streams ?? new StreamSet()
  fastify.addHook('onResponse', function count (request, reply, done) {
    if (forwardAuthOf(request.raw) !== undefined) metrics.forwardAuth(reply.statusCode)
    else if (request.mcpBackend !== null) metrics.observe(reply.statusCode, reply.elapsedTime)
    const code = (reply.raw as { [ANSWERED_CODE]?: string })[ANSWERED_CODE]
    if (code !== undefined) metrics.error(code)
    done()
  })

  const logSerializers = {
    req: (req: FastifyRequest) => ({
      method: req.method,
      url: redactUrl(req.url, prefix),
      remoteAddress: req.ip
    })
  }

  // Revocation and expiry end what is open on a session: tunnels, event streams, long-polls.
  const watch = new SessionWatch(authenticator, options.revalidateMs)
  fastify.addHook('onClose', (_instance, done) => { watch.close(); done() })
  const ws = attachWebSocketProxy(fastify, options, authenticator, sessionCookie, watch)
  // On a session host every path is the backend's, `/` included.
  const config = { mcpSessionHost: sessionHosts }
  const exchanges: ExchangeContext = { agent: backendAgent(options), streams, watch, maxBodyBytes: maxBody, closing: false, audit: authenticator.registry.audit }
  // The plugin closes what it opened, so the host's app.close() finishes within the drain bound
  // (Fastify waits for every connection): WebSockets get 1001 and event streams end at once;
  // requests still waiting on a backend (long-polls) get drainTimeoutMs, then a coded 503.
  let drain: NodeJS.Timeout | undefined
  let drained = false
  fastify.addHook('preClose', (done) => {
    exchanges.closing = true
    ws.tunnels.closeAll(1001, 'server shutting down')
    streams.endAll()
    drain = setTimeout(() => {
      drained = true
      watch.cutAll(new ShuttingDownError())
      ws.tunnels.destroyAll()
    }, options.drainTimeoutMs)
    drain.unref()
    done()
  })
  // Our own answers (refusals, redirects, forward-auth verdicts) in flight when the close began
  // take their keep-alive connection with them, or the close would wait out its timeout.
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (exchanges.closing) reply.header('connection', 'close')
    done(null, payload)
  })
  fastify.addHook('onClose', (_instance, done) => { clearTimeout(drain); done() })
  // Idle backend sockets go now; a request still in flight ends as its client's does.
  fastify.addHook('onClose', (_instance, done) => { exchanges.agent.close().catch(() => {}); done() })
  const proxy = function proxy (request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined {
    // Past the drain bound (a request that waited on the store meanwhile): refused at once.
    if (drained) throw new ShuttingDownError()
    const upgrade = pendingUpgrade(request)
    if (upgrade !== undefined) return ws.tunnel(request, reply, upgrade)
    const target = request.mcpTarget!
    const ctx = forwardContext(request, options, sessionCookie, authenticator.proofFor)
    const asked = forwardAuthOf(request.raw)
    if (asked !== undefined) {
      answerForwardAuth(request, reply, ctx, options, asked)
      return undefined
    }
    proxyHttp(request, reply, ctx, backendPath(target, options.forwardToken), rewriteRequestHeaders(request.headers, ctx), exchanges)
    return undefined
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

  if (!fastify.hasDecorator('mcpGateway')) fastify.decorate('mcpGateway', { authenticator, tunnels: ws.tunnels, streams, metrics, openBySession: () => watch.openBySession(authenticator) })
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

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { assetRedirect } from './asset-fallback.js'
import { Authenticator } from './authenticator.js'
import { discovery } from './discovery.js'
import { validateOptions } from './options.js'
import type { ProxyOptions } from './options.js'
import { streamingProxy } from './streaming-proxy.js'
import { resolveRegistry, tokenAuth } from './token-auth.js'
import { sessionHostOf } from '@mcp-gw/protocol'
import { EndedListError, ForwardAuthDeniedError, RouteNotFoundError, UnknownSessionHostError } from './errors.js'
import { edgeKeyMatches, endedSessions, FORWARD_AUTH_ENDED_PATH, FORWARD_AUTH_KEY_HEADER, FORWARD_AUTH_PATH, MAX_ENDED_TOKENS } from './forward-auth.js'
import { checkServerOptions } from './server-options.js'
import { expectationFailed, sendError } from './error-reply.js'
import { redactUrl } from './request-target.js'
import { ISOLATED_PREFIX } from './isolation.js'
import { ProxyMetrics, StreamSet } from './metrics.js'
import type { TunnelSet } from './ws-proxy.js'

export type McpGatewayOptions = ProxyOptions

/**
 * Everything in one registration: token-auth, discovery and the streaming
 * proxy in that order, in their own encapsulated context under `prefix`, so
 * their parsers and hooks never touch the host app. With `assetFallback`
 * (default) it also sets the host's not-found handler, to send a session
 * page's absolute-path requests back under its prefix.
 *
 *   await app.register(mcpGateway, { prefix: '/mcp', registry })
 */
async function mcpGatewayPlugin (fastify: FastifyInstance, opts: McpGatewayOptions): Promise<void> {
  const options = validateOptions(opts)
  // Isolated mode and forward-auth need Fastify's rewriteUrl: a missing or different one is a start-up error.
  checkServerOptions(fastify, options)
  // Node's own answer to an Expect it does not meet is a bare 417: ours carries a code.
  if (fastify.server.listenerCount('checkExpectation') === 0) fastify.server.on('checkExpectation', expectationFailed)
  const authenticator = new Authenticator(resolveRegistry(fastify, opts.registry), options)
  const shared = { ...opts, prefix: options.prefix, authenticator, normalized: options }

  const metrics = new ProxyMetrics()
  const streams = new StreamSet()
  const tunnelSets: TunnelSet[] = []
  const openSources: Array<() => Map<string, number>> = []
  await fastify.register(async function mcpGatewayContext (context) {
    await context.register(tokenAuth, shared)
    await context.register(discovery)
    await context.register(streamingProxy, { ...shared, shared: { metrics, streams } })
    tunnelSets.push(context.mcpGateway.tunnels)
    openSources.push(context.mcpGateway.openBySession)
  }, { prefix: options.prefix })

  const wildcard = options.isolation
  if (wildcard !== null && wildcard.protocol === 'http' && !wildcard.suffix.endsWith('.localhost')) {
    fastify.log.warn({ wildcard: wildcard.pattern }, 'isolated mode over plain http: browsers send no Fetch Metadata there and every session cookie is readable on the wire; use https outside *.localhost')
  }
  if (wildcard !== null) {
    // Session hosts: the same three plugins, the credential from a cookie, `/` the backend's `/`.
    const onHosts = { ...shared, prefix: ISOLATED_PREFIX, sessionHosts: true, normalized: Object.freeze({ ...options, prefix: ISOLATED_PREFIX }) }
    await fastify.register(async function mcpSessionHostContext (context) {
      await context.register(tokenAuth, onHosts)
      await context.register(discovery)
      await context.register(streamingProxy, { ...onHosts, shared: { metrics, streams } })
      tunnelSets.push(context.mcpGateway.tunnels)
      openSources.push(context.mcpGateway.openBySession)
    }, { prefix: ISOLATED_PREFIX })

    // Nothing but a session's proxy answers on a session host (not the API, not /metrics, not
    // the host app's routes), and the session-host routes answer nowhere else.
    let warned = false
    fastify.addHook('onRequest', function mcpSessionHostGuard (request, reply, done) {
      const label = sessionHostOf(wildcard, request.headers.host)
      const sessionRoute = (request.routeOptions.config as { mcpSessionHost?: boolean } | undefined)?.mcpSessionHost === true
      if (label === null) {
        done(sessionRoute ? new UnknownSessionHostError() : undefined)
        return
      }
      if (label !== '' && !sessionRoute && !warned) {
        warned = true
        request.log.warn('a session host reached an ordinary route: create Fastify with gatewayServerOptions(options)')
      }
      done(label === '' || !sessionRoute ? new UnknownSessionHostError() : undefined)
    })
  }

  if (options.forwardAuthKey !== null) {
    // Reached only by what the rewrite did not turn into the request it asks about:
    // no key, a wrong key, or no original method, URI and Host.
    let warned = false
    fastify.route({
      method: ['GET', 'HEAD', 'POST'],
      url: FORWARD_AUTH_PATH,
      exposeHeadRoute: false,
      handler: async function mcpForwardAuthRefused (request) {
        if (!warned && request.headers[FORWARD_AUTH_KEY_HEADER] !== undefined && !(request.raw as { originalUrl?: string }).originalUrl) {
          warned = true
          request.log.warn('a forward-auth request reached the gateway unrewritten: create Fastify with gatewayServerOptions(options)')
        }
        throw new ForwardAuthDeniedError()
      }
    })
    // An edge that carries event streams and long-polls asks which of their sessions ended.
    const key = Buffer.from(options.forwardAuthKey)
    await fastify.register(async function mcpForwardAuthEnded (context) {
      // Its own parser: whatever the host app parses text/plain into, this route reads a string.
      context.removeAllContentTypeParsers()
      context.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit: MAX_ENDED_TOKENS * 4097 }, (_request, body, done) => { done(null, body) })
      context.addContentTypeParser('*', (_request, _payload, done) => { done(new EndedListError()) })
      context.route({
        method: 'POST',
        url: FORWARD_AUTH_ENDED_PATH,
        // The key before the body: no one else gets a byte of it read.
        onRequest: (request, _reply, done) => { done(edgeKeyMatches(request.raw, key) ? undefined : new ForwardAuthDeniedError()) },
        handler: async function mcpForwardAuthEnded (request, reply) {
          const answer = await endedSessions(authenticator, request.body)
          return await reply.header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(answer)
        }
      })
    })
  }

  const tunnels: TunnelSet = {
    get size () { return tunnelSets.reduce((n, set) => n + set.size, 0) },
    closeAll (code, reason) { for (const set of tunnelSets) set.closeAll(code, reason) },
    destroyAll () { for (const set of tunnelSets) set.destroyAll() }
  }
  const openBySession = (): Map<string, number> => {
    const all = new Map<string, number>()
    for (const source of openSources) for (const [id, n] of source()) all.set(id, (all.get(id) ?? 0) + n)
    return all
  }
  const handle = { authenticator, tunnels, streams, metrics, openBySession }
  fastify.decorate('mcpGateway', { getter: () => handle })

  if (options.assetFallback) {
    fastify.setNotFoundHandler(async function mcpAssetFallback (request, reply) {
      if (await assetRedirect(request, reply, options.prefix, authenticator)) return reply
      // Fastify's own 404, plus a stable code like every other refusal of ours.
      return sendError(reply, new RouteNotFoundError(request.method, redactUrl(request.url.split('?')[0]!, options.prefix)))
    })
  }
}

export const mcpGateway = fp(mcpGatewayPlugin, {
  fastify: '5.x',
  name: '@mcp-gw/proxy-plugin'
})

export default mcpGateway

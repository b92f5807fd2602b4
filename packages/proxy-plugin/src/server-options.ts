import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { lazyChildLogger } from './child-logger.js'
import { clientErrorHandler, frameworkErrors } from './error-reply.js'
import { ServerOptionsMismatchError } from './errors.js'
import { forwardAuthRewrite } from './forward-auth.js'
import { rewriteForIsolation } from './isolation.js'
import { validateOptions } from './options.js'
import type { NormalizedProxyOptions, ProxyOptions } from './options.js'
import { serverLogSerializers } from './request-target.js'

type RewriteUrl = (this: FastifyInstance, req: IncomingMessage) => string

/** What a rewrite made here routes: the plugin compares it with its own options at boot. */
const madeFor = new WeakMap<object, string>()

/** The part of the options the server's rewriteUrl depends on (held in memory only: it includes the edge key). */
function routingOf (options: Pick<NormalizedProxyOptions, 'isolation' | 'forwardAuthKey'>): string {
  return JSON.stringify([options.isolation?.pattern ?? null, options.forwardAuthKey])
}

function needsRewrite (options: Pick<NormalizedProxyOptions, 'isolation' | 'forwardAuthKey'>): boolean {
  return options.isolation !== null || options.forwardAuthKey !== null
}

function rewriteFor (checked: NormalizedProxyOptions, hostRewrite?: RewriteUrl): RewriteUrl {
  const forwardAuth = checked.forwardAuthKey === null ? null : forwardAuthRewrite(checked.forwardAuthKey)
  const isolation = checked.isolation === null ? null : rewriteForIsolation(checked.isolation)
  const rewrite: RewriteUrl = function mcpGatewayRewrite (req) {
    // An edge's forward-auth question becomes the request it asks about; a session host's
    // every path goes to the session-host proxy; anything else is the host app's to rewrite.
    forwardAuth?.(req)
    if (isolation !== null) {
      const url = isolation(req)
      if (url !== (req.url ?? '/')) return url
    }
    return hostRewrite === undefined ? req.url ?? '/' : hostRewrite.call(this, req)
  }
  madeFor.set(rewrite, routingOf(checked))
  return rewrite
}

/**
 * For Fastify's `rewriteUrl` server option, required with `isolation` or
 * `forwardAuth` (gatewayServerOptions sets it): turns an edge's forward-auth
 * request into the request it asks about, and routes every request whose Host
 * is under the wildcard domain to the session-host proxy.
 */
export function gatewayRewriteUrl (options: Pick<ProxyOptions, 'isolation' | 'forwardAuth'>): (req: IncomingMessage) => string {
  return rewriteFor(validateOptions({ ...(options.isolation !== undefined && { isolation: options.isolation }), ...(options.forwardAuth !== undefined && { forwardAuth: options.forwardAuth }) }))
}

/** Isolated mode's rewriteUrl alone: `gatewayRewriteUrl({ isolation: { wildcardUrl } })`. */
export function isolationRewriteUrl (wildcardUrl: string): (req: IncomingMessage) => string {
  return gatewayRewriteUrl({ isolation: { wildcardUrl } })
}

/**
 * Every server-level setting the plugin needs, from the same options it is
 * registered with, merged into the host's own (`base`):
 *
 * - `rewriteUrl` when `isolation` or `forwardAuth` is on (a host's own
 *   rewriteUrl in `base` still runs for every other request);
 * - `frameworkErrors` and `clientErrorHandler`: coded answers that never quote
 *   a URL (and with it a token) to the client or the log;
 * - request logs with tokens redacted, request loggers made only when used,
 *   and no client-chosen request ids in the logs.
 *
 *   const options = { isolation: { wildcardUrl: 'https://*.apps.example.com' } }
 *   const app = Fastify(gatewayServerOptions(options, { logger: true }))
 *   await app.register(mcpGateway, options)
 *
 * The plugin checks at boot that Fastify was created with the rewriteUrl its
 * options need, and refuses to start otherwise (MCPGW_PROXY_SERVER_OPTIONS_MISMATCH).
 */
export function gatewayServerOptions<T extends FastifyServerOptions> (options: ProxyOptions = {}, base?: T): T & FastifyServerOptions {
  const checked = validateOptions(options)
  const given = (base ?? {}) as T & FastifyServerOptions
  const server: FastifyServerOptions = { ...given }
  if (needsRewrite(checked)) server.rewriteUrl = rewriteFor(checked, given.rewriteUrl as RewriteUrl | undefined)
  server.frameworkErrors ??= frameworkErrors
  server.clientErrorHandler ??= clientErrorHandler
  server.childLoggerFactory ??= lazyChildLogger
  if (!('requestIdHeader' in given)) server.requestIdHeader = false
  const logger = given.logger
  if (logger === true || (typeof logger === 'object' && logger !== null)) {
    const own = logger === true ? {} : logger
    server.logger = { ...own, serializers: { ...serverLogSerializers(checked.prefix), ...own.serializers } }
  } else if (given.loggerInstance !== undefined) {
    // A logger of the host's own: a child of it that redacts tokens in logged URLs.
    server.loggerInstance = given.loggerInstance.child({}, { serializers: serverLogSerializers(checked.prefix) }) as typeof given.loggerInstance
  }
  return server as T & FastifyServerOptions
}

/** Finds Fastify's server options (kept under a symbol, on the root instance). */
function fastifyServerOptions (fastify: FastifyInstance): { rewriteUrl?: unknown } | undefined {
  for (let o: object | null = fastify; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const key = Object.getOwnPropertySymbols(o).find((s) => s.description === 'fastify.options')
    if (key !== undefined) return (o as Record<symbol, { rewriteUrl?: unknown }>)[key]
  }
  return undefined
}

/**
 * At boot: the rewriteUrl Fastify was created with routes what these options need.
 * Without it, session hosts and forward-auth requests would reach ordinary routes
 * and get 404s at run time; this makes it a start-up error instead.
 */
export function checkServerOptions (fastify: FastifyInstance, options: NormalizedProxyOptions): void {
  const server = fastifyServerOptions(fastify)
  if (server === undefined) return // a Fastify that keeps its options elsewhere: the run-time guard still warns
  const rewrite = server.rewriteUrl
  const routing = typeof rewrite === 'function' ? madeFor.get(rewrite) : undefined
  // Options without isolation or forward-auth are served whatever the rewrite (another gateway's, say).
  if (!needsRewrite(options)) return
  if (rewrite === undefined) throw new ServerOptionsMismatchError(`${options.isolation !== null ? 'isolation' : 'forwardAuth'} needs Fastify's rewriteUrl, and none was given`)
  if (routing === undefined) throw new ServerOptionsMismatchError('Fastify\'s rewriteUrl is not the gateway\'s (pass your own as gatewayServerOptions(options, { rewriteUrl }) to run it for other requests)')
  if (routing !== routingOf(options)) throw new ServerOptionsMismatchError('Fastify\'s rewriteUrl was made for other isolation or forwardAuth options')
}

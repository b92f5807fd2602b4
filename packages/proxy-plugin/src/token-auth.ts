import type { Registry, SessionRecord } from '@mcp-gw/registry'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { Authenticator } from './authenticator.js'
import { inAudience, sessionHostLabel } from '@mcp-gw/protocol'
import { serialize as serializeCookie } from 'cookie'
import { BadPathError, FrameUnboundError, InvalidOptionError, LinkNotOpenedHereError, LoginRequiredError, NotYourSessionError, ScopeDeniedError, WrongSessionHostError } from './errors.js'
import { isPageNavigation } from './logins.js'
import type { LoggedInPerson, LoginPlace } from './logins.js'
import { frameTicket, frameTicketOpens, gatewayCookies, isolatedTarget, sessionCookieAttributes, sessionCookieName, withFrameTicket } from './isolation.js'
import type { IsolatedTarget } from './isolation.js'
import { sendError } from './error-reply.js'
import { fetchRefusal, framedByOtherSite } from './fetch-metadata.js'
import { asBackendsReadIt, servesOpaqueOrigins } from './headers.js'
import { checkPrefix, validateOptions } from './options.js'
import type { NormalizedProxyOptions, ProxyOptions } from './options.js'
import { parseTarget, stripTokenFromQuery } from './request-target.js'
import { labelPrefix, PATH_COOKIE, pathLabel, swapsPathLink } from './path-link.js'
import { edgeMaxAge, forwardAuthOf } from './forward-auth.js'
import type { RequestTarget } from './request-target.js'
import { auditOpened, auditRefusal } from './audit.js'

export interface TokenAuthOptions extends ProxyOptions {
  /** Share one authenticator (and its cache) between plugins; made from `registry` otherwise. */
  authenticator?: Authenticator
  /** Internal: this context serves session hosts (isolated mode) rather than `<prefix>/<token>/`. */
  sessionHosts?: boolean
  /** Internal: options mcpGateway has checked already, for this context's prefix. */
  normalized?: NormalizedProxyOptions
}

// A session without `interact` may read: GET and HEAD (WebSocket and SSE start as GET).
const READ_METHODS = new Set(['GET', 'HEAD'])
/**
 * Headers by which a backend framework (Express method-override, Symfony, Jersey, ASP.NET
 * and kin) takes a GET for the method they name: on a session without interact, a request
 * carrying one is refused, here and in forward-auth verdicts alike.
 */
const METHOD_OVERRIDE_HEADERS = new Set(['x-http-method-override', 'x-http-method', 'x-method-override'])

export function resolveRegistry (fastify: FastifyInstance, registry: Registry | undefined): Registry {
  const found = registry ?? (fastify.hasDecorator('mcpRegistry') ? fastify.mcpRegistry : undefined)
  if (found === undefined) {
    throw new InvalidOptionError('registry', 'pass a Registry, or register @mcp-gw/registry first')
  }
  return found
}

/**
 * A plugin's options, checked once: the ones mcpGateway checked and passed on, or
 * these checked here; either way for the prefix of the context it is registered in.
 */
export function contextOptions (fastify: FastifyInstance, opts: ProxyOptions & { normalized?: NormalizedProxyOptions }): NormalizedProxyOptions {
  const actual = fastify.prefix
  const options = opts.normalized ?? validateOptions({ ...opts, prefix: checkPrefix(opts.prefix ?? (actual === '' ? undefined : actual)) })
  if (actual !== options.prefix) {
    throw new InvalidOptionError('prefix', `register the proxy plugins in a context with prefix ${options.prefix} (this one has "${actual}")`)
  }
  return options
}

async function tokenAuthPlugin (fastify: FastifyInstance, opts: TokenAuthOptions): Promise<void> {
  const options = contextOptions(fastify, opts)
  const prefix = options.prefix
  const authenticator = opts.authenticator ?? new Authenticator(resolveRegistry(fastify, opts.registry), options)
  const sessions = authenticator.sessions
  const isolation = opts.sessionHosts === true ? options.isolation : null
  const logins = options.logins
  if (opts.sessionHosts === true && isolation === null) throw new InvalidOptionError('isolation', 'session hosts need isolation.wildcardUrl')
  const cookieName = isolation === null ? '' : sessionCookieName(isolation)
  const cookieAttributes = isolation === null ? null : sessionCookieAttributes(isolation, options.frameAncestors)
  // One hash per session, not per request.
  const labels = new WeakMap<SessionRecord, string>()
  /** The host-separation rule, in one place: a session's credential opens its own host and no other. */
  const opensHost = (session: SessionRecord, onHost: IsolatedTarget): boolean => {
    let label = labels.get(session)
    if (label === undefined) {
      label = sessionHostLabel(session)
      labels.set(session, label)
    }
    return label === onHost.label
  }
  // Path mode: one HMAC per credential, not per request.
  const pathLabels = new WeakMap<SessionRecord, { token: string, label: string }>()
  const pathLabelOf = (session: SessionRecord, token: string): string => {
    const known = pathLabels.get(session)
    if (known !== undefined && known.token === token) return known.label
    const label = pathLabel(token)
    pathLabels.set(session, { token, label })
    return label
  }
  /** Whether this request, which came with the link, is a page load whose link is swapped for the label's cookie. */
  const swapsLink = (request: FastifyRequest, target: RequestTarget): boolean =>
    isolation === null && options.pathLinkSwap && target.label === undefined && swapsPathLink(request)

  // A backend that re-registers (say, restarted on a new port) is routed to at once.
  const unsubscribe = authenticator.registry.onServerChange((_serverName, instanceId) => authenticator.routes.delete(instanceId))
  fastify.addHook('onClose', (_instance, done) => { unsubscribe(); done() })
  fastify.decorate('mcpAuthenticator', authenticator)
  fastify.decorateRequest('mcpSession', null)
  fastify.decorateRequest('mcpTarget', null)
  fastify.decorateRequest('mcpPerson', null)
  const audit = authenticator.registry.audit
  fastify.setErrorHandler((err, request, reply) => {
    if (audit.enabled) auditRefusal(audit, request, err)
    sendError(reply, err)
  })

  /**
   * Of the credentials a request carried in cookies (in the order the browser sent them), the
   * cached session of the first that `opens` what was asked for, if any: `target.token` becomes it.
   */
  function firstCached (target: RequestTarget, candidates: readonly string[], opens: (session: SessionRecord, token: string) => boolean): SessionRecord | undefined {
    for (const token of candidates) {
      const session = sessions.peek(token)
      if (session !== undefined && opens(session, token)) {
        target.token = token
        return session
      }
    }
    return undefined
  }

  /** The same, checked against the store; the first refusal (`mismatch()` for one that opens something else) when none opens it. */
  async function firstLoaded (target: RequestTarget, candidates: readonly string[], opens: (session: SessionRecord, token: string) => boolean, maxAgeMs: number | undefined, mismatch: () => Error): Promise<SessionRecord> {
    let refusal: unknown
    for (const token of candidates) {
      try {
        const session = await sessions.get(token, maxAgeMs)
        if (opens(session, token)) {
          target.token = token
          return session
        }
        refusal ??= mismatch()
      } catch (err) {
        refusal ??= err
      }
    }
    throw refusal ?? mismatch()
  }

  /** Admits the request with its cached session. */
  function admitCached (request: FastifyRequest, reply: FastifyReply, target: RequestTarget, done: HookHandlerDoneFunction, cached: SessionRecord): void {
    request.mcpSession = cached
    admit(request, reply, target, done)
  }

  /** Admits the request with the session the store gave, or refuses it with the store's refusal. */
  function admitWhenLoaded (request: FastifyRequest, reply: FastifyReply, target: RequestTarget, done: HookHandlerDoneFunction, loading: Promise<SessionRecord>): void {
    loading.then((session) => {
      request.mcpSession = session
      admitLoaded(request, reply, target, done)
    }, done)
  }

  /** admit() after a store lookup: anything it throws is the request's error, never an unhandled rejection. */
  function admitLoaded (request: FastifyRequest, reply: FastifyReply, target: RequestTarget, done: HookHandlerDoneFunction): void {
    try {
      admit(request, reply, target, done)
    } catch (err) {
      done(err as Error)
    }
  }

  function admit (request: FastifyRequest, reply: FastifyReply, target: RequestTarget, done: HookHandlerDoneFunction): void {
    const session = request.mcpSession!
    // (Not for an edge's question: an edge reads any 2xx as "pass", and carries the answer itself.)
    if (isolation === null && request.method === 'OPTIONS' && servesOpaqueOrigins(request.headers, options) && request.headers['access-control-request-method'] !== undefined && forwardAuthOf(request.raw) === undefined) {
      answerPreflight(request, reply)
      return
    }
    const level = session.shareLevel ?? 'link'
    const onHost = isolation === null ? null : target as IsolatedTarget
    if (onHost !== null && onHost.loginTicket !== undefined && !onHost.fromLink) {
      // Back from the login on the host app's host: the ticket swapped for this host's login cookie.
      const accepted = logins?.acceptTicket?.(onHost.loginTicket, onHost.label, request) ?? null
      if (accepted === null) {
        done(new LoginRequiredError())
        return
      }
      reply.code(303).header('set-cookie', accepted.setCookie).header('location', onHost.cleanUrl)
        .header('referrer-policy', 'no-referrer').header('cache-control', 'no-store').send()
      return
    }
    // (A link on a session host, or a path-mode link a browser loads as a page, is swapped for
    // a cookie first: the login that follows then never carries the link. The swap reaches no backend.)
    if (level !== 'link' && onHost?.fromLink !== true && !swapsLink(request, target)) {
      // Bound to a person: the link alone opens nothing (here for pages, WebSocket upgrades,
      // event streams and forward-auth questions alike, all of which pass this hook).
      const place = { sessionHost: onHost === null ? null : onHost.label }
      const found = logins === null ? null : logins.personOf(request, place)
      if (found instanceof Promise) {
        found.then((person) => {
          if (personAdmits(request, reply, session, person, place, done)) admitScoped(request, reply, target, done)
        }).catch(done)
        return
      }
      if (!personAdmits(request, reply, session, found, place, done)) return
    }
    admitScoped(request, reply, target, done)
  }

  /** Whether the logged-in person (or none) may open this session; answers or refuses the request when not. */
  function personAdmits (request: FastifyRequest, reply: FastifyReply, session: SessionRecord, person: LoggedInPerson | null, place: LoginPlace, done: HookHandlerDoneFunction): boolean {
    if (person === null) {
      // (On a session host, the URL the browser asked for: rewriteUrl put the internal prefix in front.)
      const asked = place.sessionHost === null ? request.raw.url ?? '/' : (request.mcpTarget as IsolatedTarget).cleanUrl
      // (An edge's question about a page load gets the same answer: edges relay it.)
      if (logins?.askLogin !== undefined && isPageNavigation(request)) logins.askLogin(request, reply, asked, place)
      else done(new LoginRequiredError())
      return false
    }
    // `owner`: the session's user, or, on a share with one person, that person (never the sharer).
    // `authenticated` limited to groups or email domains: someone in them.
    if ((session.shareLevel === 'owner' && person.userId !== (session.share?.with ?? session.userId)) ||
      (session.shareLevel === 'authenticated' && session.audience !== undefined && !inAudience(session.audience, person))) {
      done(Object.assign(new NotYourSessionError(), logins!.signOutPath === undefined ? {} : { signOutPath: logins!.signOutPath }))
      return false
    }
    request.mcpPerson = person
    return true
  }

  /** The rest of admit(), once the person (if the session needs one) is known. */
  function admitScoped (request: FastifyRequest, reply: FastifyReply, target: RequestTarget, done: HookHandlerDoneFunction): void {
    const session = request.mcpSession!
    if (!session.scopes.includes('interact')) {
      if (!READ_METHODS.has(request.method)) {
        done(new ScopeDeniedError(request.method))
        return
      }
      const override = Object.keys(request.headers).find((name) => METHOD_OVERRIDE_HEADERS.has(asBackendsReadIt(name)))
      if (override !== undefined) {
        done(new ScopeDeniedError(`${request.method} with ${override}`))
        return
      }
    }
    if (isolation !== null) {
      // Only a session that opensHost() this host got here (onHostCached, onHostLoaded).
      const onHost = target as IsolatedTarget
      // In another site's frame the cookie is shared with every page of that site (it is
      // partitioned by the top-level site, not by frame): there it opens the session only
      // for the embed the link made, which carries the frame ticket.
      const framed = framedByOtherSite(request.headers)
      if (framed && !onHost.fromLink && !frameTicketOpens(onHost.frameTicket, onHost.token, onHost.label)) {
        done(new FrameUnboundError())
        return
      }
      if (audit.enabled) auditOpened(audit, request, session, onHost.fromLink ? 'link' : 'cookie')
      if (onHost.fromLink) {
        // The link's credential, once: swapped for a host-only cookie the page's scripts cannot
        // read, and the browser sent to the same URL without it (address bar, Referer, backend).
        const maxAge = Math.max(1, Math.floor((session.expiresAt - options.now()) / 1000))
        reply.code(303)
          .header('set-cookie', serializeCookie(cookieName, onHost.token, { ...cookieAttributes, maxAge }))
          .header('location', framed ? withFrameTicket(onHost.cleanUrl, frameTicket(onHost.token, onHost.label)) : onHost.cleanUrl)
          .header('referrer-policy', 'no-referrer')
          .header('cache-control', 'no-store')
          .send()
        return
      }
    } else {
      if (audit.enabled) auditOpened(audit, request, session, target.label === undefined ? 'link' : 'cookie')
      if (swapsLink(request, target)) {
        // The link's credential, once per browser: swapped for an HttpOnly cookie on the path of
        // the session's label, and the page sent to the same place under that label.
        const label = pathLabelOf(session, target.token)
        const at = labelPrefix(prefix, label)
        const maxAge = Math.max(1, Math.floor((session.expiresAt - options.now()) / 1000))
        reply.code(303)
          .header('set-cookie', serializeCookie(PATH_COOKIE, target.token, { httpOnly: true, path: at, sameSite: 'lax', secure: request.protocol === 'https', maxAge }))
          .header('location', at + (target.path === '' ? '/' : target.path) + stripTokenFromQuery(target.search, target.token))
          .header('referrer-policy', 'no-referrer')
          .header('cache-control', 'no-store')
          .send()
        return
      }
    }
    if (isolation === null && target.path === '') {
      // `<prefix>/<token>` -> `<prefix>/<token>/`, so the page's relative URLs resolve under the token (or label).
      const at = target.label === undefined ? `${prefix}/${target.token}` : labelPrefix(prefix, target.label)
      reply.code(308).header('location', `${at}/${target.search}`).header('referrer-policy', 'same-origin').send()
      return
    }
    authenticator.touch(session)
    done()
  }

  // onRequest: before any byte of the body is read, and before any backend is contacted.
  fastify.addHook('onRequest', function authenticate (request, reply, done) {
    const refused = fetchRefusal(request.headers, request.method, isolation !== null)
    if (refused !== null) {
      done(refused)
      return
    }
    let target: RequestTarget | null
    try {
      target = isolation === null ? parseTarget(request.raw.url ?? '/', prefix) : isolatedTarget(request, isolation, cookieName)
    } catch (err) {
      done(err as Error)
      return
    }
    if (target === null) {
      // The router placed this request under the prefix, yet it does not read as
      // `<prefix>/<token>/...`: never guess, refuse.
      done(new BadPathError())
      return
    }
    request.mcpTarget = target
    // A forward-auth answer the edge keeps a while is checked that much sooner (never from the cache alone).
    const maxAgeMs = edgeMaxAge(request.raw, options.revalidateMs)
    if (isolation !== null) {
      const onHost = target as IsolatedTarget
      const opens = (session: SessionRecord): boolean => opensHost(session, onHost)
      const cached = maxAgeMs === undefined ? firstCached(onHost, onHost.candidates, opens) : undefined
      if (cached !== undefined) admitCached(request, reply, target, done, cached)
      else admitWhenLoaded(request, reply, target, done, firstLoaded(onHost, onHost.candidates, opens, maxAgeMs, () => new WrongSessionHostError()))
      return
    }
    if (target.label !== undefined) {
      // A URL without its credential: the cookie the link's swap set on this label's path holds
      // it. A cookie makes it what a session host is: only navigations from elsewhere.
      const refusedHere = fetchRefusal(request.headers, request.method, true)
      if (refusedHere !== null) {
        done(refusedHere)
        return
      }
      const candidates = gatewayCookies(request.headers.cookie, PATH_COOKIE)
      if (candidates.length === 0) {
        done(new LinkNotOpenedHereError())
        return
      }
      const opens = (session: SessionRecord, token: string): boolean => pathLabelOf(session, token) === target.label
      const cached = maxAgeMs === undefined ? firstCached(target, candidates, opens) : undefined
      if (cached !== undefined) admitCached(request, reply, target, done, cached)
      else admitWhenLoaded(request, reply, target, done, firstLoaded(target, candidates, opens, maxAgeMs, () => new LinkNotOpenedHereError()))
      return
    }
    // The hot path: a link's request with its session cached allocates nothing here.
    const cached = maxAgeMs === undefined ? sessions.peek(target.token) : undefined
    if (cached !== undefined) admitCached(request, reply, target, done, cached)
    else admitWhenLoaded(request, reply, target, done, sessions.get(target.token, maxAgeMs))
  })
}

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/

/**
 * A CORS preflight from a session page at an opaque origin (path mode, frameAncestors `*`),
 * for a session its URL authenticated: allowed, for what it asks that reads as a method and
 * header names, without credentials (its URL is its credential). The request itself is then
 * checked like any other (scopes included).
 */
function answerPreflight (request: FastifyRequest, reply: FastifyReply): void {
  const method = request.headers['access-control-request-method']
  const asked = request.headers['access-control-request-headers']
  const names = typeof asked === 'string' ? asked.split(',').map((n) => n.trim()).filter((n) => n !== '') : []
  reply.code(204)
    .header('access-control-allow-origin', 'null')
    .header('vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers')
    .header('access-control-max-age', '600')
  if (typeof method === 'string' && TOKEN.test(method)) reply.header('access-control-allow-methods', method)
  if (names.length > 0 && names.length <= 32 && names.every((n) => TOKEN.test(n))) reply.header('access-control-allow-headers', names.join(', '))
  reply.send()
}

/**
 * Authenticates every request under the prefix: decorates `request.mcpSession`
 * or answers 401/403/503 with a coded error. Register it first, in the context
 * that carries the prefix.
 */
export const tokenAuth = fp(tokenAuthPlugin, {
  fastify: '5.x',
  name: '@mcp-gw/proxy-plugin/token-auth'
})

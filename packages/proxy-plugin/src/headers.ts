import type { IncomingHttpHeaders } from 'node:http'
import { FRAME_TICKET_PARAM, IDENTITY_HEADERS, LOGIN_USER_HEADER, REGISTRANT_HEADER, REGISTRANT_ROTATION_HEADER, urlHost } from '@mcp-gw/protocol'
import type { ServerRegistration, SessionRecord } from '@mcp-gw/registry'
import type { FastifyRequest } from 'fastify'
import type { RegistrantProofs } from './authenticator.js'
import type { LoggedInPerson } from './logins.js'
import type { NormalizedProxyOptions } from './options.js'
import { backendPath, parseTarget, withoutParam } from './request-target.js'
import { labelPrefix, pathLabel } from './path-link.js'

/**
 * What a backend is told about the request, and what the browser is told about
 * the response. Built once per request from Fastify's own (trust-proxy aware)
 * view of it, for the HTTP proxy and the WebSocket handshake alike.
 */
export interface ForwardContext {
  token: string
  /** Path mode, a request that came by the session's label (its cookie held the token). */
  label: string | undefined
  prefix: string
  forwardToken: boolean
  /** X-Forwarded-For to send on: trusted hops kept, in order, ending with our peer. */
  forwardedFor: string
  proto: string
  host: string | undefined
  session: SessionRecord
  backend: ServerRegistration
  /** Isolated mode: the gateway's cookie on the session host (never passed either way); null in path mode. */
  sessionCookie: string | null
  /** The CSP `frame-ancestors` policy sent with every answer. */
  frameAncestors: string
  /**
   * Path mode with frameAncestors `*`: the request came from a page at an opaque origin
   * (`Origin: null`: a session page inside a sandboxed MCP Apps view inherits the sandbox),
   * whose answer it may read. Its URL carries the session's credential.
   */
  opaqueOrigin: boolean
  /** Isolated mode: the request carried a frame ticket, which its page's URL now holds. */
  frameTicket: boolean
  /** X-Mcpgw-Registrant (and -Rotation) for this request (null for a registration made without a secret). */
  registrantProof: RegistrantProofs | null
  /** Who is logged in, on a session bound to a person; null otherwise. */
  person: LoggedInPerson | null
  /** Headers the login rides in (an edge's assertion), as backends read their names: never passed on. */
  loginHeaders: ReadonlySet<string>
}

export function forwardContext (request: FastifyRequest, options: Pick<NormalizedProxyOptions, 'prefix' | 'forwardToken' | 'frameAncestors' | 'loginHeaders'>, sessionCookie: string | null, proofFor: (backend: ServerRegistration, session: SessionRecord) => RegistrantProofs | null): ForwardContext {
  // request.ips is [socket peer, ...trusted hops towards the client], per Fastify's trustProxy.
  const ips = request.ips
  const peer = request.socket.remoteAddress ?? ''
  return {
    token: request.mcpTarget!.token,
    label: request.mcpTarget!.label,
    prefix: options.prefix,
    forwardToken: options.forwardToken,
    forwardedFor: ips === undefined || ips.length <= 1 ? peer : [...ips].reverse().join(', '),
    proto: request.protocol,
    host: request.host === '' ? undefined : request.host,
    session: request.mcpSession!,
    backend: request.mcpBackend!,
    sessionCookie,
    frameAncestors: options.frameAncestors,
    opaqueOrigin: sessionCookie === null && servesOpaqueOrigins(request.headers, options),
    frameTicket: (request.mcpTarget as { frameTicket?: string }).frameTicket !== undefined,
    registrantProof: proofFor(request.mcpBackend!, request.mcpSession!),
    person: request.mcpPerson,
    loginHeaders: options.loginHeaders
  }
}

/**
 * Whether a path-mode request comes from a page at an opaque origin that the gateway serves:
 * only with frameAncestors `*` (the operator let any page holding a link frame it), where a
 * session page inside a sandboxed view runs at an opaque origin itself. Its requests carry the
 * session's credential in their URL, so reading their answers needs nothing the link does not give.
 */
export function servesOpaqueOrigins (headers: IncomingHttpHeaders, options: Pick<NormalizedProxyOptions, 'frameAncestors'>): boolean {
  return options.frameAncestors === '' && headers.origin === 'null'
}

/** The backend's `host:port` (IPv6 in brackets): its Host header, and what forward-auth names. */
export function backendHost (backend: ServerRegistration): string {
  return `${urlHost(backend.host)}:${backend.port}`
}

export function backendOrigin (backend: ServerRegistration): string {
  return `${backend.protocol}://${backendHost(backend)}`
}

/**
 * Headers that tell the backend who the gateway authenticated (only the gateway
 * sets them). `x-mcpgw-registrant` is a proof, keyed by the proof key the backend
 * got when it registered, that vouches for the others for a minute: a backend
 * reachable by others too (direct links) accepts them only with it.
 * `x-mcpgw-registrant-rotation`, while the gateway's secret rotates, has the same
 * proof under the keys of its other secrets. A client's values are dropped (spoofable).
 */
export { IDENTITY_HEADERS }

/** Cookies of mcp-gw itself: `mcpgw_session`, `__Host-mcpgw`, `mcpgw_direct_<port>`, `[__Host-]mcpgw_login[_state]`. */
const OWN_COOKIE = /^\s*(__Host-mcpgw[A-Za-z0-9_]*|mcpgw_[A-Za-z0-9_]*)\s*=/
/**
 * The same names in any case, for what a backend sets (refused whatever the case, as before),
 * and behind a bare `=` (a nameless cookie whose value is `mcpgw_login=...`, which a browser
 * would send back as that).
 */
const OWN_COOKIE_ANY_CASE = /^\s*(=\s*)?(__Host-mcpgw[A-Za-z0-9_]*|mcpgw_[A-Za-z0-9_]*)\s*=/i

// Hop-by-hop headers (RFC 9110 7.6.1) the client meant for us, not for the backend, which
// undici would refuse or frame differently (Transfer-Encoding: it chunks a body itself).
const HOP_BY_HOP = new Set(['connection', 'transfer-encoding', 'upgrade', 'keep-alive', 'proxy-connection', 'expect', 'http2-settings', 'te'])
// A WebSocket handshake keeps what makes it one.
const UPGRADE_KEEPS = new Set(['connection', 'upgrade'])

/** The names a `Connection` header lists: hop-by-hop too (RFC 9110 7.6.1). */
function connectionListed (value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null
  const names = new Set<string>()
  for (const name of String(value).toLowerCase().split(',')) {
    const trimmed = name.trim()
    if (trimmed !== '' && trimmed !== 'close' && trimmed !== 'keep-alive') names.add(trimmed)
  }
  return names.size === 0 ? null : names
}

/**
 * A (lowercase) header name as a backend may read it: CGI, WSGI and PHP read `_` as `-`,
 * so `X_MCPGW_USER_ID` is X-Mcpgw-User-Id to them. Every rule on a client's header names
 * matches this form.
 */
export function asBackendsReadIt (name: string): string {
  return name.includes('_') ? name.replaceAll('_', '-') : name
}

/**
 * Whatever a client sent under these names is dropped: a backend must not take it
 * as something the gateway said. The gateway sets its own X-Forwarded-For, -Proto,
 * -Host and -Prefix; a client's `Forwarded` (RFC 7239) would contradict them.
 */
function spoofable (name: string): boolean {
  name = asBackendsReadIt(name)
  if (name === 'forwarded' || name === 'remote-user') return true
  return name.startsWith('x-') && (name.startsWith('x-mcpgw-') || name.startsWith('x-forwarded-') || name === 'x-real-ip' ||
    // What front proxies and identity-aware proxies tell a backend: the original URL (nginx's
    // auth_request, IIS, which some frameworks route by) and the logged-in user (oauth2-proxy).
    name.startsWith('x-original-') || name === 'x-rewrite-url' || name.startsWith('x-auth-request-') || name === 'x-remote-user')
}

/**
 * Request headers for the backend, as a new object: deleting keys would turn
 * the object V8 sees on every proxied request into a slow dictionary. For an
 * `upgrade` (the WebSocket handshake) the hop-by-hop headers that carry it stay.
 */
export function rewriteRequestHeaders (headers: IncomingHttpHeaders, ctx: ForwardContext, upgrade = false): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  const token = ctx.forwardToken ? null : ctx.token
  // What the client lists in Connection is for us; the gateway's own headers are set below, whatever it lists.
  const listed = upgrade ? null : connectionListed(headers.connection)
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    if (HOP_BY_HOP.has(name) && !(upgrade && UPGRADE_KEEPS.has(name)) && !(name === 'te' && value === 'trailers')) continue
    if (listed?.has(name) === true) continue
    if (spoofable(name) || (ctx.loginHeaders.size > 0 && ctx.loginHeaders.has(asBackendsReadIt(name)))) continue
    if (name === 'referer') {
      const referer = rewriteReferer(value as string, ctx)
      if (referer !== undefined) out.referer = referer
      continue
    }
    if (name === 'cookie' && typeof value === 'string' && value.includes('mcpgw')) {
      // mcp-gw's own cookies (the session cookie on a session host, a direct link's cookie
      // that the browser sends every port of the host) are never a backend's, forwardToken or not.
      const kept = value.split(/;\s*/).filter((c) => !OWN_COOKIE.test(c) && (token === null || !c.includes(token)))
      if (kept.length > 0) out.cookie = kept.join('; ')
      continue
    }
    if (token !== null && typeof value === 'string' && value.includes(token)) {
      // The gateway token is not the backend's credential.
      if (name === 'authorization') continue
      if (name === 'cookie') {
        const kept = value.split(/;\s*/).filter((c) => !c.includes(token))
        if (kept.length > 0) out.cookie = kept.join('; ')
        continue
      }
    }
    out[name] = value
  }
  out['x-forwarded-for'] = ctx.forwardedFor
  out['x-forwarded-proto'] = ctx.proto
  if (ctx.host !== undefined) out['x-forwarded-host'] = ctx.host
  // On a session host the backend's `/` is the browser's `/`: no prefix to tell it about.
  // In path mode, where the browser is: under the session's label once its link was swapped.
  if (ctx.sessionCookie === null) out['x-forwarded-prefix'] = ctx.label === undefined ? ctx.prefix + '/' + ctx.token : labelPrefix(ctx.prefix, ctx.label)
  out['x-mcpgw-user-id'] = encodeURIComponent(ctx.session.userId)
  out['x-mcpgw-session-id'] = ctx.session.sessionId
  out['x-mcpgw-server-type'] = ctx.session.serverType
  out['x-mcpgw-scopes'] = ctx.session.scopes.join(',')
  out['x-mcpgw-instance-id'] = ctx.session.instanceId
  if (ctx.person !== null) out[LOGIN_USER_HEADER] = encodeURIComponent(ctx.person.userId)
  if (ctx.registrantProof !== null) {
    out[REGISTRANT_HEADER] = ctx.registrantProof.proof
    if (ctx.registrantProof.rotation !== null) out[REGISTRANT_ROTATION_HEADER] = ctx.registrantProof.rotation
  }
  return out
}

const JWT_SHAPED = /[\w%-]{10,}\.[\w%-]{10,}\.[\w%-]*/

/**
 * A Referer naming a page of this session becomes the same page on the backend's
 * own origin, as on a direct connection; one naming any other session (its token
 * in the path) is dropped, so backend B never learns session A's URL. Referers
 * from elsewhere pass, unless they carry something shaped like a token; a frame
 * ticket is taken out of any.
 */
function rewriteReferer (referer: string, ctx: ForwardContext): string | undefined {
  // A framed session page's own URL carries its frame ticket: never passed on.
  if (referer.includes(FRAME_TICKET_PARAM)) referer = withoutFrameTicket(referer)
  // Most Referers name no session at all: skip the URL parse for them (any other spelling
  // of one is caught by its token's shape).
  if (!referer.includes(`${ctx.prefix}/`)) return JWT_SHAPED.test(referer) ? undefined : referer
  let url: URL
  try {
    url = new URL(referer)
  } catch {
    return undefined
  }
  let target
  try {
    target = parseTarget(url.pathname + url.search, ctx.prefix)
  } catch {
    return undefined
  }
  if (target === null) return JWT_SHAPED.test(referer) ? undefined : referer
  // A page of this session, under its link or its label; any other session's is dropped.
  if (target.label === undefined ? target.token !== ctx.token : target.label !== (ctx.label ?? pathLabel(ctx.token))) return undefined
  return backendOrigin(ctx.backend) + backendPath(target, ctx.forwardToken)
}

function withoutFrameTicket (url: string): string {
  const hash = url.indexOf('#')
  const end = hash === -1 ? url.length : hash
  const query = url.indexOf('?')
  if (query === -1 || query > end) return url
  return url.slice(0, query) + withoutParam(url.slice(query, end), FRAME_TICKET_PARAM) + url.slice(end)
}

// Policies that never send a path to another origin; anything else is replaced.
const SAFE_REFERRER_POLICIES = new Set([
  'no-referrer', 'same-origin', 'origin', 'strict-origin', 'strict-origin-when-cross-origin', 'origin-when-cross-origin'
])

/**
 * Dropped from every answer a backend gives a browser. Origin-wide headers: on
 * an origin shared by every session, one backend could widen a Service
 * Worker's scope over other sessions' URLs (Service-Worker-Allowed) or wipe
 * their storage and cookies (Clear-Site-Data). Hop-by-hop headers (RFC 9110
 * 7.6.1) describe the backend's connection to us, not ours to the client: a
 * backend's `Connection: keep-alive` would otherwise override a client's
 * `Connection: close`, the names it lists in Connection are for that hop only, and its
 * Transfer-Encoding (undici has already decoded the body) would make Node frame the
 * client's response by a coding it does not apply: with `Transfer-Encoding: foo`, the
 * client could not tell where the answer ends and would read the next one into it.
 */
const DROPPED_RESPONSE_HEADERS = new Set(['service-worker-allowed', 'clear-site-data', 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'transfer-encoding', 'trailer',
  // What makes a front proxy act on the backend's behalf: an internal redirect to any location of
  // its own (nginx's X-Accel-Redirect reaches `internal` locations and the gateway's API; Apache's
  // and lighttpd's X-Sendfile read files; LiteSpeed's), or its cache and rate for this answer.
  // X-Accel-Buffering stays: it only says to pass an event stream as it comes (the gateway sets it).
  'x-accel-redirect', 'x-accel-expires', 'x-accel-limit-rate', 'x-accel-charset', 'x-sendfile', 'x-sendfile2', 'x-lighttpd-send-file', 'x-litespeed-location', 'x-litespeed-cache-control'])
// A 101 keeps the two headers that make it one.
const SWITCHING_KEEPS = new Set(['connection', 'upgrade'])

type ResponseHeaders = Record<string, string | string[] | number | undefined>

/**
 * The one policy for what a backend may send a browser, for a proxied
 * response, a refused upgrade and an accepted one (101, `switching`) alike.
 * Names are lower case (as Node and undici give them). Returns a new object:
 * dropping keys from the given one would turn it into a slow dictionary.
 */
export function rewriteResponseHeaders (headers: ResponseHeaders, ctx: Pick<ForwardContext, 'token' | 'label' | 'prefix' | 'backend' | 'sessionCookie' | 'frameAncestors' | 'opaqueOrigin' | 'frameTicket'>, switching = false): Record<string, string | string[] | number> {
  const out: Record<string, string | string[] | number> = {}
  const listed = connectionListed(headers.connection as string | string[] | undefined)
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    const kept = switching && SWITCHING_KEEPS.has(name)
    if (value === undefined || ((DROPPED_RESPONSE_HEADERS.has(name) || listed?.has(name) === true) && !kept)) continue
    out[name] = value
  }
  // A 101's Connection names the upgrade and nothing else the client should act on.
  if (switching && out.connection !== undefined) out.connection = 'Upgrade'
  // Path mode: everything is under the session's prefix. On a session host the backend has an
  // origin of its own, as on a direct connection: no prefix, and its own Referrer-Policy.
  const base = ctx.sessionCookie !== null ? null : ctx.label === undefined ? `${ctx.prefix}/${ctx.token}` : labelPrefix(ctx.prefix, ctx.label)

  const location = out.location
  if (location !== undefined) {
    // Sent more than once (undici hands repeats on as a list), every one is rewritten; browsers
    // follow repeats that agree, so those become one.
    const rewritten = [...new Set([location].flat().map((l) => rewriteLocation(String(l), base ?? '', ctx.backend)))]
    out.location = rewritten.length === 1 ? rewritten[0]! : rewritten
  }

  if (base !== null || ctx.frameTicket) {
    // The token is in every URL under the prefix (and a framed session page's first URL holds
    // its frame ticket): it must never travel in a Referer to another site.
    // Browsers apply the last policy they recognise; only a list whose last entry is safe is kept.
    const policy = out['referrer-policy']
    const last = policy === undefined ? undefined : String(policy).split(',').pop()?.trim().toLowerCase()
    if (last === undefined || !SAFE_REFERRER_POLICIES.has(last)) out['referrer-policy'] = 'same-origin'
  }

  const setCookie = out['set-cookie']
  if (setCookie !== undefined) {
    let cookies = Array.isArray(setCookie) ? setCookie : [String(setCookie)]
    // A backend never sets the gateway's own cookies: a session host's, a login's (which it could
    // otherwise plant, its own person's, in a victim's browser).
    cookies = cookies.filter((c) => !OWN_COOKIE_ANY_CASE.test(c))
    out['set-cookie'] = cookies.map((c) => scopeCookie(c, base))
  }

  if (!switching) {
    // Who may frame the page: ours beside the backend's policies; a browser enforces every one,
    // so a backend can narrow it but not widen it.
    const policies = out['content-security-policy'] === undefined ? [] : [out['content-security-policy']].flat().map(String)
    // Empty: any page holding the link may frame it (frameAncestors `*`): no policy of ours.
    if (ctx.frameAncestors !== '') policies.push(ctx.frameAncestors)
    // Browsers ignore X-Frame-Options once any frame-ancestors is present: the backend's
    // own refusal is carried over into the policy, or ours would widen it.
    // Repeated (or comma-joined) values count as the strictest of them, as Chromium reads them.
    const xfo = out['x-frame-options']
    const refusals = xfo === undefined ? [] : [xfo].flat().join(',').toLowerCase().split(',').map((v) => v.trim())
    if (refusals.includes('deny')) policies.push("frame-ancestors 'none'")
    else if (refusals.includes('sameorigin')) policies.push("frame-ancestors 'self'")
    if (policies.length > 0) out['content-security-policy'] = policies.length === 1 ? policies[0]! : policies
  }

  if (ctx.sessionCookie !== null && !switching) {
    // On a session host the same URL answers differently inside another site's frame (the frame
    // ticket, Fetch Metadata): a browser must not answer that frame from what it cached for the
    // page's own navigation, which would skip the gateway's check.
    out.vary = out.vary === undefined ? 'Sec-Fetch-Site, Sec-Fetch-Dest' : `${[out.vary].flat().join(', ')}, Sec-Fetch-Site, Sec-Fetch-Dest`
  }

  if (ctx.opaqueOrigin && !switching) {
    // The page's own request, from the opaque origin it inherited: readable by it, without credentials.
    out['access-control-allow-origin'] = 'null'
    delete out['access-control-allow-credentials']
    out.vary = out.vary === undefined ? 'Origin' : `${[out.vary].flat().join(', ')}, Origin`
  }

  const type = out['content-type']
  if (typeof type === 'string' && type.startsWith('text/event-stream')) {
    // Tell a buffering reverse proxy in front of us (nginx) to pass events as they come.
    out['x-accel-buffering'] = 'no'
  }
  return out
}

function rewriteLocation (location: string, base: string, backend: ServerRegistration): string {
  if (location.startsWith('/') && !location.startsWith('//') && !location.startsWith('/\\')) return base + location
  if (location.startsWith('http://') || location.startsWith('https://')) {
    try {
      const url = new URL(location)
      if (url.hostname === urlHost(backend.host) && Number(url.port || (url.protocol === 'https:' ? 443 : 80)) === backend.port) {
        return base + url.pathname + url.search + url.hash
      }
    } catch {}
  }
  return location
}

/**
 * A backend's cookie, its attributes read as a browser reads them (RFC 6265 5.2:
 * split on `;`, names trimmed and matched without case, the last Path counting),
 * so no spelling (`Path =/`, `PATH=/`, two Paths) escapes. Every Domain is
 * removed: in path mode it would widen the cookie to the gateway's whole domain,
 * on a session host to every other session host. In path mode (`base`) every Path
 * is replaced by exactly one under the session's prefix; on a session host (no
 * base) the backend's Paths stay as written. The cookie's other bytes are kept as
 * the backend wrote them, which a parse-and-serialise cookie library would not do.
 */
export function scopeCookie (cookie: string, base: string | null): string {
  const parts = cookie.split(';')
  const kept = [parts[0]!]
  let path = '/'
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    if (name === 'domain') continue
    if (name === 'path' && base !== null) {
      const value = eq === -1 ? '' : part.slice(eq + 1).trim()
      // 5.2.4: a value that does not start with `/` means the default path.
      path = value.startsWith('/') ? value : '/'
      continue
    }
    kept.push(part)
  }
  if (base !== null) kept.push(` Path=${base}${path}`)
  return kept.join(';')
}

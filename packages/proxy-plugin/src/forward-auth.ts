import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Authenticator } from './authenticator.js'
import { errorBody } from './error-reply.js'
import { BadUpgradeError, EndedListError, MalformedTokenError, OriginDeniedError } from './errors.js'
import { backendHost, rewriteRequestHeaders } from './headers.js'
import type { ForwardContext } from './headers.js'
import type { NormalizedProxyOptions } from './options.js'
import { backendPath } from './request-target.js'
import { isWebSocketHandshake, originAllowed } from './ws-proxy.js'

/**
 * Forward-auth: an edge proxy (nginx `auth_request`, Caddy `forward_auth`,
 * Traefik `ForwardAuth`, Envoy `ext_authz`) asks the gateway whether a request
 * may pass and where to, and carries the bytes itself.
 *
 * The edge calls this path with the original request's headers (cookies, Fetch
 * Metadata, Origin, Upgrade...) and says what the original was, the way each
 * edge does: `X-Forwarded-Method`/`-Uri`/`-Host` (Caddy, Traefik) or
 * `X-Original-Method`/`-URI` (nginx); its Host otherwise. The gateway's
 * `rewriteUrl` turns such a request, when it carries the edge key, into the
 * original one (method, URL, Host) before Fastify routes it, so it takes
 * exactly the original's route and hooks: the same authentication step as a
 * proxied request (cache, scopes, revocation, Fetch Metadata, isolated-mode
 * cookies and link swaps), one implementation. Only the last step differs:
 * instead of proxying, the handler answers 200 with the upstream and the
 * headers to send it. A refusal or a redirect is the answer the proxy itself
 * would give (a coded 401/403/503, the 303 that swaps a link for a cookie).
 */
export const FORWARD_AUTH_PATH = '/_mcpgw/forward-auth'
/** The edge's key, on every forward-auth request. */
export const FORWARD_AUTH_KEY_HEADER = 'x-mcpgw-forward-auth-key'
/**
 * How long (ms) the edge may keep an answer. The gateway then checks the session
 * against the store that much sooner, so a revocation still bites within its bound.
 */
export const EDGE_CACHE_HEADER = 'x-mcpgw-edge-cache-ms'

/**
 * Where an edge that carries event streams and long-polls asks which of the sessions it
 * carries them for have ended (revoked, expired, unknown), so it can end them too: POST, the
 * edge key, `text/plain` with one session token per line (at most MAX_ENDED_TOKENS). The answer
 * is `text/plain`, one line per ended session (and per line that cannot be a token): its line
 * number (from 0) and the coded refusal a new request would get, as JSON (`3 {"statusCode":401,"code":"MCPGW_PROXY_TOKEN_REVOKED",...}`),
 * for the edge to answer with; nothing for sessions still live, or when
 * the store cannot say (its outage grace holds, as for the gateway's own streams). The tokens
 * never come back: the edge matches lines by number.
 */
export const FORWARD_AUTH_ENDED_PATH = '/_mcpgw/forward-auth/ended'
export const MAX_ENDED_TOKENS = 1000
// A session token is a JWT: well under this, whatever its claims.
const MAX_TOKEN_LENGTH = 4096

/** The answer's headers, for the edge to use. */
export const VERDICT_HEADERS = {
  upstream: 'x-mcpgw-upstream',
  proto: 'x-mcpgw-upstream-proto',
  path: 'x-mcpgw-upstream-path',
  cookie: 'x-mcpgw-request-cookie',
  referer: 'x-mcpgw-request-referer',
  authorization: 'x-mcpgw-request-authorization',
  /**
   * The gateway's `frame-ancestors` directive (its `frameAncestors` option), for the edge to add
   * beside the backend's own policy; `*` when any page holding the link may frame it (no policy).
   */
  frameAncestors: 'x-mcpgw-frame-ancestors',
  /**
   * Request headers the backend must not get beyond what every edge drops: the login headers of
   * an identity-aware proxy in front (names, comma-separated), a credential for the gateway.
   */
  drop: 'x-mcpgw-request-drop'
} as const

export interface ForwardAuthMark {
  /** How long the edge keeps answers, ms (0: no cache). */
  edgeCacheMs: number
}

const kForwardAuth = Symbol('mcpgw.forwardAuth')
type MarkedRequest = IncomingMessage & { [kForwardAuth]?: ForwardAuthMark, originalUrl?: string }

/** Set when this request is an edge asking about another one. */
export function forwardAuthOf (req: IncomingMessage): ForwardAuthMark | undefined {
  return (req as MarkedRequest)[kForwardAuth]
}

/**
 * For a forward-auth request whose answer the edge keeps (`X-Mcpgw-Edge-Cache-Ms`): how
 * old the gateway's own knowledge of a session or route may be, so the two together stay
 * within the revocation bound. Undefined for every other request (the cache's own bound).
 */
export function edgeMaxAge (req: IncomingMessage, revalidateMs: number): number | undefined {
  const mark = (req as MarkedRequest)[kForwardAuth]
  if (mark === undefined || mark.edgeCacheMs === 0) return undefined
  return Math.max(0, revalidateMs - mark.edgeCacheMs)
}

const METHOD = /^[A-Z]{1,16}$/
const MAX_EDGE_CACHE_MS = 10_000

/** The header's one value; undefined when absent, `null` when sent more than once. */
function one (req: IncomingMessage, name: string): string | undefined | null {
  const values = req.headersDistinct[name]
  if (values === undefined) return undefined
  return values.length === 1 ? values[0]! : null
}

/**
 * The original's method, URI or host in the spellings edges use. Sent twice, or in both
 * spellings with different values (a client's own header an edge passed on beside the one
 * it set), it is not guessed at: null.
 */
function original (req: IncomingMessage, forwarded: string, orig: string | null): string | undefined | null {
  const a = one(req, forwarded)
  const b = orig === null ? undefined : one(req, orig)
  if (a === null || b === null) return null
  if (a !== undefined && b !== undefined && a !== b) return null
  return a ?? b
}

/** Whether the request carries the edge key, once (compared in constant time). */
export function edgeKeyMatches (req: IncomingMessage, expected: Buffer): boolean {
  const given = one(req, FORWARD_AUTH_KEY_HEADER)
  return typeof given === 'string' && Buffer.byteLength(given) === expected.length && timingSafeEqual(Buffer.from(given), expected)
}

/**
 * The answer to FORWARD_AUTH_ENDED_PATH for `body` (the tokens, one per line): each session
 * is looked up as a request on it would be (the session cache, revalidated within its bound).
 */
export async function endedSessions (authenticator: Authenticator, body: unknown): Promise<string> {
  if (typeof body !== 'string') throw new EndedListError()
  const tokens = body.split('\n')
  if (tokens.at(-1) === '') tokens.pop()
  if (tokens.length > MAX_ENDED_TOKENS) throw new EndedListError()
  const lines: string[] = []
  await Promise.all(tokens.map(async (token, i) => {
    try {
      // A line that cannot be a token is that line's answer, not the list's: one odd credential
      // an edge tracks must not keep it from learning about the others.
      if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw new MalformedTokenError()
      await authenticator.sessions.get(token.trim())
    } catch (err) {
      // A refusal of the session itself; the store being away is not one.
      if ((err as { statusCode?: number }).statusCode === 401) lines[i] = `${i} ${JSON.stringify(errorBody(err))}\n`
    }
  }))
  return lines.join('')
}

/**
 * For `rewriteUrl`: a forward-auth request that carries the edge's key becomes
 * the request it asks about; anything else is left alone (the forward-auth path
 * without the key reaches the route that refuses it).
 */
export function forwardAuthRewrite (key: string): (req: IncomingMessage) => void {
  const expected = Buffer.from(key)
  return function mcpForwardAuthRewrite (req) {
    const url = req.url ?? '/'
    if (!url.startsWith(FORWARD_AUTH_PATH) || (url.length > FORWARD_AUTH_PATH.length && url.charCodeAt(FORWARD_AUTH_PATH.length) !== 63 /* ? */)) return
    if (!edgeKeyMatches(req, expected)) return
    const headers = req.headers
    const method = original(req, 'x-forwarded-method', 'x-original-method')
    const uri = original(req, 'x-forwarded-uri', 'x-original-uri')
    const forwardedHost = original(req, 'x-forwarded-host', null)
    const host = forwardedHost === null ? null : forwardedHost ?? headers.host
    // What cannot be the original request is not guessed at: the path stays, and is refused.
    if (method === null || uri === null || uri === undefined || uri.charCodeAt(0) !== 47 || host === null || host === undefined || host.includes(',')) return
    const verb = (method ?? 'GET').toUpperCase()
    if (!METHOD.test(verb)) return
    const cache = Number(one(req, EDGE_CACHE_HEADER) ?? 0)
    ;(req as MarkedRequest)[kForwardAuth] = { edgeCacheMs: Number.isInteger(cache) && cache > 0 ? Math.min(cache, MAX_EDGE_CACHE_MS) : 0 }
    req.method = verb
    headers.host = host
    // The forwarded headers described the edge's view; they say nothing more from here on.
    headers['x-forwarded-method'] = undefined
    headers['x-forwarded-uri'] = undefined
    headers['x-original-method'] = undefined
    headers['x-original-uri'] = undefined
    ;(req as MarkedRequest).originalUrl = uri
    req.url = uri
  }
}

/**
 * The verdict for an authenticated forward-auth request: 200, the upstream and
 * the request headers the gateway would have sent it (identity, X-Forwarded-Prefix,
 * and the Cookie, Referer and Authorization it would pass on, which the edge sets
 * in place of the client's). A WebSocket handshake gets the proxy's own checks first.
 */
export function answerForwardAuth (request: FastifyRequest, reply: FastifyReply, ctx: ForwardContext, options: NormalizedProxyOptions, mark: ForwardAuthMark): void {
  const req = request.raw
  if (req.headers.upgrade !== undefined) {
    if (!isWebSocketHandshake(req)) throw new BadUpgradeError()
    if (!originAllowed(req.headers.origin, [req.headers.host, request.host], options.wsAllowedOrigins)) throw new OriginDeniedError()
  }
  const target = request.mcpTarget!
  const backend = ctx.backend
  const sent = rewriteRequestHeaders(request.headers, ctx)
  reply.code(200)
  reply.header(VERDICT_HEADERS.upstream, backendHost(backend))
  reply.header(VERDICT_HEADERS.proto, backend.protocol)
  reply.header(VERDICT_HEADERS.path, backendPath(target, options.forwardToken))
  for (const name of Object.keys(sent)) {
    if (name.startsWith('x-mcpgw-') || name === 'x-forwarded-prefix') reply.header(name, sent[name])
  }
  if (sent.cookie !== undefined) reply.header(VERDICT_HEADERS.cookie, sent.cookie)
  if (sent.referer !== undefined) reply.header(VERDICT_HEADERS.referer, sent.referer)
  if (sent.authorization !== undefined) reply.header(VERDICT_HEADERS.authorization, sent.authorization)
  reply.header(VERDICT_HEADERS.frameAncestors, ctx.frameAncestors === '' ? '*' : ctx.frameAncestors)
  if (ctx.loginHeaders.size > 0) reply.header(VERDICT_HEADERS.drop, [...ctx.loginHeaders].join(', '))
  // An edge may keep a yes for as long as it said it would; a no is never kept, nor a yes for a
  // person (a session bound to one): it rests on a login the edge may not key its cache on (an
  // identity-aware proxy's header), and would answer someone else's request.
  reply.header('cache-control', mark.edgeCacheMs > 0 && ctx.person === null ? `max-age=${Math.max(1, Math.floor(mark.edgeCacheMs / 1000))}` : 'no-store')
  reply.send()
}

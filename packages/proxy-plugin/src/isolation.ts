import type { IncomingMessage } from 'node:http'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { FRAME_TICKET_PARAM, LOGIN_TICKET_PARAM, SESSION_LINK_PARAM, sessionHostOf } from '@mcp-gw/protocol'
import type { WildcardUrl } from '@mcp-gw/protocol'
import type { FastifyRequest } from 'fastify'
import { BadHostError, BadPathError, MalformedTokenError, MissingTokenError, UnknownSessionHostError } from './errors.js'
import { canonicalPath, climbs, takeParam } from './request-target.js'
import type { RequestTarget } from './request-target.js'

/**
 * Isolated mode: a session is served on a host of its own
 * (`<label>.apps.example.com`), where `/` is the backend's `/`. Requests to a
 * session host are routed under this internal prefix by Fastify's `rewriteUrl`
 * (`isolationRewriteUrl`), so no route of the host app, the API included, can
 * ever answer on a session host.
 */
export const ISOLATED_PREFIX = '/.mcpgw-session-host'

/** The gateway's own cookie on a session host: `__Host-` where the browser enforces its rules (https). */
export function sessionCookieName (wildcard: WildcardUrl): string {
  return wildcard.protocol === 'https' ? '__Host-mcpgw' : 'mcpgw_session'
}

export interface SessionCookieAttributes {
  httpOnly: true
  path: '/'
  sameSite: 'lax' | 'none'
  secure: boolean
  partitioned?: true
}

/**
 * The session cookie's attributes. Host-only, HttpOnly, `SameSite=Lax` by default.
 * When other sites may frame session pages (`frameAncestors` beyond `'self'`, or `*`, e.g. an
 * MCP Apps host), a Lax cookie would never be sent inside their frame: it is then
 * `SameSite=None; Secure; Partitioned` (CHIPS), so it is sent only under the top-level
 * site whose frame received the link, never to a request another site starts. Secure
 * needs https, or a `*.localhost` wildcard, which browsers treat as secure.
 */
export function sessionCookieAttributes (wildcard: WildcardUrl, frameAncestors: string): SessionCookieAttributes {
  const framedElsewhere = frameAncestors === '' || frameAncestors.split(' ').slice(1).some((source) => source !== "'self'" && source !== "'none'")
  const secureContext = wildcard.protocol === 'https' || wildcard.suffix.endsWith('.localhost')
  if (framedElsewhere && secureContext) return { httpOnly: true, path: '/', sameSite: 'none', secure: true, partitioned: true }
  return { httpOnly: true, path: '/', sameSite: 'lax', secure: wildcard.protocol === 'https' }
}

const TOKEN_CHARS = /^[A-Za-z0-9_\-.]+$/

/** What the link or the cookie says, on a session host. */
export interface IsolatedTarget extends RequestTarget {
  /** The host's session label. */
  label: string
  /** True when the credential came in the link: it is swapped for a cookie and the browser sent back. */
  fromLink: boolean
  /**
   * The credentials to try, in order: the link's alone, or every gateway cookie the browser
   * sent (a page elsewhere under the wildcard domain can plant one with `Domain=`; the one
   * that opens this host wins). `token` is set to the one that did.
   */
  candidates: string[]
  /** The URL to send the browser to without the credential (when fromLink). */
  cleanUrl: string
  /** The frame ticket the URL carried (`mcpgw_frame`), if any; never passed on. */
  frameTicket: string | undefined
  /** The login ticket the URL carried (`mcpgw_login`), back from the gateway's login; never passed on. */
  loginTicket: string | undefined
}

/**
 * The ticket that lets a session page open inside another site's frame: what the link's
 * swap adds to the URL it sends such a frame to. Keyed by the session's credential, so
 * only the gateway makes one and only for the embed its link opened; a page elsewhere in
 * the same host, which shares the frame's partitioned cookie but never saw the link,
 * cannot. It lives as long as the session (a restored or reloaded frame keeps working).
 */
export function frameTicket (token: string, label: string): string {
  return createHmac('sha256', token).update(`mcpgw-frame:${label}`).digest('base64url')
}

const FRAME_TICKET = /^[A-Za-z0-9_-]{43}$/

/** Whether `ticket` is the frame ticket of this credential on this host. */
export function frameTicketOpens (ticket: string | undefined, token: string, label: string): boolean {
  // Checked for its shape first: timingSafeEqual throws on inputs of different byte lengths.
  if (ticket === undefined || !FRAME_TICKET.test(ticket)) return false
  return timingSafeEqual(Buffer.from(ticket), Buffer.from(frameTicket(token, label)))
}

/** A URL (path and query) with the frame ticket added. */
export function withFrameTicket (url: string, ticket: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${FRAME_TICKET_PARAM}=${ticket}`
}

/** Whether a raw request (an upgrade, before Fastify) is for a host under the wildcard domain. */
export function isUnderWildcard (wildcard: WildcardUrl, req: IncomingMessage): boolean {
  return sessionHostOf(wildcard, req.headers.host) !== null
}

/**
 * For Fastify's `rewriteUrl` server option: a request whose Host is under the
 * wildcard domain is routed to the isolated proxy, whatever its path.
 *
 *   Fastify({ rewriteUrl: isolationRewriteUrl('https://*.apps.example.com') })
 */
export function rewriteForIsolation (wildcard: WildcardUrl): (req: IncomingMessage) => string {
  return function mcpIsolationRewrite (req) {
    const url = req.url ?? '/'
    if (sessionHostOf(wildcard, req.headers.host) === null) return url
    // Absolute-form targets: only the path counts; the Host header chose the session.
    if (url.charCodeAt(0) !== 47) {
      try {
        const parsed = new URL(url)
        return ISOLATED_PREFIX + parsed.pathname + parsed.search
      } catch {
        return ISOLATED_PREFIX + '/'
      }
    }
    return ISOLATED_PREFIX + url
  }
}

function hostHeaders (req: IncomingMessage): number {
  let count = 0
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') count++
  return count
}

const MAX_COOKIE_CANDIDATES = 16

/**
 * The distinct, well-formed values of the gateway's cookie in a Cookie header, at most
 * sixteen. Browsers send one per (domain, path) that matches, so a page elsewhere under the
 * wildcard domain can plant more (`Domain=<parent>`, longer paths to come first); malformed
 * and empty ones are skipped rather than refused, so planting one cannot lock a user out.
 * (A cookie library's parse keeps one value per name and would let a planted one win.)
 */
export function gatewayCookies (header: string | undefined, name: string): string[] {
  if (header === undefined || !header.includes(name)) return []
  const values: string[] = []
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
    const value = pair.slice(eq + 1).trim()
    if (value === '' || !TOKEN_CHARS.test(value) || values.includes(value)) continue
    values.push(value)
    if (values.length === MAX_COOKIE_CANDIDATES) break
  }
  return values
}

/**
 * Reads a request on a session host: its label, and its credential from the
 * link (first visit) or the gateway's cookie. Throws a coded refusal for a
 * host that is not one of ours, two Host headers, no credential, or a link
 * and a cookie that disagree.
 */
export function isolatedTarget (request: FastifyRequest, wildcard: WildcardUrl, cookieName: string): IsolatedTarget {
  const req = request.raw
  if (hostHeaders(req) !== 1) throw new BadHostError()
  const label = sessionHostOf(wildcard, req.headers.host)
  if (label === null || label === '') throw new UnknownSessionHostError()
  // The URL as the client sent it: rewriteUrl put the internal prefix in front.
  const original = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/'
  const url = original.charCodeAt(0) === 47
    ? original
    : (() => {
        try {
          const parsed = new URL(original)
          return parsed.pathname + parsed.search
        } catch {
          return '/'
        }
      })()
  const canonical = canonicalPath(url)
  const queryAt = canonical.indexOf('?')
  const path = queryAt === -1 ? canonical : canonical.slice(0, queryAt)
  if (climbs(path)) throw new BadPathError()
  const search = queryAt === -1 ? '' : canonical.slice(queryAt)

  // Read and removed by one parser, in any spelling a browser decodes: what the gateway reads
  // and what it passes on never differ. A link given twice is no link.
  // Most queries name neither (no `mcpgw`, nothing percent-encoded): no parse for them.
  const ours = search.includes('mcpgw') || search.includes('%')
  let linked: string | undefined
  let rest = search
  if (ours) {
    const link = takeParam(search, SESSION_LINK_PARAM)
    if (link.count > 1) throw new MalformedTokenError()
    linked = link.value
    rest = link.rest
  }
  // The link is the explicit credential: it wins over any cookie, so a cookie planted by
  // another session host's page can neither block the link nor stand in for it.
  let candidates: string[]
  if (linked !== undefined) {
    if (!TOKEN_CHARS.test(linked)) throw new MalformedTokenError()
    candidates = [linked]
  } else {
    candidates = gatewayCookies(req.headers.cookie, cookieName)
    if (candidates.length === 0) throw new MissingTokenError()
  }
  const token = candidates[0]!
  let frameTicket: string | undefined
  let loginTicket: string | undefined
  let cleanSearch = rest
  if (ours) {
    const ticket = takeParam(rest, FRAME_TICKET_PARAM)
    frameTicket = ticket.value
    const login = takeParam(ticket.rest, LOGIN_TICKET_PARAM)
    if (login.count > 1) throw new MalformedTokenError()
    loginTicket = login.value
    cleanSearch = login.rest
  }
  // Never `//host` or `/\\host`: a protocol-relative Location would send the browser to another site.
  const cleanPath = '/' + path.replace(/^[/\\]+/, '')
  return { token, path, search: cleanSearch, label, fromLink: linked !== undefined, candidates, cleanUrl: cleanPath + cleanSearch, frameTicket, loginTicket }
}

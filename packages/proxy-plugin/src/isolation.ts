import type { IncomingMessage } from 'node:http'
import { SESSION_LINK_PARAM, sessionHostOf } from '@mcp-gw/registry'
import type { WildcardUrl } from '@mcp-gw/registry'
import { parse as parseCookies } from 'cookie'
import type { FastifyRequest } from 'fastify'
import { BadHostError, BadPathError, CredentialConflictError, MalformedTokenError, MissingTokenError, UnknownSessionHostError } from './errors.js'
import { canonicalPath, climbs } from './request-target.js'
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

const TOKEN_CHARS = /^[A-Za-z0-9_\-.]+$/

/** What the link or the cookie says, on a session host. */
export interface IsolatedTarget extends RequestTarget {
  /** The host's session label. */
  label: string
  /** True when the credential came in the link: it is swapped for a cookie and the browser sent back. */
  fromLink: boolean
  /** The URL to send the browser to without the credential (when fromLink). */
  cleanUrl: string
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

function withoutParam (search: string, name: string): string {
  if (search.length === 0) return ''
  const kept = search.slice(1).split('&').filter((pair) => pair !== name && !pair.startsWith(`${name}=`))
  return kept.length === 0 ? '' : `?${kept.join('&')}`
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

  let linked: string | undefined
  if (search.includes(SESSION_LINK_PARAM)) {
    linked = new URLSearchParams(search).get(SESSION_LINK_PARAM) ?? undefined
  }
  const cookieHeader = req.headers.cookie
  const cookie = cookieHeader !== undefined && cookieHeader.includes(cookieName) ? parseCookies(cookieHeader)[cookieName] : undefined
  if (linked !== undefined && cookie !== undefined && cookie !== linked) throw new CredentialConflictError()
  const token = linked ?? cookie
  if (token === undefined || token === '') throw new MissingTokenError()
  if (!TOKEN_CHARS.test(token)) throw new MalformedTokenError()
  const cleanSearch = linked === undefined ? search : withoutParam(search, SESSION_LINK_PARAM)
  return { token, path, search: cleanSearch, label, fromLink: linked !== undefined, cleanUrl: path + cleanSearch }
}

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { DEFAULT_SCOPES, INSTANCE_ID_HEADER, isLoopbackHost, REGISTRANT_HEADER, REGISTRANT_ROTATION_HEADER, verifyRegistrantProofs } from '@mcp-gw/protocol'
import type { DirectLinks } from './direct-links.js'
import { gatewayIdentity } from './web-ui.js'

/** Who a request to the UI is for, as `client.authenticate(req)` found out. */
export interface UiIdentity {
  userId: string
  /** `gateway`: the gateway vouched for the request; `direct`: a direct link's token (query or cookie). */
  via: 'gateway' | 'direct'
  scopes: string[]
  /**
   * Whether the request may change things: the `interact` scope. False on a view-only session
   * or share: the gateway lets such a session only GET and HEAD, but cannot see inside a
   * WebSocket, so what arrives over one is yours to refuse.
   */
  interact: boolean
  sessionId?: string
}

/** What a client knows that tells who a request is for. */
export interface AuthenticateContext {
  /** What the gateway keys its proofs with, from the last registration; null until the first. */
  proofKey: string | null
  /** The instance the gateway registered this process as; null until then. */
  instanceId: string | null
  /** The port the UI was registered with (it names the direct-link cookie); null before that. */
  port: number | null
  directLinks: DirectLinks
}

/** The direct-link cookie of a UI: cookies ignore ports, so its name carries the port. */
function cookieNameOf (port: number): string {
  return `mcpgw_direct_${port}`
}

/**
 * Cookies ignore ports: every server on the host gets this UI's cookie, and its pages
 * are same-site. A request a page of another origin started (Fetch Metadata, or the
 * Origin of a WebSocket handshake) is not let in on the cookie. Browsers send Fetch
 * Metadata only to secure contexts: on a plain-http name that is not loopback (a LAN
 * host name) a request without it may be another port's page, and is not let in either.
 */
function sameOrigin (headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false
  if (site === undefined && !isLoopbackHost(headers.host)) return false
  const origin = headers.origin
  if (origin === undefined) return true
  try {
    return new URL(origin).host === headers.host
  } catch {
    return false
  }
}

/** A direct link is its user's own: it may do everything. */
function directIdentity (userId: string): UiIdentity {
  return { userId, via: 'direct', scopes: [...DEFAULT_SCOPES], interact: DEFAULT_SCOPES.includes('interact') }
}

/** Adds the HttpOnly cookie that carries a direct link's token, beside any cookie set already. */
function setDirectCookie (res: ServerResponse, headers: IncomingHttpHeaders, name: string, token: string, expiresAt: number): void {
  const maxAge = Math.max(1, Math.floor((expiresAt - Date.now()) / 1000))
  const previous = res.getHeader('set-cookie')
  // In another site's frame (an MCP Apps host) a Strict cookie is never sent: there it is
  // partitioned under that top-level site instead, and sent nowhere else.
  const framed = headers['sec-fetch-dest'] === 'iframe' && headers['sec-fetch-site'] === 'cross-site'
  const cookie = `${name}=${token}; Path=/; HttpOnly; ${framed ? 'Secure; Partitioned; SameSite=None' : 'SameSite=Strict'}; Max-Age=${maxAge}`
  res.setHeader('set-cookie', previous === undefined ? [cookie] : [...(Array.isArray(previous) ? previous : [String(previous)]), cookie])
}

/**
 * Who a request to the UI is for: the gateway's identity headers with its fresh proof for
 * this registrant, else a direct link's token from the query (swapped for a cookie when
 * `res` is given) or from this UI's cookie. Null: refuse the request.
 */
export function authenticateRequest (context: AuthenticateContext, req: IncomingMessage, res?: ServerResponse): UiIdentity | null {
  const headers = req.headers
  const proof = headers[REGISTRANT_HEADER]
  // A session of another instance (this process took over a stopped one's address, and a
  // gateway still routes there): never this process's to serve.
  const instanceId = headers[INSTANCE_ID_HEADER]
  if (proof !== undefined && instanceId !== undefined && context.instanceId !== null && instanceId !== context.instanceId) return null
  if (proof !== undefined) {
    const identity = gatewayIdentity(headers)
    // During a secret rotation the key this process holds (from its last registration) may
    // be a previous or the next one: the gateway then vouches under that one beside.
    if (identity !== null && context.proofKey !== null && verifyRegistrantProofs(proof, headers[REGISTRANT_ROTATION_HEADER], context.proofKey, identity)) {
      return { userId: identity.userId, via: 'gateway', scopes: identity.scopes, interact: identity.scopes.includes('interact'), sessionId: identity.sessionId }
    }
  }
  const cookieName = context.port === null ? null : cookieNameOf(context.port)
  const url = req.url ?? '/'
  const query = url.indexOf('?')
  const fromQuery = query === -1 ? null : new URLSearchParams(url.slice(query + 1)).get('token')
  if (fromQuery !== null) {
    const found = context.directLinks.find(fromQuery)
    if (found !== null) {
      if (res !== undefined && cookieName !== null && !res.headersSent) setDirectCookie(res, headers, cookieName, fromQuery, found.expiresAt)
      return directIdentity(found.userId)
    }
  }
  const cookies = headers.cookie
  if (cookieName !== null && typeof cookies === 'string' && sameOrigin(headers)) {
    for (const part of cookies.split(';')) {
      const eq = part.indexOf('=')
      if (eq === -1 || part.slice(0, eq).trim() !== cookieName) continue
      const found = context.directLinks.find(part.slice(eq + 1).trim())
      if (found !== null) return directIdentity(found.userId)
    }
  }
  return null
}

import { createHash } from 'node:crypto'

/** A session as far as its host is concerned: its random id. */
interface SessionRecord { sessionId: string }

/**
 * Isolated mode: each session is served on a host of its own under a wildcard
 * domain, so that no two sessions share a browser origin (cookies, storage,
 * Service Workers, Clear-Site-Data are all per origin).
 */
export interface WildcardUrl {
  protocol: 'http' | 'https'
  /** What follows the label, with its leading dot: `.apps.example.com`. Lower case. */
  suffix: string
  /** The port as the browser writes it in Host and Origin; empty for the scheme's default. */
  port: string
  /** The `*.apps.example.com[:port]` form, for messages. */
  pattern: string
}

/** The query parameter a session link carries its credential in, once: the gateway swaps it for a cookie. */
export const SESSION_LINK_PARAM = 'mcpgw_link'

/**
 * The query parameter that binds a session page framed by another site to the embed its
 * link made: the gateway adds it when it swaps a link inside such a frame, and a session
 * page in another site's frame opens only with it (the cookie alone opens nothing there).
 */
export const FRAME_TICKET_PARAM = 'mcpgw_frame'

/**
 * The query parameter that brings a login to a session host (isolated mode): the gateway's
 * login, done on its own host, sends the browser back with a one-time ticket in it, which the
 * session host swaps for a cookie of its own.
 */
export const LOGIN_TICKET_PARAM = 'mcpgw_login'

const LABEL_LENGTH = 26
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/**
 * Reads `https://*.apps.example.com` or `http://*.localhost:3082`: a scheme, a
 * `*.` and a domain, an optional port, and nothing else. Null for anything else
 * (each package refuses it with its own code).
 */
export function readWildcardUrl (value: string): WildcardUrl | null {
  const match = typeof value === 'string' ? /^(https?):\/\/\*(\.[A-Za-z0-9.-]+?)\.?(?::(\d{1,5}))?\/?$/.exec(value) : null
  if (match === null) return null
  const protocol = match[1] as 'http' | 'https'
  const suffix = match[2]!.toLowerCase()
  if (suffix.split('.').slice(1).some((label) => !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label))) return null
  let port = match[3] ?? ''
  if (port !== '') {
    const n = Number(port)
    if (n < 1 || n > 65535) return null
    // What browsers write: no default port in Host or Origin.
    if ((protocol === 'http' && n === 80) || (protocol === 'https' && n === 443)) port = ''
    else port = String(n)
  }
  return { protocol, suffix, port, pattern: `*${suffix}${port === '' ? '' : `:${port}`}` }
}

/**
 * The host label of a session: 26 lower-case base32 characters (130 bits) of
 * a hash of its random session id. DNS-safe, one per session, stable for the
 * session's life, and neither the token nor anything guessable from the user
 * or server name.
 */
export function sessionHostLabel (session: Pick<SessionRecord, 'sessionId'>): string {
  const digest = createHash('sha256').update('mcp-gw session host\0').update(session.sessionId).digest()
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of digest) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5 && out.length < LABEL_LENGTH) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    if (out.length === LABEL_LENGTH) break
    value &= (1 << bits) - 1
  }
  return out
}

/** The link for a session in isolated mode: its own origin, the credential in the query, once. */
export function sessionLink (wildcard: WildcardUrl, session: Pick<SessionRecord, 'sessionId'>, token: string): string {
  return `${sessionOrigin(wildcard, session)}/?${SESSION_LINK_PARAM}=${token}`
}

/** `https://<label>.apps.example.com[:port]` */
export function sessionOrigin (wildcard: WildcardUrl, session: Pick<SessionRecord, 'sessionId'>): string {
  return `${wildcard.protocol}://${sessionHostLabel(session)}${wildcard.suffix}${wildcard.port === '' ? '' : `:${wildcard.port}`}`
}

/**
 * What a Host header is to this wildcard: null when its name is outside the
 * wildcard domain (the gateway's own host, or the bare domain); '' when it is inside it but
 * not a session host of ours (not exactly one label of our shape, another
 * port, or the bare domain), which is refused; else the session's label.
 */
export function sessionHostOf (wildcard: WildcardUrl, host: string | undefined): string | null {
  if (host === undefined || host === '') return null
  let name = host.toLowerCase()
  let port = ''
  const colon = name.lastIndexOf(':')
  if (colon !== -1 && !name.endsWith(']')) {
    port = name.slice(colon + 1)
    name = name.slice(0, colon)
  }
  if (name.endsWith('.')) name = name.slice(0, -1)
  // The bare domain (often the gateway's own host) is not a session host.
  if (!name.endsWith(wildcard.suffix)) return null
  const defaultPort = wildcard.protocol === 'https' ? '443' : '80'
  if (port !== wildcard.port && !(wildcard.port === '' && port === defaultPort)) return ''
  const label = name.slice(0, -wildcard.suffix.length)
  return /^[a-z2-7]{26}$/.test(label) ? label : ''
}

import { BadPathError, MalformedTokenError, MissingTokenError } from './errors.js'

/** What a gateway URL says: the token, and the path and query meant for the backend. */
export interface RequestTarget {
  /** The credential: from the URL, or (for a `<prefix>/s/<label>/` URL) the cookie that opened it. */
  token: string
  /**
   * Path mode, a URL without its credential (`<prefix>/s/<label>/...`, where the link's swap
   * sent the browser): the session's path label, whose cookie holds the credential.
   */
  label?: string
  /** Starts with `/`; empty when the URL stopped right after the token (redirect to add the slash). */
  path: string
  /** Starts with `?`, or is empty. */
  search: string
}

// RFC 7515 compact JWS characters; anything else is not a token of ours.
const TOKEN_CHARS = /^[A-Za-z0-9_\-.]+$/
/**
 * Dot segments, in any spelling a server might decode (`..`, `%2e%2e`, `.%2E`),
 * with `\\` read as `/` the way browsers and some servers (Windows, some
 * frameworks) read it. The rule is the one @fastify/reply-from applied (`/..` or `../`
 * anywhere once decoded), kept since the proxy left it: the refusal is early and coded.
 */
export function climbs (path: string): boolean {
  if (!path.includes('.') && !path.includes('%')) return false
  let decoded: string
  try {
    decoded = decodeURIComponent(path)
  } catch {
    // Undecodable escapes: nothing downstream can interpret the path safely.
    return true
  }
  if (decoded.includes('\\')) decoded = decoded.replaceAll('\\', '/')
  return decoded.includes('/..') || decoded.includes('../')
}

const UNRESERVED_ESCAPE = /%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])/g

/**
 * RFC 3986 6.2.2.2: a percent-escaped unreserved character (`%6d` for `m`) is
 * the character itself. Fastify's router decodes such escapes before it
 * matches a route, so `/%6dcp/<token>/` reaches the proxy's routes: the target
 * is read from this same form, and the two can never disagree about the prefix.
 */
export function canonicalPath (url: string): string {
  if (!url.includes('%')) return url
  const queryAt = url.indexOf('?')
  const path = queryAt === -1 ? url : url.slice(0, queryAt)
  const canonical = path.replace(UNRESERVED_ESCAPE, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
  return queryAt === -1 ? canonical : canonical + url.slice(queryAt)
}

/** The path segment after the prefix that names a session by its path label: `<prefix>/s/<label>/`. */
export const PATH_LABEL_SEGMENT = 's'
/** A path label: 22 base64url characters (128 bits of an HMAC keyed by the session's credential). */
export const PATH_LABEL = /^[A-Za-z0-9_-]{22}$/

/**
 * Splits `<prefix>/<token><path>?<query>` taken from the raw request line, or
 * `<prefix>/s/<label><path>?<query>` (then `token` is empty: the cookie holds it).
 * Returns null when the URL is not under the prefix at all.
 */
export function parseTarget (rawUrl: string, prefix: string): RequestTarget | null {
  let url = rawUrl
  if (url.charCodeAt(0) !== 47 /* / */) {
    // Absolute-form request target (`GET http://host/mcp/...`): only its path counts.
    try {
      const parsed = new URL(url)
      url = parsed.pathname + parsed.search
    } catch {
      return null
    }
  }
  url = canonicalPath(url)
  if (!url.startsWith(prefix) || (url.length > prefix.length && url.charCodeAt(prefix.length) !== 47)) return null
  const start = prefix.length + 1
  const queryAt = url.indexOf('?', start)
  const pathEnd = queryAt === -1 ? url.length : queryAt
  let tokenEnd = url.indexOf('/', start)
  if (tokenEnd === -1 || tokenEnd > pathEnd) tokenEnd = pathEnd
  const token = url.slice(start, tokenEnd)
  if (token.length === 0) throw new MissingTokenError()
  if (token === PATH_LABEL_SEGMENT) {
    let labelEnd = url.indexOf('/', tokenEnd + 1)
    if (labelEnd === -1 || labelEnd > pathEnd) labelEnd = pathEnd
    const label = url.slice(tokenEnd + 1, labelEnd)
    if (!PATH_LABEL.test(label)) throw new MalformedTokenError()
    const path = url.slice(labelEnd, pathEnd)
    if (climbs(path)) throw new BadPathError()
    return { token: '', label, path, search: queryAt === -1 ? '' : url.slice(queryAt) }
  }
  if (!TOKEN_CHARS.test(token)) throw new MalformedTokenError()
  const path = url.slice(tokenEnd, pathEnd)
  if (climbs(path)) throw new BadPathError()
  return { token, path, search: queryAt === -1 ? '' : url.slice(queryAt) }
}

/**
 * The path and query to ask the backend for: the target's own path (`/` for none) and its
 * query, without the gateway token unless the backend is meant to get it (`forwardToken`).
 */
export function backendPath (target: RequestTarget, forwardToken: boolean): string {
  return (target.path || '/') + (forwardToken ? target.search : stripTokenFromQuery(target.search, target.token))
}

/** Removes query parameters whose value is the gateway token (whatever their name). */
export function stripTokenFromQuery (search: string, token: string): string {
  if (search.length === 0 || !search.includes(token)) return search
  const kept = search.slice(1).split('&').filter((pair) => {
    const eq = pair.indexOf('=')
    const value = eq === -1 ? '' : pair.slice(eq + 1)
    return value !== token && safeDecode(value) !== token
  })
  return kept.length === 0 ? '' : `?${kept.join('&')}`
}

function safeDecode (value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/** Shaped like a compact JWS, in any spelling of its dots: redacted wherever it stands in a logged URL. */
const JWT_SHAPED = /[\w%-]{10,}(?:\.|%2[eE])[\w%-]{10,}(?:\.|%2[eE])[\w%-]*/g

/**
 * The URL with its token segment, anything shaped like a token, and
 * credential-like query values replaced by `[redacted]`, for logs. Works on
 * what a client sent, whatever it is: `/MCP/<t>/`, `/mcp//<t>/`, `/%6dcp/<t>/`
 * and absolute-form targets never log a token either.
 */
export function redactUrl (rawUrl: string, prefix: string): string {
  let url = canonicalPath(rawUrl).replace(JWT_SHAPED, '[redacted]')
  // A path label (`<prefix>/s/<label>/`) is no credential: it opens nothing without its cookie.
  if (url.startsWith(`${prefix}/`) && !url.startsWith(`${prefix}/${PATH_LABEL_SEGMENT}/`)) {
    const start = prefix.length + 1
    let end = url.length
    for (const stop of ['/', '?']) {
      const at = url.indexOf(stop, start)
      if (at !== -1 && at < end) end = at
    }
    if (end > start) url = `${url.slice(0, start)}[redacted]${url.slice(end)}`
  }
  const queryAt = url.indexOf('?')
  if (queryAt === -1) return url
  const query = url.slice(queryAt + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    if (eq === -1) return pair
    const name = pair.slice(0, eq).toLowerCase()
    // Named like a credential (an OAuth callback's code and state too).
    return /token|jwt|auth|key|secret|session|mcpgw|^code$|^state$/.test(name) ? `${pair.slice(0, eq)}=[redacted]` : pair
  })
  return `${url.slice(0, queryAt)}?${query.join('&')}`
}

interface LoggedRequest {
  method: string
  url: string
  host?: string | undefined
  ip?: string | undefined
  socket?: { remotePort?: number | undefined } | undefined
}

/**
 * Request serializers for the host's logger (`Fastify({ logger: { serializers } })`).
 * The proxy redacts the URLs of requests it routes by itself; requests Fastify
 * refuses before routing (an undecodable URL) are logged by the server's
 * serializer, and only this one keeps their token out of the log.
 */
export function serverLogSerializers (prefix: string): { req: (req: LoggedRequest) => Record<string, unknown> } {
  return {
    req: (req) => ({
      method: req.method,
      url: redactUrl(req.url, prefix),
      host: req.host,
      remoteAddress: req.ip,
      remotePort: req.socket?.remotePort
    })
  }
}

/**
 * Takes every `name` parameter out of a query string (`?a=1&b=2`, or empty), its name read as
 * URLSearchParams reads it (percent-decoded: `mcpgw%5Flink` is `mcpgw_link`), so what the
 * gateway reads and what it passes on can never differ. `value`: the one value when there was
 * exactly one, decoded; `count`: how many there were.
 */
export function takeParam (search: string, name: string): { rest: string, value: string | undefined, count: number } {
  if (search.length === 0) return { rest: '', value: undefined, count: 0 }
  const kept: string[] = []
  let value: string | undefined
  let count = 0
  for (const pair of search.slice(1).split('&')) {
    const eq = pair.indexOf('=')
    const raw = eq === -1 ? pair : pair.slice(0, eq)
    if (decodeQueryPart(raw) === name) {
      count++
      value = decodeQueryPart(eq === -1 ? '' : pair.slice(eq + 1))
    } else {
      kept.push(pair)
    }
  }
  return { rest: kept.length === 0 ? '' : `?${kept.join('&')}`, value: count === 1 ? value : undefined, count }
}

/** A query string without every `name` parameter (in any spelling URLSearchParams reads as it). */
export function withoutParam (search: string, name: string): string {
  return takeParam(search, name).rest
}

function decodeQueryPart (part: string): string {
  const spaced = part.replaceAll('+', ' ')
  try {
    return decodeURIComponent(spaced)
  } catch {
    return spaced
  }
}

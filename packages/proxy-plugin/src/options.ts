import { readWildcardUrl } from '@mcp-gw/protocol'
import type { WildcardUrl } from '@mcp-gw/protocol'
import type { Registry } from '@mcp-gw/registry'
import { InvalidOptionError } from './errors.js'
import { credentialHeadersOf, loginsOption } from './logins.js'
import type { LoginSource } from './logins.js'

export const DEFAULT_PREFIX = '/mcp'
/** Revocation reaches every cached session within this bound. */
export const DEFAULT_REVALIDATE_MS = 2000
export const DEFAULT_CACHE_MAX_ENTRIES = 10_000
/** How long already validated sessions keep working while the store is down. */
export const DEFAULT_STORE_OUTAGE_GRACE_MS = 60_000
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** Longer than any long-poll a UI should hold; a quiet stream is cut only after this. */
export const DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS = 15 * 60_000
export const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 15 * 60_000
export const DEFAULT_WS_HANDSHAKE_TIMEOUT_MS = 10_000
/** On close, how long requests still waiting on a backend (long-polls) may take before they are answered 503. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000

export interface ProxyOptions {
  /** Where sessions are validated and backends discovered. Default: `fastify.mcpRegistry`. */
  registry?: Registry
  /** URL prefix; requests look like `<prefix>/<token>/<path>`. Default `/mcp`. */
  prefix?: string
  /** Bound on how stale a cached session may be, i.e. how fast revocation bites. Default 2000. */
  revalidateMs?: number
  /** Cached sessions and routes held at most. Default 10000. */
  cacheMaxEntries?: number
  /** Validated sessions keep working this long while the store is unreachable. Default 60000; 0 disables. */
  storeOutageGraceMs?: number
  /** Forward the gateway token to backends (in Authorization, the query, cookies). Default false. */
  forwardToken?: boolean
  /** TCP connect timeout to a backend. Default 10000. */
  connectTimeoutMs?: number
  /** Longest wait for a backend's response headers (a long-poll). Default 15 min; 0 disables. */
  upstreamHeadersTimeoutMs?: number
  /** Longest silence inside a response body (an SSE stream). Default 15 min; 0 disables. */
  upstreamIdleTimeoutMs?: number
  /** WebSocket handshake with the backend. Default 10000. */
  wsHandshakeTimeoutMs?: number
  /**
   * Origins allowed to open WebSockets, besides the gateway's own. Requests without
   * an Origin header (non-browser clients) are allowed. `'*'` allows any.
   */
  wsAllowedOrigins?: string[] | '*'
  /**
   * Who may frame the pages of a session (CSP `frame-ancestors`, sent with every
   * proxied answer beside whatever the backend sends, so a backend can narrow it and
   * never widen it): `'self'`, `'none'` or sources such as `https://claude.ai` and
   * `https://*.claudemcpcontent.com`. Default `["'self'"]`: the gateway's own pages.
   * `["*"]`: any page that holds a session's link (no policy sent; for hosts whose views
   * have an opaque origin, above which browsers refuse every source).
   */
  frameAncestors?: string[]
  /**
   * Path mode: a browser that loads a session's link (`<prefix>/<token>/`) as a page is sent to
   * `<prefix>/s/<label>/`, the credential swapped for an HttpOnly cookie on that path, so no
   * address bar, history entry, Referer or backend header holds it. Other clients (scripts, an
   * edge's forward-auth, another site's frame) keep using the link. Default true.
   */
  pathLinkSwap?: boolean
  /** Redirect absolute-path requests (`/static/app.css`) from a session page into its prefix. Default true. */
  assetFallback?: boolean
  /**
   * Largest request body passed to a backend, in bytes; bigger ones get 413
   * (at once when Content-Length says so, else when the stream crosses it).
   * Default 0: no limit of the proxy's own, bodies stream with backpressure.
   */
  maxBodyBytes?: number
  /**
   * Isolated mode: each session on a host of its own under `wildcardUrl`
   * (`https://*.apps.example.com`, `http://*.localhost:3082`), authenticated by
   * a cookie the session link's one-time credential is swapped for. The host
   * app must route session hosts here with Fastify's `rewriteUrl`
   * (`isolationRewriteUrl`). Path mode keeps working beside it. Default off.
   */
  isolation?: { wildcardUrl: string }
  /**
   * Forward-auth for an edge proxy (nginx, Caddy, Traefik, Envoy) that carries the bytes itself
   * and asks the gateway who may go where: requests to `/_mcpgw/forward-auth` with
   * `X-Mcpgw-Forward-Auth-Key: <key>` are answered with a verdict instead of being proxied. The
   * host app must install `gatewayRewriteUrl(options)` as Fastify's `rewriteUrl`. Default off.
   */
  forwardAuth?: { key: string }
  /**
   * On `app.close()` the plugin closes its WebSockets (1001) and ends its event streams at once;
   * a request still waiting on its backend (a long-poll) gets this long, then a coded 503, so
   * the close finishes within this bound. Default 10000.
   */
  drainTimeoutMs?: number
  /**
   * Who is logged in, for sessions created with share level `owner` (only the person whose
   * userId is the session's) or `authenticated` (anyone logged in): without a login such a
   * session's link opens nothing, and a browser loading a page is sent to log in. Path mode
   * only for now. Default none: only `link` sessions open.
   */
  logins?: LoginSource
  /** Clock, epoch ms. */
  now?: () => number
}

export interface NormalizedProxyOptions {
  readonly prefix: string
  readonly revalidateMs: number
  readonly cacheMaxEntries: number
  readonly storeOutageGraceMs: number
  readonly forwardToken: boolean
  readonly connectTimeoutMs: number
  readonly upstreamHeadersTimeoutMs: number
  readonly upstreamIdleTimeoutMs: number
  readonly wsHandshakeTimeoutMs: number
  readonly wsAllowedOrigins: readonly string[] | '*'
  /** The `Content-Security-Policy` value every proxied answer carries. */
  readonly frameAncestors: string
  readonly assetFallback: boolean
  readonly pathLinkSwap: boolean
  readonly maxBodyBytes: number
  readonly isolation: WildcardUrl | null
  /** The edge's forward-auth key; null when forward-auth is off. */
  readonly forwardAuthKey: string | null
  readonly drainTimeoutMs: number
  readonly logins: LoginSource | null
  /** The login's credential headers (LoginSource.credentialHeaders), as backends read them: never passed on. */
  readonly loginHeaders: ReadonlySet<string>
  readonly now: () => number
}

function int (name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidOptionError(name, `expected a whole number, at least ${min}`)
  }
  return value
}

function bool (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'expected true or false')
  return value
}

function isolationOption (value: unknown): WildcardUrl | null {
  if (value === undefined) return null
  const wildcardUrl = (value as { wildcardUrl?: unknown } | null)?.wildcardUrl
  const wildcard = typeof wildcardUrl === 'string' ? readWildcardUrl(wildcardUrl) : null
  if (wildcard === null) throw new InvalidOptionError('isolation', 'expected { wildcardUrl } such as https://*.apps.example.com or http://*.localhost:3082')
  return Object.freeze(wildcard)
}

/** The edge's key: long enough not to be guessed, and a valid header value. */
function forwardAuthOption (value: unknown): string | null {
  if (value === undefined) return null
  const key = (value as { key?: unknown } | null)?.key
  if (typeof key !== 'string' || Buffer.byteLength(key) < 16 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new InvalidOptionError('forwardAuth', 'expected { key } of at least 16 printable ASCII characters')
  }
  return key
}

// A CSP host-source with a scheme: scheme://host[:port], the host possibly `*.`-prefixed.
const FRAME_SOURCE = /^https?:\/\/(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?$/

/**
 * The `frame-ancestors` policy: `'self'`, `'none'` alone, or scheme-qualified host sources.
 * `*` alone: no policy at all, so any page that holds a session's link may frame it, even
 * from an opaque origin (a sandboxed view without allow-same-origin), above which browsers
 * refuse every source, `*` included. Without the link nothing opens: in path mode the link's
 * token is in the URL, in isolated mode another site's frame needs the link's frame ticket.
 * An empty string stands for it.
 */
export function frameAncestorsPolicy (sources: unknown): string {
  if (sources === undefined) return "frame-ancestors 'self'"
  const fail = (): never => {
    throw new InvalidOptionError('frameAncestors', "expected a list of 'self', 'none' (alone), * (alone: any page holding the link) or origins such as https://claude.ai and https://*.claudemcpcontent.com")
  }
  if (Array.isArray(sources) && sources.length === 1 && sources[0] === '*') return ''
  if (!Array.isArray(sources) || sources.length === 0) return fail()
  const seen = new Set<string>()
  for (const source of sources) {
    if (typeof source !== 'string') return fail()
    const lower = source.toLowerCase().replace(/\/$/, '')
    if (lower !== "'self'" && !(lower === "'none'" && sources.length === 1) && !FRAME_SOURCE.test(lower)) return fail()
    seen.add(lower)
  }
  return `frame-ancestors ${[...seen].join(' ')}`
}

/** The URL prefix sessions live under: `/mcp` by default. */
export function checkPrefix (prefix: unknown = DEFAULT_PREFIX): string {
  if (typeof prefix !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix)) {
    throw new InvalidOptionError('prefix', 'expected a path such as /mcp: segments of A-Z a-z 0-9 . _ ~ -, no trailing slash')
  }
  return prefix
}

/** Pure: checks and fills in proxy options. */
export function validateOptions (options: ProxyOptions = {}): NormalizedProxyOptions {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'expected an object')
  const prefix = checkPrefix(options.prefix)
  let wsAllowedOrigins: readonly string[] | '*' = Object.freeze([])
  if (options.wsAllowedOrigins === '*') wsAllowedOrigins = '*'
  else if (options.wsAllowedOrigins !== undefined) {
    if (!Array.isArray(options.wsAllowedOrigins)) throw new InvalidOptionError('wsAllowedOrigins', "expected a list of origins or '*'")
    wsAllowedOrigins = Object.freeze(options.wsAllowedOrigins.map((origin) => {
      try {
        const parsed = new URL(origin)
        if (parsed.origin === 'null') throw new Error('opaque')
        return parsed.origin
      } catch {
        throw new InvalidOptionError('wsAllowedOrigins', 'each entry is an origin such as https://example.com')
      }
    }))
  }
  if ('trustProxy' in options) {
    // It used to configure upgrades apart from HTTP; both now follow Fastify's own setting.
    throw new InvalidOptionError('trustProxy', "no longer an option of the proxy: set Fastify's trustProxy, which HTTP requests and WebSocket upgrades both follow")
  }
  if (options.now !== undefined && typeof options.now !== 'function') throw new InvalidOptionError('now', 'expected a function')
  const revalidateMs = int('revalidateMs', options.revalidateMs, DEFAULT_REVALIDATE_MS, 0)
  const isolation = isolationOption(options.isolation)
  const logins = loginsOption(options.logins, isolation !== null)
  return Object.freeze({
    prefix,
    revalidateMs,
    cacheMaxEntries: int('cacheMaxEntries', options.cacheMaxEntries, DEFAULT_CACHE_MAX_ENTRIES, 1),
    storeOutageGraceMs: int('storeOutageGraceMs', options.storeOutageGraceMs, DEFAULT_STORE_OUTAGE_GRACE_MS, 0),
    forwardToken: bool('forwardToken', options.forwardToken, false),
    connectTimeoutMs: int('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 1),
    upstreamHeadersTimeoutMs: int('upstreamHeadersTimeoutMs', options.upstreamHeadersTimeoutMs, DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS, 0),
    upstreamIdleTimeoutMs: int('upstreamIdleTimeoutMs', options.upstreamIdleTimeoutMs, DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS, 0),
    wsHandshakeTimeoutMs: int('wsHandshakeTimeoutMs', options.wsHandshakeTimeoutMs, DEFAULT_WS_HANDSHAKE_TIMEOUT_MS, 1),
    wsAllowedOrigins,
    frameAncestors: frameAncestorsPolicy(options.frameAncestors),
    assetFallback: bool('assetFallback', options.assetFallback, true),
    pathLinkSwap: bool('pathLinkSwap', options.pathLinkSwap, true),
    maxBodyBytes: int('maxBodyBytes', options.maxBodyBytes, 0, 0),
    isolation,
    forwardAuthKey: forwardAuthOption(options.forwardAuth),
    drainTimeoutMs: int('drainTimeoutMs', options.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS, 0),
    logins,
    loginHeaders: credentialHeadersOf(logins),
    now: options.now ?? Date.now
  })
}

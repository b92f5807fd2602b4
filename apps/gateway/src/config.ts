import { join } from 'node:path'
import { isLoopbackHost } from '@mcp-gw/protocol'
import { validateOptions as validateProxyOptions } from '@mcp-gw/proxy-plugin'
import type { McpGatewayOptions } from '@mcp-gw/proxy-plugin'
import {
  DEFAULT_MAX_SESSIONS_PER_SERVER, DEFAULT_SESSION_BURST, DEFAULT_SESSION_RATE_PER_SECOND, MIN_API_KEY_LENGTH, MIN_SECRET_BYTES,
  parseStaticRegistrantKeys
} from '@mcp-gw/registry'
import { SHARE_LEVELS } from '@mcp-gw/registry'
import type { ShareLevel, StaticApiKey } from '@mcp-gw/registry'
import envSchema from 'env-schema'
import { ConfigError } from './errors.js'

/** Where the audit trail goes (MCP_WEB_UI_AUDIT). */
export type AuditConfig =
  | { sink: 'stdout' }
  | { sink: 'file', path: string, maxBytes: number, keep: number }
  | { sink: 'mongo', retentionDays: number }

/** The gateway's settings, read from the environment variables users of the original gateway know. */
export interface GatewayConfig {
  port: number
  host: string
  /** The dashboard's port, on `host` (an origin of its own); undefined: the gateway's port + 1; 'off': none. */
  dashboardPort: number | 'off' | undefined
  mongoUrl: string | undefined
  /**
   * Where the embedded store (without MongoDB) keeps its journal and signing secret across
   * restarts; null: in memory only, forgotten when the process stops.
   */
  dataDir: string | null
  mongoDbName: string
  jwtSecret: string | undefined
  /** Earlier JWT secrets, still accepted (rotation): their links verify until they expire; they never sign. */
  jwtPreviousSecrets: string[]
  prefix: string
  apiKey: string | undefined
  /** Registrant keys from the environment, each acting for the server names it lists. */
  registrantKeys: StaticApiKey[]
  /** Session creations per second per server name and per registrant key (0: no limit). */
  sessionRatePerSecond: number
  sessionBurst: number
  /** Live sessions one server name may hold (0: no cap). */
  maxSessionsPerServer: number
  /** Earlier API keys, still accepted beside `apiKey` while registrants and operators move to it. */
  previousApiKeys: string[]
  publicUrl: string | undefined
  /** Isolated mode: each session on a host of its own under this wildcard URL (`https://*.apps.example.com`). */
  wildcardUrl: string | undefined
  corsOrigins: string[]
  /** Who may frame session pages (CSP frame-ancestors); undefined: the gateway's own pages only. */
  frameAncestors: string[] | undefined
  allowedBackends: string[] | undefined
  /** false, true, or the addresses and CIDRs of the proxies whose X-Forwarded-* headers to believe. */
  trustProxy: boolean | string[]
  debug: boolean
  /** One log line per request (Fastify's request logging). Off by default, on with DEBUG. */
  accessLog: boolean
  /** Path mode: a browser's page load swaps the link for a cookie under the session's label. */
  pathLinkSwap: boolean
  /** Log lines for people (pino-pretty) or JSON; undefined: for people on a terminal, JSON otherwise. */
  logFormat: 'pretty' | 'json' | undefined
  drainTimeoutMs: number
  /** A client must send its complete request headers within this; slow or silent connections are closed. */
  headersTimeoutMs: number
  /** Open client connections the gateway accepts at once; 0 for no limit of its own. */
  maxConnections: number
  /** Largest request body passed to a backend (413 beyond); 0 for no limit. */
  maxBodyBytes: number
  /**
   * Bind the port with SO_REUSEPORT, so several gateway processes on one Mongo store
   * share it and the kernel spreads connections over them (Linux and the BSDs, Node 22.12+).
   */
  reusePort: boolean
  /** Enables forward-auth for an edge proxy that sends this key (`X-Mcpgw-Forward-Auth-Key`). */
  forwardAuthKey: string | undefined
  /** The audit trail's sink; null: off. */
  audit: AuditConfig | null
  /** A login at the gateway against an OpenID provider (MCP_WEB_UI_OIDC_*); null: none. */
  oidc: OidcConfig | null
  /** Who is logged in as an identity-aware proxy in front says (MCP_WEB_UI_LOGIN_*); null: none. */
  edgeLogin: EdgeLoginConfig | null
  /** The widest share level a session may have, and the level of one created without any. */
  maxShareLevel: ShareLevel
}

/** An identity-aware proxy in front (oauth2-proxy, Pomerium, Cloudflare Access). Header names in lower case. */
export interface EdgeLoginConfig {
  /** A header naming the person (X-Auth-Request-Email, X-Forwarded-Email), believed from MCP_WEB_UI_TRUST_PROXY peers only. */
  header: string | undefined
  /** A header carrying a signed assertion (X-Pomerium-Jwt-Assertion, Cf-Access-Jwt-Assertion). */
  jwtHeader: string | undefined
  /** Where the proxy publishes its signing keys. */
  jwksUrl: string | undefined
  jwtIssuer: string | undefined
  jwtAudience: string | undefined
  /** The assertion's claim that names the person as MCP servers name users. */
  jwtUserClaim: string
  /** The assertion's claim that lists the person's groups. */
  jwtGroupsClaim: string
  /** A header listing the person's groups, comma-separated (X-Auth-Request-Groups), beside `header`. */
  groupsHeader: string | undefined
  /**
   * Whether the proxy's email addresses are verified ones (MCP_WEB_UI_LOGIN_EMAIL_VERIFIED): then an
   * assertion's `email` (unless it says `email_verified: false`) and the user header's value, when an
   * address, count for email domains. Otherwise only an assertion saying `email_verified: true`.
   */
  emailVerified: boolean
}

/** The gateway's OpenID Connect login (authorization code flow with PKCE). */
export interface OidcConfig {
  issuer: string
  clientId: string
  /** Absent: a public client (PKCE alone). */
  clientSecret: string | undefined
  scopes: string
  /** The ID token (or userinfo) claim that names a person as MCP servers name users: sub, email, preferred_username... */
  userClaim: string
  /** The claim that lists a person's groups (for sessions limited to groups); undefined: groups are not read. */
  groupsClaim: string | undefined
  /** How long a login lasts before the browser goes through the provider again (silently, while the provider's own session lasts). */
  loginSeconds: number
}

export { ConfigError }

/** The login settings' shapes: a header name, the claim naming a person, the claim listing their groups. */
const HEADER_NAME = { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$' } as const
const USER_CLAIM = { type: 'string', pattern: '^[A-Za-z0-9_:.-]{1,64}$' } as const
const GROUPS_CLAIM = { type: 'string', pattern: '^[A-Za-z0-9_:./-]{1,128}$' } as const

const schema = {
  type: 'object',
  properties: {
    MCP_WEB_UI_GATEWAY_PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 3082 },
    MCP_WEB_UI_GATEWAY_HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    MCP_WEB_UI_DASHBOARD_PORT: { type: 'string', pattern: '^(off|\\d{1,5})$' },
    MCP_WEB_UI_MONGO_URL: { type: 'string', pattern: '^mongodb(\\+srv)?://' },
    MCP_WEB_UI_DATA_DIR: { type: 'string', pattern: '^(off|/.*|[A-Za-z]:[\\\\/].*)$' },
    MCP_WEB_UI_MONGO_DB_NAME: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,63}$', default: 'mcp_webui' },
    MCP_WEB_UI_JWT_SECRET: { type: 'string' },
    MCP_WEB_UI_JWT_SECRET_PREVIOUS: { type: 'string' },
    MCP_WEB_UI_PROXY_PREFIX: { type: 'string', default: '/mcp' },
    MCP_WEB_UI_GATEWAY_API_KEY: { type: 'string', minLength: 16 },
    MCP_WEB_UI_REGISTRANT_KEYS: { type: 'string' },
    MCP_WEB_UI_SESSION_RATE: { type: 'integer', minimum: 0, default: DEFAULT_SESSION_RATE_PER_SECOND },
    MCP_WEB_UI_SESSION_BURST: { type: 'integer', minimum: 1, default: DEFAULT_SESSION_BURST },
    MCP_WEB_UI_MAX_SESSIONS_PER_SERVER: { type: 'integer', minimum: 0, default: DEFAULT_MAX_SESSIONS_PER_SERVER },
    MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS: { type: 'string' },
    MCP_WEB_UI_PUBLIC_URL: { type: 'string', pattern: '^https?://[^/]+(/.*)?$' },
    MCP_WEB_UI_WILDCARD_URL: { type: 'string', pattern: '^https?://\\*\\.[A-Za-z0-9.-]+(:\\d{1,5})?/?$' },
    MCP_WEB_UI_CORS_ORIGINS: { type: 'string' },
    MCP_WEB_UI_FRAME_ANCESTORS: { type: 'string' },
    MCP_WEB_UI_ALLOWED_BACKENDS: { type: 'string' },
    MCP_WEB_UI_TRUST_PROXY: { type: 'string' },
    MCP_WEB_UI_DRAIN_TIMEOUT_MS: { type: 'integer', minimum: 0, default: 10_000 },
    MCP_WEB_UI_HEADERS_TIMEOUT_MS: { type: 'integer', minimum: 100, default: 30_000 },
    MCP_WEB_UI_MAX_CONNECTIONS: { type: 'integer', minimum: 0, default: 0 },
    MCP_WEB_UI_MAX_BODY_BYTES: { type: 'integer', minimum: 0, default: 1024 * 1024 * 1024 },
    MCP_WEB_UI_ACCESS_LOG: { type: 'string', enum: ['true', 'false'] },
    MCP_WEB_UI_PATH_LINK_SWAP: { type: 'string', enum: ['true', 'false'] },
    MCP_WEB_UI_LOG_FORMAT: { type: 'string', enum: ['pretty', 'json'] },
    MCP_WEB_UI_REUSE_PORT: { type: 'string', enum: ['true', 'false'] },
    MCP_WEB_UI_FORWARD_AUTH_KEY: { type: 'string' },
    MCP_WEB_UI_AUDIT: { type: 'string', pattern: '^(off|stdout|mongo|file:/.+)$' },
    MCP_WEB_UI_AUDIT_FILE_MAX_BYTES: { type: 'integer', minimum: 4096, default: 10 * 1024 * 1024 },
    MCP_WEB_UI_AUDIT_FILE_KEEP: { type: 'integer', minimum: 0, maximum: 100, default: 5 },
    MCP_WEB_UI_AUDIT_RETENTION_DAYS: { type: 'integer', minimum: 1, maximum: 3650, default: 30 },
    MCP_WEB_UI_OIDC_ISSUER: { type: 'string', pattern: '^https?://[^/?#]+(/[^?#]*)?$' },
    MCP_WEB_UI_OIDC_CLIENT_ID: { type: 'string', minLength: 1 },
    MCP_WEB_UI_OIDC_CLIENT_SECRET: { type: 'string', minLength: 1 },
    MCP_WEB_UI_OIDC_SCOPES: { type: 'string', pattern: '(^|\\s)openid(\\s|$)', default: 'openid email profile' },
    MCP_WEB_UI_OIDC_USER_CLAIM: { ...USER_CLAIM, default: 'sub' },
    MCP_WEB_UI_OIDC_GROUPS_CLAIM: GROUPS_CLAIM,
    MCP_WEB_UI_LOGIN_HOURS: { type: 'number', exclusiveMinimum: 0, maximum: 720, default: 8 },
    MCP_WEB_UI_MAX_SHARE_LEVEL: { type: 'string', enum: [...SHARE_LEVELS] },
    MCP_WEB_UI_LOGIN_HEADER: HEADER_NAME,
    MCP_WEB_UI_LOGIN_JWT_HEADER: HEADER_NAME,
    MCP_WEB_UI_LOGIN_JWKS_URL: { type: 'string', pattern: '^https?://[^/?#]+(/[^#]*)?$' },
    MCP_WEB_UI_LOGIN_JWT_ISSUER: { type: 'string', minLength: 1 },
    MCP_WEB_UI_LOGIN_JWT_AUDIENCE: { type: 'string', minLength: 1 },
    MCP_WEB_UI_LOGIN_JWT_USER_CLAIM: { ...USER_CLAIM, default: 'email' },
    MCP_WEB_UI_LOGIN_JWT_GROUPS_CLAIM: { ...GROUPS_CLAIM, default: 'groups' },
    MCP_WEB_UI_LOGIN_GROUPS_HEADER: HEADER_NAME,
    MCP_WEB_UI_LOGIN_EMAIL_VERIFIED: { type: 'boolean', default: false },
    DEBUG: { type: 'string' }
  }
} as const

/** Which variable sets each proxy option, for errors the proxy plugin's own checks raise. */
const PROXY_OPTION_VARIABLES: Record<string, string> = {
  prefix: 'MCP_WEB_UI_PROXY_PREFIX',
  isolation: 'MCP_WEB_UI_WILDCARD_URL',
  frameAncestors: 'MCP_WEB_UI_FRAME_ANCESTORS',
  forwardAuth: 'MCP_WEB_UI_FORWARD_AUTH_KEY',
  maxBodyBytes: 'MCP_WEB_UI_MAX_BODY_BYTES',
  drainTimeoutMs: 'MCP_WEB_UI_DRAIN_TIMEOUT_MS',
  pathLinkSwap: 'MCP_WEB_UI_PATH_LINK_SWAP',
  wsAllowedOrigins: 'MCP_WEB_UI_CORS_ORIGINS'
}

/**
 * The proxy plugin's options, exactly as an embedder would pass them: the gateway creates
 * Fastify with gatewayServerOptions(these) and registers mcpGateway with these.
 */
export function proxyOptionsOf (config: GatewayConfig): McpGatewayOptions {
  return {
    prefix: config.prefix,
    maxBodyBytes: config.maxBodyBytes,
    drainTimeoutMs: config.drainTimeoutMs,
    wsAllowedOrigins: config.corsOrigins,
    pathLinkSwap: config.pathLinkSwap,
    ...(config.wildcardUrl !== undefined && { isolation: { wildcardUrl: config.wildcardUrl } }),
    ...(config.frameAncestors !== undefined && { frameAncestors: config.frameAncestors }),
    ...(config.forwardAuthKey !== undefined && { forwardAuth: { key: config.forwardAuthKey } })
  }
}

function list (value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
}

function trustProxy (value: string | undefined): boolean | string[] {
  if (value === undefined || value === '' || value === 'false') return false
  if (value === 'true') return true
  if (/^\d+$/.test(value)) {
    // A hop count cannot tell a proxy from a client that sends as many X-Forwarded-For
    // entries; Fastify 5.12 trusts nothing for one. Say what works instead.
    throw new ConfigError('invalid configuration: MCP_WEB_UI_TRUST_PROXY no longer takes a hop count; list the addresses or CIDRs of your proxies (e.g. 127.0.0.1,10.0.0.0/8), or set true if every client reaches the gateway through them')
  }
  return list(value)
}

function registrantKeys (value: string | undefined): StaticApiKey[] {
  if (value === undefined) return []
  try {
    return parseStaticRegistrantKeys(value, 'MCP_WEB_UI_REGISTRANT_KEYS')
  } catch {
    throw new ConfigError(`invalid configuration: MCP_WEB_UI_REGISTRANT_KEYS must be comma-separated entries <server names joined by +>=<key of at least ${MIN_API_KEY_LENGTH} visible characters>, e.g. todoodles=KEY1,notes+scheduler=KEY2`)
  }
}

/**
 * MCP_WEB_UI_DATA_DIR, or the per-user state directory of the XDG Base Directory spec
 * ($XDG_STATE_HOME/mcp-gw, else ~/.local/state/mcp-gw); null for off, or when the
 * environment names no home (a bare environment keeps the store in memory).
 */
function dataDir (value: string | undefined, env: NodeJS.ProcessEnv): string | null {
  if (value === 'off') return null
  if (value !== undefined) return value
  const state = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : env.HOME !== undefined && env.HOME.startsWith('/') ? join(env.HOME, '.local', 'state') : undefined
  return state === undefined ? null : join(state, 'mcp-gw')
}

function dashboardPort (value: string | undefined): number | 'off' | undefined {
  if (value === undefined || value === 'off') return value
  const port = Number(value)
  if (port > 65535) throw new ConfigError('invalid configuration: MCP_WEB_UI_DASHBOARD_PORT must be a port number (0 to 65535), or off')
  return port
}

interface SchemaError { instancePath: string, keyword: string, params: Record<string, unknown> }

/** What a variable must look like, by example, for a value that does not match its pattern. */
const PATTERN_HINTS: Record<string, string> = {
  MCP_WEB_UI_MONGO_URL: 'a mongodb:// or mongodb+srv:// URL, e.g. mongodb://127.0.0.1:27017',
  MCP_WEB_UI_MONGO_DB_NAME: '1 to 63 letters, digits, _ or -, e.g. mcp_webui',
  MCP_WEB_UI_PUBLIC_URL: 'the gateway\'s public http(s) URL, e.g. https://gw.mycompany.org',
  MCP_WEB_UI_WILDCARD_URL: 'a scheme, *. and a domain, with an optional port, e.g. https://*.apps.example.com or http://*.localhost:3082',
  MCP_WEB_UI_AUDIT: 'off, stdout, mongo or file:/absolute/path',
  MCP_WEB_UI_DASHBOARD_PORT: 'a port number, or off',
  MCP_WEB_UI_DATA_DIR: 'an absolute directory path, e.g. /var/lib/mcp-gw, or off (the embedded store in memory only)',
  MCP_WEB_UI_OIDC_ISSUER: 'the OpenID provider\'s issuer URL, e.g. https://accounts.google.com or https://keycloak.example.com/realms/main',
  MCP_WEB_UI_OIDC_SCOPES: 'space-separated scopes including openid, e.g. openid email profile',
  MCP_WEB_UI_OIDC_USER_CLAIM: 'a claim name such as sub, email or preferred_username',
  MCP_WEB_UI_LOGIN_HEADER: 'a header name, e.g. X-Auth-Request-Email',
  MCP_WEB_UI_LOGIN_JWT_HEADER: 'a header name, e.g. X-Pomerium-Jwt-Assertion or Cf-Access-Jwt-Assertion',
  MCP_WEB_UI_LOGIN_JWKS_URL: 'the proxy\'s JWKS URL, e.g. https://auth.example.com/.well-known/pomerium/jwks.json',
  MCP_WEB_UI_LOGIN_JWT_USER_CLAIM: 'a claim name such as email or sub',
  MCP_WEB_UI_OIDC_GROUPS_CLAIM: 'a claim name such as groups, roles or a namespaced URL claim',
  MCP_WEB_UI_LOGIN_JWT_GROUPS_CLAIM: 'a claim name such as groups',
  MCP_WEB_UI_LOGIN_GROUPS_HEADER: 'a header name, e.g. X-Auth-Request-Groups'
}

/**
 * The schema's refusals in words a newcomer can act on: each variable, what it takes (an
 * example for patterns, the values for enums), never the value given (it may be a secret).
 */
function explainSchemaErrors (err: Error & { errors?: SchemaError[] }): string {
  if (!Array.isArray(err.errors) || err.errors.length === 0) return err.message.replace(/^env\//, '')
  return err.errors.map((e) => {
    const name = e.instancePath.replace(/^\//, '')
    switch (e.keyword) {
      case 'pattern': return `${name} must be ${PATTERN_HINTS[name] ?? 'in the documented form'}`
      case 'enum': return `${name} must be one of ${(e.params.allowedValues as string[]).join(', ')}`
      case 'type': return `${name} must be ${e.params.type === 'integer' ? 'a whole number' : `a ${String(e.params.type)}`}`
      case 'minimum': return `${name} must be at least ${String(e.params.limit)}`
      case 'maximum': return `${name} must be at most ${String(e.params.limit)}`
      case 'minLength': return `${name} must be at least ${String(e.params.limit)} characters long`
      default: return `${name} is not valid`
    }
  }).join('; ')
}

/**
 * Reads and checks the environment. A bad value throws a ConfigError naming
 * the variable (never its value: it may be a secret).
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  // Empty strings mean "not set", as they do in most deployment files.
  const data: Record<string, string> = {}
  for (const key of Object.keys(schema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') data[key] = value
  }
  let raw: Record<string, unknown>
  try {
    raw = envSchema({ schema, data, dotenv: false }) as Record<string, unknown>
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${explainSchemaErrors(err as Error & { errors?: SchemaError[] })}`)
  }
  const config: GatewayConfig = {
    port: raw.MCP_WEB_UI_GATEWAY_PORT as number,
    host: raw.MCP_WEB_UI_GATEWAY_HOST as string,
    dashboardPort: dashboardPort(raw.MCP_WEB_UI_DASHBOARD_PORT as string | undefined),
    mongoUrl: raw.MCP_WEB_UI_MONGO_URL as string | undefined,
    dataDir: dataDir(raw.MCP_WEB_UI_DATA_DIR as string | undefined, env),
    mongoDbName: raw.MCP_WEB_UI_MONGO_DB_NAME as string,
    jwtSecret: raw.MCP_WEB_UI_JWT_SECRET as string | undefined,
    jwtPreviousSecrets: list(raw.MCP_WEB_UI_JWT_SECRET_PREVIOUS as string | undefined),
    prefix: raw.MCP_WEB_UI_PROXY_PREFIX as string,
    apiKey: raw.MCP_WEB_UI_GATEWAY_API_KEY as string | undefined,
    registrantKeys: registrantKeys(raw.MCP_WEB_UI_REGISTRANT_KEYS as string | undefined),
    sessionRatePerSecond: raw.MCP_WEB_UI_SESSION_RATE as number,
    sessionBurst: raw.MCP_WEB_UI_SESSION_BURST as number,
    maxSessionsPerServer: raw.MCP_WEB_UI_MAX_SESSIONS_PER_SERVER as number,
    previousApiKeys: list(raw.MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS as string | undefined),
    publicUrl: raw.MCP_WEB_UI_PUBLIC_URL as string | undefined,
    wildcardUrl: raw.MCP_WEB_UI_WILDCARD_URL as string | undefined,
    corsOrigins: list(raw.MCP_WEB_UI_CORS_ORIGINS as string | undefined),
    frameAncestors: raw.MCP_WEB_UI_FRAME_ANCESTORS === undefined ? undefined : (raw.MCP_WEB_UI_FRAME_ANCESTORS as string).split(/[\s,]+/).filter((s) => s.length > 0),
    allowedBackends: raw.MCP_WEB_UI_ALLOWED_BACKENDS === undefined ? undefined : list(raw.MCP_WEB_UI_ALLOWED_BACKENDS as string),
    trustProxy: trustProxy(raw.MCP_WEB_UI_TRUST_PROXY as string | undefined),
    debug: raw.DEBUG === 'true',
    accessLog: raw.MCP_WEB_UI_ACCESS_LOG === undefined ? raw.DEBUG === 'true' : raw.MCP_WEB_UI_ACCESS_LOG === 'true',
    pathLinkSwap: raw.MCP_WEB_UI_PATH_LINK_SWAP !== 'false',
    logFormat: raw.MCP_WEB_UI_LOG_FORMAT as 'pretty' | 'json' | undefined,
    drainTimeoutMs: raw.MCP_WEB_UI_DRAIN_TIMEOUT_MS as number,
    headersTimeoutMs: raw.MCP_WEB_UI_HEADERS_TIMEOUT_MS as number,
    maxConnections: raw.MCP_WEB_UI_MAX_CONNECTIONS as number,
    maxBodyBytes: raw.MCP_WEB_UI_MAX_BODY_BYTES as number,
    reusePort: raw.MCP_WEB_UI_REUSE_PORT === 'true',
    forwardAuthKey: raw.MCP_WEB_UI_FORWARD_AUTH_KEY as string | undefined,
    audit: auditConfig(raw),
    oidc: oidcConfig(raw),
    edgeLogin: edgeLoginConfig(raw),
    maxShareLevel: (raw.MCP_WEB_UI_MAX_SHARE_LEVEL as ShareLevel | undefined) ?? 'link'
  }
  for (const origin of config.corsOrigins) {
    if (origin === '*') throw new ConfigError('invalid configuration: MCP_WEB_UI_CORS_ORIGINS may not contain *; list the origins')
    try {
      if (new URL(origin).origin !== origin.replace(/\/$/, '')) throw new Error('not an origin')
    } catch {
      throw new ConfigError('invalid configuration: MCP_WEB_UI_CORS_ORIGINS must be a comma-separated list of origins such as https://example.com')
    }
  }
  if (config.mongoUrl !== undefined && (config.jwtSecret === undefined || Buffer.byteLength(config.jwtSecret) < MIN_SECRET_BYTES)) {
    throw new ConfigError(`invalid configuration: MCP_WEB_UI_JWT_SECRET must be set to at least ${MIN_SECRET_BYTES} bytes when MCP_WEB_UI_MONGO_URL is set (sessions outlive the process)`)
  }
  if (config.apiKey !== undefined && config.registrantKeys.some((k) => k.key === config.apiKey)) {
    throw new ConfigError('invalid configuration: a key in MCP_WEB_UI_REGISTRANT_KEYS is also MCP_WEB_UI_GATEWAY_API_KEY (the operator key): give registrants keys of their own')
  }
  if (config.trustProxy !== false && config.apiKey === undefined) {
    // Without a key the API trusts loopback callers; behind a proxy every caller is loopback.
    throw new ConfigError('invalid configuration: MCP_WEB_UI_TRUST_PROXY needs MCP_WEB_UI_GATEWAY_API_KEY (behind a proxy, "loopback only" would admit every client)')
  }
  // The proxy's options are checked by the proxy plugin itself (one home per rule), named here by variable.
  try {
    validateProxyOptions(proxyOptionsOf(config))
  } catch (err) {
    const option = (err as { message: string }).message.match(/^Invalid proxy option (\w+): (.*)$/)
    if (option === null) throw err
    throw new ConfigError(`invalid configuration: ${PROXY_OPTION_VARIABLES[option[1]!] ?? option[1]}: ${option[2]}`)
  }
  if (config.audit?.sink === 'mongo' && config.mongoUrl === undefined) {
    throw new ConfigError('invalid configuration: MCP_WEB_UI_AUDIT=mongo needs MCP_WEB_UI_MONGO_URL (the trail is a collection in the registry\'s database); use file:/path or stdout on the embedded store')
  }
  if (config.reusePort && config.mongoUrl === undefined) {
    // Processes on the embedded store would each hold sessions the others never see.
    throw new ConfigError('invalid configuration: MCP_WEB_UI_REUSE_PORT needs MCP_WEB_UI_MONGO_URL: gateway processes sharing a port must share one session store')
  }
  if (config.reusePort && !reusePortSupported()) {
    throw new ConfigError(`invalid configuration: MCP_WEB_UI_REUSE_PORT needs Node.js 22.12 or later on Linux or a BSD (this is ${process.version} on ${process.platform})`)
  }
  if (config.jwtSecret !== undefined && Buffer.byteLength(config.jwtSecret) < MIN_SECRET_BYTES) {
    throw new ConfigError(`invalid configuration: MCP_WEB_UI_JWT_SECRET must be at least ${MIN_SECRET_BYTES} bytes`)
  }
  checkLogins(config)
  checkPrevious('MCP_WEB_UI_JWT_SECRET', config.jwtSecret, config.jwtPreviousSecrets, MIN_SECRET_BYTES, 'bytes')
  checkPrevious('MCP_WEB_UI_GATEWAY_API_KEY', config.apiKey, config.previousApiKeys, 16, 'characters')
  return config
}

/**
 * The previous values of a rotated setting (`<name>_PREVIOUS`, comma-separated): only beside
 * a current one, each as long as a current one must be, none equal to it or to another.
 * Entries are named by position, never by value.
 */
function checkPrevious (name: string, current: string | undefined, previous: string[], minLength: number, unit: 'bytes' | 'characters'): void {
  if (previous.length === 0) return
  const variable = `${name}_PREVIOUS`
  if (current === undefined) {
    throw new ConfigError(`invalid configuration: ${variable} needs ${name}: previous values are accepted beside a current one, never instead of it`)
  }
  const seen = new Set<string>()
  previous.forEach((value, i) => {
    const length = unit === 'bytes' ? Buffer.byteLength(value) : value.length
    if (length < minLength) throw new ConfigError(`invalid configuration: ${variable} entry ${i + 1} is shorter than ${minLength} ${unit} (entries are comma-separated)`)
    if (value === current) throw new ConfigError(`invalid configuration: ${variable} entry ${i + 1} is the current ${name}; list earlier values only`)
    if (seen.has(value)) throw new ConfigError(`invalid configuration: ${variable} entry ${i + 1} appears twice`)
    seen.add(value)
  })
}

function auditConfig (raw: Record<string, unknown>): AuditConfig | null {
  const value = raw.MCP_WEB_UI_AUDIT as string | undefined
  if (value === undefined || value === 'off') return null
  if (value === 'stdout') return { sink: 'stdout' }
  if (value === 'mongo') return { sink: 'mongo', retentionDays: raw.MCP_WEB_UI_AUDIT_RETENTION_DAYS as number }
  return { sink: 'file', path: value.slice('file:'.length), maxBytes: raw.MCP_WEB_UI_AUDIT_FILE_MAX_BYTES as number, keep: raw.MCP_WEB_UI_AUDIT_FILE_KEEP as number }
}

/** Whether `listen({ reusePort })` means something here: Node 22.12+ (or 23.1+) on Linux and the BSDs. */
export function reusePortSupported (version = process.versions.node, platform: string = process.platform): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number)
  const recent = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
  return recent && ['linux', 'freebsd', 'openbsd', 'netbsd', 'dragonfly'].includes(platform)
}

function oidcConfig (raw: Record<string, unknown>): OidcConfig | null {
  const issuer = raw.MCP_WEB_UI_OIDC_ISSUER as string | undefined
  const clientId = raw.MCP_WEB_UI_OIDC_CLIENT_ID as string | undefined
  if (issuer === undefined) {
    if (clientId !== undefined || raw.MCP_WEB_UI_OIDC_CLIENT_SECRET !== undefined) throw new ConfigError('invalid configuration: MCP_WEB_UI_OIDC_CLIENT_ID and _SECRET need MCP_WEB_UI_OIDC_ISSUER')
    return null
  }
  if (clientId === undefined) throw new ConfigError('invalid configuration: MCP_WEB_UI_OIDC_ISSUER needs MCP_WEB_UI_OIDC_CLIENT_ID (the client registered for the gateway at the provider)')
  return {
    issuer,
    clientId,
    clientSecret: raw.MCP_WEB_UI_OIDC_CLIENT_SECRET as string | undefined,
    scopes: (raw.MCP_WEB_UI_OIDC_SCOPES as string).trim().split(/\s+/).join(' '),
    userClaim: raw.MCP_WEB_UI_OIDC_USER_CLAIM as string,
    groupsClaim: raw.MCP_WEB_UI_OIDC_GROUPS_CLAIM as string | undefined,
    loginSeconds: Math.round((raw.MCP_WEB_UI_LOGIN_HOURS as number) * 3600)
  }
}

/** A login needs a fixed address to come back to, and an issuer reached over https (or on this machine). */
function checkLogins (config: GatewayConfig): void {
  if (config.maxShareLevel !== 'link' && config.oidc === null && config.edgeLogin === null) {
    throw new ConfigError(`invalid configuration: MCP_WEB_UI_MAX_SHARE_LEVEL=${config.maxShareLevel} needs a login at the gateway (MCP_WEB_UI_OIDC_ISSUER) or from the proxy in front (MCP_WEB_UI_LOGIN_HEADER, MCP_WEB_UI_LOGIN_JWT_HEADER): without one, no one could open a session`)
  }
  const edge = config.edgeLogin
  if (edge?.header !== undefined && config.trustProxy === false) {
    throw new ConfigError('invalid configuration: MCP_WEB_UI_LOGIN_HEADER needs MCP_WEB_UI_TRUST_PROXY: the header is believed only from the proxies listed there (anyone else could send it)')
  }
  if (edge?.jwksUrl !== undefined) {
    const jwks = new URL(edge.jwksUrl)
    if (jwks.protocol === 'http:' && !isLoopbackHost(jwks.host)) throw new ConfigError('invalid configuration: MCP_WEB_UI_LOGIN_JWKS_URL must be an https URL (http only on this machine)')
  }
  if (config.oidc === null) return
  if (config.publicUrl === undefined) {
    throw new ConfigError('invalid configuration: MCP_WEB_UI_OIDC_ISSUER needs MCP_WEB_UI_PUBLIC_URL: the provider sends browsers back to <public url>/_mcpgw/login/callback, registered as the client\'s redirect URI')
  }
  const gateway = new URL(config.publicUrl)
  if (gateway.protocol === 'http:' && !isLoopbackHost(gateway.host)) {
    throw new ConfigError('invalid configuration: MCP_WEB_UI_OIDC_ISSUER needs an https MCP_WEB_UI_PUBLIC_URL (http only on this machine): the login cookie must be Secure and __Host-')
  }
  const issuer = new URL(config.oidc.issuer)
  if (issuer.protocol === 'http:' && !isLoopbackHost(issuer.host)) {
    throw new ConfigError('invalid configuration: MCP_WEB_UI_OIDC_ISSUER must be an https URL (http only for a provider on this machine, such as a test one on 127.0.0.1)')
  }
}

function edgeLoginConfig (raw: Record<string, unknown>): EdgeLoginConfig | null {
  const lower = (name: string): string | undefined => (raw[name] as string | undefined)?.toLowerCase()
  const header = lower('MCP_WEB_UI_LOGIN_HEADER')
  const jwtHeader = lower('MCP_WEB_UI_LOGIN_JWT_HEADER')
  const jwksUrl = raw.MCP_WEB_UI_LOGIN_JWKS_URL as string | undefined
  const jwtAudience = raw.MCP_WEB_UI_LOGIN_JWT_AUDIENCE as string | undefined
  const jwtIssuer = raw.MCP_WEB_UI_LOGIN_JWT_ISSUER as string | undefined
  const groupsHeader = lower('MCP_WEB_UI_LOGIN_GROUPS_HEADER')
  if (groupsHeader !== undefined && (header === undefined || groupsHeader === header || groupsHeader === jwtHeader)) throw new ConfigError('invalid configuration: MCP_WEB_UI_LOGIN_GROUPS_HEADER goes beside MCP_WEB_UI_LOGIN_HEADER, and names another header')
  if (jwtHeader === undefined) {
    if (jwksUrl !== undefined || jwtAudience !== undefined || jwtIssuer !== undefined) throw new ConfigError('invalid configuration: MCP_WEB_UI_LOGIN_JWKS_URL, _JWT_AUDIENCE and _JWT_ISSUER need MCP_WEB_UI_LOGIN_JWT_HEADER')
    if (header === undefined) return null
  } else if (jwksUrl === undefined || jwtAudience === undefined) {
    throw new ConfigError('invalid configuration: MCP_WEB_UI_LOGIN_JWT_HEADER needs MCP_WEB_UI_LOGIN_JWKS_URL (the proxy\'s signing keys) and MCP_WEB_UI_LOGIN_JWT_AUDIENCE (what its assertions for this gateway name as aud)')
  }
  if (header !== undefined && header === jwtHeader) throw new ConfigError('invalid configuration: MCP_WEB_UI_LOGIN_HEADER and MCP_WEB_UI_LOGIN_JWT_HEADER name the same header')
  return { header, jwtHeader, jwksUrl, jwtIssuer, jwtAudience, jwtUserClaim: raw.MCP_WEB_UI_LOGIN_JWT_USER_CLAIM as string, jwtGroupsClaim: raw.MCP_WEB_UI_LOGIN_JWT_GROUPS_CLAIM as string, groupsHeader, emailVerified: raw.MCP_WEB_UI_LOGIN_EMAIL_VERIFIED === true }
}

import { DEFAULT_SCOPES, DEFAULT_SERVER_TYPE, SHARE_LEVELS } from '@mcp-gw/protocol'
import type { ShareLevel } from '@mcp-gw/protocol'
import { DEFAULT_ALLOWED_BACKENDS } from './backend-policy.js'
import { InvalidOptionError } from './errors.js'
import type { TokenKey } from './tokens.js'
import type { Logger } from './types.js'
import { assertScopes, assertServerName } from './validate-input.js'

export { DEFAULT_SCOPES, DEFAULT_SERVER_TYPE }
export const DEFAULT_SESSION_TTL_SECONDS = 3600
export const DEFAULT_MAX_SESSION_TTL_SECONDS = 7 * 24 * 3600
export const DEFAULT_REGISTRATION_TTL_SECONDS = 90
export const DEFAULT_ACTIVITY_THROTTLE_MS = 30_000
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000
export const DEFAULT_MAX_SESSIONS = 250_000
export const DEFAULT_MAX_SERVERS = 20_000
export const DEFAULT_MONGO_DB_NAME = 'mcp_webui'

export interface RegistryOptions {
  /** HS256 secret of at least 32 bytes: signs new tokens (kid `default`, or its key id during a rotation). */
  secret?: string | Buffer
  /**
   * Earlier secrets, still accepted until their tokens expire (rotation): tokens, and
   * registrant proofs of backends that registered before it, keep working. Only with `secret`.
   */
  previousSecrets?: ReadonlyArray<string | Buffer>
  /** Verification keys by kid; `signingKid` (default: the first) signs new tokens. */
  keys?: TokenKey[]
  signingKid?: string
  /** Written as `iss` and required on verify. */
  issuer?: string
  /** Written as `aud` and required on verify. */
  audience?: string
  /** Session lifetime when createSession is given none. Default 3600. */
  sessionTtlSeconds?: number
  /** The longest lifetime a caller may ask for. Default 7 days. */
  maxSessionTtlSeconds?: number
  /** Scopes of a session created without any. Default `['view', 'interact']`. */
  defaultScopes?: string[]
  /** serverType when none is given. Default `mcp-webui`. */
  defaultServerType?: string
  /**
   * Whether the proxy in front can tell who is logged in (a login at the gateway, or an
   * identity-aware edge). Without it, only `link` sessions are created: an `owner` or
   * `authenticated` one would open for no one. Default false.
   */
  logins?: boolean
  /**
   * The widest share level a session may have (the operator's cap), and the level of a
   * session created without one. Below `link` it needs `logins`. Default `link`.
   */
  maxShareLevel?: ShareLevel
  /** A registration lives this long after its last heartbeat. Default 90. */
  registrationTtlSeconds?: number
  /** At most one activity write per session per this many ms. Default 30000. */
  activityThrottleMs?: number
  /** How often expired records are swept where the store needs it. Default 60000. */
  sweepIntervalMs?: number
  /** Embedded store capacity. Defaults 250000 sessions, 20000 servers. */
  maxSessions?: number
  maxServers?: number
  /**
   * Where registrations may point: CIDRs, host names, `*.domain` or `*`. Default:
   * loopback, private networks and `localhost`. Link-local and cloud-metadata
   * addresses are refused whatever this says.
   */
  allowedBackends?: readonly string[]
  /** The clock, epoch ms. Tests pass a fake one. */
  now?: () => number
  logger?: Logger
}

export interface NormalizedRegistryOptions {
  readonly secret: string | Buffer | undefined
  readonly previousSecrets: ReadonlyArray<string | Buffer> | undefined
  readonly keys: readonly TokenKey[] | undefined
  readonly signingKid: string | undefined
  readonly issuer: string | undefined
  readonly audience: string | undefined
  readonly sessionTtlSeconds: number
  readonly maxSessionTtlSeconds: number
  readonly defaultScopes: readonly string[]
  readonly defaultServerType: string
  readonly logins: boolean
  readonly maxShareLevel: ShareLevel
  readonly registrationTtlSeconds: number
  readonly activityThrottleMs: number
  readonly sweepIntervalMs: number
  readonly maxSessions: number
  readonly maxServers: number
  readonly allowedBackends: readonly string[]
  readonly now: () => number
  readonly logger: Logger
}

const silentLogger: Logger = { warn () {}, info () {}, debug () {}, error () {} }

function positiveInt (name: string, value: unknown, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > max) {
    throw new InvalidOptionError(name, `expected a whole number from 1 to ${max}`)
  }
  return value
}

function nonNegativeInt (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidOptionError(name, 'expected a whole number, 0 or more')
  }
  return value
}

function optionalString (name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0) throw new InvalidOptionError(name, 'expected a non-empty string')
  return value
}

function allowedBackendsOption (value: unknown): readonly string[] {
  if (value === undefined) return DEFAULT_ALLOWED_BACKENDS
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    throw new InvalidOptionError('allowedBackends', 'expected a list of CIDRs and host names')
  }
  return Object.freeze([...value])
}

function previousSecretsOption (value: unknown): ReadonlyArray<string | Buffer> | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value)) throw new InvalidOptionError('previousSecrets', 'expected a list of secrets')
  return Object.freeze([...value])
}

/** Pure: checks and fills in registry options. Key material is checked by TokenService. */
export function validateOptions (options: RegistryOptions = {}): NormalizedRegistryOptions {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'expected an object')
  const maxSessionTtlSeconds = positiveInt('maxSessionTtlSeconds', options.maxSessionTtlSeconds, DEFAULT_MAX_SESSION_TTL_SECONDS)
  const sessionTtlSeconds = positiveInt('sessionTtlSeconds', options.sessionTtlSeconds, Math.min(DEFAULT_SESSION_TTL_SECONDS, maxSessionTtlSeconds), maxSessionTtlSeconds)
  let defaultScopes = DEFAULT_SCOPES
  if (options.defaultScopes !== undefined) {
    try {
      defaultScopes = Object.freeze(assertScopes(options.defaultScopes))
    } catch (err) {
      throw new InvalidOptionError('defaultScopes', (err as Error).message, { cause: err })
    }
  }
  let defaultServerType = DEFAULT_SERVER_TYPE
  if (options.defaultServerType !== undefined) {
    try {
      defaultServerType = assertServerName(options.defaultServerType, 'defaultServerType')
    } catch (err) {
      throw new InvalidOptionError('defaultServerType', (err as Error).message, { cause: err })
    }
  }
  if (options.now !== undefined && typeof options.now !== 'function') throw new InvalidOptionError('now', 'expected a function')
  if (options.logins !== undefined && typeof options.logins !== 'boolean') throw new InvalidOptionError('logins', 'expected a boolean')
  const logins = options.logins === true
  const maxShareLevel = options.maxShareLevel ?? 'link'
  if (!SHARE_LEVELS.includes(maxShareLevel)) throw new InvalidOptionError('maxShareLevel', `expected one of ${SHARE_LEVELS.join(', ')}`)
  if (maxShareLevel !== 'link' && !logins) throw new InvalidOptionError('maxShareLevel', `${maxShareLevel} needs logins: nothing in front of the registry tells who is logged in, so no one could open a session`)
  return Object.freeze({
    secret: options.secret,
    previousSecrets: previousSecretsOption(options.previousSecrets),
    keys: options.keys === undefined ? undefined : Object.freeze([...options.keys]),
    signingKid: optionalString('signingKid', options.signingKid),
    issuer: optionalString('issuer', options.issuer),
    audience: optionalString('audience', options.audience),
    sessionTtlSeconds,
    maxSessionTtlSeconds,
    defaultScopes,
    logins,
    maxShareLevel,
    defaultServerType,
    registrationTtlSeconds: positiveInt('registrationTtlSeconds', options.registrationTtlSeconds, DEFAULT_REGISTRATION_TTL_SECONDS),
    activityThrottleMs: nonNegativeInt('activityThrottleMs', options.activityThrottleMs, DEFAULT_ACTIVITY_THROTTLE_MS),
    sweepIntervalMs: positiveInt('sweepIntervalMs', options.sweepIntervalMs, DEFAULT_SWEEP_INTERVAL_MS),
    maxSessions: positiveInt('maxSessions', options.maxSessions, DEFAULT_MAX_SESSIONS),
    maxServers: positiveInt('maxServers', options.maxServers, DEFAULT_MAX_SERVERS),
    allowedBackends: allowedBackendsOption(options.allowedBackends),
    now: options.now ?? Date.now,
    logger: options.logger ?? silentLogger
  })
}

import { isIP } from 'node:net'
import { EMAIL_DOMAIN_PATTERN, INCARNATION_PATTERN, INSTANCE_NAME_PATTERN, LOGIN_GROUP_PATTERN, MAX_AUDIENCE_ENTRIES, SERVER_NAME_PATTERN, SHARE_LEVELS, shareLevelWithin } from '@mcp-gw/protocol'
import type { SessionAudience, ShareLevel } from '@mcp-gw/protocol'
import { InvalidArgumentError } from './errors.js'
import type { Protocol } from './types.js'

/**
 * The documented charsets. Anything that reaches a store has passed through one
 * of these, so no caller-supplied value can become a MongoDB operator or a path.
 */
export { SERVER_NAME_PATTERN }
export const SCOPE_PATTERN = /^[a-z][a-z0-9:_-]{0,31}$/
export const MAX_USER_ID_LENGTH = 256
export const MAX_SCOPES = 16
export const MAX_METADATA_BYTES = 4096
/** Identifiers the registry generates itself (sessionId, instanceId, jti). */
export const ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/
export { INCARNATION_PATTERN, INSTANCE_NAME_PATTERN }
const MAX_METADATA_DEPTH = 4
// RFC 1123 labels; a trailing dot is not accepted (registrations name hosts, not FQDN roots).
const HOSTNAME_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/

export function assertServerName (value: unknown, field = 'serverName'): string {
  if (typeof value !== 'string' || !SERVER_NAME_PATTERN.test(value)) {
    throw new InvalidArgumentError(field, 'expected 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit')
  }
  return value
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

export function assertUserId (value: unknown, name = 'userId'): string {
  // A lone surrogate cannot be URI-encoded (the X-Mcpgw-User-Id header), nor stored as UTF-8.
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_USER_ID_LENGTH || CONTROL_CHARS.test(value) || LONE_SURROGATE.test(value)) {
    throw new InvalidArgumentError(name, `expected a non-empty string of at most ${MAX_USER_ID_LENGTH} characters without control characters or lone surrogates`)
  }
  return value
}

/** Identifiers the registry generated itself (sessionId, jti): opaque, url-safe. */
export function assertId (value: unknown, field: string): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new InvalidArgumentError(field, 'expected an identifier issued by the registry')
  }
  return value
}

/** The instance name a platform gives a process. */
export function assertInstanceName (value: unknown): string {
  if (typeof value !== 'string' || !INSTANCE_NAME_PATTERN.test(value)) {
    throw new InvalidArgumentError('instance', 'expected 1-128 characters of A-Z a-z 0-9 . _ : @ -')
  }
  return value
}

/** A process's incarnation: random, made once per process. */
export function assertIncarnation (value: unknown): string {
  if (typeof value !== 'string' || !INCARNATION_PATTERN.test(value)) {
    throw new InvalidArgumentError('incarnation', 'expected 16-64 base64url characters')
  }
  return value
}

/** A session key is `userId:serverName:serverType`; the userId may itself hold colons. */
export function assertSessionKey (value: unknown): string {
  if (typeof value !== 'string') throw new InvalidArgumentError('sessionKey', 'expected userId:serverName:serverType')
  const last = value.lastIndexOf(':')
  const middle = value.lastIndexOf(':', last - 1)
  if (middle <= 0) throw new InvalidArgumentError('sessionKey', 'expected userId:serverName:serverType')
  assertUserId(value.slice(0, middle))
  assertServerName(value.slice(middle + 1, last), 'sessionKey')
  assertServerName(value.slice(last + 1), 'sessionKey')
  return value
}

export function assertHost (value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError('host', 'expected a hostname or an IP address')
  }
  // Bracketed IPv6 is how URLs write it; store the bare address.
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value
  // An IPv6 zone id (`fe80::1%eth0`) names an interface of the gateway's own host: never a backend.
  if (bare.includes('%')) throw new InvalidArgumentError('host', 'expected a hostname or an IP address, without a zone id')
  if (isIP(bare) !== 0) return bare.toLowerCase()
  if (!HOSTNAME_PATTERN.test(bare)) {
    throw new InvalidArgumentError('host', 'expected a hostname or an IP address')
  }
  return bare.toLowerCase()
}

export function assertPort (value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new InvalidArgumentError('port', 'expected an integer from 1 to 65535')
  }
  return value
}

export function assertProtocol (value: unknown): Protocol {
  if (value === undefined) return 'http'
  if (value !== 'http' && value !== 'https') {
    throw new InvalidArgumentError('protocol', 'expected "http" or "https"')
  }
  return value
}

export function assertTtlSeconds (value: unknown, max: number, field = 'ttlSeconds'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > max) {
    throw new InvalidArgumentError(field, `expected a whole number of seconds from 1 to ${max}`)
  }
  return value
}

/** How many items a listing returns: 1 to `max`. */
export function assertLimit (value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > max) {
    throw new InvalidArgumentError('limit', `expected a whole number from 1 to ${max}`)
  }
  return value
}

export function assertScopes (value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_SCOPES) {
    throw new InvalidArgumentError('scopes', `expected 1 to ${MAX_SCOPES} scopes`)
  }
  const seen = new Set<string>()
  for (const scope of value) {
    if (typeof scope !== 'string' || !SCOPE_PATTERN.test(scope)) {
      throw new InvalidArgumentError('scopes', 'each scope is 1-32 characters of a-z 0-9 : _ -, starting with a letter')
    }
    seen.add(scope)
  }
  return [...seen]
}

/**
 * Metadata is caller data stored verbatim: a small plain JSON object whose keys
 * can never be read as operators or dotted paths by MongoDB.
 */
export function assertMetadata (value: unknown): Record<string, unknown> {
  if (value === undefined) return {}
  if (!isPlainObject(value)) throw new InvalidArgumentError('metadata', 'expected a plain JSON object')
  checkMetadataNode(value, 0)
  let size: number
  try {
    size = Buffer.byteLength(JSON.stringify(value))
  } catch {
    throw new InvalidArgumentError('metadata', 'expected JSON-serialisable values')
  }
  if (size > MAX_METADATA_BYTES) {
    throw new InvalidArgumentError('metadata', `at most ${MAX_METADATA_BYTES} bytes of JSON`)
  }
  return structuredClone(value)
}

function checkMetadataNode (node: unknown, depth: number): void {
  if (node === null || typeof node === 'string' || typeof node === 'boolean') return
  if (typeof node === 'number') {
    if (!Number.isFinite(node)) throw new InvalidArgumentError('metadata', 'numbers must be finite')
    return
  }
  if (depth >= MAX_METADATA_DEPTH) throw new InvalidArgumentError('metadata', `nested at most ${MAX_METADATA_DEPTH} levels`)
  if (Array.isArray(node)) {
    for (const item of node) checkMetadataNode(item, depth + 1)
    return
  }
  if (!isPlainObject(node)) throw new InvalidArgumentError('metadata', 'expected only JSON values')
  for (const [key, item] of Object.entries(node)) {
    if (key.length === 0 || key.startsWith('$') || key.includes('.') || key.includes('\u0000')) {
      throw new InvalidArgumentError('metadata', 'keys may not be empty, start with "$" or contain "." or NUL')
    }
    checkMetadataNode(item, depth + 1)
  }
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** A session's share level: one of SHARE_LEVELS, within the operator's cap, and only where someone can log in. */
export function assertShareLevel (value: unknown, cap: ShareLevel, logins: boolean): ShareLevel {
  if (typeof value !== 'string' || !(SHARE_LEVELS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError('shareLevel', `expected one of ${SHARE_LEVELS.join(', ')}`)
  }
  const level = value as ShareLevel
  if (!shareLevelWithin(level, cap)) throw new InvalidArgumentError('shareLevel', `${level} is wider than this gateway allows (at most ${cap})`)
  if (level !== 'link' && !logins) throw new InvalidArgumentError('shareLevel', `${level} needs a login at the gateway, and this gateway has none configured`)
  return level
}

/**
 * The audience an `authenticated` session is limited to (groups, email domains), or undefined for
 * none. Given with another level, or empty: refused.
 */
export function assertAudience (groups: unknown, emailDomains: unknown, level: ShareLevel): SessionAudience | undefined {
  if (groups === undefined && emailDomains === undefined) return undefined
  if (level !== 'authenticated') throw new InvalidArgumentError(groups !== undefined ? 'groups' : 'emailDomains', 'groups and email domains narrow shareLevel authenticated only')
  const list = (value: unknown, name: string, pattern: RegExp, what: string): string[] => {
    if (value === undefined) return []
    if (!Array.isArray(value) || value.length > MAX_AUDIENCE_ENTRIES || !value.every((v) => typeof v === 'string' && pattern.test(v))) {
      throw new InvalidArgumentError(name, `expected up to ${MAX_AUDIENCE_ENTRIES} ${what}`)
    }
    return [...new Set(value as string[])]
  }
  const audience = {
    groups: list(groups, 'groups', LOGIN_GROUP_PATTERN, 'group names (1 to 128 characters, no control characters or commas)'),
    emailDomains: list(emailDomains, 'emailDomains', EMAIL_DOMAIN_PATTERN, 'lower-case domains such as example.com')
  }
  if (audience.groups.length === 0 && audience.emailDomains.length === 0) throw new InvalidArgumentError('groups', 'name at least one group or email domain, or leave both out')
  return audience
}

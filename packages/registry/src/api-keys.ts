import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { InvalidArgumentError, InvalidOptionError } from './errors.js'
import type { ApiKeyRecord, ApiKeyRole } from './types.js'
import { assertServerName } from './validate-input.js'

/**
 * API keys. An operator key may do everything; a registrant key acts for the server
 * names it lists only (register their instances, mint their sessions, list and revoke
 * their sessions). Keys made through the API look like `mcpgw_<keyId>.<secret>`: the
 * store keeps the keyId and the SHA-256 of the whole key, never the key. Keys given in
 * the environment (static keys) never touch the store.
 */

/** Who called the API, once its key (or its loopback address, with no key configured) was checked. */
export interface ApiCaller {
  /** `loopback`: no operator key is configured and the caller is on this machine (operator powers). */
  kind: 'operator' | 'registrant' | 'loopback'
  /** The key's public id (`static:<fingerprint>` for keys from the environment); null for loopback. */
  keyId: string | null
  /** The server names a registrant key acts for; null for operator powers. */
  servers: readonly string[] | null
}

/** A key given in the environment: an operator key, or a registrant key for some names. */
export interface StaticApiKey {
  key: string
  role: ApiKeyRole
  /** For a registrant key: the server names it acts for. */
  servers?: readonly string[]
}

export const MIN_API_KEY_LENGTH = 16
const STORED_KEY = /^mcpgw_([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/
const KEY_ID = /^[A-Za-z0-9_-]{16}$/
export const MAX_KEY_SERVERS = 100
const MAX_LABEL_LENGTH = 200

export const sha256Hex = (value: string): string => createHash('sha256').update(value).digest('hex')

/** Whether a stored key is accepted at `now`. */
export function apiKeyIsLive (key: Pick<ApiKeyRecord, 'revokedAt' | 'expiresAt'>, now: number): boolean {
  return key.revokedAt === null && (key.expiresAt === null || key.expiresAt > now)
}

export function isKeyId (value: unknown): value is string {
  return typeof value === 'string' && KEY_ID.test(value)
}

/** A new key for the store: the record to keep and the key to show once. */
export function newApiKey (role: ApiKeyRole, servers: readonly string[], label: string, now: number, expiresAt: number | null = null): { key: string, record: ApiKeyRecord } {
  const keyId = randomBytes(12).toString('base64url')
  const key = `mcpgw_${keyId}.${randomBytes(32).toString('base64url')}`
  return { key, record: { keyId, hash: sha256Hex(key), role, servers: [...servers], label, createdAt: now, expiresAt, revokedAt: null } }
}

/** Checks the names a registrant key acts for: at least one, each a server name. */
export function assertKeyServers (role: ApiKeyRole, servers: unknown, what = 'servers'): string[] {
  if (role === 'operator') {
    if (servers !== undefined && !(Array.isArray(servers) && servers.length === 0)) throw new InvalidArgumentError(what, 'an operator key acts for every server; give servers for registrant keys only')
    return []
  }
  if (!Array.isArray(servers) || servers.length === 0 || servers.length > MAX_KEY_SERVERS) {
    throw new InvalidArgumentError(what, `a registrant key acts for 1 to ${MAX_KEY_SERVERS} server names`)
  }
  return [...new Set(servers.map((s) => assertServerName(s, what)))]
}

export function assertLabel (label: unknown): string {
  if (label === undefined) return ''
  if (typeof label !== 'string' || label.length > MAX_LABEL_LENGTH || [...label].some((c) => c < ' ' || c === '\x7f')) {
    throw new InvalidArgumentError('label', `expected up to ${MAX_LABEL_LENGTH} printable characters`)
  }
  return label
}

/**
 * Parses registrant keys as the environment gives them:
 * `todoodles=<key>,notes+scheduler=<key>` (names joined by `+`, entries by `,`).
 */
export function parseStaticRegistrantKeys (value: string, variable: string): StaticApiKey[] {
  const keys: StaticApiKey[] = []
  for (const entry of value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const eq = entry.indexOf('=')
    if (eq <= 0) throw new InvalidOptionError(variable, 'expected name=key entries separated by commas (names joined by +)')
    const key = entry.slice(eq + 1)
    if (!/^[\x21-\x7e]+$/.test(key) || key.length < MIN_API_KEY_LENGTH) throw new InvalidOptionError(variable, `each key is at least ${MIN_API_KEY_LENGTH} visible ASCII characters`)
    let servers: string[]
    try {
      servers = assertKeyServers('registrant', entry.slice(0, eq).split('+'), variable)
    } catch (err) {
      throw new InvalidOptionError(variable, 'each entry names server names joined by + before its =', { cause: err })
    }
    keys.push({ key, role: 'registrant', servers })
  }
  return keys
}

/** Resolves bearer keys to callers: static keys by their digest, stored keys through the store. */
export class ApiKeyring {
  /** Whether an operator key is configured: then every caller needs a key, loopback or not. */
  readonly operatorKeyConfigured: boolean
  readonly #static = new Map<string, ApiCaller>()
  readonly #find: (keyId: string) => Promise<ApiKeyRecord | null>
  readonly #now: () => number

  constructor (staticKeys: readonly StaticApiKey[], find: (keyId: string) => Promise<ApiKeyRecord | null>, now: () => number = Date.now) {
    for (const { key, role, servers } of staticKeys) {
      if (typeof key !== 'string' || key.length < MIN_API_KEY_LENGTH) throw new InvalidOptionError('apiKey', `expected at least ${MIN_API_KEY_LENGTH} characters`)
      const digest = sha256Hex(key)
      if (this.#static.has(digest)) throw new InvalidOptionError('apiKey', 'the same key is given twice')
      this.#static.set(digest, Object.freeze({
        kind: role,
        keyId: `static:${digest.slice(0, 12)}`,
        servers: role === 'operator' ? null : Object.freeze(staticServers(servers))
      }))
    }
    this.operatorKeyConfigured = staticKeys.some((k) => k.role === 'operator')
    this.#find = find
    this.#now = now
  }

  /**
   * The caller a bearer key names, or null when it names none. A key shaped like a stored
   * one is looked up by its id and compared by digest in constant time; a static key is
   * found by its SHA-256 (a lookup by digest tells a timing observer nothing about the key).
   */
  async resolve (bearer: string): Promise<ApiCaller | null> {
    const digest = sha256Hex(bearer)
    const known = this.#static.get(digest)
    if (known !== undefined) return known
    const match = STORED_KEY.exec(bearer)
    if (match === null) return null
    const record = await this.#find(match[1]!)
    if (record === null || !apiKeyIsLive(record, this.#now())) return null
    if (!timingSafeEqual(Buffer.from(record.hash, 'latin1'), Buffer.from(digest, 'latin1'))) return null
    return { kind: record.role, keyId: record.keyId, servers: record.role === 'operator' ? null : Object.freeze([...record.servers]) }
  }

  /** Whether a bearer is shaped like a key the store would hold (then an unknown one is refused, never ignored). */
  static looksStored (bearer: string): boolean {
    return STORED_KEY.test(bearer)
  }
}

function staticServers (servers: unknown): string[] {
  try {
    return assertKeyServers('registrant', servers)
  } catch (err) {
    throw new InvalidOptionError('registrantKeys', 'each registrant key acts for 1 to 100 server names', { cause: err })
  }
}

/** Whether the caller may act for this server name. */
export function mayActFor (caller: ApiCaller, serverName: string): boolean {
  return caller.servers === null || caller.servers.includes(serverName)
}

import { SERVER_SECRET_PATTERN, sessionKeyOf } from '@mcp-gw/protocol'
import { createHash, randomBytes } from 'node:crypto'
import { createBackendPolicy } from './backend-policy.js'
import type { BackendPolicy } from './backend-policy.js'
import { InvalidArgumentError, NotServerOwnerError, ServerNotRegisteredError } from './errors.js'
import { MemoryStore } from './memory-store.js'
import { validateOptions } from './options.js'
import type { NormalizedRegistryOptions, RegistryOptions } from './options.js'
import { TokenService } from './tokens.js'
import type {
  ListSessionsFilter, RegistryStats, RegistryStore, RevokeFilter, ServerRegistration,
  SessionClaims, SessionRecord, StatsOptions, StoreOperation, SweepResult, ValidationResult, RecheckResult
} from './types.js'
import {
  assertHost, assertId, assertMetadata, assertPort, assertProtocol, assertScopes, assertServerName,
  assertLimit, assertSessionKey, assertTtlSeconds, assertUserId
} from './validate-input.js'

export interface CreateSessionInput {
  userId: string
  serverName: string
  /** Default `mcp-webui`. */
  serverType?: string
  /** Default from the registry options (3600). */
  ttlSeconds?: number
  /** Default `['view', 'interact']`. */
  scopes?: string[]
  metadata?: Record<string, unknown>
  /** Replace a live session for the same key instead of returning it. */
  rotate?: boolean
  /**
   * When given, serverName must have a live registration made with this secret
   * (see `assertServerOwner`), checked after the input and before anything is
   * stored. The HTTP API always gives one.
   */
  serverSecret?: string
}

export interface IssuedSession {
  session: SessionRecord
  /** The bearer token; never log it. */
  token: string
  /** false when a live session for the key was returned as it was. */
  created: boolean
}

export interface RegisterServerInput {
  serverName: string
  host: string
  port: number
  protocol?: 'http' | 'https'
  metadata?: Record<string, unknown>
  /**
   * The registrant's secret (32 to 256 visible ASCII characters). While the
   * registration is live, only a caller with the same secret may heartbeat,
   * replace or remove it, or ask for its sessions. Omitted: an in-process
   * registration that no API client can take over.
   */
  secret?: string
}

export interface ListSessionsInput {
  userId?: string
  serverName?: string
  /** Default 100, at most 1000. */
  limit?: number
}

export interface RegistryConstructorOptions extends RegistryOptions {
  /** Default: a MemoryStore. */
  store?: RegistryStore
  /** Whether close() closes the store. Default: true when the registry made it. */
  ownsStore?: boolean
}

const MAX_LIST_LIMIT = 1000

/**
 * Sessions, tokens and server registrations over any RegistryStore. Inputs are
 * validated here, so no caller value reaches a store unchecked.
 */
export class Registry {
  readonly store: RegistryStore
  readonly tokens: TokenService
  readonly options: NormalizedRegistryOptions
  readonly backendPolicy: BackendPolicy
  readonly #ownsStore: boolean
  readonly #now: () => number
  /** sessionId -> time of the last activity write, for throttling. */
  readonly #lastTouch = new Map<string, number>()
  readonly #serverListeners = new Set<(serverName: string) => void>()
  /**
   * Calls made to the store since start, by operation: each is one round trip
   * on a networked store. Monitoring reads it; the proxy's cached path adds none.
   */
  readonly storeOperations: Record<StoreOperation, number> = Object.seal({
    createSession: 0,
    findSessionByJti: 0,
    findSessionById: 0,
    listSessions: 0,
    revokeSessions: 0,
    touchSession: 0,
    upsertServer: 0,
    deleteServer: 0,
    findServer: 0,
    listServers: 0,
    stats: 0,
    sweep: 0,
    ping: 0
  })

  constructor (options: RegistryConstructorOptions = {}) {
    this.options = validateOptions(options)
    this.#now = this.options.now
    this.tokens = new TokenService({
      ...(this.options.secret !== undefined && { secret: this.options.secret }),
      ...(this.options.keys !== undefined && { keys: [...this.options.keys] }),
      ...(this.options.signingKid !== undefined && { signingKid: this.options.signingKid }),
      ...(this.options.issuer !== undefined && { issuer: this.options.issuer }),
      ...(this.options.audience !== undefined && { audience: this.options.audience })
    })
    this.store = options.store ?? new MemoryStore({
      maxSessions: this.options.maxSessions,
      maxServers: this.options.maxServers,
      sweepIntervalMs: this.options.sweepIntervalMs,
      now: this.#now
    })
    this.#ownsStore = options.ownsStore ?? options.store === undefined
    this.backendPolicy = createBackendPolicy(this.options.allowedBackends)
  }

  async init (): Promise<void> {
    await this.store.init()
  }

  /**
   * Returns the live session for `userId:serverName:serverType`, or creates one
   * (always a new one with `rotate`). Safe under concurrency: any number of
   * simultaneous calls for one key end with exactly one live session.
   */
  async createSession (input: CreateSessionInput): Promise<IssuedSession> {
    if (input === null || typeof input !== 'object') throw new InvalidArgumentError('session', 'expected an object')
    const userId = assertUserId(input.userId)
    const serverName = assertServerName(input.serverName)
    const serverType = input.serverType === undefined ? this.options.defaultServerType : assertServerName(input.serverType, 'serverType')
    const ttlSeconds = input.ttlSeconds === undefined ? this.options.sessionTtlSeconds : assertTtlSeconds(input.ttlSeconds, this.options.maxSessionTtlSeconds)
    const scopes = input.scopes === undefined ? [...this.options.defaultScopes] : assertScopes(input.scopes)
    const metadata = assertMetadata(input.metadata)
    if (input.rotate !== undefined && typeof input.rotate !== 'boolean') throw new InvalidArgumentError('rotate', 'expected a boolean')
    const ownerHash = input.serverSecret === undefined ? null : (await this.assertServerOwner(serverName, input.serverSecret)).ownerHash

    const now = this.#now()
    // JWT times are whole seconds; expiresAt matches exp exactly so both agree at the boundary.
    const exp = Math.ceil((now + ttlSeconds * 1000) / 1000)
    const candidate: SessionRecord = {
      sessionId: newId(),
      jti: newId(),
      userId,
      serverName,
      serverType,
      sessionKey: sessionKeyOf(userId, serverName, serverType),
      scopes,
      createdAt: now,
      expiresAt: exp * 1000,
      lastActivityAt: now,
      revokedAt: null,
      metadata,
      ownerHash
    }
    let result = await this.#counted('createSession').createSession(candidate, { rotate: input.rotate === true, now })
    if (!result.created && (result.session.ownerHash !== ownerHash || grantsOtherThanAsked(result.session, candidate, input))) {
      // The live session for this key was issued for an earlier holder of the server name
      // (never hand its token to the new one), or grants other scopes or a longer life than
      // this call asks for (a view-only link must not come back able to interact): it is
      // replaced, and so revoked.
      result = await this.#counted('createSession').createSession(candidate, { rotate: true, now })
    }
    return { session: result.session, token: this.tokenFor(result.session), created: result.created }
  }

  /**
   * The token of a session. Signing is deterministic, so the token of an
   * existing session is re-derived rather than stored: a leaked database holds
   * no usable credentials.
   */
  tokenFor (session: SessionRecord): string {
    return this.tokens.sign(claimsOf(session))
  }

  /** Checks signature, expiry (against this registry's clock) and the store's record. */
  async validate (token: string): Promise<ValidationResult> {
    const verified = this.tokens.verify(token)
    if (!verified.ok) return { valid: false, reason: verified.reason }
    const claims = verified.claims
    const now = this.#now()
    if (claims.exp * 1000 <= now) return { valid: false, reason: 'expired' }
    const session = await this.#counted('findSessionByJti').findSessionByJti(claims.jti, now)
    if (session === null) return { valid: false, reason: 'unknown' }
    if (session.sessionId !== claims.sid || session.userId !== claims.sub || session.serverName !== claims.serverName) {
      return { valid: false, reason: 'unknown' }
    }
    if (session.revokedAt !== null) return { valid: false, reason: 'revoked' }
    return { valid: true, session, claims }
  }

  /**
   * Re-reads a session whose token `validate()` accepted before: its expiry
   * against this registry's clock, then revocation or deletion in the store.
   * One store round trip, no signature check: verification keys are fixed for
   * the life of a TokenService, so the token's signature cannot have changed
   * its verdict. Caches use it to revalidate hot sessions cheaply.
   */
  async recheck (session: SessionRecord): Promise<RecheckResult> {
    const now = this.#now()
    if (session.expiresAt <= now) return { valid: false, reason: 'expired' }
    const current = await this.#counted('findSessionByJti').findSessionByJti(session.jti, now)
    if (current === null || current.sessionId !== session.sessionId) return { valid: false, reason: 'unknown' }
    if (current.revokedAt !== null) return { valid: false, reason: 'revoked' }
    return { valid: true, session: current }
  }

  /**
   * Records activity, writing at most once per session per `activityThrottleMs`.
   * Best effort: resolves false instead of rejecting when the store fails.
   */
  async touch (session: Pick<SessionRecord, 'sessionId'>): Promise<boolean> {
    const now = this.#now()
    const last = this.#lastTouch.get(session.sessionId)
    if (last !== undefined && now - last < this.options.activityThrottleMs) return false
    if (this.#lastTouch.size >= this.options.maxSessions) this.#pruneTouches(now)
    this.#lastTouch.set(session.sessionId, now)
    try {
      await this.#counted('touchSession').touchSession(session.sessionId, now)
      return true
    } catch (err) {
      this.options.logger.warn({ err: { code: (err as { code?: string }).code } }, 'session activity write failed')
      return false
    }
  }

  /** Revokes by exactly one of sessionId, sessionKey or userId; returns how many. */
  async revoke (filter: RevokeFilter): Promise<number> {
    if (filter === null || typeof filter !== 'object') throw new InvalidArgumentError('filter', 'expected one of sessionId, sessionKey, userId')
    const given = (['sessionId', 'sessionKey', 'userId'] as const).filter((k) => (filter as Record<string, unknown>)[k] !== undefined)
    if (given.length !== 1) throw new InvalidArgumentError('filter', 'expected exactly one of sessionId, sessionKey, userId')
    const now = this.#now()
    if ('sessionId' in filter && filter.sessionId !== undefined) return await this.#counted('revokeSessions').revokeSessions({ sessionId: assertId(filter.sessionId, 'sessionId') }, now)
    if ('sessionKey' in filter && filter.sessionKey !== undefined) return await this.#counted('revokeSessions').revokeSessions({ sessionKey: assertSessionKey(filter.sessionKey) }, now)
    return await this.#counted('revokeSessions').revokeSessions({ userId: assertUserId((filter as { userId: unknown }).userId) }, now)
  }

  async getSession (sessionId: string): Promise<SessionRecord | null> {
    return await this.#counted('findSessionById').findSessionById(assertId(sessionId, 'sessionId'), this.#now())
  }

  /** Live sessions, newest first. */
  async listSessions (input: ListSessionsInput = {}): Promise<SessionRecord[]> {
    const filter: ListSessionsFilter = {
      limit: input.limit === undefined ? 100 : assertLimit(input.limit, MAX_LIST_LIMIT)
    }
    if (input.userId !== undefined) filter.userId = assertUserId(input.userId)
    if (input.serverName !== undefined) filter.serverName = assertServerName(input.serverName)
    return await this.#counted('listSessions').listSessions(filter, this.#now())
  }

  /**
   * Registers a backend, or heartbeats it: each call extends its expiry. Hosts
   * outside `allowedBackends` get MCPGW_REGISTRY_BACKEND_NOT_ALLOWED (403).
   */
  async registerServer (input: RegisterServerInput): Promise<ServerRegistration> {
    if (input === null || typeof input !== 'object') throw new InvalidArgumentError('registration', 'expected an object')
    const registration = {
      serverName: assertServerName(input.serverName),
      // Checked in its canonical spelling, and stored that way: what was checked is what we connect to.
      host: this.backendPolicy.check(assertHost(input.host)),
      port: assertPort(input.port),
      protocol: assertProtocol(input.protocol),
      metadata: assertMetadata(input.metadata),
      ownerHash: ownerHashOf(input.secret)
    }
    const now = this.#now()
    const stored = await this.#counted('upsertServer').upsertServer(registration, now, now + this.options.registrationTtlSeconds * 1000)
    this.#serverChanged(stored.serverName)
    return stored
  }

  /**
   * Removes a live registration made with `secret` (none: one made in-process
   * without one). False when there is none; MCPGW_REGISTRY_NOT_SERVER_OWNER (403)
   * when it belongs to someone else.
   */
  async deregisterServer (serverName: string, secret?: string): Promise<boolean> {
    const name = assertServerName(serverName)
    const ownerHash = ownerHashOf(secret)
    const deleted = await this.#counted('deleteServer').deleteServer(name, ownerHash, this.#now())
    if (deleted) this.#serverChanged(name)
    else if (await this.discover(name) !== null) throw new NotServerOwnerError(name)
    return deleted
  }

  /**
   * Checks that `secret` is the one serverName's live registration was made
   * with: MCPGW_REGISTRY_SERVER_NOT_REGISTERED (404) when it has none,
   * MCPGW_REGISTRY_NOT_SERVER_OWNER (403) when it is someone else's. The HTTP
   * API asks this before it hands out a session (and its token) for a server.
   */
  async assertServerOwner (serverName: string, secret: string | undefined): Promise<ServerRegistration> {
    const registration = await this.discover(serverName)
    if (registration === null) throw new ServerNotRegisteredError(assertServerName(serverName))
    if (registration.ownerHash !== ownerHashOf(secret)) throw new NotServerOwnerError(registration.serverName)
    return registration
  }

  /**
   * Calls `listener` after each registration, heartbeat or deregistration made
   * through this Registry, so caches in this process can drop a stale route at
   * once (a backend that restarted on a new port). Other processes sharing the
   * store see the change when their caches revalidate. Returns an unsubscribe.
   */
  onServerChange (listener: (serverName: string) => void): () => void {
    this.#serverListeners.add(listener)
    return () => { this.#serverListeners.delete(listener) }
  }

  #serverChanged (serverName: string): void {
    for (const listener of this.#serverListeners) {
      try {
        listener(serverName)
      } catch (err) {
        this.options.logger.warn({ err }, 'a server-change listener threw')
      }
    }
  }

  /** The live registration for serverName, or null. */
  async discover (serverName: string): Promise<ServerRegistration | null> {
    return await this.#counted('findServer').findServer(assertServerName(serverName), this.#now())
  }

  async listServers (): Promise<ServerRegistration[]> {
    return await this.#counted('listServers').listServers(this.#now())
  }

  async stats (options: StatsOptions = {}): Promise<RegistryStats> {
    return await this.#counted('stats').stats(this.#now(), options)
  }

  /** Deletes expired sessions and stale registrations now. */
  async cleanup (): Promise<SweepResult> {
    const now = this.#now()
    this.#pruneTouches(now)
    return await this.#counted('sweep').sweep(now)
  }

  async ping (): Promise<void> {
    await this.#counted('ping').ping()
  }

  async close (): Promise<void> {
    this.#lastTouch.clear()
    if (this.#ownsStore) await this.store.close()
  }

  #counted (operation: StoreOperation): RegistryStore {
    this.storeOperations[operation]++
    return this.store
  }

  #pruneTouches (now: number): void {
    for (const [id, at] of this.#lastTouch) {
      if (now - at >= this.options.activityThrottleMs) this.#lastTouch.delete(id)
    }
    // Still full: every entry is recent. Forgetting them costs a few early writes, never correctness.
    if (this.#lastTouch.size >= this.options.maxSessions) this.#lastTouch.clear()
  }
}

/** What the store keeps of a registrant's secret: its SHA-256, never the secret. */
/** Whether a live session differs from what a call explicitly asked for: other scopes, or a longer life. */
function grantsOtherThanAsked (live: SessionRecord, asked: SessionRecord, input: CreateSessionInput): boolean {
  if (input.scopes !== undefined && (live.scopes.length !== asked.scopes.length || live.scopes.some((s) => !asked.scopes.includes(s)))) return true
  return input.ttlSeconds !== undefined && live.expiresAt > asked.expiresAt
}

function ownerHashOf (secret: string | undefined): string | null {
  if (secret === undefined) return null
  if (typeof secret !== 'string' || !SERVER_SECRET_PATTERN.test(secret)) {
    throw new InvalidArgumentError('secret', 'expected 32 to 256 visible ASCII characters')
  }
  return createHash('sha256').update(secret).digest('hex')
}

function newId (): string {
  return randomBytes(16).toString('base64url')
}

function claimsOf (session: SessionRecord): Omit<SessionClaims, 'iss' | 'aud'> {
  return {
    sub: session.userId,
    serverName: session.serverName,
    serverType: session.serverType,
    sid: session.sessionId,
    jti: session.jti,
    scopes: [...session.scopes],
    iat: Math.floor(session.createdAt / 1000),
    exp: Math.floor(session.expiresAt / 1000)
  }
}

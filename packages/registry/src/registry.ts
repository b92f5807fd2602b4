import { SERVER_SECRET_PATTERN, sessionKeyOf } from '@mcp-gw/protocol'
import type { SessionAudience, ShareLevel } from '@mcp-gw/protocol'
import { createHash, randomBytes } from 'node:crypto'
import { assertKeyServers, assertLabel, isKeyId, MAX_KEY_SERVERS, newApiKey } from './api-keys.js'
import { actorFields, Audit, auditText } from './audit.js'
import type { AuditActor, AuditContext, AuditSink } from './audit.js'
import { createBackendPolicy } from './backend-policy.js'
import type { BackendPolicy } from './backend-policy.js'
import { BackendIsGatewayError, InstanceSupersededError, InvalidArgumentError, NotFoundError, NotServerOwnerError, ServerNotRegisteredError, TooManySharesError } from './errors.js'
import { addressIncarnation, instanceIdOf, pointsAtGateway, probeInstance } from './instances.js'
import type { InstanceProber, ListeningAddress } from './instances.js'
import { MemoryStore } from './memory-store.js'
import { validateOptions } from './options.js'
import type { NormalizedRegistryOptions, RegistryOptions } from './options.js'
import { TokenService } from './tokens.js'
import type {
  ApiKeyRecord, ApiKeyRole, ListSessionsFilter, RegistryStats, RegistryStore, RevokeBounds, RevokeFilter, ServerRegistration,
  CreateSessionResult, SessionClaims, SessionRecord, SessionShare, StatsOptions, StoreOperation, SweepResult, ValidationResult, RecheckResult
} from './types.js'
import {
  assertAudience, assertHost, assertId, assertIncarnation, assertInstanceName, assertMetadata, assertPort, assertProtocol, assertScopes, assertShareLevel,
  assertServerName, assertLimit, assertSessionKey, assertTtlSeconds, assertUserId
} from './validate-input.js'

/**
 * Which of its registrant's instances a call acts for: the one with this id, or the one
 * this incarnation holds; with neither, the registrant's only instance of the name (or
 * the one it registered without an instance name).
 */
export interface InstanceSelector {
  instanceId?: string
  incarnation?: string
}

export interface CreateSessionInput {
  userId: string
  serverName: string
  /** Default `mcp-webui`. */
  serverType?: string
  /** Default from the registry options (3600). */
  ttlSeconds?: number
  /** Default `['view', 'interact']`. */
  scopes?: string[]
  /** Who may open the link (see SHARE_LEVELS). Default: the registry's `maxShareLevel` (`link`). */
  shareLevel?: ShareLevel
  /** With shareLevel `authenticated`: only people in one of these groups (as the login names them)... */
  groups?: string[]
  /** ...or with a verified email address at one of these domains (lower case). */
  emailDomains?: string[]
  metadata?: Record<string, unknown>
  /** Replace a live session for the same key instead of returning it. */
  rotate?: boolean
  /**
   * When given, serverName must have a live instance registered with this secret
   * (see `assertServerOwner`), checked after the input and before anything is
   * stored; the session belongs to that instance. The HTTP API always gives one.
   */
  serverSecret?: string
  /** Which of the registrant's instances mints the session (see InstanceSelector). */
  instance?: InstanceSelector
  /**
   * Called once the input and the owner are checked, before anything is stored: throws to
   * refuse (the HTTP API's quotas, so a caller without the secret cannot spend a name's).
   */
  admit?: (serverName: string) => Promise<void> | void
  /** Who asks, for the audit trail (the HTTP API's caller); absent: an in-process call. */
  actor?: AuditActor
}

export interface ShareSessionInput {
  /** The session to share (not itself a share). */
  sessionId: string
  /**
   * The one person the share opens for, as the gateway maps logged-in people (the userId MCP
   * servers use); its level is then `owner` (only that person). Without it, `shareLevel` says
   * who: `authenticated` (anyone logged in) or `link` (whoever holds the share's link).
   */
  person?: string
  shareLevel?: ShareLevel
  /** Without person: only people in one of these groups... (the level is then `authenticated`). */
  groups?: string[]
  /** ...or with a verified email address at one of these domains. */
  emailDomains?: string[]
  /** Default `['view']`: view-only. Never more than the shared session has. */
  scopes?: string[]
  /** Default and at most: what is left of the shared session's life. */
  ttlSeconds?: number
  /** When given, the session's instance must be registered with this secret (as for createSession); otherwise 404. */
  serverSecret?: string
  /** The caller's incarnation (beside the secret): a process a restart replaced shares nothing. */
  instance?: Pick<InstanceSelector, 'incarnation'>
  /** Called once the owner is checked, before anything is stored: throws to refuse (the HTTP API's quotas). */
  admit?: (serverName: string) => Promise<void> | void
  /** Who asks, for the audit trail. */
  actor?: AuditActor
}

/** At most this many live shares per session. */
export const MAX_SHARES_PER_SESSION = 50

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
  /**
   * The instance name the platform gave this process (kept across its restarts, unique
   * among the server's processes): a restarted process with the same secret and name
   * takes its sessions back.
   */
  instance?: string
  /**
   * This process's incarnation: random, made once per process start (16 to 64 base64url
   * characters). Tells a heartbeat from a second process with the same identity. Omitted:
   * the address stands for the process.
   */
  incarnation?: string
  /** Who asks, for the audit trail (the HTTP API's caller); absent: an in-process call. */
  actor?: AuditActor
}

export interface ListSessionsInput {
  userId?: string
  serverName?: string
  instanceId?: string
  /** Only sessions of these server names (a registrant key's scope). */
  serverNames?: readonly string[]
  /** Only the shares of this session. */
  sharedFrom?: string
  /** Default 100, at most 1000. */
  limit?: number
}

export interface RegistryConstructorOptions extends RegistryOptions {
  /** Default: a MemoryStore. */
  store?: RegistryStore
  /** Whether close() closes the store. Default: true when the registry made it. */
  ownsStore?: boolean
  /** How a contested instance's holder is asked whether it lives. Default: `probeInstance`. */
  probeInstance?: InstanceProber
  /**
   * Where the audit trail goes (registrations, sessions created, opened, revoked and expired,
   * streams, refusals). Default none: auditing off, at the cost of one property read.
   */
  audit?: AuditSink
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
  /** The audit trail: `audit.enabled` is false without a sink. The proxy emits its events here too. */
  readonly audit: Audit
  readonly #ownsStore: boolean
  readonly #now: () => number
  /** sessionId -> time of the last activity write, for throttling. */
  readonly #lastTouch = new Map<string, number>()
  readonly #serverListeners = new Set<(serverName: string, instanceId: string) => void>()
  readonly #probe: InstanceProber
  #gatewayAddresses: readonly ListeningAddress[] = []
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
    heartbeatInstance: 0,
    upsertInstance: 0,
    deleteInstance: 0,
    findInstance: 0,
    findServer: 0,
    listServers: 0,
    stats: 0,
    countSessions: 0,
    insertApiKey: 0,
    findApiKey: 0,
    listApiKeys: 0,
    revokeApiKey: 0,
    sweep: 0,
    ping: 0
  })

  constructor (options: RegistryConstructorOptions = {}) {
    this.options = validateOptions(options)
    this.#now = this.options.now
    this.tokens = new TokenService({
      ...(this.options.secret !== undefined && { secret: this.options.secret }),
      ...(this.options.previousSecrets !== undefined && { previousSecrets: this.options.previousSecrets }),
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
    this.#probe = options.probeInstance ?? probeInstance
    this.audit = new Audit(options.audit, this.options.logger, this.#now)
  }

  /**
   * The addresses the gateway listens on (the registry plugin sets them once the server
   * listens): registrations pointing there are refused, for they would send every request
   * back into the gateway.
   */
  setGatewayAddresses (addresses: readonly ListeningAddress[]): void {
    this.#gatewayAddresses = Object.freeze(addresses.map((a) => ({ address: a.address, port: a.port })))
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
    const shareLevel = input.shareLevel === undefined ? this.options.maxShareLevel : assertShareLevel(input.shareLevel, this.options.maxShareLevel, this.options.logins)
    const audience = assertAudience(input.groups, input.emailDomains, shareLevel)
    const metadata = assertMetadata(input.metadata)
    if (input.rotate !== undefined && typeof input.rotate !== 'boolean') throw new InvalidArgumentError('rotate', 'expected a boolean')
    const owner = input.serverSecret === undefined ? null : await this.assertServerOwner(serverName, input.serverSecret, input.instance)
    const ownerHash = owner === null ? null : owner.ownerHash
    // In-process sessions belong to the instance an in-process registration without a secret has.
    const instanceId = owner === null ? instanceIdOf(serverName, null, null) : owner.instanceId
    if (input.admit !== undefined) await input.admit(serverName)

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
      // Absent for link (as on records written before share levels).
      ...(shareLevel !== 'link' && { shareLevel }),
      ...(audience !== undefined && { audience }),
      createdAt: now,
      expiresAt: exp * 1000,
      lastActivityAt: now,
      revokedAt: null,
      metadata,
      ownerHash,
      instanceId
    }
    let result = await this.#counted('createSession').createSession(candidate, { rotate: false, now })
    if (!result.created && (input.rotate === true || result.session.ownerHash !== ownerHash || grantsOtherThanAsked(result.session, candidate, input))) {
      // Asked to rotate; or the live session for this key was issued for an earlier holder of the
      // server name (never hand its token to the new one), or grants other scopes or a longer
      // life than this call asks for (a view-only link must not come back able to interact): it
      // is replaced, and so revoked, and its shares with it.
      const replaced = result.session
      result = await this.#counted('createSession').createSession(candidate, { rotate: true, now })
      if (result.created) await this.#endShares([replaced.sessionId], { actor: input.actor, reason: 'its session was replaced' }, now).catch(() => {})
    }
    if (result.created && this.audit.enabled) {
      const s = result.session
      this.audit.emit('session.created', { ...actorFields(input.actor), ...sessionFacts(s), ttlSeconds, ...(input.rotate === true && { rotate: true }) })
    }
    return { session: result.session, token: this.tokenFor(result.session), created: result.created }
  }

  /**
   * Shares a live session: a credential of its own (its own token, link, scopes and share
   * level) that opens the same UI, on the same instance, for someone else. It ends when it
   * expires, when it is revoked (`revoke({ sessionId })` with its id), and when the shared
   * session ends in any way. The registry's share level cap holds for shares too.
   */
  async shareSession (input: ShareSessionInput): Promise<IssuedSession> {
    if (input === null || typeof input !== 'object') throw new InvalidArgumentError('share', 'expected an object')
    const sessionId = assertId(input.sessionId, 'sessionId')
    const person = input.person === undefined ? null : assertUserId(input.person, 'person')
    let shareLevel: ShareLevel
    if (person !== null) {
      if (input.shareLevel !== undefined && input.shareLevel !== 'owner') throw new InvalidArgumentError('shareLevel', 'a share with a person opens for that person only (owner)')
      shareLevel = assertShareLevel('owner', this.options.maxShareLevel, this.options.logins)
    } else {
      const narrowed = input.groups !== undefined || input.emailDomains !== undefined
      if (input.shareLevel === undefined && !narrowed) throw new InvalidArgumentError('shareLevel', 'name a person, groups or email domains, or say authenticated or link')
      if (input.shareLevel === 'owner') throw new InvalidArgumentError('shareLevel', 'owner names a person: give person')
      shareLevel = assertShareLevel(input.shareLevel ?? 'authenticated', this.options.maxShareLevel, this.options.logins)
    }
    if (person !== null && (input.groups !== undefined || input.emailDomains !== undefined)) throw new InvalidArgumentError('person', 'a share is for a person, or for groups and email domains, not both')
    const audience = assertAudience(input.groups, input.emailDomains, shareLevel)
    const scopes = input.scopes === undefined ? ['view'] : assertScopes(input.scopes)
    // Any life asked is capped at what is left of the session (below), never refused for its length.
    const ttlSeconds = input.ttlSeconds === undefined ? undefined : assertTtlSeconds(input.ttlSeconds, Number.MAX_SAFE_INTEGER / 1000)
    const now = this.#now()
    const shared = await this.#counted('findSessionById').findSessionById(sessionId, now)
    if (shared === null || shared.revokedAt !== null) throw new NotFoundError('session', sessionId)
    if (input.serverSecret !== undefined) {
      // Whoever is not the session's registrant (its instance's, with the secret, in this
      // process) learns nothing of it, not even that it exists: the same 404 as for none.
      const owner = await this.assertServerOwner(shared.serverName, input.serverSecret, { ...input.instance, instanceId: shared.instanceId }).catch(() => null)
      if (owner === null || owner.ownerHash !== shared.ownerHash) throw new NotFoundError('session', sessionId)
    }
    if (shared.share !== undefined) throw new InvalidArgumentError('sessionId', 'a share cannot be shared again: share the session it came from')
    const extra = scopes.filter((s) => !shared.scopes.includes(s))
    if (extra.length > 0) throw new InvalidArgumentError('scopes', `the session has no ${extra.join(', ')} to share`)
    // The caller's quotas, as for a session (a share is one, in the store and against its limits).
    if (input.admit !== undefined) await input.admit(shared.serverName)
    const live = await this.#counted('listSessions').listSessions({ sharedFrom: sessionId, limit: MAX_SHARES_PER_SESSION }, now)
    if (live.length >= MAX_SHARES_PER_SESSION) throw new TooManySharesError(MAX_SHARES_PER_SESSION)
    const exp = Math.min(Math.floor(shared.expiresAt / 1000), ttlSeconds === undefined ? Infinity : Math.ceil((now + ttlSeconds * 1000) / 1000))
    const id = newId()
    const candidate: SessionRecord = {
      sessionId: id,
      jti: newId(),
      userId: shared.userId,
      serverName: shared.serverName,
      serverType: shared.serverType,
      // One of MAX_SHARES_PER_SESSION slots, never the shared session's: the store keeps one live
      // session per key (unique, in every store), so calls at once, across gateways on one
      // MongoDB too, never fill more slots than there are. Set below.
      sessionKey: '',
      scopes,
      ...(shareLevel !== 'link' && { shareLevel }),
      ...(audience !== undefined && { audience }),
      share: { from: shared.sessionId, with: person },
      createdAt: now,
      expiresAt: exp * 1000,
      lastActivityAt: now,
      revokedAt: null,
      metadata: {},
      ownerHash: shared.ownerHash,
      instanceId: shared.instanceId
    }
    // The first free slot, from the one the count suggests: a slot whose share was revoked or
    // expired is free again. A slot taken meanwhile answers with its live share: the next is tried.
    let result: CreateSessionResult | null = null
    for (let i = 0; i < MAX_SHARES_PER_SESSION && result === null; i++) {
      candidate.sessionKey = `${shared.sessionKey}#share:${(live.length + i) % MAX_SHARES_PER_SESSION}`
      const tried = await this.#counted('createSession').createSession({ ...candidate }, { rotate: false, now })
      if (tried.created) result = tried
    }
    if (result === null) throw new TooManySharesError(MAX_SHARES_PER_SESSION)
    if (this.audit.enabled) {
      const s = result.session
      this.audit.emit('session.shared', { ...actorFields(input.actor), ...sessionFacts(s), sharedFrom: shared.sessionId, ...(person !== null && { person }) })
    }
    return { session: result.session, token: this.tokenFor(result.session), created: true }
  }

  /** The live shares of a session, newest first. */
  async listShares (sessionId: string): Promise<SessionRecord[]> {
    return await this.#counted('listSessions').listSessions({ sharedFrom: assertId(sessionId, 'sessionId'), limit: MAX_SHARES_PER_SESSION }, this.#now())
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
    if (claims.exp * 1000 <= now) {
      if (this.audit.enabled) this.#expired({ sessionId: claims.sid, userId: claims.sub, serverName: claims.serverName, expiresAt: claims.exp * 1000 })
      return { valid: false, reason: 'expired' }
    }
    const session = await this.#counted('findSessionByJti').findSessionByJti(claims.jti, now)
    if (session === null) return { valid: false, reason: 'unknown' }
    if (session.sessionId !== claims.sid || session.userId !== claims.sub || session.serverName !== claims.serverName) {
      return { valid: false, reason: 'unknown' }
    }
    if (session.revokedAt !== null) return { valid: false, reason: 'revoked' }
    if (session.share !== undefined && !(await this.#sharedLives(session.share, now))) return { valid: false, reason: 'revoked' }
    return { valid: true, session, claims }
  }

  /** Whether the session a share came from is still live: a share ends with it. */
  async #sharedLives (share: SessionShare, now: number): Promise<boolean> {
    const shared = await this.#counted('findSessionById').findSessionById(share.from, now)
    return shared !== null && shared.revokedAt === null
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
    if (session.expiresAt <= now) {
      if (this.audit.enabled) this.#expired(session)
      return { valid: false, reason: 'expired' }
    }
    const current = await this.#counted('findSessionByJti').findSessionByJti(session.jti, now)
    if (current === null || current.sessionId !== session.sessionId) return { valid: false, reason: 'unknown' }
    if (current.revokedAt !== null) return { valid: false, reason: 'revoked' }
    if (current.share !== undefined && !(await this.#sharedLives(current.share, now))) return { valid: false, reason: 'revoked' }
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

  /**
   * Revokes by exactly one of sessionId, sessionKey or userId (of one instance, with `instanceId`);
   * returns how many. `context` says who and why, for the audit trail.
   */
  async revoke (filter: RevokeFilter, context: AuditContext = {}): Promise<number> {
    if (filter === null || typeof filter !== 'object') throw new InvalidArgumentError('filter', 'expected one of sessionId, sessionKey, userId')
    const given = (['sessionId', 'sessionKey', 'userId'] as const).filter((k) => (filter as unknown as Record<string, unknown>)[k] !== undefined)
    if (given.length !== 1) throw new InvalidArgumentError('filter', 'expected exactly one of sessionId, sessionKey, userId')
    const now = this.#now()
    const scope: RevokeBounds = {
      ...(filter.instanceId !== undefined && { instanceId: assertId(filter.instanceId, 'instanceId') }),
      ...(filter.serverNames !== undefined && { serverNames: assertServerNames(filter.serverNames) })
    }
    let checked: RevokeFilter
    if ('sessionId' in filter && filter.sessionId !== undefined) checked = { sessionId: assertId(filter.sessionId, 'sessionId'), ...scope }
    else if ('sessionKey' in filter && filter.sessionKey !== undefined) checked = { sessionKey: assertSessionKey(filter.sessionKey), ...scope }
    else checked = { userId: assertUserId((filter as { userId: unknown }).userId), ...scope }
    // Which sessions it ends, read first (one more store call, on revocations only): for the audit
    // trail, and, by key, for their shares (by id, the id is known; by user, they go with it).
    const ending = this.audit.enabled || 'sessionKey' in checked ? await this.#revocable(checked, now).catch(() => null) : null
    const revoked = await this.#counted('revokeSessions').revokeSessions(checked, now)
    if (revoked > 0) {
      const by = given[0]!
      this.#auditRevoked(ending, by, context)
      const ended = 'sessionId' in checked ? [checked.sessionId] : 'sessionKey' in checked ? (ending ?? []).map((s) => s.sessionId) : []
      await this.#endShares(ended, context, now)
    }
    return revoked
  }

  /** A share ends with its session. (Validation refuses it anyway; this keeps listings and counts true.) */
  async #endShares (sessionIds: readonly string[], context: AuditContext, now: number): Promise<void> {
    for (const sessionId of sessionIds) {
      const shares = this.audit.enabled ? await this.listShares(sessionId).catch(() => null) : null
      if (shares?.length === 0) continue
      if (await this.#counted('revokeSessions').revokeSessions({ sharedFrom: sessionId }, now) > 0) this.#auditRevoked(shares, 'sharedFrom', context)
    }
  }

  #auditRevoked (sessions: SessionRecord[] | null, by: string, context: AuditContext): void {
    if (sessions === null || !this.audit.enabled) return
    const who = actorFields(context.actor)
    const reason = auditText(context.reason)
    for (const s of sessions) {
      this.audit.emit('session.revoked', { ...who, sessionId: s.sessionId, userId: s.userId, serverName: s.serverName, instanceId: s.instanceId, by, reason })
    }
  }

  /** The live sessions a revocation would end (at most 1000). */
  async #revocable (filter: RevokeFilter, now: number): Promise<SessionRecord[]> {
    let found: SessionRecord[]
    if ('sessionId' in filter) {
      const one = await this.#counted('findSessionById').findSessionById(filter.sessionId, now)
      found = one === null || one.revokedAt !== null ? [] : [one]
    } else if ('sessionKey' in filter) {
      // userId:serverName:serverType, where only the user id may hold a colon.
      const parts = filter.sessionKey.split(':')
      if (parts.length < 3) return []
      const serverName = parts[parts.length - 2]!
      const userId = parts.slice(0, -2).join(':')
      found = (await this.#counted('listSessions').listSessions({ userId, serverName, limit: MAX_LIST_LIMIT }, now)).filter((s) => s.sessionKey === filter.sessionKey)
    } else if ('sharedFrom' in filter) {
      found = await this.#counted('listSessions').listSessions({ sharedFrom: filter.sharedFrom, limit: MAX_LIST_LIMIT }, now)
    } else {
      found = await this.#counted('listSessions').listSessions({ userId: filter.userId, limit: MAX_LIST_LIMIT }, now)
    }
    return found.filter((s) => (filter.instanceId === undefined || s.instanceId === filter.instanceId) && (filter.serverNames === undefined || filter.serverNames.includes(s.serverName)))
  }

  #expired (s: Pick<SessionRecord, 'sessionId' | 'userId' | 'serverName' | 'expiresAt'> & { instanceId?: string }): void {
    if (!this.audit.once('session.expired', s.sessionId)) return
    this.audit.emit('session.expired', {
      sessionId: s.sessionId,
      userId: s.userId,
      serverName: s.serverName,
      instanceId: s.instanceId,
      expiresAt: new Date(s.expiresAt).toISOString(),
      foundBy: 'validation'
    })
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
    if (input.instanceId !== undefined) filter.instanceId = assertId(input.instanceId, 'instanceId')
    if (input.serverNames !== undefined) filter.serverNames = assertServerNames(input.serverNames)
    if (input.sharedFrom !== undefined) filter.sharedFrom = assertId(input.sharedFrom, 'sharedFrom')
    return await this.#counted('listSessions').listSessions(filter, this.#now())
  }

  /**
   * Registers one instance (one process) of a server, or heartbeats it: each call extends
   * its expiry. A server name has any number of instances; each session belongs to the
   * instance that minted it. A process that registers the identity (name, secret, instance
   * name) a live process holds takes that instance over only when the holder is gone (it
   * moved to this address, nothing listens at its own, or another process answers there);
   * otherwise it becomes an instance of its own, and never receives the holder's sessions.
   * Hosts outside `allowedBackends` get MCPGW_REGISTRY_BACKEND_NOT_ALLOWED (403), the
   * gateway's own address MCPGW_REGISTRY_BACKEND_IS_GATEWAY (403).
   */
  async registerServer (input: RegisterServerInput): Promise<ServerRegistration> {
    if (input === null || typeof input !== 'object') throw new InvalidArgumentError('registration', 'expected an object')
    const serverName = assertServerName(input.serverName)
    // Checked in its canonical spelling, and stored that way: what was checked is what we connect to.
    const host = this.backendPolicy.check(assertHost(input.host))
    const port = assertPort(input.port)
    const protocol = assertProtocol(input.protocol)
    const base = {
      serverName,
      host,
      port,
      protocol,
      metadata: assertMetadata(input.metadata),
      ownerHash: ownerHashOf(input.secret),
      instance: input.instance === undefined ? null : assertInstanceName(input.instance),
      incarnation: input.incarnation === undefined ? addressIncarnation(protocol, host, port) : assertIncarnation(input.incarnation)
    }
    if (this.#gatewayAddresses.length > 0 && await pointsAtGateway(host, port, this.#gatewayAddresses)) throw new BackendIsGatewayError()
    const claimed = { ...base, instanceId: instanceIdOf(serverName, base.ownerHash, base.instance) }
    const own = { ...base, instanceId: instanceIdOf(serverName, base.ownerHash, base.instance, base.incarnation) }
    const ttlMs = this.options.registrationTtlSeconds * 1000
    let now = this.#now()
    // A heartbeat: one store call for the holder of its identity, two for a second process.
    const beat = await this.#counted('heartbeatInstance').heartbeatInstance(claimed, now, now + ttlMs) ??
      await this.#counted('heartbeatInstance').heartbeatInstance(own, now, now + ttlMs)
    if (beat !== null) return this.#serverChanged(beat)
    let supersede: string | undefined
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return this.#added(await this.#settled(await this.#counted('upsertInstance').upsertInstance(claimed, now, now + ttlMs, supersede)), input.actor, supersede)
      } catch (err) {
        const holder = (err as { code?: string, holder?: ServerRegistration }).holder
        if ((err as { code?: string }).code !== 'MCPGW_REGISTRY_INSTANCE_HELD' || holder === undefined) throw err
        if (!(await this.#holderIsGone(holder, base))) break
        supersede = holder.incarnation
        now = this.#now()
      }
    }
    // The identity is held by another live process: this one is an instance of its own.
    return this.#added(await this.#settled(await this.#counted('upsertInstance').upsertInstance(own, now, now + ttlMs)), input.actor, undefined)
  }

  /** Audits a registration that is not a heartbeat (a new instance, or one taken over). */
  #added (r: ServerRegistration, actor: AuditActor | undefined, superseded: string | undefined): ServerRegistration {
    if (this.audit.enabled) {
      this.audit.emit('registration.added', {
        ...actorFields(actor),
        serverName: r.serverName,
        instanceId: r.instanceId,
        instance: r.instance ?? undefined,
        host: r.host,
        port: r.port,
        protocol: r.protocol,
        ...(superseded !== undefined && { takeover: true })
      })
    }
    return r
  }

  #removed (r: ServerRegistration, actor: AuditActor | undefined, reason: string): void {
    if (!this.audit.enabled) return
    this.audit.emit('registration.removed', {
      ...actorFields(actor),
      serverName: r.serverName,
      instanceId: r.instanceId,
      instance: r.instance ?? undefined,
      host: r.host,
      port: r.port,
      reason
    })
  }

  /**
   * A process that starts serving at an address: whatever instance of the same registrant
   * was registered there before is gone (one process listens on an address), and its links
   * must stop at once, never reach the newcomer (a sibling that took a crashed process's port).
   */
  async #settled (stored: ServerRegistration): Promise<ServerRegistration> {
    const now = this.#now()
    const before = await this.#counted('findServer').findServer(stored.serverName, now)
    for (const other of before) {
      if (other.instanceId === stored.instanceId || other.ownerHash !== stored.ownerHash) continue
      if (other.host !== stored.host || other.port !== stored.port || other.protocol !== stored.protocol) continue
      if (await this.#counted('deleteInstance').deleteInstance(other.instanceId, other.ownerHash, other.incarnation, now)) {
        this.#removed(other, undefined, 'replaced at its address')
        this.#serverChanged(other)
      }
    }
    return this.#serverChanged(stored)
  }

  /**
   * Whether a newcomer with the holder's identity may take its instance over: the holder's
   * address is now the newcomer's, or a probe finds the holder's incarnation gone from its
   * own. An unclear answer keeps the holder: a live process never loses its sessions.
   */
  async #holderIsGone (holder: ServerRegistration, newcomer: { host: string, port: number, protocol: string }): Promise<boolean> {
    if (holder.host === newcomer.host && holder.port === newcomer.port && holder.protocol === newcomer.protocol) return true
    // Registered in-process without a secret: trusted code, which moves as it likes.
    if (holder.ownerHash === null) return true
    // The holder may hold the proof key of a secret this gateway still accepts (a rotation).
    const verdict = await this.#probe(holder, this.tokens.proofKey(holder.ownerHash), this.tokens.otherProofKeys(holder.ownerHash))
    this.options.logger.info({ serverName: holder.serverName, instanceId: holder.instanceId, verdict }, 'probed the holder of a claimed instance')
    return verdict === 'gone'
  }

  /**
   * Removes the caller's live instance of serverName (see InstanceSelector) registered
   * with `secret` (none: one made in-process without one). False when there is none;
   * MCPGW_REGISTRY_NOT_SERVER_OWNER (403) when the name's instances are others'.
   */
  async deregisterServer (serverName: string, secret?: string, selector: InstanceSelector = {}, context: AuditContext = {}): Promise<boolean> {
    const name = assertServerName(serverName)
    let instance: ServerRegistration
    try {
      instance = await this.assertServerOwner(name, secret, selector)
    } catch (err) {
      if ((err as { code?: string }).code === 'MCPGW_REGISTRY_SERVER_NOT_REGISTERED') return false
      throw err
    }
    const deleted = await this.#counted('deleteInstance').deleteInstance(instance.instanceId, instance.ownerHash, instance.incarnation, this.#now())
    if (deleted) {
      this.#removed(instance, context.actor, 'deregistered')
      this.#serverChanged(instance)
    }
    return deleted
  }

  /**
   * The caller's live instance of serverName: registered with `secret`, and the one the
   * selector names. MCPGW_REGISTRY_SERVER_NOT_REGISTERED (404) when the name has no live
   * instance, MCPGW_REGISTRY_NOT_SERVER_OWNER (403) when none of them is the caller's,
   * MCPGW_REGISTRY_INSTANCE_SUPERSEDED (409) when the caller's was taken over by a restart
   * of it. The HTTP API asks this before it hands out a session (and its token).
   */
  async assertServerOwner (serverName: string, secret: string | undefined, selector: InstanceSelector = {}): Promise<ServerRegistration> {
    const name = assertServerName(serverName)
    const ownerHash = ownerHashOf(secret)
    const incarnation = selector.incarnation === undefined ? undefined : assertIncarnation(selector.incarnation)
    const now = this.#now()
    let instances: ServerRegistration[]
    if (selector.instanceId !== undefined) {
      const found = await this.#counted('findInstance').findInstance(assertId(selector.instanceId, 'instanceId'), now)
      instances = found === null || found.serverName !== name ? [] : [found]
    } else {
      instances = await this.#counted('findServer').findServer(name, now)
    }
    const mine = instances.filter((i) => i.ownerHash === ownerHash)
    if (mine.length === 0) {
      if (instances.length > 0) throw new NotServerOwnerError(name)
      throw new ServerNotRegisteredError(name)
    }
    if (incarnation !== undefined) {
      const held = mine.find((i) => i.incarnation === incarnation)
      if (held !== undefined) return held
      if (selector.instanceId !== undefined) throw new InstanceSupersededError(name)
      throw new ServerNotRegisteredError(name)
    }
    if (mine.length === 1) return mine[0]!
    const claimed = instanceIdOf(name, ownerHash, null)
    return mine.find((i) => i.instanceId === claimed) ?? mine[0]!
  }

  /**
   * Calls `listener` after each registration, heartbeat or deregistration made
   * through this Registry, so caches in this process can drop a stale route at
   * once (a backend that restarted on a new port). Other processes sharing the
   * store see the change when their caches revalidate. Returns an unsubscribe.
   */
  onServerChange (listener: (serverName: string, instanceId: string) => void): () => void {
    this.#serverListeners.add(listener)
    return () => { this.#serverListeners.delete(listener) }
  }

  #serverChanged (registration: ServerRegistration): ServerRegistration {
    for (const listener of this.#serverListeners) {
      try {
        listener(registration.serverName, registration.instanceId)
      } catch (err) {
        this.options.logger.warn({ err }, 'a server-change listener threw')
      }
    }
    return registration
  }

  /** The oldest live instance of serverName, or null (`instances` lists them all). */
  async discover (serverName: string): Promise<ServerRegistration | null> {
    return (await this.instances(serverName))[0] ?? null
  }

  /** The live instances of serverName, oldest first. */
  async instances (serverName: string): Promise<ServerRegistration[]> {
    return await this.#counted('findServer').findServer(assertServerName(serverName), this.#now())
  }

  /** The live instance with this id, or null: where the proxy routes a session. */
  async discoverInstance (instanceId: string): Promise<ServerRegistration | null> {
    return await this.#counted('findInstance').findInstance(assertId(instanceId, 'instanceId'), this.#now())
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

  /** Live sessions of a server name (what its quota counts). */
  async countSessions (serverName: string): Promise<number> {
    return await this.#counted('countSessions').countSessions(assertServerName(serverName), this.#now())
  }

  /**
   * Makes an API key: an operator key, or a registrant key for some server names. Returns
   * the key (shown once: the store keeps its SHA-256 only) and what is kept of it.
   */
  async createApiKey (input: { role: ApiKeyRole, servers?: readonly string[], label?: string, ttlSeconds?: number }, context: AuditContext = {}): Promise<{ key: string, record: ApiKeyRecord }> {
    if (input === null || typeof input !== 'object' || (input.role !== 'operator' && input.role !== 'registrant')) {
      throw new InvalidArgumentError('role', 'expected operator or registrant')
    }
    const servers = assertKeyServers(input.role, input.servers)
    const label = assertLabel(input.label)
    const now = this.#now()
    const expiresAt = input.ttlSeconds === undefined ? null : now + assertTtlSeconds(input.ttlSeconds, 10 * 365 * 24 * 3600) * 1000
    const made = newApiKey(input.role, servers, label, now, expiresAt)
    await this.#counted('insertApiKey').insertApiKey(made.record)
    const { keyId, role } = made.record
    this.audit.emit('key.created', { ...actorFields(context.actor), createdKeyId: keyId, role, servers: made.record.servers, label, expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString() })
    return made
  }

  async findApiKey (keyId: string): Promise<ApiKeyRecord | null> {
    if (!isKeyId(keyId)) return null
    return await this.#counted('findApiKey').findApiKey(keyId)
  }

  async listApiKeys (): Promise<ApiKeyRecord[]> {
    return await this.#counted('listApiKeys').listApiKeys()
  }

  /**
   * Revokes an API key now, or lets it lapse after `graceSeconds` (a rotation: the
   * registrants holding it move to the new key meanwhile). False when no such live key.
   */
  async revokeApiKey (keyId: string, graceSeconds = 0, context: AuditContext = {}): Promise<boolean> {
    if (!isKeyId(keyId)) throw new InvalidArgumentError('keyId', 'expected a key id')
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > 30 * 24 * 3600) throw new InvalidArgumentError('graceSeconds', 'expected a whole number of seconds, up to 30 days')
    const now = this.#now()
    const revoked = await this.#counted('revokeApiKey').revokeApiKey(keyId, now + graceSeconds * 1000, now)
    if (revoked) this.audit.emit('key.revoked', { ...actorFields(context.actor), revokedKeyId: keyId, graceSeconds })
    return revoked
  }

  async close (): Promise<void> {
    this.#lastTouch.clear()
    // What is buffered is written before the store (whose client a Mongo sink may share) closes.
    await this.audit.close().catch((err: unknown) => {
      this.options.logger.warn({ err: { message: (err as Error).message } }, 'closing the audit sink failed')
    })
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
/** Whether a live session differs from what a call asked for: other scopes or share level, or a longer life. */
function grantsOtherThanAsked (live: SessionRecord, asked: SessionRecord, input: CreateSessionInput): boolean {
  // The level is always compared: a cap lowered since, or a level asked, must not hand back a wider link.
  if ((live.shareLevel ?? 'link') !== (asked.shareLevel ?? 'link')) return true
  if (!sameAudience(live.audience, asked.audience)) return true
  if (input.scopes !== undefined && (live.scopes.length !== asked.scopes.length || live.scopes.some((s) => !asked.scopes.includes(s)))) return true
  return input.ttlSeconds !== undefined && live.expiresAt > asked.expiresAt
}

/**
 * What is said of a session, in the API's answers and the audit trail alike: who, where, what it
 * may do, for whom, until when; never its token.
 */
export function sessionFacts (s: SessionRecord): Record<string, unknown> {
  return {
    sessionId: s.sessionId,
    userId: s.userId,
    serverName: s.serverName,
    serverType: s.serverType,
    instanceId: s.instanceId,
    scopes: s.scopes,
    shareLevel: s.shareLevel ?? 'link',
    ...(s.audience !== undefined && { groups: s.audience.groups, emailDomains: s.audience.emailDomains }),
    expiresAt: new Date(s.expiresAt).toISOString()
  }
}

function sameAudience (a: SessionAudience | undefined, b: SessionAudience | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  const same = (x: readonly string[], y: readonly string[]): boolean => x.length === y.length && x.every((v) => y.includes(v))
  return same(a.groups, b.groups) && same(a.emailDomains, b.emailDomains)
}

function assertServerNames (names: unknown): string[] {
  if (!Array.isArray(names) || names.length > MAX_KEY_SERVERS) throw new InvalidArgumentError('serverNames', `expected up to ${MAX_KEY_SERVERS} server names`)
  return names.map((n) => assertServerName(n))
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

import { apiKeyIsLive } from './api-keys.js'
import { CapacityExceededError, InstanceHeldError, NotServerOwnerError } from './errors.js'
import {
  DEFAULT_MAX_SERVERS, DEFAULT_MAX_SESSIONS, DEFAULT_SWEEP_INTERVAL_MS
} from './options.js'
import type {
  ApiKeyRecord, CreateSessionResult, ListSessionsFilter, RegistryStats, RegistryStore, RevokeFilter,
  ServerRegistration, ServerRegistrationInput, SessionRecord, StatsOptions, SweepResult
} from './types.js'

/**
 * One change to the embedded store's records, in the order it was made: a record put (new or
 * replacing the one with its id) or dropped. What JournalStore writes, one line each.
 */
export type StoreChange =
  | { put: 'session', record: SessionRecord }
  | { put: 'server', record: ServerRegistration }
  | { put: 'key', record: ApiKeyRecord }
  | { drop: 'session' | 'server', id: string }

export interface MemoryStoreOptions {
  /** Live plus not-yet-swept sessions held at most. Default 250000. */
  maxSessions?: number
  /** Registrations held at most. Default 20000. */
  maxServers?: number
  /** Default 60000. */
  sweepIntervalMs?: number
  now?: () => number
}

/**
 * The embedded store: every lookup is a Map hit, memory is bounded by
 * `maxSessions` and `maxServers`, and a timer that never holds the process
 * open sweeps expired records. Records are frozen and replaced, never mutated,
 * so a caller holding one sees a consistent snapshot.
 */
export class MemoryStore implements RegistryStore {
  readonly kind: string = 'memory'
  readonly #byId = new Map<string, SessionRecord>()
  readonly #byJti = new Map<string, SessionRecord>()
  /** By slotOf(session): one live session per key and instance. */
  readonly #byKey = new Map<string, SessionRecord>()
  /** By serverName, then sessionId: what a name's quota counts. */
  readonly #byName = new Map<string, Map<string, SessionRecord>>()
  /** API keys by keyId: they live as long as the process (static keys are for a gateway without a shared store). */
  readonly #keys = new Map<string, ApiKeyRecord>()
  /** By instanceId. */
  readonly #servers = new Map<string, ServerRegistration>()
  readonly #maxSessions: number
  readonly #maxServers: number
  readonly #sweepIntervalMs: number
  /** The store's clock (`options.now`), for what a subclass decides by time. */
  protected readonly now: () => number
  #timer: NodeJS.Timeout | null = null

  constructor (options: MemoryStoreOptions = {}) {
    this.#maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS
    this.#maxServers = options.maxServers ?? DEFAULT_MAX_SERVERS
    this.#sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
    this.now = options.now ?? Date.now
  }

  async init (): Promise<void> {
    if (this.#timer !== null) return
    // sweep() here only walks Maps; JournalStore's logs its own failures.
    this.#timer = setInterval(() => { this.sweep(this.now()).catch(() => {}) }, this.#sweepIntervalMs)
    this.#timer.unref()
  }

  async createSession (candidate: SessionRecord, { rotate, now }: { rotate: boolean, now: number }): Promise<CreateSessionResult> {
    const existing = this.#byKey.get(slotOf(candidate))
    if (existing !== undefined && !rotate && isLive(existing, now)) {
      return { session: existing, created: false }
    }
    if (existing === undefined && this.#byId.size >= this.#maxSessions) {
      await this.sweep(now)
      if (this.#byId.size >= this.#maxSessions) throw new CapacityExceededError('sessions', this.#maxSessions)
    }
    if (existing !== undefined) this.#change({ drop: 'session', id: existing.sessionId })
    const session = freezeSession(candidate)
    this.#change({ put: 'session', record: session })
    return { session, created: true }
  }

  async findSessionByJti (jti: string, now: number): Promise<SessionRecord | null> {
    return unexpired(this.#byJti.get(jti), now)
  }

  async findSessionById (sessionId: string, now: number): Promise<SessionRecord | null> {
    return unexpired(this.#byId.get(sessionId), now)
  }

  async listSessions (filter: ListSessionsFilter, now: number): Promise<SessionRecord[]> {
    const out: SessionRecord[] = []
    for (const session of this.#byId.values()) {
      if (!isLive(session, now)) continue
      if (filter.userId !== undefined && session.userId !== filter.userId) continue
      if (filter.serverName !== undefined && session.serverName !== filter.serverName) continue
      if (filter.instanceId !== undefined && session.instanceId !== filter.instanceId) continue
      if (filter.serverNames !== undefined && !filter.serverNames.includes(session.serverName)) continue
      if (filter.sharedFrom !== undefined && session.share?.from !== filter.sharedFrom) continue
      out.push(session)
    }
    out.sort((a, b) => b.createdAt - a.createdAt)
    return out.slice(0, filter.limit)
  }

  async revokeSessions (filter: RevokeFilter, now: number): Promise<number> {
    let candidates: Iterable<SessionRecord>
    if ('sessionId' in filter) candidates = maybe(this.#byId.get(filter.sessionId))
    else if ('sessionKey' in filter) candidates = [...this.#byId.values()].filter((s) => s.sessionKey === filter.sessionKey)
    else if ('sharedFrom' in filter) candidates = [...this.#byId.values()].filter((s) => s.share?.from === filter.sharedFrom)
    else candidates = [...this.#byId.values()].filter((s) => s.userId === filter.userId)
    let count = 0
    for (const session of candidates) {
      if (!isLive(session, now)) continue
      if (filter.instanceId !== undefined && session.instanceId !== filter.instanceId) continue
      if (filter.serverNames !== undefined && !filter.serverNames.includes(session.serverName)) continue
      this.#change({ put: 'session', record: freezeSession({ ...session, revokedAt: now }) })
      count++
    }
    return count
  }

  async touchSession (sessionId: string, at: number): Promise<void> {
    const session = this.#byId.get(sessionId)
    if (session !== undefined && at > session.lastActivityAt) {
      this.#change({ put: 'session', record: freezeSession({ ...session, lastActivityAt: at }) })
    }
  }

  async heartbeatInstance (input: ServerRegistrationInput, now: number, expiresAt: number): Promise<ServerRegistration | null> {
    const existing = this.#servers.get(input.instanceId)
    if (existing === undefined || existing.expiresAt <= now || existing.ownerHash !== input.ownerHash || existing.incarnation !== input.incarnation) return null
    return this.#putServer(input, existing.registeredAt, now, expiresAt)
  }

  async upsertInstance (input: ServerRegistrationInput, now: number, expiresAt: number, supersede?: string): Promise<ServerRegistration> {
    const existing = this.#servers.get(input.instanceId)
    const live = existing !== undefined && existing.expiresAt > now
    if (live) {
      if (existing.ownerHash !== input.ownerHash) throw new NotServerOwnerError(input.serverName)
      if (existing.incarnation === input.incarnation) return this.#putServer(input, existing.registeredAt, now, expiresAt)
      if (supersede !== existing.incarnation) throw Object.assign(new InstanceHeldError(input.instanceId), { holder: existing })
    }
    if (existing === undefined && this.#servers.size >= this.#maxServers) {
      await this.sweep(now)
      if (this.#servers.size >= this.#maxServers) throw new CapacityExceededError('servers', this.#maxServers)
    }
    return this.#putServer(input, now, now, expiresAt)
  }

  #putServer (input: ServerRegistrationInput, registeredAt: number, now: number, expiresAt: number): ServerRegistration {
    const registration: ServerRegistration = freezeServer({
      serverName: input.serverName,
      ownerHash: input.ownerHash,
      instanceId: input.instanceId,
      instance: input.instance,
      incarnation: input.incarnation,
      host: input.host,
      port: input.port,
      protocol: input.protocol,
      metadata: input.metadata,
      registeredAt,
      lastHeartbeatAt: now,
      expiresAt
    })
    this.#change({ put: 'server', record: registration })
    return registration
  }

  async deleteInstance (instanceId: string, ownerHash: string | null, incarnation: string, now: number): Promise<boolean> {
    const existing = this.#servers.get(instanceId)
    if (existing === undefined) return false
    if (existing.expiresAt <= now) {
      this.#change({ drop: 'server', id: instanceId })
      return false
    }
    if (existing.ownerHash !== ownerHash || existing.incarnation !== incarnation) return false
    this.#change({ drop: 'server', id: instanceId })
    return true
  }

  async findInstance (instanceId: string, now: number): Promise<ServerRegistration | null> {
    const registration = this.#servers.get(instanceId)
    return registration !== undefined && registration.expiresAt > now ? registration : null
  }

  async findServer (serverName: string, now: number): Promise<ServerRegistration[]> {
    return (await this.listServers(now)).filter((r) => r.serverName === serverName)
  }

  async listServers (now: number): Promise<ServerRegistration[]> {
    return [...this.#servers.values()]
      .filter((r) => r.expiresAt > now)
      .sort(byNameThenAge)
  }

  async stats (now: number, options: StatsOptions = {}): Promise<RegistryStats> {
    const byServer: Record<string, number> = Object.create(null)
    const byInstance: Record<string, number> = Object.create(null)
    const byUser: Record<string, number> | undefined = options.byUser === true ? Object.create(null) : undefined
    let live = 0
    for (const session of this.#byId.values()) {
      if (!isLive(session, now)) continue
      live++
      byServer[session.serverName] = (byServer[session.serverName] ?? 0) + 1
      byInstance[session.instanceId] = (byInstance[session.instanceId] ?? 0) + 1
      if (byUser !== undefined) byUser[session.userId] = (byUser[session.userId] ?? 0) + 1
    }
    let servers = 0
    for (const registration of this.#servers.values()) if (registration.expiresAt > now) servers++
    return { sessions: { live, byServer, byInstance, ...(byUser !== undefined && { byUser }) }, servers: { live: servers } }
  }

  async countSessions (serverName: string, now: number): Promise<number> {
    let count = 0
    for (const session of this.#byName.get(serverName)?.values() ?? []) if (isLive(session, now)) count++
    return count
  }

  async insertApiKey (record: ApiKeyRecord): Promise<void> {
    if (this.#keys.has(record.keyId)) throw new Error('duplicate keyId')
    this.#change({ put: 'key', record: freezeKey(record) })
  }

  async findApiKey (keyId: string): Promise<ApiKeyRecord | null> {
    return this.#keys.get(keyId) ?? null
  }

  async listApiKeys (): Promise<ApiKeyRecord[]> {
    return [...this.#keys.values()].sort((a, b) => a.createdAt - b.createdAt)
  }

  async revokeApiKey (keyId: string, at: number, now: number): Promise<boolean> {
    const key = this.#keys.get(keyId)
    if (key === undefined || !apiKeyIsLive(key, now)) return false
    this.#change({ put: 'key', record: freezeKey(at > now ? { ...key, expiresAt: Math.min(at, key.expiresAt ?? at) } : { ...key, revokedAt: now }) })
    return true
  }

  async sweep (now: number): Promise<SweepResult> {
    let sessions = 0
    for (const session of this.#byId.values()) {
      if (session.expiresAt <= now) {
        this.#change({ drop: 'session', id: session.sessionId })
        sessions++
      }
    }
    let servers = 0
    for (const [id, registration] of this.#servers) {
      if (registration.expiresAt <= now) {
        this.#change({ drop: 'server', id })
        servers++
      }
    }
    return { sessions, servers }
  }

  async ping (): Promise<void> {}

  async close (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /**
   * Called with each change just before it is applied; a throw leaves the records as they
   * were. Nothing here: JournalStore writes the change to its file.
   */
  protected record (_change: StoreChange): void {}

  /** Applies a change read back from where `record` kept it, without recording it again. */
  protected restore (change: StoreChange): void {
    if ('drop' in change) this.#apply(change)
    else if (change.put === 'session') this.#apply({ put: 'session', record: freezeSession({ ...change.record, scopes: [...change.record.scopes], metadata: { ...change.record.metadata } }) })
    else if (change.put === 'server') this.#apply({ put: 'server', record: freezeServer({ ...change.record, metadata: { ...change.record.metadata } }) })
    else this.#apply({ put: 'key', record: freezeKey(change.record) })
  }

  /** Every record held now, as the changes that would make it again. */
  protected * snapshot (): Generator<StoreChange> {
    for (const record of this.#servers.values()) yield { put: 'server', record }
    for (const record of this.#keys.values()) yield { put: 'key', record }
    for (const record of this.#byId.values()) yield { put: 'session', record }
  }

  /** How many records are held (swept or not). */
  protected get size (): number {
    return this.#byId.size + this.#servers.size + this.#keys.size
  }

  #change (change: StoreChange): void {
    this.record(change)
    this.#apply(change)
  }

  #apply (change: StoreChange): void {
    if ('drop' in change) {
      if (change.drop === 'server') this.#servers.delete(change.id)
      else {
        const session = this.#byId.get(change.id)
        if (session !== undefined) this.#deleteSession(session)
      }
    } else if (change.put === 'session') {
      const previous = this.#byId.get(change.record.sessionId)
      if (previous !== undefined) this.#deleteSession(previous)
      this.#putSession(change.record)
    } else if (change.put === 'server') {
      this.#servers.set(change.record.instanceId, change.record)
    } else {
      this.#keys.set(change.record.keyId, change.record)
    }
  }

  #putSession (session: SessionRecord): void {
    let named = this.#byName.get(session.serverName)
    if (named === undefined) this.#byName.set(session.serverName, named = new Map())
    named.set(session.sessionId, session)
    this.#byId.set(session.sessionId, session)
    this.#byJti.set(session.jti, session)
    this.#byKey.set(slotOf(session), session)
  }

  #deleteSession (session: SessionRecord): void {
    const named = this.#byName.get(session.serverName)
    named?.delete(session.sessionId)
    if (named?.size === 0) this.#byName.delete(session.serverName)
    this.#byId.delete(session.sessionId)
    this.#byJti.delete(session.jti)
    const slot = slotOf(session)
    if (this.#byKey.get(slot)?.sessionId === session.sessionId) this.#byKey.delete(slot)
  }
}

/** One live session per user, server, type and instance. */
function slotOf (session: SessionRecord): string {
  return `${session.instanceId}\0${session.sessionKey}`
}

/** Instances by server name, then oldest first (ties by id, so every store lists alike). */
export function byNameThenAge (a: ServerRegistration, b: ServerRegistration): number {
  if (a.serverName !== b.serverName) return a.serverName < b.serverName ? -1 : 1
  if (a.registeredAt !== b.registeredAt) return a.registeredAt - b.registeredAt
  return a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0
}

function isLive (session: SessionRecord, now: number): boolean {
  return session.revokedAt === null && session.expiresAt > now
}

function unexpired (session: SessionRecord | undefined, now: number): SessionRecord | null {
  return session !== undefined && session.expiresAt > now ? session : null
}

function maybe<T> (value: T | undefined): T[] {
  return value === undefined ? [] : [value]
}

function freezeServer (registration: ServerRegistration): ServerRegistration {
  Object.freeze(registration.metadata)
  return Object.freeze(registration)
}

function freezeKey (record: ApiKeyRecord): ApiKeyRecord {
  return Object.freeze({ ...record, servers: Object.freeze([...record.servers]) as string[] })
}

function freezeSession (session: SessionRecord): SessionRecord {
  Object.freeze(session.scopes)
  Object.freeze(session.metadata)
  if (session.share !== undefined) Object.freeze(session.share)
  if (session.audience !== undefined) Object.freeze(session.audience)
  return Object.freeze(session)
}

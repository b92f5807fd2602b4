import { MongoNetworkError, MongoServerError } from 'mongodb'
import type { Collection, Db, Filter, IndexDescription, MongoClient } from 'mongodb'
import { InstanceHeldError, NotServerOwnerError, RegistrationConflictError, SessionConflictError, StoreUnavailableError } from './errors.js'
import { addressIncarnation, instanceIdOf } from './instances.js'
import { byNameThenAge } from './memory-store.js'
import { DEFAULT_SWEEP_INTERVAL_MS } from './options.js'
import type {
  ApiKeyRecord, CreateSessionResult, ListSessionsFilter, Logger, RegistryStats, RegistryStore,
  RevokeFilter, ServerRegistration, ServerRegistrationInput, SessionRecord, StatsOptions, SweepResult
} from './types.js'

export interface MongoStoreOptions {
  db: Db
  /** Closed by `close()` when given: pass it only if the store owns the client. */
  ownedClient?: MongoClient
  /** Collection names are `<prefix>sessions` and `<prefix>servers`. Default `mcpgw_`. */
  collectionPrefix?: string
  /** Sweep interval when the server has no TTL indexes. Default 60000. */
  sweepIntervalMs?: number
  now?: () => number
  logger?: Logger
}

/** Stored shapes: the records, with times as BSON dates (which TTL indexes need). */
type SessionDoc = Omit<SessionRecord, 'createdAt' | 'expiresAt' | 'lastActivityAt' | 'revokedAt'> & {
  /** `<instanceId>/<sessionKey>`: unique, one live session per key and instance. */
  slot: string
  createdAt: Date
  expiresAt: Date
  lastActivityAt: Date
  revokedAt: Date | null
}

type ApiKeyDoc = Omit<ApiKeyRecord, 'createdAt' | 'expiresAt' | 'revokedAt'> & {
  createdAt: Date
  expiresAt: Date | null
  revokedAt: Date | null
}

type ServerDoc = Omit<ServerRegistration, 'registeredAt' | 'lastHeartbeatAt' | 'expiresAt'> & {
  registeredAt: Date
  lastHeartbeatAt: Date
  expiresAt: Date
}

const DUPLICATE_KEY = 11000
const MAX_ATTEMPTS = 10
// findAndModify calls carry no projection: FerretDB does not implement one there,
// and the converters below copy named fields only, so `_id` never leaks out.
const SESSION_PROJECTION = { _id: 0 } as const

/**
 * MongoDB-backed store. Every read filters on `expiresAt`, so TTL indexes are
 * housekeeping only: on servers that refuse them (FerretDB) a sweeper of our
 * own deletes expired records instead. Every driver failure surfaces as
 * MCPGW_REGISTRY_STORE_UNAVAILABLE with the driver error as `cause`.
 */
export class MongoStore implements RegistryStore {
  readonly kind = 'mongo'
  readonly sessions: Collection<SessionDoc>
  readonly servers: Collection<ServerDoc>
  readonly apiKeys: Collection<ApiKeyDoc>
  /** The database the store's collections are in. */
  readonly db: Db
  readonly #db: Db
  readonly #ownedClient: MongoClient | undefined
  readonly #sweepIntervalMs: number
  readonly #now: () => number
  readonly #logger: Logger | undefined
  #initialized: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null
  /** Whether the server keeps TTL indexes; known after init(). */
  ttlIndexes: boolean | null = null

  constructor (options: MongoStoreOptions) {
    const prefix = options.collectionPrefix ?? 'mcpgw_'
    this.#db = options.db
    this.db = options.db
    this.#ownedClient = options.ownedClient
    this.sessions = options.db.collection<SessionDoc>(`${prefix}sessions`)
    this.servers = options.db.collection<ServerDoc>(`${prefix}servers`)
    this.apiKeys = options.db.collection<ApiKeyDoc>(`${prefix}api_keys`)
    this.#sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
    this.#now = options.now ?? Date.now
    this.#logger = options.logger
  }

  init (): Promise<void> {
    this.#initialized ??= this.#init().catch((err: unknown) => {
      this.#initialized = null
      throw unavailable(err)
    })
    return this.#initialized
  }

  /**
   * Gateways started at once on a fresh database race to create the same collections and
   * indexes: the loser's request fails (MongoDB: a conflicting index or namespace; FerretDB:
   * a dropped connection). Every step reads what is there first, so a retry settles on what
   * the winner made. An unreachable server is not retried here (its selection timeout is the wait).
   */
  async #init (): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#initOnce()
        return
      } catch (err) {
        if (attempt >= INIT_ATTEMPTS || !(err instanceof MongoServerError || err instanceof MongoNetworkError)) throw err
        this.#logger?.debug({ store: 'mongo', attempt, err: { code: (err as MongoServerError).code, message: (err as Error).message } }, 'store set-up raced another gateway; trying again')
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt + Math.floor(Math.random() * 100)))
      }
    }
  }

  async #initOnce (): Promise<void> {
    await this.#migrateToInstances()
    await ensureIndexes(this.sessions, [
      { key: { jti: 1 }, name: 'jti_unique', unique: true },
      { key: { slot: 1 }, name: 'slot_unique', unique: true },
      { key: { sessionKey: 1 }, name: 'sessionKey' },
      { key: { sessionId: 1 }, name: 'sessionId_unique', unique: true },
      { key: { userId: 1 }, name: 'userId' },
      { key: { serverName: 1 }, name: 'serverName' },
      // Shares of a session, found when one more is asked for.
      { key: { 'share.from': 1 }, name: 'shareFrom', sparse: true }
    ])
    await ensureIndexes(this.apiKeys, [{ key: { keyId: 1 }, name: 'keyId_unique', unique: true }])
    await ensureIndexes(this.servers, [
      { key: { instanceId: 1 }, name: 'instanceId_unique', unique: true },
      { key: { serverName: 1 }, name: 'serverName' }
    ])
    const sessionsTtl = await this.#ensureExpiryIndex(this.sessions)
    const serversTtl = await this.#ensureExpiryIndex(this.servers)
    this.ttlIndexes = sessionsTtl && serversTtl
    if (!this.ttlIndexes) {
      this.#logger?.warn({ store: 'mongo', sweepIntervalMs: this.#sweepIntervalMs },
        'MongoDB-wire server does not keep TTL indexes; the registry sweeps expired records itself')
      this.#timer = setInterval(() => {
        this.sweep(this.#now()).catch((err: unknown) => {
          this.#logger?.warn({ store: 'mongo', err: { message: (err as Error).message } }, 'sweep of expired records failed')
        })
      }, this.#sweepIntervalMs)
      this.#timer.unref()
    }
  }

  /**
   * Stores written before instances had one registration per server name and one session
   * per key: their unique indexes go, and every record gets the instance a registrant with
   * the same secret (and no instance name) registers as, so a server that upgrades with its
   * secret keeps its links. Idempotent; each record is written once.
   */
  async #migrateToInstances (): Promise<void> {
    const sessionIndexes = await listIndexesOrNone(this.sessions)
    if (sessionIndexes.some((i) => i.name === 'sessionKey_unique')) await dropIndexIfThere(this.sessions, 'sessionKey_unique')
    const serverIndexes = await listIndexesOrNone(this.servers)
    if (serverIndexes.some((i) => i.name === 'serverName_unique')) await dropIndexIfThere(this.servers, 'serverName_unique')
    for await (const doc of this.sessions.find({ slot: { $exists: false } }, { projection: { _id: 1, serverName: 1, ownerHash: 1, sessionKey: 1 } })) {
      const instanceId = instanceIdOf(doc.serverName, doc.ownerHash ?? null, null)
      await this.sessions.updateOne({ _id: doc._id }, { $set: { instanceId, slot: slotOf(instanceId, doc.sessionKey) } })
    }
    for await (const doc of this.servers.find({ instanceId: { $exists: false } }, { projection: { _id: 1, serverName: 1, ownerHash: 1, protocol: 1, host: 1, port: 1 } })) {
      const instanceId = instanceIdOf(doc.serverName, doc.ownerHash ?? null, null)
      await this.servers.updateOne({ _id: doc._id }, { $set: { instanceId, instance: null, incarnation: addressIncarnation(doc.protocol, doc.host, doc.port) } })
    }
  }

  /** True when a TTL index on expiresAt is in place; otherwise leaves a plain index. */
  async #ensureExpiryIndex (collection: Collection<SessionDoc> | Collection<ServerDoc>): Promise<boolean> {
    // What an earlier start settled is kept: probing again would ask for a second index on
    // the same key, which MongoDB refuses and FerretDB answers by dropping the connection.
    const existing = await listIndexesOrNone(collection)
    const onExpiresAt = existing.filter((i) => JSON.stringify(i.key) === '{"expiresAt":1}')
    if (onExpiresAt.some((i) => i.expireAfterSeconds === 0)) return true
    if (onExpiresAt.length > 0) return false
    try {
      await collection.createIndex({ expiresAt: 1 }, { name: 'expiresAt_ttl', expireAfterSeconds: 0 })
      // Some servers accept the option and drop it: believe only what they list.
      const indexes = await collection.listIndexes().toArray()
      const ttl = indexes.find((i) => i.name === 'expiresAt_ttl')
      if (ttl !== undefined && ttl.expireAfterSeconds === 0) return true
      if (ttl !== undefined) await collection.dropIndex('expiresAt_ttl')
    } catch (err) {
      if (!(err instanceof MongoServerError)) throw err
    }
    await collection.createIndex({ expiresAt: 1 }, { name: 'expiresAt' })
    return false
  }

  async createSession (candidate: SessionRecord, { rotate, now }: { rotate: boolean, now: number }): Promise<CreateSessionResult> {
    const doc = toSessionDoc(candidate)
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        if (rotate) {
          await this.sessions.replaceOne({ slot: doc.slot }, doc, { upsert: true })
          return { session: candidate, created: true }
        }
        // One round trip in the common cases: inserts when absent, returns the holder otherwise.
        const holder = await this.sessions.findOneAndUpdate(
          { slot: doc.slot },
          { $setOnInsert: doc },
          { upsert: true, returnDocument: 'after' }
        )
        if (holder === null) continue
        if (holder.jti === doc.jti) return { session: candidate, created: true }
        const existing = fromSessionDoc(holder)
        if (existing.revokedAt === null && existing.expiresAt > now) return { session: existing, created: false }
        // The holder is dead: replace it only if nobody else did first.
        const replaced = await this.sessions.replaceOne({ slot: doc.slot, jti: holder.jti }, doc)
        if (replaced.matchedCount === 1) return { session: candidate, created: true }
      } catch (err) {
        // Concurrent upserts on one key race to insert; the loser reads the winner next time.
        if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) continue
        throw unavailable(err)
      }
    }
    throw new SessionConflictError('a session key')
  }

  async findSessionByJti (jti: string, now: number): Promise<SessionRecord | null> {
    return await this.#findSession({ jti, expiresAt: { $gt: new Date(now) } })
  }

  async findSessionById (sessionId: string, now: number): Promise<SessionRecord | null> {
    return await this.#findSession({ sessionId, expiresAt: { $gt: new Date(now) } })
  }

  async #findSession (filter: Filter<SessionDoc>): Promise<SessionRecord | null> {
    try {
      const doc = await this.sessions.findOne(filter, { projection: SESSION_PROJECTION })
      return doc === null ? null : fromSessionDoc(doc)
    } catch (err) {
      throw unavailable(err)
    }
  }

  async listSessions (filter: ListSessionsFilter, now: number): Promise<SessionRecord[]> {
    const query: Filter<SessionDoc> = { revokedAt: null, expiresAt: { $gt: new Date(now) } }
    if (filter.userId !== undefined) query.userId = filter.userId
    if (filter.serverName !== undefined) query.serverName = filter.serverName
    if (filter.instanceId !== undefined) query.instanceId = filter.instanceId
    if (filter.serverNames !== undefined) query.$and = [{ serverName: { $in: [...filter.serverNames] } }]
    if (filter.sharedFrom !== undefined) query['share.from'] = filter.sharedFrom
    try {
      const docs = await this.sessions.find(query, { projection: SESSION_PROJECTION })
        .sort({ createdAt: -1 }).limit(filter.limit).toArray()
      return docs.map(fromSessionDoc)
    } catch (err) {
      throw unavailable(err)
    }
  }

  async revokeSessions (filter: RevokeFilter, now: number): Promise<number> {
    const at = new Date(now)
    const query: Filter<SessionDoc> = { revokedAt: null, expiresAt: { $gt: at } }
    if ('sessionId' in filter) query.sessionId = filter.sessionId
    else if ('sessionKey' in filter) query.sessionKey = filter.sessionKey
    else if ('sharedFrom' in filter) query['share.from'] = filter.sharedFrom
    else query.userId = filter.userId
    if (filter.instanceId !== undefined) query.instanceId = filter.instanceId
    if (filter.serverNames !== undefined) query.$and = [{ serverName: { $in: [...filter.serverNames] } }]
    try {
      const result = await this.sessions.updateMany(query, { $set: { revokedAt: at } })
      return result.modifiedCount
    } catch (err) {
      throw unavailable(err)
    }
  }

  async touchSession (sessionId: string, at: number): Promise<void> {
    const date = new Date(at)
    try {
      await this.sessions.updateOne({ sessionId, lastActivityAt: { $lt: date } }, { $set: { lastActivityAt: date } })
    } catch (err) {
      throw unavailable(err)
    }
  }

  async heartbeatInstance (input: ServerRegistrationInput, now: number, expiresAt: number): Promise<ServerRegistration | null> {
    try {
      const doc = await this.servers.findOneAndUpdate(
        { instanceId: input.instanceId, ownerHash: input.ownerHash, incarnation: input.incarnation, expiresAt: { $gt: new Date(now) } },
        { $set: heartbeatFields(input, now, expiresAt) },
        { returnDocument: 'after' }
      )
      return doc === null ? null : fromServerDoc(doc)
    } catch (err) {
      throw unavailable(err)
    }
  }

  async upsertInstance (input: ServerRegistrationInput, now: number, expiresAt: number, supersede?: string): Promise<ServerRegistration> {
    const nowDate = new Date(now)
    const doc: ServerDoc = {
      serverName: input.serverName,
      ownerHash: input.ownerHash,
      instanceId: input.instanceId,
      instance: input.instance,
      incarnation: input.incarnation,
      ...heartbeatFields(input, now, expiresAt),
      registeredAt: nowDate
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        const beat = await this.heartbeatInstance(input, now, expiresAt)
        if (beat !== null) return beat
        // The holder this call was told to supersede (a predecessor found gone), and no other.
        if (supersede !== undefined) {
          const replaced = await this.servers.replaceOne({ instanceId: input.instanceId, ownerHash: input.ownerHash, incarnation: supersede }, doc)
          if (replaced.matchedCount === 1) return fromServerDoc(doc)
        }
        // A lapsed instance starts afresh; a live one is never touched here.
        const revived = await this.servers.replaceOne({ instanceId: input.instanceId, ownerHash: input.ownerHash, expiresAt: { $lte: nowDate } }, doc)
        if (revived.matchedCount === 1) return fromServerDoc(doc)
        await this.servers.insertOne({ ...doc })
        return fromServerDoc(doc)
      } catch (err) {
        if (!(err instanceof MongoServerError && err.code === DUPLICATE_KEY)) throw unavailable(err)
      }
      // Someone holds the instance: another owner (refuse), another process of ours (say so), or a race.
      let holder: ServerDoc | null
      try {
        holder = await this.servers.findOne({ instanceId: input.instanceId }, { projection: { _id: 0 } })
      } catch (err) {
        throw unavailable(err)
      }
      if (holder === null || holder.expiresAt.getTime() <= now) continue
      if ((holder.ownerHash ?? null) !== input.ownerHash) throw new NotServerOwnerError(input.serverName)
      if (holder.incarnation !== input.incarnation && holder.incarnation !== supersede) {
        throw Object.assign(new InstanceHeldError(input.instanceId), { holder: fromServerDoc(holder) })
      }
    }
    throw new RegistrationConflictError(input.serverName)
  }

  async deleteInstance (instanceId: string, ownerHash: string | null, incarnation: string, now: number): Promise<boolean> {
    try {
      const result = await this.servers.deleteOne({ instanceId, ownerHash, incarnation, expiresAt: { $gt: new Date(now) } })
      return result.deletedCount === 1
    } catch (err) {
      throw unavailable(err)
    }
  }

  async findInstance (instanceId: string, now: number): Promise<ServerRegistration | null> {
    try {
      const doc = await this.servers.findOne({ instanceId, expiresAt: { $gt: new Date(now) } }, { projection: { _id: 0 } })
      return doc === null ? null : fromServerDoc(doc)
    } catch (err) {
      throw unavailable(err)
    }
  }

  async findServer (serverName: string, now: number): Promise<ServerRegistration[]> {
    return await this.#listServers({ serverName, expiresAt: { $gt: new Date(now) } })
  }

  async listServers (now: number): Promise<ServerRegistration[]> {
    return await this.#listServers({ expiresAt: { $gt: new Date(now) } })
  }

  async #listServers (filter: Filter<ServerDoc>): Promise<ServerRegistration[]> {
    try {
      const docs = await this.servers.find(filter, { projection: { _id: 0 } }).toArray()
      // Sorted here: one order for both stores, whatever the server's collation.
      return docs.map(fromServerDoc).sort(byNameThenAge)
    } catch (err) {
      throw unavailable(err)
    }
  }

  async stats (now: number, options: StatsOptions = {}): Promise<RegistryStats> {
    const live = { revokedAt: null, expiresAt: { $gt: new Date(now) } }
    try {
      const [perServer, perInstance, perUser, servers] = await Promise.all([
        this.sessions.aggregate<{ _id: string, n: number }>([
          { $match: live },
          { $group: { _id: '$serverName', n: { $sum: 1 } } }
        ]).toArray(),
        this.sessions.aggregate<{ _id: string, n: number }>([
          { $match: live },
          { $group: { _id: '$instanceId', n: { $sum: 1 } } }
        ]).toArray(),
        options.byUser === true
          ? this.sessions.aggregate<{ _id: string, n: number }>([
            { $match: live },
            { $group: { _id: '$userId', n: { $sum: 1 } } }
          ]).toArray()
          : null,
        this.servers.countDocuments({ expiresAt: { $gt: new Date(now) } })
      ])
      const byServer: Record<string, number> = Object.create(null)
      let total = 0
      for (const { _id, n } of perServer) {
        byServer[_id] = n
        total += n
      }
      const byInstance: Record<string, number> = Object.create(null)
      for (const { _id, n } of perInstance) byInstance[_id] = n
      const sessions: RegistryStats['sessions'] = { live: total, byServer, byInstance }
      if (perUser !== null) {
        const byUser: Record<string, number> = Object.create(null)
        for (const { _id, n } of perUser) byUser[_id] = n
        sessions.byUser = byUser
      }
      return { sessions, servers: { live: servers } }
    } catch (err) {
      throw unavailable(err)
    }
  }

  async countSessions (serverName: string, now: number): Promise<number> {
    try {
      return await this.sessions.countDocuments({ serverName, revokedAt: null, expiresAt: { $gt: new Date(now) } })
    } catch (err) {
      throw unavailable(err)
    }
  }

  async insertApiKey (record: ApiKeyRecord): Promise<void> {
    try {
      await this.apiKeys.insertOne({
        ...record,
        servers: [...record.servers],
        createdAt: new Date(record.createdAt),
        expiresAt: record.expiresAt === null ? null : new Date(record.expiresAt),
        revokedAt: record.revokedAt === null ? null : new Date(record.revokedAt)
      })
    } catch (err) {
      throw unavailable(err)
    }
  }

  async findApiKey (keyId: string): Promise<ApiKeyRecord | null> {
    try {
      const doc = await this.apiKeys.findOne({ keyId }, { projection: { _id: 0 } })
      return doc === null ? null : fromApiKeyDoc(doc)
    } catch (err) {
      throw unavailable(err)
    }
  }

  async listApiKeys (): Promise<ApiKeyRecord[]> {
    try {
      return (await this.apiKeys.find({}, { projection: { _id: 0 } }).sort({ createdAt: 1 }).toArray()).map(fromApiKeyDoc)
    } catch (err) {
      throw unavailable(err)
    }
  }

  async revokeApiKey (keyId: string, at: number, now: number): Promise<boolean> {
    const live: Filter<ApiKeyDoc> = { keyId, revokedAt: null, $or: [{ expiresAt: null }, { expiresAt: { $gt: new Date(now) } }] }
    try {
      if (at <= now) return (await this.apiKeys.updateOne(live, { $set: { revokedAt: new Date(now) } })).modifiedCount === 1
      // A grace period: the key lapses at `at`, or sooner if it was to lapse sooner.
      const sooner = await this.apiKeys.updateOne({ ...live, $and: [{ $or: [{ expiresAt: null }, { expiresAt: { $gt: new Date(at) } }] }] }, { $set: { expiresAt: new Date(at) } })
      return sooner.matchedCount === 1 || (await this.apiKeys.countDocuments(live)) === 1
    } catch (err) {
      throw unavailable(err)
    }
  }

  async sweep (now: number): Promise<SweepResult> {
    const expired = { expiresAt: { $lte: new Date(now) } }
    try {
      const [sessions, servers] = await Promise.all([
        this.sessions.deleteMany(expired),
        this.servers.deleteMany(expired)
      ])
      return { sessions: sessions.deletedCount, servers: servers.deletedCount }
    } catch (err) {
      throw unavailable(err)
    }
  }

  async ping (): Promise<void> {
    try {
      await this.#db.command({ ping: 1 })
    } catch (err) {
      throw unavailable(err)
    }
  }

  async close (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    if (this.#ownedClient !== undefined) await this.#ownedClient.close()
  }
}

function fromApiKeyDoc (doc: ApiKeyDoc): ApiKeyRecord {
  return {
    keyId: doc.keyId,
    hash: doc.hash,
    role: doc.role,
    servers: [...doc.servers],
    label: doc.label,
    createdAt: doc.createdAt.getTime(),
    expiresAt: doc.expiresAt === null ? null : doc.expiresAt.getTime(),
    revokedAt: doc.revokedAt === null ? null : doc.revokedAt.getTime()
  }
}

/**
 * Creates the indexes that do not exist yet. MongoDB treats re-creating an
 * existing index as a no-op; FerretDB 1.24 drops the connection instead.
 */
const INIT_ATTEMPTS = 6

async function ensureIndexes (collection: Collection<SessionDoc> | Collection<ServerDoc> | Collection<ApiKeyDoc>, specs: IndexDescription[]): Promise<void> {
  const existing = new Set((await listIndexesOrNone(collection)).map((i) => i.name))
  const missing = specs.filter((spec) => !existing.has(spec.name))
  if (missing.length > 0) await collection.createIndexes(missing)
}

/** The collection's indexes; none when the collection does not exist yet. */
async function listIndexesOrNone (collection: Collection<SessionDoc> | Collection<ServerDoc> | Collection<ApiKeyDoc>): Promise<Array<{ name?: string, key?: unknown, expireAfterSeconds?: number }>> {
  try {
    return await collection.listIndexes().toArray()
  } catch (err) {
    if (err instanceof MongoServerError) return []
    throw err
  }
}

/** Drops an index; another gateway upgrading the same store at once may have dropped it first. */
async function dropIndexIfThere (collection: Collection<SessionDoc> | Collection<ServerDoc>, name: string): Promise<void> {
  try {
    await collection.dropIndex(name)
  } catch (err) {
    if (!(err instanceof MongoServerError && (err.code === 27 || err.codeName === 'IndexNotFound'))) throw err
  }
}

function unavailable (err: unknown): Error {
  if (err instanceof StoreUnavailableError) return err
  return new StoreUnavailableError({ cause: err })
}

function toSessionDoc (s: SessionRecord): SessionDoc {
  return {
    sessionId: s.sessionId,
    jti: s.jti,
    userId: s.userId,
    serverName: s.serverName,
    serverType: s.serverType,
    sessionKey: s.sessionKey,
    scopes: [...s.scopes],
    ...(s.shareLevel !== undefined && { shareLevel: s.shareLevel }),
    ...(s.audience !== undefined && { audience: { groups: [...s.audience.groups], emailDomains: [...s.audience.emailDomains] } }),
    ...(s.share !== undefined && { share: { from: s.share.from, with: s.share.with } }),
    createdAt: new Date(s.createdAt),
    expiresAt: new Date(s.expiresAt),
    lastActivityAt: new Date(s.lastActivityAt),
    revokedAt: s.revokedAt === null ? null : new Date(s.revokedAt),
    metadata: s.metadata,
    ownerHash: s.ownerHash,
    instanceId: s.instanceId,
    slot: slotOf(s.instanceId, s.sessionKey)
  }
}

function slotOf (instanceId: string, sessionKey: string): string {
  return `${instanceId}/${sessionKey}`
}

function heartbeatFields (input: ServerRegistrationInput, now: number, expiresAt: number): Pick<ServerDoc, 'host' | 'port' | 'protocol' | 'metadata' | 'lastHeartbeatAt' | 'expiresAt'> {
  return {
    host: input.host,
    port: input.port,
    protocol: input.protocol,
    metadata: input.metadata,
    lastHeartbeatAt: new Date(now),
    expiresAt: new Date(expiresAt)
  }
}

function fromSessionDoc (d: SessionDoc): SessionRecord {
  return {
    sessionId: d.sessionId,
    jti: d.jti,
    userId: d.userId,
    serverName: d.serverName,
    serverType: d.serverType,
    sessionKey: d.sessionKey,
    scopes: d.scopes,
    // Absent on link sessions and on records written before share levels.
    ...(d.shareLevel !== undefined && d.shareLevel !== null && { shareLevel: d.shareLevel }),
    ...(d.audience !== undefined && d.audience !== null && { audience: { groups: d.audience.groups ?? [], emailDomains: d.audience.emailDomains ?? [] } }),
    ...(d.share !== undefined && d.share !== null && { share: { from: d.share.from, with: d.share.with ?? null } }),
    createdAt: d.createdAt.getTime(),
    expiresAt: d.expiresAt.getTime(),
    lastActivityAt: d.lastActivityAt.getTime(),
    revokedAt: d.revokedAt === null || d.revokedAt === undefined ? null : d.revokedAt.getTime(),
    metadata: d.metadata ?? {},
    // Sessions written before owners existed are bound to nobody.
    ownerHash: d.ownerHash ?? null,
    instanceId: d.instanceId
  }
}

function fromServerDoc (d: ServerDoc): ServerRegistration {
  return {
    serverName: d.serverName,
    // Registrations written before owners existed have none: they lapse within one TTL.
    ownerHash: d.ownerHash ?? null,
    instanceId: d.instanceId,
    instance: d.instance ?? null,
    incarnation: d.incarnation,
    host: d.host,
    port: d.port,
    protocol: d.protocol,
    metadata: d.metadata ?? {},
    registeredAt: d.registeredAt.getTime(),
    lastHeartbeatAt: d.lastHeartbeatAt.getTime(),
    expiresAt: d.expiresAt.getTime()
  }
}

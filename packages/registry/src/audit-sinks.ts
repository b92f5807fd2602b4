import { createReadStream } from 'node:fs'
import { mkdir, open, rename, rm, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { MongoServerError } from 'mongodb'
import type { Collection, Db, Filter, IndexDescription } from 'mongodb'
import type { AuditEvent, AuditQuery, AuditSink } from './audit.js'
import type { Logger } from './types.js'

export const DEFAULT_AUDIT_FLUSH_MS = 1000
export const DEFAULT_AUDIT_BATCH = 500
export const DEFAULT_AUDIT_MAX_BUFFER = 50_000
export const DEFAULT_AUDIT_FILE_MAX_BYTES = 10 * 1024 * 1024
export const DEFAULT_AUDIT_FILE_KEEP = 5
export const DEFAULT_AUDIT_RETENTION_MS = 30 * 24 * 3600 * 1000

export interface BufferedSinkOptions {
  /** Flush at least this often (ms). Default 1000. */
  flushIntervalMs?: number
  /** Flush once this many events wait. Default 500. */
  batchSize?: number
  /** Events held while the destination is slow or down; beyond, new ones are dropped. Default 50000. */
  maxBuffer?: number
  logger?: Logger
}

/**
 * The common half of every sink: `write` appends to a buffer and returns; a timer (or a full
 * batch) hands the buffer to `writeBatch`, one batch at a time. A failing batch is dropped and
 * counted, logged once until a batch succeeds again: auditing never blocks nor fails a request.
 */
export abstract class BufferedSink implements AuditSink {
  dropped = 0
  #buffer: AuditEvent[] = []
  #writing: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null
  #failing = false
  #closed = false
  readonly #batchSize: number
  readonly #maxBuffer: number
  readonly #flushIntervalMs: number
  protected readonly logger: Logger | undefined

  constructor (options: BufferedSinkOptions = {}) {
    this.#batchSize = options.batchSize ?? DEFAULT_AUDIT_BATCH
    this.#maxBuffer = options.maxBuffer ?? DEFAULT_AUDIT_MAX_BUFFER
    this.#flushIntervalMs = options.flushIntervalMs ?? DEFAULT_AUDIT_FLUSH_MS
    this.logger = options.logger
  }

  protected abstract writeBatch (events: AuditEvent[]): Promise<void>

  write (event: AuditEvent): void {
    if (this.#closed || this.#buffer.length >= this.#maxBuffer) {
      this.#drop(1, null)
      return
    }
    this.#buffer.push(event)
    if (this.#buffer.length >= this.#batchSize) this.#kick()
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => { this.#timer = null; this.#kick() }, this.#flushIntervalMs)
      this.#timer.unref()
    }
  }

  #kick (): void {
    if (this.#writing === null && this.#buffer.length > 0) this.#writing = this.#drain()
  }

  async #drain (): Promise<void> {
    try {
      while (this.#buffer.length > 0) {
        const batch = this.#buffer.length <= this.#batchSize ? this.#buffer : this.#buffer.slice(0, this.#batchSize)
        this.#buffer = batch === this.#buffer ? [] : this.#buffer.slice(batch.length)
        try {
          await this.writeBatch(batch)
          if (this.#failing) {
            this.#failing = false
            this.logger?.info({ dropped: this.dropped }, 'the audit sink writes again')
          }
        } catch (err) {
          this.#drop(batch.length, err)
        }
      }
    } finally {
      this.#writing = null
    }
  }

  #drop (n: number, err: unknown): void {
    this.dropped += n
    if (this.#failing) return
    this.#failing = true
    this.logger?.warn({ err: err === null ? undefined : { message: (err as Error).message, code: (err as { code?: unknown }).code }, dropped: this.dropped },
      err === null ? 'the audit buffer is full: events are being dropped' : 'the audit sink failed: events are being dropped')
  }

  async flush (): Promise<void> {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
    }
    this.#kick()
    while (this.#writing !== null) {
      await this.#writing
      this.#kick()
    }
  }

  async close (): Promise<void> {
    await this.flush()
    this.#closed = true
    await this.release()
  }

  /** Releases what the sink holds, after the last flush. */
  protected async release (): Promise<void> {}
}

/** Whether an event matches a query's filters (not its limit). */
export function auditMatches (event: AuditEvent, query: AuditQuery): boolean {
  if (query.userId !== undefined && event.userId !== query.userId) return false
  if (query.serverName !== undefined && event.serverName !== query.serverName) return false
  if (query.event !== undefined && (query.event.endsWith('.') ? !event.event.startsWith(query.event) : event.event !== query.event)) return false
  if (query.since !== undefined || query.until !== undefined) {
    const t = Date.parse(event.time)
    if (query.since !== undefined && t < query.since) return false
    if (query.until !== undefined && t > query.until) return false
  }
  return true
}

/** JSON lines on a stream (stdout by default), for a log shipper to take. No query. */
export class StreamAuditSink extends BufferedSink {
  readonly #stream: NodeJS.WritableStream

  constructor (options: BufferedSinkOptions & { stream?: NodeJS.WritableStream } = {}) {
    super(options)
    this.#stream = options.stream ?? process.stdout
  }

  protected async writeBatch (events: AuditEvent[]): Promise<void> {
    let text = ''
    for (const e of events) text += JSON.stringify(e) + '\n'
    await new Promise<void>((resolve, reject) => {
      this.#stream.write(text, (err) => { if (err) reject(err); else resolve() })
    })
  }
}

export interface FileAuditSinkOptions extends BufferedSinkOptions {
  path: string
  /** Rotate before the file passes this size. Default 10 MiB. */
  maxBytes?: number
  /** Rotated files kept (`<path>.1` newest to `<path>.<keep>`). Default 5. */
  keep?: number
}

/**
 * JSON lines in a file, rotated by size: `<path>` is written, `<path>.1` … `<path>.<keep>` are
 * the older ones, the oldest deleted. Opened with mode 0600: the trail names users.
 */
export class FileAuditSink extends BufferedSink {
  readonly path: string
  readonly #maxBytes: number
  readonly #keep: number
  #handle: FileHandle | null = null
  #size = 0

  constructor (options: FileAuditSinkOptions) {
    super(options)
    this.path = options.path
    this.#maxBytes = options.maxBytes ?? DEFAULT_AUDIT_FILE_MAX_BYTES
    this.#keep = options.keep ?? DEFAULT_AUDIT_FILE_KEEP
  }

  async #open (): Promise<FileHandle> {
    if (this.#handle !== null) return this.#handle
    await mkdir(dirname(this.path), { recursive: true })
    const handle = await open(this.path, 'a', 0o600)
    this.#size = (await handle.stat()).size
    this.#handle = handle
    return handle
  }

  async #rotate (): Promise<void> {
    await this.#handle?.close()
    this.#handle = null
    await rm(`${this.path}.${this.#keep}`, { force: true })
    for (let i = this.#keep - 1; i >= 1; i--) {
      await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
    }
    if (this.#keep >= 1) await rename(this.path, `${this.path}.1`)
    else await rm(this.path, { force: true })
  }

  protected async writeBatch (events: AuditEvent[]): Promise<void> {
    for (const e of events) {
      const line = JSON.stringify(e) + '\n'
      const bytes = Buffer.byteLength(line)
      let handle = await this.#open()
      if (this.#size > 0 && this.#size + bytes > this.#maxBytes) {
        await this.#rotate()
        handle = await this.#open()
      }
      await handle.write(line)
      this.#size += bytes
    }
  }

  /** Reads the current file and the rotated ones. */
  async query (query: AuditQuery): Promise<AuditEvent[]> {
    await this.flush()
    return await readAuditFiles(this.path, this.#keep, query)
  }

  protected override async release (): Promise<void> {
    await this.#handle?.close()
    this.#handle = null
  }
}

/** The events of a file sink's files (`path`, `path.1` … `path.<keep>`) that match, oldest first, the newest `limit`. */
export async function readAuditFiles (path: string, keep: number, query: AuditQuery): Promise<AuditEvent[]> {
  const files: string[] = []
  for (let i = keep; i >= 1; i--) files.push(`${path}.${i}`)
  files.push(path)
  const found: AuditEvent[] = []
  for (const file of files) {
    try {
      await stat(file)
    } catch {
      continue
    }
    const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity })
    for await (const line of lines) {
      if (line === '') continue
      let event: AuditEvent
      try {
        event = JSON.parse(line) as AuditEvent
      } catch {
        continue
      }
      if (!auditMatches(event, query)) continue
      found.push(event)
      if (found.length > query.limit) found.shift()
    }
  }
  return found
}

export interface MongoAuditSinkOptions extends BufferedSinkOptions {
  db: Db
  /** Default `mcpgw_audit`. */
  collectionName?: string
  /** Events older than this are deleted (TTL index where the server keeps one, and a periodic delete). Default 30 days. */
  retentionMs?: number
  /** How often old events are deleted. Default: an hour, or retentionMs / 4 if smaller. */
  pruneIntervalMs?: number
  now?: () => number
}

type AuditDoc = Omit<AuditEvent, 'time'> & { time: Date }

/**
 * A collection in the registry's database. Bounded by time: a TTL index on `time` where the
 * server keeps one, and in any case a delete of events past retention every prune interval
 * (FerretDB 1.24 keeps no TTL index, and enforces no cap on capped collections either).
 */
export class MongoAuditSink extends BufferedSink {
  readonly collection: Collection<AuditDoc>
  readonly retentionMs: number
  readonly #pruneIntervalMs: number
  readonly #now: () => number
  #ready: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null

  constructor (options: MongoAuditSinkOptions) {
    super(options)
    this.collection = options.db.collection<AuditDoc>(options.collectionName ?? 'mcpgw_audit')
    this.retentionMs = options.retentionMs ?? DEFAULT_AUDIT_RETENTION_MS
    this.#pruneIntervalMs = options.pruneIntervalMs ?? Math.min(3600_000, Math.max(1000, Math.floor(this.retentionMs / 4)))
    this.#now = options.now ?? Date.now
  }

  /** Creates the indexes (idempotent) and starts the pruning; retried by the next batch when it fails. */
  init (): Promise<void> {
    this.#ready ??= this.#init().catch((err: unknown) => {
      this.#ready = null
      throw err
    })
    return this.#ready
  }

  async #init (): Promise<void> {
    let existing: Array<{ name?: string }> = []
    try {
      existing = await this.collection.listIndexes().toArray()
    } catch (err) {
      if (!(err instanceof MongoServerError)) throw err
    }
    const names = new Set(existing.map((i) => i.name))
    // FerretDB 1.24 drops the connection when asked for an index that exists: ask for the missing only.
    const specs: IndexDescription[] = [
      { key: { userId: 1, time: 1 }, name: 'userId_time' },
      { key: { serverName: 1, time: 1 }, name: 'serverName_time' },
      { key: { event: 1, time: 1 }, name: 'event_time' }
    ]
    const missing = specs.filter((spec) => !names.has(spec.name!))
    if (missing.length > 0) await this.collection.createIndexes(missing)
    if (!names.has('time_ttl') && !names.has('time')) {
      try {
        await this.collection.createIndex({ time: 1 }, { name: 'time_ttl', expireAfterSeconds: Math.ceil(this.retentionMs / 1000) })
      } catch (err) {
        if (!(err instanceof MongoServerError)) throw err
        await this.collection.createIndex({ time: 1 }, { name: 'time' })
      }
    }
    if (this.#timer === null) {
      this.#timer = setInterval(() => {
        this.prune().catch((err: unknown) => {
          this.logger?.warn({ err: { message: (err as Error).message } }, 'pruning old audit events failed')
        })
      }, this.#pruneIntervalMs)
      this.#timer.unref()
    }
  }

  /** Deletes events past retention; returns how many. */
  async prune (): Promise<number> {
    const result = await this.collection.deleteMany({ time: { $lt: new Date(this.#now() - this.retentionMs) } })
    return result.deletedCount
  }

  protected async writeBatch (events: AuditEvent[]): Promise<void> {
    await this.init()
    await this.collection.insertMany(events.map((e) => ({ ...e, time: new Date(e.time) })), { ordered: false })
  }

  async query (query: AuditQuery): Promise<AuditEvent[]> {
    await this.flush()
    await this.init()
    const filter: Filter<AuditDoc> = {}
    if (query.userId !== undefined) filter.userId = query.userId
    if (query.serverName !== undefined) filter.serverName = query.serverName
    if (query.event !== undefined) {
      filter.event = query.event.endsWith('.') ? { $regex: `^${query.event.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}` } : query.event
    }
    if (query.since !== undefined || query.until !== undefined) {
      filter.time = {
        ...(query.since !== undefined && { $gte: new Date(query.since) }),
        ...(query.until !== undefined && { $lte: new Date(query.until) })
      }
    }
    // The newest `limit`, then oldest first; _id breaks ties of one millisecond in insertion order.
    const docs = await this.collection.find(filter, { projection: { _id: 0 } }).sort({ time: -1, _id: -1 }).limit(query.limit).toArray()
    return docs.reverse().map((d) => ({ ...d, time: d.time.toISOString() }) as unknown as AuditEvent)
  }

  protected override async release (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}

/** A sink that keeps events in memory (tests, embedding). */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEvent[] = []
  readonly dropped = 0
  write (event: AuditEvent): void {
    this.events.push(event)
  }

  async query (query: AuditQuery): Promise<AuditEvent[]> {
    return this.events.filter((e) => auditMatches(e, query)).slice(-query.limit)
  }
}

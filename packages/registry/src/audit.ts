import type { Logger } from './types.js'

/**
 * Who called the HTTP API. `operator`: a caller with an operator key (today: the one
 * API key); `registrant`: a key scoped to some server names (not issued yet);
 * `loopback`: no key configured, a loopback caller. `keyId` names the key, never
 * holds it (null while there is only the one key).
 */
export interface AuditActor {
  kind: 'operator' | 'registrant' | 'loopback'
  keyId: string | null
}

/** The events of the audit trail: stable dotted names. */
export type AuditEventName =
  | 'registration.added'
  | 'registration.removed'
  | 'session.created'
  | 'session.shared'
  | 'session.opened'
  | 'session.revoked'
  | 'session.expired'
  | 'stream.opened'
  | 'stream.closed'
  | 'request.refused'
  | 'key.created'
  | 'key.revoked'

export const AUDIT_EVENT_NAMES: readonly AuditEventName[] = Object.freeze([
  'registration.added', 'registration.removed', 'session.created', 'session.shared', 'session.opened', 'session.revoked',
  'session.expired', 'stream.opened', 'stream.closed', 'request.refused', 'key.created', 'key.revoked'
])

/**
 * One audit event: when (ISO 8601), what, and its fields. Fields name sessions,
 * instances, users and servers by id; they never carry a credential (no token,
 * server secret, API key, proof key, cookie, nor a hash of one).
 */
export interface AuditEvent {
  time: string
  event: AuditEventName
  [field: string]: unknown
}

/** What a query of the trail asks for. Times are epoch ms. */
export interface AuditQuery {
  since?: number
  until?: number
  userId?: string
  serverName?: string
  /** An event name, or a prefix ending in `.` (`session.`). */
  event?: string
  /** The newest this many, answered oldest first. */
  limit: number
}

/**
 * Where events go. `write` is called on the request path: it must return at once
 * and never throw (buffer, and write elsewhere later). `query`, where the sink
 * can read back what it wrote, answers `GET /audit`.
 */
export interface AuditSink {
  write (event: AuditEvent): void
  /** Writes what is buffered. */
  flush? (): Promise<void>
  /** Flushes and releases the sink. */
  close? (): Promise<void>
  query? (query: AuditQuery): Promise<AuditEvent[]>
  /** Events lost because the sink failed or its buffer was full. */
  readonly dropped?: number
}

/** The optional audit context of a registry operation called on someone's behalf. */
export interface AuditContext {
  actor?: AuditActor
  /** Why (a revocation's reason, as the caller gave it). */
  reason?: string
}

const MAX_REASON = 200
const MAX_USER_AGENT = 256

/** A caller-given text made safe to store: bounded, control characters out. */
export function auditText (value: unknown, max = MAX_REASON): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, ' ')
  return clean.length > max ? clean.slice(0, max) : clean
}

export function auditUserAgent (value: unknown): string | undefined {
  return auditText(value, MAX_USER_AGENT)
}

/** How many session ids `once` remembers: a bound on memory, never on correctness of anything but dedup. */
const ONCE_CAPACITY = 100_000

/**
 * The registry's audit emitter. Off (no sink): `enabled` is false and callers skip building
 * fields at all, so auditing costs a property read. On: `emit` stamps the time and hands
 * the event to the sink, which buffers; a sink that throws is counted, never propagated.
 */
export class Audit {
  readonly enabled: boolean
  readonly sink: AuditSink | null
  readonly #logger: Logger
  readonly #now: () => number
  /** Per event kind, the session ids already reported (first open, expiry): once per process. */
  readonly #seen = new Map<string, Set<string>>()
  #thrown = 0

  constructor (sink: AuditSink | null | undefined, logger: Logger, now: () => number = Date.now) {
    this.sink = sink ?? null
    this.enabled = this.sink !== null
    this.#logger = logger
    this.#now = now
  }

  /** Events the sink lost, plus those it threw on. */
  get dropped (): number {
    return (this.sink?.dropped ?? 0) + this.#thrown
  }

  emit (event: AuditEventName, fields: Record<string, unknown>): void {
    const sink = this.sink
    if (sink === null) return
    const record: AuditEvent = { time: new Date(this.#now()).toISOString(), event }
    for (const key in fields) if (fields[key] !== undefined) record[key] = fields[key]
    try {
      sink.write(record)
    } catch (err) {
      if (this.#thrown++ === 0) this.#logger.warn({ err: { message: (err as Error).message } }, 'the audit sink threw: events are being dropped')
    }
  }

  /** True the first time `kind` is asked about `id` in this process (bounded memory). */
  once (kind: string, id: string): boolean {
    let seen = this.#seen.get(kind)
    if (seen === undefined) {
      seen = new Set()
      this.#seen.set(kind, seen)
    }
    if (seen.has(id)) return false
    // Full: forgetting costs a repeated event, never a lost one.
    if (seen.size >= ONCE_CAPACITY) seen.clear()
    seen.add(id)
    return true
  }

  async flush (): Promise<void> {
    await this.sink?.flush?.()
  }

  async close (): Promise<void> {
    await this.sink?.close?.()
  }
}

/** The actor fields of an event: `actor` (its kind) and `keyId`; nothing for an in-process call. */
export function actorFields (actor: AuditActor | undefined): Record<string, unknown> {
  if (actor === undefined) return { actor: 'internal', keyId: null }
  return { actor: actor.kind, keyId: actor.keyId }
}

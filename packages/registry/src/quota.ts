import { InvalidOptionError, ServerQuotaError, SessionRateLimitedError } from './errors.js'

export const DEFAULT_SESSION_RATE_PER_SECOND = 50
export const DEFAULT_SESSION_BURST = 200
export const DEFAULT_MAX_SESSIONS_PER_SERVER = 25_000
/** How long a name's live-session count is trusted before the store is asked again. */
const COUNT_FRESH_MS = 1000
/** Buckets kept at most; past it, full ones (idle callers) are forgotten first. */
const MAX_BUCKETS = 100_000

export interface SessionQuotaOptions {
  /** Session creations per second per server name and per registrant key (sustained). Default 50; 0: no rate limit. */
  ratePerSecond?: number
  /** How many may come at once before the rate applies. Default 200. */
  burst?: number
  /** Live sessions one server name may hold. Default 25000; 0: no cap. */
  maxSessionsPerServer?: number
  now?: () => number
}

interface Bucket { tokens: number, at: number }

/**
 * What one registrant may take: session creations are rate-limited per server name and
 * per registrant key (token buckets, per gateway process), and a server name holds at
 * most so many live sessions (counted in the store, shared by every gateway), so one
 * name can neither flood the store nor take its capacity from the others. Refusals are
 * coded 429s with `retryAfterSeconds`.
 */
export class SessionQuota {
  readonly ratePerSecond: number
  readonly burst: number
  readonly maxSessionsPerServer: number
  readonly #buckets = new Map<string, Bucket>()
  readonly #counts = new Map<string, { count: number, at: number }>()
  readonly #now: () => number

  constructor (options: SessionQuotaOptions = {}) {
    this.ratePerSecond = whole('ratePerSecond', options.ratePerSecond, DEFAULT_SESSION_RATE_PER_SECOND)
    this.burst = Math.max(1, whole('burst', options.burst, DEFAULT_SESSION_BURST))
    this.maxSessionsPerServer = whole('maxSessionsPerServer', options.maxSessionsPerServer, DEFAULT_MAX_SESSIONS_PER_SERVER)
    this.#now = options.now ?? Date.now
  }

  /**
   * Takes one creation from each bucket named (`name:<serverName>`, `key:<keyId>`), all
   * or none; throws MCPGW_REGISTRY_RATE_LIMITED when one is empty.
   */
  take (serverName: string, buckets: readonly string[]): void {
    if (this.ratePerSecond === 0) return
    const now = this.#now()
    let waitMs = 0
    const filled: Bucket[] = []
    for (const id of buckets) {
      const bucket = this.#refill(id, now)
      if (bucket.tokens < 1) waitMs = Math.max(waitMs, ((1 - bucket.tokens) / this.ratePerSecond) * 1000)
      filled.push(bucket)
    }
    if (waitMs > 0) {
      const seconds = Math.max(1, Math.ceil(waitMs / 1000))
      throw Object.assign(new SessionRateLimitedError(serverName, seconds), { retryAfterSeconds: seconds })
    }
    for (const bucket of filled) bucket.tokens -= 1
  }

  /**
   * Refuses a new session when the name holds its cap of live sessions (MCPGW_REGISTRY_SERVER_QUOTA).
   * `count` asks the store; its answer is reused for a second, counting what this process adds.
   */
  async admit (serverName: string, count: (serverName: string) => Promise<number>): Promise<void> {
    if (this.maxSessionsPerServer === 0) return
    const now = this.#now()
    let known = this.#counts.get(serverName)
    if (known === undefined || now - known.at >= COUNT_FRESH_MS) {
      known = { count: await count(serverName), at: now }
      if (this.#counts.size >= MAX_BUCKETS) this.#counts.clear()
      this.#counts.set(serverName, known)
    }
    // Room comes back as sessions expire or are revoked: asked again in a minute.
    if (known.count >= this.maxSessionsPerServer) throw Object.assign(new ServerQuotaError(serverName, this.maxSessionsPerServer), { retryAfterSeconds: 60 })
  }

  /** A session was created for the name: counted until the next look at the store. */
  created (serverName: string): void {
    const known = this.#counts.get(serverName)
    if (known !== undefined) known.count++
  }

  #refill (id: string, now: number): Bucket {
    let bucket = this.#buckets.get(id)
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#forgetIdle(now)
      bucket = { tokens: this.burst, at: now }
      this.#buckets.set(id, bucket)
      return bucket
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond)
    bucket.at = now
    return bucket
  }

  #forgetIdle (now: number): void {
    for (const [id, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond >= this.burst) this.#buckets.delete(id)
    }
    // Every bucket is in use: forgetting them all lets a burst through, never locks anyone out.
    if (this.#buckets.size >= MAX_BUCKETS) this.#buckets.clear()
  }
}

function whole (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new InvalidOptionError(name, 'expected a whole number, 0 or more')
  return value
}

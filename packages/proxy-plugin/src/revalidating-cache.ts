const STORE_UNAVAILABLE = 'MCPGW_REGISTRY_STORE_UNAVAILABLE'

interface Entry<V> {
  value: V
  checkedAt: number
}

export interface RevalidatingCacheOptions<K, V> {
  /**
   * Resolves the current value, or rejects (a refusal, or the store being down).
   * `previous` is the value this key last loaded, when the cache still holds it.
   */
  load: (key: K, previous: V | undefined) => Promise<V>
  /** The instant after which a value is dead whatever the cache knows (its expiresAt). */
  expiresAt: (value: V) => number
  /** A cached value is served without asking the store for this long after it was checked. */
  revalidateMs: number
  maxEntries: number
  /** A checked value keeps being served this long after its check while the store is down. */
  outageGraceMs: number
  now: () => number
  /** Turns the store's "unavailable" into the caller's own error. */
  unavailable: (cause: unknown) => Error
}

/**
 * A bounded cache whose entries are never older than `revalidateMs` when served:
 * fresh for the first three quarters, refreshed in the background during the
 * last (the request does not wait), and re-checked before use after that. Hot keys thus
 * cost no store round trip on the request path, and a revocation is seen within
 * `revalidateMs`. One load per key is in flight at a time.
 */
export class RevalidatingCache<K, V> {
  readonly #entries = new Map<K, Entry<V>>()
  readonly #pending = new Map<K, Promise<V>>()
  readonly #options: RevalidatingCacheOptions<K, V>
  readonly #freshMs: number
  hits = 0
  misses = 0

  constructor (options: RevalidatingCacheOptions<K, V>) {
    this.#options = options
    // Late enough that hot keys are reloaded less often, early enough that a
    // reload (one store round trip) lands before the bound.
    this.#freshMs = options.revalidateMs * 0.75
  }

  get size (): number {
    return this.#entries.size
  }

  /** The cached value when it may be used right now without waiting; otherwise undefined. */
  peek (key: K): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    const now = this.#options.now()
    const age = now - entry.checkedAt
    if (age >= this.#options.revalidateMs || this.#options.expiresAt(entry.value) <= now) return undefined
    if (age >= this.#freshMs && !this.#pending.has(key)) {
      // Errors are handled where they matter: the next get() after the bound.
      this.#refresh(key).catch(() => {})
    }
    this.hits++
    return entry.value
  }

  /**
   * The value, checked against the store within the bound; with `maxAgeMs`, checked
   * within that tighter one (a forward-auth answer an edge will keep a while).
   */
  get (key: K, maxAgeMs?: number): Promise<V> {
    if (maxAgeMs !== undefined) {
      const entry = this.#entries.get(key)
      if (entry !== undefined && this.#options.now() - entry.checkedAt >= maxAgeMs) {
        this.misses++
        return this.#pending.get(key) ?? this.#refresh(key)
      }
    }
    const cached = this.peek(key)
    if (cached !== undefined) return Promise.resolve(cached)
    this.misses++
    return this.#pending.get(key) ?? this.#refresh(key)
  }

  /** Forgets the key, and the result of a load already in flight for it (it may predate the change). */
  delete (key: K): void {
    this.#entries.delete(key)
    this.#pending.delete(key)
  }

  clear (): void {
    this.#entries.clear()
    this.#pending.clear()
  }

  #refresh (key: K): Promise<V> {
    const startedAt = this.#options.now()
    const promise: Promise<V> = this.#options.load(key, this.#entries.get(key)?.value).then((value) => {
      // Deleted while loading (say, the backend re-registered): this answer may predate
      // the change, so it is neither kept nor given; the caller gets a fresh load.
      if (this.#pending.get(key) !== promise) return this.#pending.get(key) ?? this.#refresh(key)
      this.#pending.delete(key)
      this.#entries.delete(key)
      if (this.#entries.size >= this.#options.maxEntries) {
        const oldest = this.#entries.keys().next()
        if (oldest.done !== true) this.#entries.delete(oldest.value)
      }
      this.#entries.set(key, { value, checkedAt: startedAt })
      return value
    }, (err: unknown) => {
      if (this.#pending.get(key) === promise) this.#pending.delete(key)
      const code = (err as { code?: unknown } | null)?.code
      if (code === STORE_UNAVAILABLE) {
        const entry = this.#entries.get(key)
        const now = this.#options.now()
        if (entry !== undefined && now - entry.checkedAt < this.#options.outageGraceMs && this.#options.expiresAt(entry.value) > now) {
          return entry.value
        }
        throw this.#options.unavailable(err)
      }
      // A refusal (revoked, expired, unregistered): forget the key at once.
      this.#entries.delete(key)
      throw err
    })
    this.#pending.set(key, promise)
    return promise
  }
}

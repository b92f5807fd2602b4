import type { ServerResponse } from 'node:http'

const BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]

/** Counters the proxy keeps for /metrics: cheap enough for every request. */
export class ProxyMetrics {
  /** Proxied responses by status class: 2xx, 3xx, 4xx, 5xx. */
  readonly responses: Record<'2xx' | '3xx' | '4xx' | '5xx', number> = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }
  /** Time to the response's end, proxied requests only (cumulative buckets, ms). */
  readonly latencyBuckets = new Array<number>(BUCKETS_MS.length).fill(0)
  latencyCount = 0
  latencySumMs = 0
  readonly bucketBoundsMs = BUCKETS_MS

  /** Forward-auth answers: requests an edge let through, and those it was told to refuse or redirect. */
  readonly forwardAuthAnswers = { allowed: 0, refused: 0 }

  /** The gateway's own coded answers on session traffic (refusals, backend failures), by MCPGW_ code. */
  readonly errors: Record<string, number> = Object.create(null)

  error (code: string): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1
  }

  forwardAuth (statusCode: number): void {
    if (statusCode < 300) this.forwardAuthAnswers.allowed++
    else this.forwardAuthAnswers.refused++
  }

  observe (statusCode: number, elapsedMs: number): void {
    const cls = statusCode >= 500 ? '5xx' : statusCode >= 400 ? '4xx' : statusCode >= 300 ? '3xx' : '2xx'
    this.responses[cls]++
    this.latencyCount++
    this.latencySumMs += elapsedMs
    for (let i = 0; i < BUCKETS_MS.length; i++) if (elapsedMs <= BUCKETS_MS[i]!) this.latencyBuckets[i]!++
  }
}

/** Open event streams, so a shutdown can end them instead of waiting forever. */
export class StreamSet {
  readonly #open = new Set<ServerResponse>()

  get size (): number {
    return this.#open.size
  }

  add (res: ServerResponse): void {
    if (this.#open.has(res)) return
    this.#open.add(res)
    res.once('close', () => this.#open.delete(res))
  }

  /** Ends every open stream: the client sees a clean end and may reconnect elsewhere. */
  endAll (): void {
    for (const res of this.#open) endAndHangUp(res)
  }
}

/**
 * Ends a response and, once it is out, its connection: a keep-alive connection
 * whose response ends after the server began closing is not closed by Node
 * (it closes only the connections idle when close() is called), so a server's
 * close would wait out the keep-alive timeout for it.
 */
export function endAndHangUp (res: ServerResponse): void {
  const socket = res.socket
  res.end()
  socket?.end()
}

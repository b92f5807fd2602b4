import type { Authenticator } from './authenticator.js'

/** Something that stays open on a session: a WebSocket tunnel, an event stream, a request waiting on its backend. */
export interface OpenOnSession {
  /** Ends it: the session was revoked or expired, and `refusal` is the coded answer a new request would get. */
  cut (refusal: Error): void
}

/**
 * Revocation and expiry reach whatever is open on a session, not only new requests: WebSocket
 * tunnels, Server-Sent Event streams, long-polls waiting on the backend. A cached session is
 * re-checked once it is 3/4 of the bound old (in the background), and a tick every 1/8 of the
 * bound sees that check's answer, so what is open on a revoked session ends by 1.125 bounds at
 * the latest (2.25 s by default). Tokens with nothing open cost nothing; an open one costs a
 * cache peek a tick.
 */
export class SessionWatch {
  readonly #byToken = new Map<string, Set<OpenOnSession>>()
  readonly #timer: NodeJS.Timeout

  constructor (authenticator: Authenticator, revalidateMs: number) {
    this.#timer = setInterval(() => { this.#sweep(authenticator) }, Math.max(50, Math.floor(revalidateMs / 8)))
    this.#timer.unref()
  }

  /** Watches `open` until `remove` (sets are kept while empty, and pruned by the sweep: no churn per request). */
  add (token: string, open: OpenOnSession): void {
    let set = this.#byToken.get(token)
    if (set === undefined) {
      set = new Set()
      this.#byToken.set(token, set)
    }
    set.add(open)
  }

  remove (token: string, open: OpenOnSession): void {
    this.#byToken.get(token)?.delete(open)
  }

  #sweep (authenticator: Authenticator): void {
    for (const [token, set] of this.#byToken) {
      if (set.size === 0) {
        this.#byToken.delete(token)
        continue
      }
      authenticator.sessions.get(token).catch((err: Error & { statusCode?: number }) => {
        // A refusal of the session itself; the store being away is not one (the cache's grace covers it).
        if (err.statusCode !== 401) return
        for (const open of [...set]) open.cut(err)
      })
    }
  }

  /** How much is open on each session, by session id (tokens the cache no longer holds are left out). */
  openBySession (authenticator: Authenticator, into: Map<string, number> = new Map()): Map<string, number> {
    for (const [token, set] of this.#byToken) {
      if (set.size === 0) continue
      const sessionId = authenticator.sessions.peek(token)?.sessionId
      if (sessionId !== undefined) into.set(sessionId, (into.get(sessionId) ?? 0) + set.size)
    }
    return into
  }

  /** Ends everything watched (the server is closing): each gets `refusal` as if its session had ended. */
  cutAll (refusal: Error): void {
    for (const set of this.#byToken.values()) for (const open of [...set]) open.cut(refusal)
  }

  close (): void {
    clearInterval(this.#timer)
  }
}

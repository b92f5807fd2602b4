import { randomBytes } from 'node:crypto'
import { urlHost } from '@mcp-gw/protocol'
import { InvalidOptionError } from './errors.js'

/** At most this many live direct links are kept; past it, expired ones go first, then the oldest. */
export const MAX_DIRECT_TOKENS = 10_000
/** The longest life a direct link may be given. */
export const MAX_DIRECT_TTL_SECONDS = 30 * 86_400

/** Where the UI server listens, as it was registered. */
export interface DirectAddress {
  host: string
  port: number
  protocol?: 'http' | 'https'
}

/** Where a direct link points: the UI server itself. */
export function directOrigin (address: DirectAddress): string {
  return `${address.protocol ?? 'http'}://${urlHost(address.host)}:${address.port}`
}

export interface DirectToken {
  userId: string
  /** Epoch ms. */
  expiresAt: number
}

/** The tokens of the direct links this process handed out: in memory, gone with the process. */
export class DirectLinks {
  readonly #tokens = new Map<string, DirectToken>()

  /** A new token for `userId`, good for `ttlSeconds` (an integer from 1 to MAX_DIRECT_TTL_SECONDS). */
  issue (userId: string, ttlSeconds: number): { token: string } & DirectToken {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_DIRECT_TTL_SECONDS) {
      throw new InvalidOptionError('ttlSeconds', `expected an integer from 1 to ${MAX_DIRECT_TTL_SECONDS}`)
    }
    const now = Date.now()
    if (this.#tokens.size >= MAX_DIRECT_TOKENS) {
      for (const [token, entry] of this.#tokens) if (entry.expiresAt <= now) this.#tokens.delete(token)
      // Still full of live links: the oldest go first.
      for (const token of this.#tokens.keys()) {
        if (this.#tokens.size < MAX_DIRECT_TOKENS) break
        this.#tokens.delete(token)
      }
    }
    const token = randomBytes(24).toString('base64url')
    const expiresAt = now + ttlSeconds * 1000
    this.#tokens.set(token, { userId, expiresAt })
    return { token, userId, expiresAt }
  }

  /** The live token's entry; null for anything else (an expired token is dropped). */
  find (token: string): DirectToken | null {
    if (typeof token !== 'string' || token.length !== 32) return null
    const entry = this.#tokens.get(token)
    if (entry === undefined) return null
    if (entry.expiresAt <= Date.now()) {
      this.#tokens.delete(token)
      return null
    }
    return { ...entry }
  }

  /** Drops every token of `userId`; how many there were. */
  revokeUser (userId: string): number {
    let revoked = 0
    for (const [token, entry] of this.#tokens) {
      if (entry.userId === userId) {
        this.#tokens.delete(token)
        revoked++
      }
    }
    return revoked
  }

  get size (): number { return this.#tokens.size }
}

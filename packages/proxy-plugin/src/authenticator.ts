import { registrantProof } from '@mcp-gw/protocol'
import type { InvalidTokenReason, Registry, ServerRegistration, SessionRecord } from '@mcp-gw/registry'
import {
  BadSignatureError, ExpiredTokenError, MalformedTokenError, NoBackendError, RevokedTokenError,
  StoreUnavailableError, UnknownTokenError
} from './errors.js'
import type { NormalizedProxyOptions } from './options.js'
import { RevalidatingCache } from './revalidating-cache.js'

const REFUSALS: Record<InvalidTokenReason, () => Error> = {
  malformed: () => new MalformedTokenError(),
  bad_signature: () => new BadSignatureError(),
  unknown: () => new UnknownTokenError(),
  expired: () => new ExpiredTokenError(),
  revoked: () => new RevokedTokenError()
}

/** The ids a token's verified claims name, or null when its signature does not hold. */
function claimedSession (registry: Registry, token: string): Pick<SessionRecord, 'sessionId' | 'userId' | 'serverName'> | null {
  const verified = registry.tokens.verify(token)
  return verified.ok ? { sessionId: verified.claims.sid, userId: verified.claims.sub, serverName: verified.claims.serverName } : null
}

/**
 * Token -> live session and serverName -> live backend, both behind a
 * RevalidatingCache. Shared by the HTTP hooks, the WebSocket upgrade handler
 * and the asset fallback, so every path applies the same checks.
 */
export class Authenticator {
  readonly registry: Registry
  /** Revocation reaches every cached session and route within this bound (ms). */
  readonly revalidateMs: number
  readonly #proofKeys = new WeakMap<ServerRegistration, string>()
  readonly #proofs = new WeakMap<SessionRecord, { key: string, seconds: number, proof: string }>()

  /**
   * The X-Mcpgw-Registrant value for a request of `session` to `backend` (null for a
   * registration made without a secret). Proofs name whole seconds, so one per session
   * and second is made and reused; the backend's key once per registration record the
   * route cache holds. Two HMACs a request otherwise.
   */
  readonly proofFor = (backend: ServerRegistration, session: SessionRecord): string | null => {
    if (backend.ownerHash === null) return null
    let key = this.#proofKeys.get(backend)
    if (key === undefined) {
      key = this.registry.tokens.proofKey(backend.ownerHash)
      this.#proofKeys.set(backend, key)
    }
    const now = Date.now()
    const seconds = Math.floor(now / 1000)
    const last = this.#proofs.get(session)
    if (last !== undefined && last.key === key && last.seconds === seconds) return last.proof
    const proof = registrantProof(key, session, now)
    this.#proofs.set(session, { key, seconds, proof })
    return proof
  }

  readonly sessions: RevalidatingCache<string, SessionRecord>
  readonly routes: RevalidatingCache<string, ServerRegistration>

  constructor (registry: Registry, options: NormalizedProxyOptions) {
    this.registry = registry
    this.revalidateMs = options.revalidateMs
    const common = {
      revalidateMs: options.revalidateMs,
      maxEntries: options.cacheMaxEntries,
      outageGraceMs: options.storeOutageGraceMs,
      now: options.now,
      unavailable: (cause: unknown) => new StoreUnavailableError({ cause })
    }
    this.sessions = new RevalidatingCache({
      ...common,
      // A token verified once only needs its session re-read: revocation and expiry live in the store.
      load: async (token, previous) => {
        const result = previous === undefined ? await registry.validate(token) : await registry.recheck(previous)
        if (!result.valid) {
          const refusal = REFUSALS[result.reason]()
          // For the audit trail, the session a genuine token names (never serialised): the cached
          // record, or the claims of a token whose signature holds (one HMAC, on refusals only).
          if (registry.audit.enabled) {
            const named = previous ?? claimedSession(registry, token)
            if (named !== null) Object.defineProperty(refusal, 'mcpSession', { value: named })
          }
          throw refusal
        }
        return result.session
      },
      expiresAt: (session) => session.expiresAt
    })
    this.routes = new RevalidatingCache({
      ...common,
      // By instance: a session goes to the process that minted it, never another of the same name.
      load: async (instanceId) => {
        const registration = await registry.discoverInstance(instanceId)
        if (registration === null) throw new NoBackendError()
        return registration
      },
      expiresAt: (registration) => registration.expiresAt
    })
  }

  /** Records activity; throttled by the registry, never awaited on the request path. */
  touch (session: SessionRecord): void {
    this.registry.touch(session).catch(() => {})
  }
}

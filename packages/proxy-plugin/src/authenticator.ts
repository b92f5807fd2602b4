import { registrantProof, registrantRotationProof } from '@mcp-gw/protocol'
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

/** What vouches for a request's identity to its backend: X-Mcpgw-Registrant, and X-Mcpgw-Registrant-Rotation. */
export interface RegistrantProofs {
  proof: string
  /** Proofs under the other proof keys the gateway accepts (a secret rotation); null with one secret. */
  rotation: string | null
}

interface BackendKeys { key: string, others: string[] }

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
  readonly #proofKeys = new WeakMap<ServerRegistration, BackendKeys>()
  readonly #proofs = new WeakMap<SessionRecord, { key: string, seconds: number, proofs: RegistrantProofs }>()

  /**
   * The X-Mcpgw-Registrant value for a request of `session` to `backend` (null for a
   * registration made without a secret), and during a secret rotation the proofs under the
   * other accepted secrets' keys (a backend registered before it holds one of those until
   * its next heartbeat). Proofs name whole seconds, so one set per session and second is
   * made and reused; the backend's keys once per registration record the route cache holds.
   * Two HMACs a request otherwise (one more per previous secret while rotating).
   */
  readonly proofFor = (backend: ServerRegistration, session: SessionRecord): RegistrantProofs | null => {
    if (backend.ownerHash === null) return null
    let keys = this.#proofKeys.get(backend)
    if (keys === undefined) {
      keys = { key: this.registry.tokens.proofKey(backend.ownerHash), others: this.registry.tokens.otherProofKeys(backend.ownerHash) }
      this.#proofKeys.set(backend, keys)
    }
    const now = Date.now()
    const seconds = Math.floor(now / 1000)
    const last = this.#proofs.get(session)
    if (last !== undefined && last.key === keys.key && last.seconds === seconds) return last.proofs
    const proofs = { proof: registrantProof(keys.key, session, now), rotation: registrantRotationProof(keys.others, session, now) }
    this.#proofs.set(session, { key: keys.key, seconds, proofs })
    return proofs
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

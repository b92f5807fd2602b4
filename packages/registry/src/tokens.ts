import { createHmac } from 'node:crypto'
import { createSigner, createVerifier, TokenError } from 'fast-jwt'
import { InvalidOptionError, SigningKeyError, WeakSecretError } from './errors.js'
import type { InvalidTokenReason, SessionClaims } from './types.js'

export const MIN_SECRET_BYTES = 32
/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 4096
export const DEFAULT_KID = 'default'
const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/

export interface TokenKey {
  /** Key id written to the token header and used to pick the verification key. */
  kid: string
  /** HS256 secret, at least 32 bytes. */
  secret: string | Buffer
}

export interface TokenOptions {
  /** A single HS256 secret (kid `default`). Use `keys` to rotate. */
  secret?: string | Buffer
  /** Verification keys; `signingKid` (default: the first) also signs. */
  keys?: TokenKey[]
  signingKid?: string
  /** When set, written as `iss` and required on verify. */
  issuer?: string
  /** When set, written as `aud` and required on verify. */
  audience?: string
}

export type VerifyResult =
  | { ok: true, claims: SessionClaims }
  | { ok: false, reason: InvalidTokenReason }

type Verify = (token: string) => unknown
type Sign = (payload: Record<string, unknown>) => string

/**
 * HS256 session tokens through fast-jwt, with the algorithm pinned on verify
 * and key rotation by `kid`. Expiry is deliberately not checked here: the
 * registry checks `exp` against its own clock, the same clock the stores use.
 */
export class TokenService {
  readonly signingKid: string
  readonly #sign: Sign
  readonly #signingSecret: string | Buffer
  readonly #verifiers: Map<string, Verify>
  readonly #defaultVerifier: Verify | undefined

  constructor (options: TokenOptions) {
    const keys = normalizeKeys(options)
    const signingKid = options.signingKid ?? keys[0]!.kid
    const signingKey = keys.find((k) => k.kid === signingKid)
    if (signingKey === undefined) throw new InvalidOptionError('signingKid', `no key has kid "${signingKid}"`)
    this.signingKid = signingKid
    this.#signingSecret = signingKey.secret

    this.#sign = createSigner({
      key: signingKey.secret,
      algorithm: 'HS256',
      kid: signingKid,
      ...(options.issuer !== undefined && { iss: options.issuer }),
      ...(options.audience !== undefined && { aud: options.audience })
    }) as Sign

    // allowedIss/allowedAud only check a claim that is present; requiring it closes the gap.
    const requiredClaims = [
      ...(options.issuer !== undefined ? ['iss'] : []),
      ...(options.audience !== undefined ? ['aud'] : [])
    ]
    this.#verifiers = new Map()
    for (const { kid, secret } of keys) {
      this.#verifiers.set(kid, createVerifier({
        key: secret,
        algorithms: ['HS256'],
        ignoreExpiration: true,
        requiredClaims,
        ...(options.issuer !== undefined && { allowedIss: options.issuer }),
        ...(options.audience !== undefined && { allowedAud: options.audience })
      }) as Verify)
    }
    // A token without a kid can only be checked when the choice is unambiguous.
    this.#defaultVerifier = keys.length === 1 ? this.#verifiers.get(keys[0]!.kid) : this.#verifiers.get(DEFAULT_KID)
  }

  /**
   * The key a registrant's backend checks X-Mcpgw-Registrant with: derived from the
   * signing secret (never stored) and the registration's owner hash, so the store
   * alone cannot make one, and every gateway with the same secret makes the same.
   */
  proofKey (ownerHash: string): string {
    return createHmac('sha256', this.#signingSecret).update(`mcp-gw registrant proof key\0${ownerHash}`).digest('hex')
  }

  sign (claims: Omit<SessionClaims, 'iss' | 'aud'>): string {
    try {
      return this.#sign({ ...claims })
    } catch (err) {
      throw new SigningKeyError((err as Error).message, { cause: err })
    }
  }

  verify (token: string): VerifyResult {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      return { ok: false, reason: 'malformed' }
    }
    const dot = token.indexOf('.')
    if (dot <= 0) return { ok: false, reason: 'malformed' }
    let header: unknown
    try {
      header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'))
    } catch {
      return { ok: false, reason: 'malformed' }
    }
    if (header === null || typeof header !== 'object') return { ok: false, reason: 'malformed' }
    const kid = (header as { kid?: unknown }).kid
    const verifier = kid === undefined ? this.#defaultVerifier : typeof kid === 'string' ? this.#verifiers.get(kid) : undefined
    // An unknown kid means no key of ours signed it.
    if (verifier === undefined) return { ok: false, reason: 'bad_signature' }

    let payload: unknown
    try {
      payload = verifier(token)
    } catch (err) {
      return { ok: false, reason: reasonFor(err) }
    }
    return isSessionClaims(payload) ? { ok: true, claims: payload } : { ok: false, reason: 'malformed' }
  }
}

function reasonFor (err: unknown): InvalidTokenReason {
  if (!(err instanceof TokenError)) return 'malformed'
  switch (err.code) {
    case TokenError.codes.invalidSignature:
    case TokenError.codes.invalidAlgorithm:
    case TokenError.codes.missingSignature:
      return 'bad_signature'
    case TokenError.codes.invalidClaimValue:
    case TokenError.codes.invalidClaimType:
    case TokenError.codes.missingRequiredClaim:
      // Validly signed but issued for another issuer or audience: not ours.
      return 'unknown'
    default:
      return 'malformed'
  }
}

function normalizeKeys (options: TokenOptions): TokenKey[] {
  if (options.secret !== undefined && options.keys !== undefined) {
    throw new InvalidOptionError('secret', 'give either secret or keys, not both')
  }
  const keys = options.keys ?? (options.secret !== undefined ? [{ kid: DEFAULT_KID, secret: options.secret }] : [])
  if (!Array.isArray(keys) || keys.length === 0) throw new InvalidOptionError('secret', 'a JWT secret is required')
  const seen = new Set<string>()
  for (const key of keys) {
    if (typeof key?.kid !== 'string' || !KID_PATTERN.test(key.kid)) {
      throw new InvalidOptionError('keys', 'each kid is 1-64 characters of A-Z a-z 0-9 . _ -')
    }
    if (seen.has(key.kid)) throw new InvalidOptionError('keys', `kid "${key.kid}" appears twice`)
    seen.add(key.kid)
    if ((typeof key.secret !== 'string' && !Buffer.isBuffer(key.secret)) || Buffer.byteLength(key.secret) < MIN_SECRET_BYTES) {
      throw new WeakSecretError(MIN_SECRET_BYTES)
    }
  }
  return keys
}

function isSessionClaims (value: unknown): value is SessionClaims {
  if (value === null || typeof value !== 'object') return false
  const c = value as Record<string, unknown>
  return typeof c.sub === 'string' && typeof c.serverName === 'string' && typeof c.serverType === 'string' &&
    typeof c.sid === 'string' && typeof c.jti === 'string' && typeof c.iat === 'number' &&
    typeof c.exp === 'number' && Array.isArray(c.scopes) && c.scopes.every((s) => typeof s === 'string')
}

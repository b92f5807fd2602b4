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
  /** The HS256 secret that signs (kid `default`, or its key id while `previousSecrets` are set). */
  secret?: string | Buffer
  /**
   * Earlier secrets, still accepted (rotation): tokens and registrant proofs made with
   * them verify until they expire; nothing new is signed with them. Only with `secret`.
   * See `secretKeyId` for the kids.
   */
  previousSecrets?: ReadonlyArray<string | Buffer>
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
 * The key id of a secret: `fp-` and 16 base64url characters of an HMAC keyed by the
 * secret. The same on every gateway with that secret, different for every other one, and
 * no help in finding the secret (every token already carries an HMAC made with it).
 */
export function secretKeyId (secret: string | Buffer): string {
  return `fp-${createHmac('sha256', secret).update('mcp-gw jwt key id').digest('base64url').slice(0, 16)}`
}

/**
 * HS256 session tokens through fast-jwt, with the algorithm pinned on verify
 * and key rotation by `kid`. Expiry is deliberately not checked here: the
 * registry checks `exp` against its own clock, the same clock the stores use.
 */
export class TokenService {
  readonly signingKid: string
  /** Every kid a token may carry and verify under (`default` included when it does). */
  readonly kids: readonly string[]
  readonly #sign: Sign
  readonly #signingSecret: string | Buffer
  /** The accepted secrets that do not sign: their proof keys are accepted too. */
  readonly #otherSecrets: ReadonlyArray<string | Buffer>
  /** kid -> the verifiers to try, in order (one, but for `default` during a rotation). */
  readonly #verifiers: Map<string, Verify[]>
  /** For a token without a kid. */
  readonly #noKid: Verify[]

  constructor (options: TokenOptions) {
    const { keys, bySecret } = normalizeKeys(options)
    // With `secret`, the first key is it. Alone it signs as `default`, as it always has (so
    // gateways of an earlier version, and rolling back to one, keep accepting its tokens);
    // beside previous secrets, under its own key id, which every gateway sharing the
    // rotation knows (a gateway with this secret alone too).
    const signingKid = bySecret ? (keys.length === 1 ? DEFAULT_KID : keys[0]!.kid) : options.signingKid ?? keys[0]!.kid
    const signingKey = bySecret ? keys[0] : keys.find((k) => k.kid === signingKid)
    if (signingKey === undefined || (bySecret && options.signingKid !== undefined && options.signingKid !== signingKid)) {
      throw new InvalidOptionError('signingKid', `no key has kid "${options.signingKid ?? signingKid}"`)
    }
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
    const verifierOf = (secret: string | Buffer): Verify => createVerifier({
      key: secret,
      algorithms: ['HS256'],
      ignoreExpiration: true,
      requiredClaims,
      ...(options.issuer !== undefined && { allowedIss: options.issuer }),
      ...(options.audience !== undefined && { allowedAud: options.audience })
    }) as Verify
    this.#verifiers = new Map()
    this.#otherSecrets = Object.freeze(keys.filter((k) => k !== signingKey).map((k) => k.secret))
    if (bySecret) {
      // Every secret under its key id, and `default` (what a gateway with one secret writes:
      // every token minted before a rotation) tried against each, the signing one first:
      // its tokens are the ones a gateway mostly sees, and they take one HMAC as before.
      const chain = keys.map((k) => verifierOf(k.secret))
      keys.forEach((k, i) => this.#verifiers.set(k.kid, [chain[i]!]))
      this.#verifiers.set(DEFAULT_KID, chain)
      this.#noKid = chain
    } else {
      for (const { kid, secret } of keys) this.#verifiers.set(kid, [verifierOf(secret)])
      // A token without a kid can only be checked when the choice is unambiguous.
      this.#noKid = (keys.length === 1 ? this.#verifiers.get(keys[0]!.kid) : this.#verifiers.get(DEFAULT_KID)) ?? []
    }
    this.kids = Object.freeze([...this.#verifiers.keys()])
  }

  /**
   * The key a registrant's backend checks X-Mcpgw-Registrant with: derived from the
   * signing secret (never stored) and the registration's owner hash, so the store
   * alone cannot make one, and every gateway with the same secret makes the same.
   */
  proofKey (ownerHash: string): string {
    return proofKeyOf(this.#signingSecret, ownerHash)
  }

  /**
   * The proof keys of the other secrets this service accepts (previous ones during a
   * rotation): a backend registered before the rotation holds one of them until its next
   * heartbeat. Empty with one secret.
   */
  otherProofKeys (ownerHash: string): string[] {
    return this.#otherSecrets.map((secret) => proofKeyOf(secret, ownerHash))
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
    const verifiers = kid === undefined ? this.#noKid : typeof kid === 'string' ? this.#verifiers.get(kid) : undefined
    // An unknown kid means no key of ours signed it.
    if (verifiers === undefined || verifiers.length === 0) return { ok: false, reason: 'bad_signature' }

    let payload: unknown
    let reason: InvalidTokenReason = 'bad_signature'
    for (const verifier of verifiers) {
      try {
        payload = verifier(token)
      } catch (err) {
        reason = reasonFor(err)
        // Another key may have signed it; anything else is wrong whatever the key.
        if (reason === 'bad_signature') continue
        return { ok: false, reason }
      }
      return isSessionClaims(payload) ? { ok: true, claims: payload } : { ok: false, reason: 'malformed' }
    }
    return { ok: false, reason }
  }
}

function proofKeyOf (secret: string | Buffer, ownerHash: string): string {
  return createHmac('sha256', secret).update(`mcp-gw registrant proof key\0${ownerHash}`).digest('hex')
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

/** The keys, and whether they come from `secret` (and `previousSecrets`): kids by fingerprint, the first signs. */
function normalizeKeys (options: TokenOptions): { keys: TokenKey[], bySecret: boolean } {
  if (options.secret !== undefined && options.keys !== undefined) {
    throw new InvalidOptionError('secret', 'give either secret or keys, not both')
  }
  const previous = options.previousSecrets ?? []
  if (!Array.isArray(previous)) throw new InvalidOptionError('previousSecrets', 'expected a list of secrets')
  if (previous.length > 0 && options.secret === undefined) {
    throw new InvalidOptionError('previousSecrets', 'previous secrets go with secret (with keys, list them as keys)')
  }
  const bySecret = options.secret !== undefined
  let keys: TokenKey[]
  if (bySecret) {
    // Key ids from the secrets themselves: every gateway with the same secrets agrees on them.
    keys = [options.secret!, ...previous].map((secret) => {
      checkSecret(secret)
      return { kid: secretKeyId(secret), secret }
    })
    const distinct = new Set(keys.map((k) => Buffer.from(k.secret).toString('base64')))
    if (distinct.size !== keys.length) throw new InvalidOptionError('previousSecrets', 'each secret may appear once, and not beside itself as the current one')
  } else {
    keys = options.keys ?? []
  }
  if (!Array.isArray(keys) || keys.length === 0) throw new InvalidOptionError('secret', 'a JWT secret is required')
  const seen = new Set<string>()
  for (const key of keys) {
    if (typeof key?.kid !== 'string' || !KID_PATTERN.test(key.kid)) {
      throw new InvalidOptionError('keys', 'each kid is 1-64 characters of A-Z a-z 0-9 . _ -')
    }
    if (seen.has(key.kid)) throw new InvalidOptionError('keys', `kid "${key.kid}" appears twice`)
    seen.add(key.kid)
    checkSecret(key.secret)
  }
  return { keys, bySecret }
}

function checkSecret (secret: unknown): asserts secret is string | Buffer {
  if ((typeof secret !== 'string' && !Buffer.isBuffer(secret)) || Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new WeakSecretError(MIN_SECRET_BYTES)
  }
}

function isSessionClaims (value: unknown): value is SessionClaims {
  if (value === null || typeof value !== 'object') return false
  const c = value as Record<string, unknown>
  return typeof c.sub === 'string' && typeof c.serverName === 'string' && typeof c.serverType === 'string' &&
    typeof c.sid === 'string' && typeof c.jti === 'string' && typeof c.iat === 'number' &&
    typeof c.exp === 'number' && Array.isArray(c.scopes) && c.scopes.every((s) => typeof s === 'string')
}

import { createHmac } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { TokenService, MAX_TOKEN_LENGTH, secretKeyId } from '../src/tokens.js'
import { craftToken, OTHER_SECRET, SECRET } from './helpers.js'

const now = Math.floor(Date.now() / 1000)
const claims = {
  sub: 'alice',
  serverName: 'todoodles',
  serverType: 'mcp-webui',
  sid: 'session-0001',
  jti: 'token-0001',
  scopes: ['view', 'interact'],
  iat: now,
  exp: now + 3600
}

t.test('a signed token verifies to its claims, HS256 with a kid', async (t) => {
  const tokens = new TokenService({ secret: SECRET })
  const token = tokens.sign(claims)
  const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())
  t.same(header, { alg: 'HS256', typ: 'JWT', kid: 'default' })
  const result = tokens.verify(token)
  t.equal(result.ok, true)
  if (result.ok) t.match(result.claims, claims)
  t.equal(tokens.sign(claims), token, 'signing is deterministic for the same claims')
})

t.test('tampered, unsigned, wrong-key and confused tokens are refused', async (t) => {
  const tokens = new TokenService({ secret: SECRET })
  const token = tokens.sign(claims)
  const [h, , s] = token.split('.')

  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url')}.${s}`
  t.same(tokens.verify(tampered), { ok: false, reason: 'bad_signature' }, 'payload changed')

  t.same(tokens.verify(craftToken({ alg: 'none', typ: 'JWT', kid: 'default' }, claims)), { ok: false, reason: 'bad_signature' }, 'alg none')
  t.same(tokens.verify(craftToken({ alg: 'none', typ: 'JWT' }, claims)), { ok: false, reason: 'bad_signature' }, 'alg none, no kid')

  const wrongKey = new TokenService({ secret: OTHER_SECRET }).sign(claims)
  t.same(tokens.verify(wrongKey), { ok: false, reason: 'bad_signature' }, 'signed with another secret')

  // HS/RS confusion: an RS256 header over an HMAC made with the secret as if it were a public key.
  const rsHeader = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'default' })).toString('base64url')
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url')
  const forged = createHmac('sha256', SECRET).update(`${rsHeader}.${body}`).digest('base64url')
  t.same(tokens.verify(`${rsHeader}.${body}.${forged}`), { ok: false, reason: 'bad_signature' }, 'RS256 header')

  const hs512 = createSigner({ key: SECRET, algorithm: 'HS512', kid: 'default' })(claims)
  t.same(tokens.verify(hs512), { ok: false, reason: 'bad_signature' }, 'algorithm is pinned to HS256')

  t.same(tokens.verify(craftToken({ alg: 'HS256', kid: 'nobody' }, claims, s)), { ok: false, reason: 'bad_signature' }, 'unknown kid')
})

t.test('malformed and oversized strings are malformed', async (t) => {
  const tokens = new TokenService({ secret: SECRET })
  for (const bad of ['', 'abc', 'a.b', 'a.b.c', '...', '%%%.%%%.%%%', 'eyJhbGciOiJIUzI1NiJ9', `${'x'.repeat(MAX_TOKEN_LENGTH + 1)}`]) {
    t.same(tokens.verify(bad), { ok: false, reason: 'malformed' }, JSON.stringify(bad.slice(0, 20)))
  }
  t.same(tokens.verify(42 as unknown as string), { ok: false, reason: 'malformed' })
  // Validly signed, but not a session token.
  const notSession = createSigner({ key: SECRET, kid: 'default' })({ sub: 'alice' })
  t.same(tokens.verify(notSession), { ok: false, reason: 'malformed' })
})

t.test('expiry is left to the registry clock, not checked here', async (t) => {
  const tokens = new TokenService({ secret: SECRET })
  const expired = tokens.sign({ ...claims, iat: now - 7200, exp: now - 3600 })
  const result = tokens.verify(expired)
  t.equal(result.ok, true)
  if (result.ok) t.equal(result.claims.exp, now - 3600)
})

t.test('key rotation: sign with the new kid, verify old and new until the old key is dropped', async (t) => {
  const before = new TokenService({ keys: [{ kid: '2026-10', secret: OTHER_SECRET }] })
  const oldToken = before.sign(claims)

  const during = new TokenService({ keys: [{ kid: '2026-11', secret: SECRET }, { kid: '2026-10', secret: OTHER_SECRET }] })
  t.equal(during.signingKid, '2026-11')
  const newToken = during.sign(claims)
  t.match(JSON.parse(Buffer.from(newToken.split('.')[0]!, 'base64url').toString()), { kid: '2026-11' })
  t.equal(during.verify(oldToken).ok, true, 'old kid still verifies')
  t.equal(during.verify(newToken).ok, true, 'new kid verifies')

  const pinned = new TokenService({ keys: [{ kid: '2026-11', secret: SECRET }, { kid: '2026-10', secret: OTHER_SECRET }], signingKid: '2026-10' })
  t.match(JSON.parse(Buffer.from(pinned.sign(claims).split('.')[0]!, 'base64url').toString()), { kid: '2026-10' })

  const after = new TokenService({ keys: [{ kid: '2026-11', secret: SECRET }] })
  t.same(after.verify(oldToken), { ok: false, reason: 'bad_signature' }, 'dropped kid no longer verifies')
  t.equal(after.verify(newToken).ok, true)

  // A token signed with the old key but relabelled with the new kid fails its signature.
  const [, body, sig] = oldToken.split('.')
  const relabelled = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: '2026-11' })).toString('base64url')}.${body}.${sig}`
  t.same(during.verify(relabelled), { ok: false, reason: 'bad_signature' })
})

const kidOf = (token: string): unknown => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid

t.test('secret rotation: previousSecrets verify, the current secret signs under its key id', async (t) => {
  const NEXT = 'the-next-secret-of-this-gateway-0123456789'
  // A gateway of today: one secret, kid `default`.
  const before = new TokenService({ secret: OTHER_SECRET })
  const beforeToken = before.sign(claims)
  t.equal(kidOf(beforeToken), 'default', 'one secret signs as it always has')
  t.same(before.otherProofKeys('a'.repeat(64)), [], 'and has no other proof key')
  t.same([...before.kids].sort(), [secretKeyId(OTHER_SECRET), 'default'].sort(), "and knows its own secret's key id")

  // Step 1: the next secret is accepted beside the current one, which still signs.
  const step1 = new TokenService({ secret: OTHER_SECRET, previousSecrets: [NEXT] })
  const step1Token = step1.sign(claims)
  t.equal(kidOf(step1Token), secretKeyId(OTHER_SECRET))
  t.equal(step1.verify(beforeToken).ok, true, 'a token of before the rotation')
  t.equal(before.verify(step1Token).ok, true, 'a gateway not restarted yet accepts what step 1 signs')
  t.equal(step1.proofKey('a'.repeat(64)), before.proofKey('a'.repeat(64)), 'the proof key a backend gets does not change in step 1')

  // Step 2: the swap.
  const after = new TokenService({ secret: NEXT, previousSecrets: [OTHER_SECRET] })
  const afterToken = after.sign(claims)
  t.equal(after.signingKid, secretKeyId(NEXT))
  t.equal(kidOf(afterToken), secretKeyId(NEXT))
  t.equal(after.verify(beforeToken).ok, true, 'a `default` token of the previous secret verifies after the swap')
  t.equal(after.verify(step1Token).ok, true)
  t.equal(after.verify(afterToken).ok, true)
  t.equal(step1.verify(afterToken).ok, true, 'a gateway still in step 1 accepts what a swapped one signs')
  t.equal(before.verify(afterToken).ok, false, 'one that skipped step 1 does not: hence the two steps')
  t.same(after.otherProofKeys('a'.repeat(64)), [before.proofKey('a'.repeat(64))], "the previous secret's proof key, for backends that hold it")
  t.same(step1.otherProofKeys('a'.repeat(64)), [after.proofKey('a'.repeat(64))], "and in step 1 the next one's")

  // Step 3: the previous secret dropped.
  const done = new TokenService({ secret: NEXT })
  t.equal(kidOf(done.sign(claims)), 'default', 'one secret again: `default`')
  t.equal(done.verify(afterToken).ok, true, 'tokens signed under the key id of the secret that is current')
  t.same(done.verify(beforeToken), { ok: false, reason: 'bad_signature' }, 'a token of the dropped secret is refused')
  t.same(done.verify(step1Token), { ok: false, reason: 'bad_signature' })

  // No kid at all: tried against each accepted secret too.
  const noKid = createSigner({ key: OTHER_SECRET })(claims)
  t.equal(after.verify(noKid).ok, true)
  t.same(done.verify(noKid), { ok: false, reason: 'bad_signature' })
  // A token of an accepted secret relabelled with another's key id fails its signature.
  const [, body, sig] = beforeToken.split('.')
  const relabelled = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: secretKeyId(NEXT) })).toString('base64url')}.${body}.${sig}`
  t.same(after.verify(relabelled), { ok: false, reason: 'bad_signature' })
  // A foreign-audience token of a previous secret is refused as such, not tried further.
  const audience = new TokenService({ secret: OTHER_SECRET, audience: 'elsewhere' }).sign(claims)
  t.same(new TokenService({ secret: NEXT, previousSecrets: [OTHER_SECRET], audience: 'here' }).verify(audience), { ok: false, reason: 'unknown' })
})

t.test('secret key ids: stable, distinct, and nothing of the secret', async (t) => {
  const kid = secretKeyId(SECRET)
  t.match(kid, /^fp-[A-Za-z0-9_-]{16}$/)
  t.equal(secretKeyId(SECRET), kid, 'every gateway with the secret finds the same')
  t.equal(secretKeyId(Buffer.from(SECRET)), kid, 'as a string or a Buffer')
  t.not(secretKeyId(OTHER_SECRET), kid)
  t.notOk(kid.includes(SECRET.slice(0, 6)))
})

t.test('previous secrets are checked', async (t) => {
  t.throws(() => new TokenService({ secret: SECRET, previousSecrets: ['short'] }), { code: 'MCPGW_REGISTRY_WEAK_SECRET' })
  t.throws(() => new TokenService({ secret: SECRET, previousSecrets: [SECRET] }), { code: 'MCPGW_REGISTRY_INVALID_OPTION' }, 'the current secret is not a previous one')
  t.throws(() => new TokenService({ secret: SECRET, previousSecrets: [OTHER_SECRET, OTHER_SECRET] }), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.throws(() => new TokenService({ keys: [{ kid: 'a', secret: SECRET }], previousSecrets: [OTHER_SECRET] }), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.throws(() => new TokenService({ secret: SECRET, previousSecrets: OTHER_SECRET as unknown as string[] }), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.throws(() => new TokenService({ secret: SECRET, signingKid: 'other' }), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.ok(new TokenService({ secret: SECRET, signingKid: 'default' }), 'naming the kid it signs with is fine')
  t.ok(new TokenService({ secret: SECRET, previousSecrets: [] }))
  const err = (() => { try { return new TokenService({ secret: SECRET, previousSecrets: [SECRET] }) && null } catch (e) { return e as Error } })()
  t.notMatch(err?.message ?? '', new RegExp(SECRET.slice(0, 12)), 'no secret in the error')
})

t.test('issuer and audience, when configured, are written and required', async (t) => {
  const tokens = new TokenService({ secret: SECRET, issuer: 'mcp-gw', audience: 'gateway-a' })
  const token = tokens.sign(claims)
  const result = tokens.verify(token)
  t.equal(result.ok, true)
  if (result.ok) t.match(result.claims, { iss: 'mcp-gw', aud: 'gateway-a' })
  const otherAudience = new TokenService({ secret: SECRET, issuer: 'mcp-gw', audience: 'gateway-b' })
  t.same(otherAudience.verify(token), { ok: false, reason: 'unknown' })
  const noIssuer = new TokenService({ secret: SECRET }).sign(claims)
  t.same(tokens.verify(noIssuer), { ok: false, reason: 'unknown' })
})

t.test('secrets and keys are checked', async (t) => {
  t.throws(() => new TokenService({ secret: 'short' }), { code: 'MCPGW_REGISTRY_WEAK_SECRET' })
  t.throws(() => new TokenService({ secret: 'x'.repeat(31) }), { code: 'MCPGW_REGISTRY_WEAK_SECRET' })
  t.ok(new TokenService({ secret: 'x'.repeat(32) }))
  t.ok(new TokenService({ secret: Buffer.alloc(32, 7) }))
  t.throws(() => new TokenService({}), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.throws(() => new TokenService({ secret: SECRET, keys: [{ kid: 'a', secret: SECRET }] }), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.throws(() => new TokenService({ keys: [{ kid: 'a', secret: SECRET }, { kid: 'a', secret: OTHER_SECRET }] }), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.throws(() => new TokenService({ keys: [{ kid: 'bad kid', secret: SECRET }] }), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.throws(() => new TokenService({ keys: [{ kid: 'a', secret: 'short' }] }), { code: 'MCPGW_REGISTRY_WEAK_SECRET' })
  t.throws(() => new TokenService({ keys: [{ kid: 'a', secret: SECRET }], signingKid: 'b' }), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  const err = (() => { try { return new TokenService({ secret: 'my-short-secret' }) && null } catch (e) { return e as Error } })()
  t.notMatch(err?.message ?? '', /my-short-secret/, 'the secret never appears in the error')
})

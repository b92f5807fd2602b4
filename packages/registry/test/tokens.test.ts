import { createHmac } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { TokenService, MAX_TOKEN_LENGTH } from '../src/tokens.js'
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

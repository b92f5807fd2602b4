import t from 'tap'
import { EMAIL_DOMAIN_PATTERN, errorBody, inAudience, LOGIN_GROUP_PATTERN, sessionKeyOf, SERVER_NAME_PATTERN, SERVER_SECRET_PATTERN, urlHost } from '../src/index.js'

t.test('the shared rules', async (t) => {
  t.equal(urlHost('::1'), '[::1]', 'IPv6 in brackets')
  t.equal(urlHost('127.0.0.1'), '127.0.0.1')
  t.equal(sessionKeyOf('alice', 'todoodles'), 'alice:todoodles:mcp-webui')
  t.equal(sessionKeyOf('alice', 'todoodles', 'x'), 'alice:todoodles:x')
  t.ok(SERVER_NAME_PATTERN.test('todo.v2_a-b'))
  t.notOk(SERVER_NAME_PATTERN.test('-x'))
  t.notOk(SERVER_NAME_PATTERN.test('a'.repeat(65)))
  t.ok(SERVER_SECRET_PATTERN.test('x'.repeat(32)))
  t.notOk(SERVER_SECRET_PATTERN.test('x'.repeat(31)))
  t.notOk(SERVER_SECRET_PATTERN.test(`${'x'.repeat(31)} `))
  t.same(errorBody(401, 'MCPGW_X', 'no'), { statusCode: 401, code: 'MCPGW_X', error: 'Unauthorized', message: 'no' }, 'the status text comes from the status, never says Bad Request for a 401')
  t.equal(errorBody(599, 'MCPGW_X', 'm').error, 'Error')
})

t.test('a registrant proof vouches for one identity, for a minute, by the owner of one secret', async (t) => {
  const { registrantProof, verifyRegistrantProof } = await import('../src/index.js')
  const owner = 'a'.repeat(64)
  const alice = { sessionId: 's1', userId: 'alice', serverType: 'mcp-webui', scopes: ['view', 'interact'] }
  const now = 1_800_000_000_000
  const proof = registrantProof(owner, alice, now)
  t.match(proof, /^1800000000\.[0-9a-f]{64}$/)
  t.equal(verifyRegistrantProof(proof, owner, alice, now + 59_000), true)
  t.equal(verifyRegistrantProof(proof, owner, alice, now + 61_000), false, 'a captured proof is useless after a minute')
  t.equal(verifyRegistrantProof(proof, owner, { ...alice, userId: 'bob' }, now), false, 'nor for another user')
  t.equal(verifyRegistrantProof(proof, owner, { ...alice, sessionId: 's2' }, now), false, 'nor another session')
  t.equal(verifyRegistrantProof(proof, owner, { ...alice, scopes: ['view'] }, now), false, 'nor other scopes')
  t.equal(verifyRegistrantProof(proof, owner, { ...alice, serverType: 'admin' }, now), false, 'nor another server type')
  t.equal(verifyRegistrantProof(proof, 'b'.repeat(64), alice, now), false, "nor with another registration's key")
  for (const bad of [undefined, '', proof.toUpperCase(), `${proof}x`, `x${proof}`, proof.replace('.', ','), '\u00e9'.repeat(75)]) {
    t.equal(verifyRegistrantProof(bad, owner, alice, now), false, JSON.stringify(bad))
  }
})

t.test('while a secret rotates, a proof under any key the gateway accepts vouches for the identity', async (t) => {
  const { IDENTITY_HEADERS, MAX_ROTATION_PROOFS, REGISTRANT_HEADER, REGISTRANT_ROTATION_HEADER, registrantProof, registrantRotationProof, verifyRegistrantProof, verifyRegistrantProofs } = await import('../src/index.js')
  const current = 'c'.repeat(64)
  const previous = 'p'.repeat(64)
  const older = 'o'.repeat(64)
  const alice = { sessionId: 's1', userId: 'alice', serverType: 'mcp-webui', scopes: ['view'] }
  const now = 1_800_000_000_000
  const proof = registrantProof(current, alice, now)
  const rotation = registrantRotationProof([previous, older], alice, now)!
  t.match(rotation, /^1800000000\.[0-9a-f]{64},1800000000\.[0-9a-f]{64}$/, 'one proof per other key, in the format of X-Mcpgw-Registrant')
  t.equal(registrantRotationProof([], alice, now), null, 'none without other keys: one secret, no header')
  t.equal(verifyRegistrantProof(proof, previous, alice, now), false, "a backend that holds the previous key cannot check X-Mcpgw-Registrant alone (today's failure)")

  t.equal(verifyRegistrantProofs(proof, rotation, current, alice, now), true, 'a backend that holds the current key: the primary proof')
  t.equal(verifyRegistrantProofs(proof, rotation, previous, alice, now), true, 'one that still holds the previous key: the rotation header')
  t.equal(verifyRegistrantProofs(proof, rotation, older, alice, now), true, 'and any other accepted key')
  t.equal(verifyRegistrantProofs(proof, undefined, current, alice, now), true, 'a gateway with one secret sends no rotation header')
  t.equal(verifyRegistrantProofs(proof, rotation, 'x'.repeat(64), alice, now), false, 'a key the gateway does not accept: nothing')
  t.equal(verifyRegistrantProofs(undefined, rotation, previous, alice, now), true, 'the rotation header alone is as good as it is')
  t.equal(verifyRegistrantProofs(proof, rotation, previous, { ...alice, userId: 'bob' }, now), false, 'the rotation proofs vouch for the same identity only')
  t.equal(verifyRegistrantProofs(proof, rotation, previous, alice, now + 61_000), false, 'and for a minute only')
  t.equal(verifyRegistrantProofs(proof, rotation.split(',').reverse().join(', '), previous, alice, now), true, 'in any order, spaces after commas allowed')
  for (const bad of [['x'], 42, rotation.replaceAll(',', ';'), `${rotation},`.repeat(MAX_ROTATION_PROOFS)]) {
    t.equal(verifyRegistrantProofs('nope', bad, previous, alice, now), false, `refused: ${JSON.stringify(bad).slice(0, 40)}`)
  }
  const many = Array.from({ length: MAX_ROTATION_PROOFS }, (_, i) => registrantProof(String(i).repeat(64), alice, now))
  t.equal(verifyRegistrantProofs('nope', [...many, registrantProof(previous, alice, now)].join(','), previous, alice, now), false, `only the first ${MAX_ROTATION_PROOFS} proofs are looked at`)
  t.equal(registrantRotationProof(Array.from({ length: 20 }, (_, i) => String(i)), alice, now)!.split(',').length, MAX_ROTATION_PROOFS, 'and no more are sent')

  t.ok((IDENTITY_HEADERS as readonly string[]).includes(REGISTRANT_ROTATION_HEADER), 'an identity header: only the gateway sets it')
  t.ok((IDENTITY_HEADERS as readonly string[]).includes(REGISTRANT_HEADER))
})

t.test('an audience: a group of the person\'s, or the domain of their verified email, in any case', async (t) => {
  const audience = { groups: ['ops', '/Team A/admins'], emailDomains: ['example.com'] }
  t.equal(inAudience(audience, { groups: ['staff', 'ops'] }), true)
  t.equal(inAudience(audience, { groups: ['/Team A/admins'] }), true, 'Keycloak-style group paths, spaces included')
  t.equal(inAudience(audience, { groups: ['OPS'] }), false, 'group names are exact')
  t.equal(inAudience(audience, { email: 'Bob@Example.COM' }), true, 'domains in any case')
  t.equal(inAudience(audience, { email: 'bob@sub.example.com' }), false, 'not a subdomain')
  t.equal(inAudience(audience, { email: 'bob@example.com.evil.test' }), false)
  t.equal(inAudience(audience, { email: 'example.com' }), false, 'no address, no domain')
  t.equal(inAudience(audience, {}), false)
  t.same(['ops', 'a b', 'x'.repeat(128), 'é-team'].map((g) => LOGIN_GROUP_PATTERN.test(g)), [true, true, true, true])
  t.same(['', 'a,b', 'a\nb', 'x'.repeat(129)].map((g) => LOGIN_GROUP_PATTERN.test(g)), [false, false, false, false])
  t.same(['example.com', 'a.b-c.example', 'Example.com', 'localhost', '-a.com', 'a..com'].map((d) => EMAIL_DOMAIN_PATTERN.test(d)), [true, true, false, false, false, false])
})

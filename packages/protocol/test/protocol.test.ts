import t from 'tap'
import { errorBody, sessionKeyOf, SERVER_NAME_PATTERN, SERVER_SECRET_PATTERN, urlHost } from '../src/index.js'

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

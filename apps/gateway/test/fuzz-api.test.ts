import fc from 'fast-check'
import t from 'tap'
import { buildGateway } from '../src/app.js'
import { API_KEY, testConfig } from './helpers.js'

const RUNS = Number(process.env.MCPGW_FUZZ_RUNS ?? 300)

t.test('fuzzed admin bodies, content types and keys: clear 4xx, never a 5xx, never a crash', async (t) => {
  const app = await buildGateway(testConfig({ apiKey: API_KEY }), { logLevel: 'silent' })
  t.teardown(() => app.close())
  const failures: unknown[] = []
  const onFailure = (err: unknown): void => { failures.push(err) }
  process.on('unhandledRejection', onFailure)
  t.teardown(() => process.off('unhandledRejection', onFailure))

  const field = fc.oneof(
    fc.string({ maxLength: 40 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
    fc.constantFrom('127.0.0.1', '169.254.169.254', '0x7f.1', '[::ffff:169.254.169.254]', 'localhost', '::1', 'fe80::1', '2130706433', '', '..', 'a:b', 'x'.repeat(300)),
    fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }), fc.object({ maxDepth: 2 })
  )
  const body = fc.oneof(
    fc.record({ serverName: field, host: field, port: field, protocol: field, metadata: field, userId: field, serverType: field, ttlSeconds: field, scopes: field, rotate: field, sessionId: field, sessionKey: field }, { requiredKeys: [] }),
    fc.jsonValue(),
    fc.string({ maxLength: 100 })
  )
  const call = fc.record({
    method: fc.constantFrom('POST', 'GET', 'DELETE', 'PUT'),
    url: fc.constantFrom('/register-server', '/create-session', '/revoke-session', '/register-server/x', '/discover-server/x', '/stats?users=true', '/discover-server/%2e%2e', '/register-server/%zz'),
    contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', ''),
    key: fc.constantFrom(API_KEY, `${API_KEY}x`, '', 'Bearer', API_KEY.slice(0, -1)),
    raw: fc.boolean(),
    body
  })
  const statuses = new Map<number, number>()
  await fc.assert(fc.asyncProperty(call, async (c) => {
    const payload = c.raw && typeof c.body === 'string' ? c.body : JSON.stringify(c.body)
    const res = await app.inject({
      method: c.method as 'POST',
      url: c.url,
      headers: { authorization: `Bearer ${c.key}`, ...(c.contentType !== '' && { 'content-type': c.contentType }) },
      ...(c.method !== 'GET' && { payload })
    })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode >= 500) return false
    if (res.statusCode >= 400) {
      const code = (res.json() as { code?: unknown }).code
      return typeof code === 'string' && code.startsWith('MCPGW_')
    }
    return true
  }), { numRuns: RUNS })
  t.same(failures, [], 'no unhandled rejection')
  t.comment(`figure: ${RUNS} calls; statuses ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok((await app.inject('/health')).statusCode === 200, 'still alive')
})

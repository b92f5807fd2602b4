import { STATUS_CODES } from 'node:http'
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
  // The routes the API has (most runs), and a few it has not, with their methods.
  const route = fc.oneof(
    {
      weight: 9,
      arbitrary: fc.constantFrom(
        ['POST', '/register-server'], ['POST', '/create-session'], ['POST', '/revoke-session'],
        ['DELETE', '/register-server/todoodles'], ['GET', '/discover-server/todoodles'], ['GET', '/servers'],
        ['GET', '/sessions?userId=alice&limit=5'], ['GET', '/sessions?limit=0'], ['GET', '/sessions?bogus=1'],
        ['GET', '/stats?byUser=true'], ['GET', '/stats?byUser=maybe']
      )
    },
    { weight: 1, arbitrary: fc.constantFrom(['PUT', '/register-server'], ['GET', '/create-session'], ['POST', '/nowhere'], ['GET', '/discover-server/%2e%2e'], ['DELETE', '/register-server/%zz']) }
  )
  const call = fc.record({
    route,
    contentType: fc.constantFrom('application/json', 'application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', ''),
    key: fc.oneof({ weight: 4, arbitrary: fc.constant(API_KEY) }, { weight: 1, arbitrary: fc.constantFrom(`${API_KEY}x`, '', 'Bearer', API_KEY.slice(0, -1)) }),
    secret: fc.constantFrom(undefined, 'fuzz-registrant-secret-0123456789abcdef', 'short', ''),
    raw: fc.boolean(),
    body
  })
  const statuses = new Map<number, number>()
  const codes = new Map<string, number>()
  let onRoutes = 0
  await fc.assert(fc.asyncProperty(call, async (c) => {
    const [method, url] = c.route as [string, string]
    const known = !['PUT /register-server', 'GET /create-session', 'POST /nowhere', 'GET /discover-server/%2e%2e', 'DELETE /register-server/%zz'].includes(`${method} ${url}`)
    if (known) onRoutes++
    const payload = c.raw && typeof c.body === 'string' ? c.body : JSON.stringify(c.body)
    const res = await app.inject({
      method: method as 'POST',
      url,
      headers: {
        authorization: `Bearer ${c.key}`,
        ...(c.contentType !== '' && { 'content-type': c.contentType }),
        ...(c.secret !== undefined && { 'x-mcpgw-server-secret': c.secret })
      },
      ...(method !== 'GET' && { payload })
    })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode >= 500) return false
    if (res.statusCode < 400) return true
    const answer = res.json() as { code?: unknown, error?: unknown, statusCode?: unknown }
    const code = String(answer.code)
    codes.set(code, (codes.get(code) ?? 0) + 1)
    // The one error body, its status text from the status: never "Bad Request" for a 401.
    if (answer.statusCode !== res.statusCode || answer.error !== STATUS_CODES[res.statusCode]) return false
    // The API's own codes on its routes (its error handler at work); elsewhere the gateway's
    // 404, or its refusal of a path that does not decode.
    return known ? /^MCPGW_(API|REGISTRY)_[A-Z_]+$/.test(code) : ['MCPGW_NOT_FOUND', 'MCPGW_PROXY_BAD_PATH', 'MCPGW_PROXY_BAD_REQUEST'].includes(code)
  }), { numRuns: RUNS })
  t.ok(onRoutes / RUNS > 0.8, `most runs aim at routes that exist (${onRoutes} of ${RUNS})`)
  t.ok((statuses.get(200) ?? 0) + (statuses.get(201) ?? 0) > 0, 'some calls got through to the registry')
  t.comment(`figure: codes ${JSON.stringify(Object.fromEntries(codes))}`)
  t.same(failures, [], 'no unhandled rejection')
  t.comment(`figure: ${RUNS} calls; statuses ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok((await app.inject('/health')).statusCode === 200, 'still alive')
})

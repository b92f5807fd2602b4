import { createServer } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { eventually } from '@mcp-gw/testkit'
import { createGatewayClient } from '../src/client.js'
import { GatewayApi, parseIssuedSession, parseRegistration, parseRevoked } from '../src/gateway-api.js'
import { API_KEY, quietLogger } from './helpers.js'

const MALFORMED = 'MCPGW_SDK_MALFORMED_ANSWER'
const later = (): string => new Date(Date.now() + 60_000).toISOString()

interface Canned { status?: number, body: string | object, headers?: Record<string, string> }

/** A stand-in for the gateway: answers each `METHOD /path` (query left out) as told, and counts the calls. */
async function fakeGateway (t: Test, answers: Record<string, Canned>): Promise<{ url: string, calls: (route: string) => number, headers: IncomingHttpHeaders[] }> {
  const counts = new Map<string, number>()
  const headers: IncomingHttpHeaders[] = []
  const server = createServer((req, res) => {
    const route = `${req.method} ${(req.url ?? '').split('?')[0]}`.replace(/^DELETE \/register-server\/.*/, 'DELETE /register-server')
    counts.set(route, (counts.get(route) ?? 0) + 1)
    headers.push(req.headers)
    req.resume().on('end', () => {
      const canned: Canned = answers[route] ?? { status: 404, body: { code: 'MCPGW_NOT_FOUND' } }
      const text = typeof canned.body === 'string' ? canned.body : JSON.stringify(canned.body)
      res.writeHead(canned.status ?? 200, { 'content-type': typeof canned.body === 'string' ? 'text/html' : 'application/json', ...canned.headers }).end(text)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls: (route) => counts.get(route) ?? 0, headers }
}

const registered = { body: { serverName: 'todoodles', expiresAt: later(), instanceId: 'instance-0001', proofKey: 'k'.repeat(64), linkOrigin: 'https://gw.example' } }
const deregistered = { status: 204, body: '' }

t.test('a register-server answer: the fields the client reads, each checked', async (t) => {
  const expiresAt = later()
  t.same(parseRegistration({ expiresAt, linkOrigin: 'https://gw.example', proofKey: 'p', instanceId: 'i', host: '127.0.0.1' }),
    { expiresAt: new Date(expiresAt), linkOrigin: 'https://gw.example', proofKey: 'p', instanceId: 'i' })
  t.same(parseRegistration({ expiresAt }), { expiresAt: new Date(expiresAt) }, 'an older gateway: no proof key, link origin or instance')
  const malformed: Array<[unknown, RegExp]> = [
    [null, /expected a JSON object/],
    ['<html>', /expected a JSON object/],
    [[{ expiresAt }], /expected a JSON object/],
    [{}, /expiresAt is not a string/],
    [{ expiresAt: Date.now() }, /expiresAt is not a string/],
    [{ expiresAt: 'soon' }, /expiresAt is not a date/],
    [{ expiresAt, proofKey: 42 }, /proofKey is not a string/],
    [{ expiresAt, linkOrigin: null }, /linkOrigin is not a string/],
    [{ expiresAt, instanceId: { id: 'i' } }, /instanceId is not a string/]
  ]
  for (const [answer, message] of malformed) {
    t.throws(() => parseRegistration(answer), { code: MALFORMED, message }, JSON.stringify(answer))
  }
  t.throws(() => parseRegistration({}), { message: /POST \/register-server/ }, 'the error names the call')
})

t.test('a create-session answer: url, token, expiresAt and sessionId, each checked', async (t) => {
  const expiresAt = later()
  const good = { token: 'a.b.c', url: 'https://gw.example/mcp/a.b.c/', expiresAt, sessionKey: 'alice:todoodles:mcp-webui', sessionId: 's1', created: true }
  t.same(parseIssuedSession(good), { url: good.url, token: 'a.b.c', expiresAt: new Date(expiresAt), sessionId: 's1' })
  for (const field of ['url', 'token', 'expiresAt', 'sessionId'] as const) {
    const { [field]: _left, ...without } = good
    t.throws(() => parseIssuedSession(without), { code: MALFORMED, message: new RegExp(`${field} is not a string`) }, `without ${field}`)
    t.throws(() => parseIssuedSession({ ...good, [field]: 7 }), { code: MALFORMED }, `${field} a number`)
  }
  t.throws(() => parseIssuedSession({ ...good, expiresAt: 'never' }), { code: MALFORMED, message: /expiresAt is not a date/ })
  t.throws(() => parseIssuedSession(null), { code: MALFORMED, message: /POST \/create-session/ })
})

t.test('a revoke-session answer: a count', async (t) => {
  t.equal(parseRevoked({ revoked: 0 }), 0)
  t.equal(parseRevoked({ revoked: 3 }), 3)
  for (const revoked of [undefined, '3', -1, 1.5, Number.MAX_VALUE, null]) {
    t.throws(() => parseRevoked({ revoked }), { code: MALFORMED, message: /revoked is not a count/ }, String(revoked))
  }
})

t.test('GatewayApi: refusals keep their codes and fields; a 2xx it cannot read is MALFORMED_ANSWER', async (t) => {
  const gw = await fakeGateway(t, {
    'POST /register-server': { body: '<html>a captive portal</html>' },
    'POST /create-session': { status: 429, body: { statusCode: 429, code: 'MCPGW_REGISTRY_RATE_LIMITED' }, headers: { 'retry-after': '2' } },
    'POST /revoke-session': { status: 503, body: { code: 503 } },
    'DELETE /register-server': { status: 404, body: { code: 'MCPGW_REGISTRY_SERVER_NOT_REGISTERED' } }
  })
  const api = new GatewayApi({ url: gw.url, apiKey: API_KEY, secret: 's'.repeat(32), serverName: 'todoodles', timeoutMs: 2000 })
  await t.rejects(api.register({ serverName: 'todoodles', host: '127.0.0.1', port: 12890, incarnation: 'i'.repeat(22) }), { code: MALFORMED, message: /expected a JSON object/ })
  await t.rejects(api.createSession({ userId: 'alice', serverName: 'todoodles' }),
    { code: 'MCPGW_SDK_REQUEST_FAILED', gatewayStatus: 429, gatewayCode: 'MCPGW_REGISTRY_RATE_LIMITED', retryAfterSeconds: 2 })
  await t.rejects(api.revokeSession({ sessionId: 's1' }), { code: 'MCPGW_SDK_REQUEST_FAILED', gatewayStatus: 503, gatewayCode: '' }, 'a code that is not a string is no code')
  await api.deregister('instance-0001')
  t.pass('a deregistration the gateway no longer knows of is done')
  t.equal(gw.headers[0]!.authorization, `Bearer ${API_KEY}`)
  t.equal(gw.headers[0]!['x-mcpgw-incarnation'], undefined, 'no incarnation unless the call gives one')
  await api.createSession({ userId: 'alice', serverName: 'todoodles' }, { incarnation: 'i'.repeat(22) }).catch(() => {})
  t.equal(gw.headers.at(-1)!['x-mcpgw-incarnation'], 'i'.repeat(22))
})

t.test('a malformed register answer: a coded rejection and retries, never a crash, an unreachable state or a direct link', async (t) => {
  const gw = await fakeGateway(t, { 'POST /register-server': { body: { serverName: 'todoodles', expiresAt: 'tomorrow' } }, 'DELETE /register-server': deregistered })
  const logger = quietLogger()
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger, registerTimeoutMs: 300, fallback: 'direct' })
  t.teardown(() => client.close())
  const events: string[] = []
  for (const event of ['registered', 'unreachable', 'direct', 'refused'] as const) client.on(event, () => events.push(event))
  await t.rejects(client.register({ host: '127.0.0.1', port: 12891 }), { code: MALFORMED, message: /expiresAt is not a date/ })
  await eventually(() => gw.calls('POST /register-server') >= 3, { within: 5000, what: 'three registration tries' })
  t.equal(client.state, 'connecting', 'the gateway answered: it is there, just not understood')
  t.same(events, [], 'no unreachable, no direct links')
  t.equal(logger.warnings.length, 1, 'one warning, however many tries')
  t.match(JSON.stringify(logger.warnings[0]), /malformed/)
  await t.rejects(client.createSession('alice'), { code: MALFORMED }, 'createSession says why')
})

t.test('a malformed create-session or revoke-session answer: a coded error, still registered', async (t) => {
  const gw = await fakeGateway(t, {
    'POST /register-server': registered,
    'POST /create-session': { status: 201, body: { url: 'https://gw.example/mcp/a.b.c/', expiresAt: later(), sessionId: 's1' } },
    'POST /revoke-session': { body: { revoked: 'all' } },
    'DELETE /register-server': deregistered
  })
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger(), fallback: 'direct' })
  t.teardown(() => client.close())
  await client.register({ host: '127.0.0.1', port: 12892 })
  t.same(client.linkOrigins, ['https://gw.example', 'http://127.0.0.1:12892'], 'what the good register answer said was taken')
  await t.rejects(client.createSession('alice'), { code: MALFORMED, message: /POST \/create-session is malformed: token is not a string/ })
  t.equal(gw.calls('POST /create-session'), 1, 'asked once: a malformed answer is not a reason to register again')
  await t.rejects(client.revokeSession({ userId: 'alice' }), { code: MALFORMED, message: /revoked is not a count/ })
  t.equal(client.state, 'registered')
})

import { createServer as createNetServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { IncomingMessage, ServerResponse, createServer as createHttpServer } from 'node:http'
import { Socket } from 'node:net'
import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import t from 'tap'
import type { Test } from 'tap'
import { registrantProof } from '@mcp-gw/protocol'
import { backoffMs, createGatewayClient } from '../src/client.js'
import type { ClientState } from '../src/client.js'
import { mcpUserId } from '../src/identity.js'
import { closeOnExit } from '../src/lifecycle.js'
import { LINK_META_KEY, MCP_APP_MIME_TYPE, mcpAppBridge, supportsMcpApps } from '../src/mcp-app.js'
import { startWebUI } from '../src/web-ui.js'
import { eventually, freePort } from '@mcp-gw/testkit'
import { API_KEY, quietLogger, startGateway } from './helpers.js'

/** A gateway behind a proxy that cannot reach it: every call is a 502, and each try is counted. */
async function droppingGateway (t: Test): Promise<{ url: string, tries: () => number }> {
  let tries = 0
  const server = createHttpServer((_req, res) => { tries++; res.writeHead(502, { connection: 'close' }).end() })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tries: () => tries }
}

function states (client: { on: (event: any, fn: (...args: any[]) => void) => unknown }): string[] {
  const seen: string[] = []
  for (const event of ['registered', 'unreachable', 'direct', 'refused', 'closed']) client.on(event, () => seen.push(event))
  return seen
}

t.test('an unreachable gateway: one warning and one event however many retries, then registered when it answers', async (t) => {
  const gateway = await droppingGateway(t)
  const logger = quietLogger()
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gateway.url, apiKey: API_KEY, logger })
  t.teardown(() => client.close())
  const seen = states(client)
  client.register({ host: '127.0.0.1', port: 12870 }).catch(() => {})
  await eventually(() => gateway.tries() >= 4, { within: 10_000, what: 'four registration tries' })
  t.equal(client.state, 'unreachable' satisfies ClientState)
  t.same(seen, ['unreachable'], 'one event for the change, not one per try')
  t.equal(logger.warnings.length, 1, 'one warning for the change, not one per try')
  t.match(JSON.stringify(logger.warnings[0]), /cannot be reached/)
})

t.test('the gateway went away (its watch ended): the client asks again at least every second while it restarts, and is back at once', async (t) => {
  let restarting = false
  let watch: ServerResponse | null = null
  const tries: number[] = []
  const server = createHttpServer((req, res) => {
    req.resume()
    if (req.url?.startsWith('/register-server/todoodles/watch?') === true && !restarting) {
      res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'close' }).write(': watching\n\n')
      watch = res
    } else if (req.method === 'POST' && req.url === '/register-server') {
      if (restarting) {
        tries.push(Date.now())
        res.writeHead(502, { connection: 'close' }).end()
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ expiresAt: new Date(Date.now() + 90_000).toISOString(), instanceId: 'instance-0001' }))
      }
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{}')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => client.close())
  await client.register({ host: '127.0.0.1', port: 12871 })
  await eventually(() => watch !== null, { within: 5000, what: 'the watch held open' })
  restarting = true
  const wentAway = Date.now()
  watch!.end()
  await new Promise((resolve) => setTimeout(resolve, 5000))
  const gaps = [...tries, Date.now()].map((at, i, all) => at - (i === 0 ? wentAway : all[i - 1]!))
  t.ok(Math.max(...gaps) <= 1100, `a try at least every second (gaps ${gaps.join(', ')} ms); the usual backoff reaches 2-4 s by the fifth`)
  restarting = false
  const back = Date.now()
  await eventually(() => client.state === 'registered', { within: 1500, what: 'registered again once the gateway answers' })
  t.pass(`registered ${Date.now() - back} ms after the gateway answered again`)
})

t.test('a registered client holding its watch does not keep the process alive by itself', async (t) => {
  const gateway = await startGateway(t)
  const dist = new URL('../dist/index.js', import.meta.url).href
  const script = `import { createGatewayClient } from ${JSON.stringify(dist)}
const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: ${JSON.stringify(gateway.url)}, apiKey: ${JSON.stringify(API_KEY)}, logger: { info () {}, warn () {}, debug () {} } })
await client.register({ host: '127.0.0.1', port: 12872 })
await new Promise((resolve) => setTimeout(resolve, 300))
console.log(client.state)`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const deadline = setTimeout(() => { child.kill('SIGKILL') }, 5000)
  t.teardown(() => { clearTimeout(deadline); child.kill('SIGKILL') })
  const code = await exited
  t.equal(out.trim(), 'registered', 'it registered (and its watch was open)')
  t.equal(code, 0, 'then the process exited on its own, within 5 s')
})

t.test('the backoff is capped and jittered', async (t) => {
  t.equal(backoffMs(0, () => 0), 125)
  t.equal(backoffMs(0, () => 1), 250)
  t.equal(backoffMs(3, () => 1), 2000)
  t.equal(backoffMs(50, () => 1), 15_000, 'capped')
  t.equal(backoffMs(50, () => 0), 7500, 'never less than half the cap')
})

t.test("fallback 'direct': direct links at once while the gateway is down, gateway links again as soon as it answers", async (t) => {
  const port = await freePort()
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: `http://127.0.0.1:${port}`, apiKey: API_KEY, logger: quietLogger(), fallback: 'direct' })
  t.teardown(() => client.close())
  const seen = states(client)
  const started = Date.now()
  const ui = await startWebUI((_req, res) => res.end('ui'), { portRange: [12000, 13000], client })
  t.teardown(() => ui.close())
  t.ok(Date.now() - started < 1000, 'startWebUI returns without waiting for the gateway')
  await client.ready
  t.equal(client.state, 'direct')
  const direct = await client.createSession('alice')
  t.ok(Date.now() - started < 1000, 'a direct link within a second of start')
  t.equal(direct.via, 'direct')
  t.equal(direct.url, `http://127.0.0.1:${ui.port}/?token=${direct.token}`)
  t.same(client.validateDirectToken(direct.token), { userId: 'alice' })
  t.same(client.linkOrigins, [`http://127.0.0.1:${port}`, `http://127.0.0.1:${ui.port}`])

  const gw = await startGateway(t, port)
  // The next call finds the gateway (no waiting for the backoff loop) and registers before it asks.
  const link = await client.createSession('alice')
  t.equal(link.via, 'gateway')
  t.match(link.url, /^https:\/\/gw\.example\/mcp\//)
  t.equal((await gw.app.mcpRegistry.validate(link.token)).valid, true)
  t.equal((await gw.app.mcpRegistry.discover('todoodles'))?.port, ui.port)
  t.equal(client.state, 'registered')
  t.same(seen, ['unreachable', 'direct', 'registered'])
  t.same(client.linkOrigins, ['https://gw.example', `http://127.0.0.1:${ui.port}`], "the gateway's public origin, as it reported it")

  // Down again: the next call notices, and falls back again.
  await gw.app.close()
  t.equal((await client.createSession('alice')).via, 'direct')
  t.equal(client.state, 'direct')
})

t.test('without the fallback, an unreachable gateway is an error, and startWebUI still returns at once', async (t) => {
  const port = await freePort()
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: `http://127.0.0.1:${port}`, apiKey: API_KEY, logger: quietLogger(), registerTimeoutMs: 200 })
  t.teardown(() => client.close())
  const ui = await startWebUI((_req, res) => res.end('ui'), { portRange: [12000, 13000], client })
  t.teardown(() => ui.close())
  await t.rejects(client.createSession('alice'), { code: 'MCPGW_SDK_GATEWAY_UNREACHABLE' })
  t.equal(client.state, 'unreachable')
})

t.test('a wrong API key stops registration: no retries, ready rejects, createSession says why', async (t) => {
  const gw = await startGateway(t)
  let calls = 0
  gw.app.server.on('request', (req: IncomingMessage) => { if (req.url === '/register-server') calls++ })
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: 'not-the-key-0123456789', logger: quietLogger() })
  t.teardown(() => client.close())
  const seen = states(client)
  client.register({ host: '127.0.0.1', port: 12871 }).catch(() => {})
  await t.rejects(client.ready, { code: 'MCPGW_SDK_UNAUTHORIZED' })
  await t.rejects(client.createSession('alice'), { code: 'MCPGW_SDK_UNAUTHORIZED' })
  t.equal(calls, 1, 'createSession did not try to register again')
  t.same(seen, ['refused'])
})

t.test('close deregisters within its bound even when the gateway hangs, and the client is done', async (t) => {
  // Accepts and never answers.
  const held: Socket[] = []
  const server = createNetServer((socket) => { held.push(socket) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of held) s.destroy(); server.close() })
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey: API_KEY, logger: quietLogger() })
  client.register({ host: '127.0.0.1', port: 12872 }).catch(() => {})
  const started = Date.now()
  await client.close({ timeoutMs: 300 })
  t.ok(Date.now() - started < 2000, 'bounded')
  t.equal(client.state, 'closed')
  await t.rejects(client.createSession('alice'), { code: 'MCPGW_SDK_CLOSED' })
})

function fakeRequest (url: string, headers: Record<string, string>): IncomingMessage {
  const req = new IncomingMessage(new Socket())
  req.url = url
  req.headers = headers
  return req
}

t.test('authenticate: gateway headers only with the proof of this registrant; direct tokens by query, then by cookie', async (t) => {
  const serverSecret = 'authenticate-test-secret-0123456789abcdef'
  const gw = await startGateway(t)
  const viaGateway = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger(), serverSecret })
  t.teardown(() => viaGateway.close())
  await viaGateway.register({ host: '127.0.0.1', port: 12880 })
  // The key the gateway derived for this registration (from its own secret), and gave the client.
  const ownerHash = createHash('sha256').update(serverSecret).digest('hex')
  const proofKey = gw.app.mcpRegistry.tokens.proofKey(ownerHash)
  const alice = { sessionId: 'sid', userId: 'alice@example.com', serverType: 'mcp-webui', scopes: ['view'] }
  const proof = registrantProof(proofKey, alice)
  const identity = { 'x-mcpgw-user-id': 'alice%40example.com', 'x-mcpgw-session-id': 'sid', 'x-mcpgw-server-type': 'mcp-webui', 'x-mcpgw-scopes': 'view' }
  t.same(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-registrant': proof })), { userId: 'alice@example.com', via: 'gateway', scopes: ['view'], interact: false, sessionId: 'sid' }, 'a view-only session: interact false, so a WebSocket\'s writes are refused')
  t.equal(viaGateway.authenticate(fakeRequest('/', identity)), null, 'identity headers without the proof: anyone on the network could send them')
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-registrant': registrantProof(ownerHash, alice) })), null, 'a proof made with the owner hash (what a leaked store holds)')
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-user-id': 'bob', 'x-mcpgw-registrant': proof })), null, 'a captured proof does not vouch for another user')
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-server-type': 'admin', 'x-mcpgw-registrant': proof })), null, 'nor another server type')
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-registrant': registrantProof(proofKey, alice, Date.now() - 120_000) })), null, 'nor for long: a proof two minutes old')
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-registrant': '\u00e9'.repeat(64) })), null, 'a non-ASCII proof is refused, not a crash')
  // A rotation of the gateway's secret: the primary proof under a key this process does not
  // hold yet (its next heartbeat brings it), the one it holds in X-Mcpgw-Registrant-Rotation.
  const otherKey = 'n'.repeat(64)
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-registrant': registrantProof(otherKey, alice) })), null, 'a proof under a key it does not hold is nothing')
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-registrant': registrantProof(otherKey, alice), 'x-mcpgw-registrant-rotation': `${registrantProof('o'.repeat(64), alice)},${proof}` }))?.userId, 'alice@example.com',
    'during a rotation, its own key in the rotation header vouches')
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-registrant': registrantProof(otherKey, alice), 'x-mcpgw-registrant-rotation': registrantProof(otherKey, alice) })), null, 'and only its own key')
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-user-id': 'bob', 'x-mcpgw-registrant': registrantProof(otherKey, alice), 'x-mcpgw-registrant-rotation': proof })), null, 'for the identity it was made for only')
  const ownInstance = (await gw.app.mcpRegistry.discover('todoodles'))!.instanceId
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-instance-id': ownInstance, 'x-mcpgw-registrant': proof }))?.userId, 'alice@example.com', 'a session of this instance')
  t.equal(viaGateway.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-instance-id': 'another-instance-00001', 'x-mcpgw-registrant': proof })), null,
    'a session of another instance of the same secret (a stopped process whose address this one took): refused')

  const client = createGatewayClient({ serverName: 'todoodles', env: {}, logger: quietLogger(), serverSecret })
  await client.register({ host: '127.0.0.1', port: 12873 })
  t.equal(client.authenticate(fakeRequest('/', { ...identity, 'x-mcpgw-registrant': proof })), null, 'direct mode: no gateway, no gateway headers')
  const link = await client.createSession('bob')
  const res = new ServerResponse(fakeRequest('/', {}))
  t.match(client.authenticate(fakeRequest(`/?token=${link.token}`, {}), res), { userId: 'bob', via: 'direct', interact: true })
  const cookie = (res.getHeader('set-cookie') as string[])[0]!
  t.match(cookie, new RegExp(`^mcpgw_direct_12873=${link.token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=\\d+$`))
  t.match(client.authenticate(fakeRequest('/api/todos', { host: '127.0.0.1:12873', cookie: `other=1; ${cookie.split(';')[0]!}` })), { userId: 'bob', via: 'direct' }, 'the page\'s own requests carry the cookie')
  t.equal(client.authenticate(fakeRequest('/api/todos', { host: 'mybox.lan:12873', cookie: cookie.split(';')[0]! })), null, 'not on a plain-http LAN name, where browsers send no Fetch Metadata')
  t.match(client.authenticate(fakeRequest('/api/todos', { host: 'mybox.lan:12873', 'sec-fetch-site': 'same-origin', cookie: cookie.split(';')[0]! })), { userId: 'bob' }, 'there only with Fetch Metadata (https)')
  for (const host of ['MYBOX.LAN:12873', 'mybox.lan.:12873', 'localhost.:12873', '127.0.0.1.nip.io:12873', '[::ffff:7f00:1]:12873']) {
    t.equal(client.authenticate(fakeRequest('/ws', { host, origin: `http://${host.toLowerCase()}`, upgrade: 'websocket', cookie: cookie.split(';')[0]! })), null, `nor a WebSocket handshake on ${host}, even from its own origin`)
  }
  t.equal(client.authenticate(fakeRequest('/api/todos', { cookie: `mcpgw_direct_12999=${link.token}` })), null, "another port's cookie name")
  t.equal(client.authenticate(fakeRequest('/?token=forged', {})), null)
  const own = cookie.split(';')[0]!
  t.equal(client.authenticate(fakeRequest('/ws', { cookie: own, host: '127.0.0.1:12873', origin: 'http://127.0.0.1:12999' })), null, 'a page on another port (same-site, so it has the cookie) cannot use it for a WebSocket')
  t.match(client.authenticate(fakeRequest('/ws', { cookie: own, host: '127.0.0.1:12873', origin: 'http://127.0.0.1:12873' })), { userId: 'bob' }, 'its own page can')
  t.equal(client.authenticate(fakeRequest('/api', { cookie: own, host: '127.0.0.1:12873', 'sec-fetch-site': 'same-site' })), null, 'nor for a fetch another origin starts')
  const framedRes = new ServerResponse(fakeRequest('/', {}))
  const framedLink = await client.createSession('bob')
  client.authenticate(fakeRequest(`/?token=${framedLink.token}`, { 'sec-fetch-dest': 'iframe', 'sec-fetch-site': 'cross-site' }), framedRes)
  t.match((framedRes.getHeader('set-cookie') as string[])[0], /; HttpOnly; Secure; Partitioned; SameSite=None; Max-Age=\d+$/, "in another site's frame (an MCP Apps host) the cookie is partitioned, or it would never be sent there")
  await t.rejects(client.createSession('bob', { ttlSeconds: Infinity }), { code: 'MCPGW_SDK_INVALID_OPTION' })
  await client.revokeSession({ userId: 'bob' })
  t.equal(client.authenticate(fakeRequest('/', { cookie: cookie.split(';')[0]! })), null, 'revoked')
})

t.test('mcpUserId: the authenticated subject, else the local user; never anything else', async (t) => {
  t.equal(mcpUserId({ authInfo: { clientId: 'claude', extra: { sub: 'user-42' } } }), 'user-42')
  t.throws(() => mcpUserId({ authInfo: { clientId: 'claude' } }), { code: 'MCPGW_SDK_NO_SUBJECT' }, 'never the client id: every user of one OAuth client shares it')
  t.equal(mcpUserId({ authInfo: { clientId: 'claude', extra: { email: 'a@example.com' } } }, { fromAuth: (auth) => auth.extra?.email as string }), 'a@example.com')
  t.equal(mcpUserId({}, { env: { MCP_WEB_UI_LOCAL_USER: 'carol' } }), 'carol')
  t.equal(mcpUserId(undefined, { localUser: 'dave', env: { MCP_WEB_UI_LOCAL_USER: 'carol' } }), 'dave')
  const { userInfo } = await import('node:os')
  t.equal(mcpUserId({}, { env: {} }), userInfo().username, 'the OS user by default, on stdio')
  t.equal(mcpUserId({ arguments: { userId: 'mallory' } } as never, { env: { MCP_WEB_UI_LOCAL_USER: 'carol' } }), 'carol', 'arguments are not read')
})

t.test('mcpUserId over HTTP without auth: the platform says who, never the OS user', async (t) => {
  const http = (headers: Record<string, string>) => ({ requestInfo: { headers } })
  t.throws(() => mcpUserId(http({}), { env: {} }), { code: 'MCPGW_SDK_NO_SUBJECT' }, 'nothing configured: refused, not the OS user every user would share')
  t.equal(mcpUserId(http({}), { env: { MCP_WEB_UI_LOCAL_USER: 'carol' } }), 'carol', 'a process per user: its environment says who')
  t.equal(mcpUserId(http({}), { localUserEnv: 'LIBRECHAT_USER', env: { LIBRECHAT_USER: 'dave' } }), 'dave', 'under a variable name of the author\'s choosing')
  const env = { MCP_WEB_UI_USER_HEADER: 'X-User-ID', MCP_WEB_UI_PLATFORM_TOKEN: 'platform-token-0123456789' }
  t.equal(mcpUserId(http({ 'x-user-id': 'erin', authorization: 'Bearer platform-token-0123456789' }), { env }), 'erin', 'a user header beside the platform credential')
  t.throws(() => mcpUserId(http({ 'x-user-id': 'erin' }), { env }), { code: 'MCPGW_SDK_PLATFORM_CREDENTIAL' }, 'without the credential: refused')
  t.throws(() => mcpUserId(http({ 'x-user-id': 'erin', authorization: 'Bearer platform-token-012345678' }), { env }), { code: 'MCPGW_SDK_PLATFORM_CREDENTIAL' }, 'a near miss too')
  t.throws(() => mcpUserId(http({ 'x-user-id': 'erin', authorization: 'platform-token-0123456789' }), { env }), { code: 'MCPGW_SDK_PLATFORM_CREDENTIAL' }, 'not as a bearer')
  t.throws(() => mcpUserId(http({ authorization: 'Bearer platform-token-0123456789' }), { env }), { code: 'MCPGW_SDK_NO_SUBJECT' }, 'the credential without a user')
  t.equal(mcpUserId(http({ 'x-user-id': 'erin', 'x-platform': 'platform-token-0123456789' }), { env: { ...env, MCP_WEB_UI_PLATFORM_TOKEN_HEADER: 'X-Platform' } }), 'erin', 'the credential in a header of the platform\'s own')
  t.throws(() => mcpUserId(http({ 'x-user-id': 'erin' }), { env: { MCP_WEB_UI_USER_HEADER: 'X-User-ID' } }), { code: 'MCPGW_SDK_INVALID_OPTION' }, 'a user header is never believed without a configured credential')
  t.equal(mcpUserId({ authInfo: { extra: { sub: 'frank' } }, requestInfo: { headers: { 'x-user-id': 'erin' } } }, { env }), 'frank', 'auth, when there is some, wins')
  t.throws(() => mcpUserId({}, { env }), { code: 'MCPGW_SDK_NO_SUBJECT' }, 'a server set up for platform users never falls back to the OS user, even on a transport that passes no headers')
})

t.test('closeOnExit: closes in order on a signal, then exits; bounded when a close hangs', async (t) => {
  const order: string[] = []
  let exited: number | null = null
  const shutdown = closeOnExit([
    { close: async () => { order.push('ui') } },
    { close: async () => { order.push('client'); await new Promise(() => {}) } }
  ], { signals: ['SIGUSR2'], stdin: false, uncaught: false, timeoutMs: 200, exit: (code) => { exited = code } })
  const started = Date.now()
  process.emit('SIGUSR2' as never)
  await eventually(() => exited !== null, { within: 2000, what: 'exit' })
  t.ok(Date.now() - started < 1000, 'within the bound')
  t.same(order, ['ui', 'client'])
  t.equal(exited, 0)
  await shutdown(1)
  t.equal(exited, 0, 'once only')
})

t.test('the MCP Apps bridge: a ui:// shell allowed to frame the link origins; the link in _meta, not in the text, for hosts with MCP Apps', async (t) => {
  const gw = await startGateway(t)
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => client.close())
  await client.register({ host: '127.0.0.1', port: 12874 })
  const bridge = mcpAppBridge(client, { title: 'Todo <list>' })
  t.equal(bridge.uri, 'ui://todoodles/web-ui')
  t.same(bridge.toolMeta, { ui: { resourceUri: 'ui://todoodles/web-ui' }, 'ui/resourceUri': 'ui://todoodles/web-ui' })
  const [content] = bridge.read().contents
  t.equal(content!.mimeType, MCP_APP_MIME_TYPE)
  t.same(content!._meta, { ui: { csp: { frameDomains: ['https://gw.example'] }, prefersBorder: false } })
  t.match(content!.text, /<title>Todo &#60;list&#62;<\/title>/, 'the title is escaped')
  t.notMatch(content!.text, /<list>/)

  const link = await client.createSession('alice')
  const inApp = bridge.toolResult(link, { text: 'Opened.', appsSupported: true })
  t.same(inApp.content, [{ type: 'text', text: 'Opened.' }])
  t.notMatch(JSON.stringify(inApp.content), link.token, 'the model never sees the link')
  t.equal((inApp._meta[LINK_META_KEY] as { url: string }).url, link.url)
  const plain = bridge.toolResult(link, { text: 'Opened.', appsSupported: false })
  t.match(plain.content[0], { type: 'text', text: `Opened.\n${link.url}` }, 'hosts without MCP Apps get the link as before')

  t.equal(supportsMcpApps({ extensions: { 'io.modelcontextprotocol/ui': { mimeTypes: [MCP_APP_MIME_TYPE] } } }), true)
  t.equal(supportsMcpApps({}), false)
  t.equal(supportsMcpApps(undefined), false)
  t.throws(() => mcpAppBridge(client, { frameOrigins: ['https://x.example/path'] }), { code: 'MCPGW_SDK_INVALID_OPTION' })
  t.throws(() => mcpAppBridge(client, { uri: 'https://x' }), { code: 'MCPGW_SDK_INVALID_OPTION' })
})

t.test('while on direct links, failed retries change nothing: no events, no warnings', async (t) => {
  const gateway = await droppingGateway(t)
  const logger = quietLogger()
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gateway.url, apiKey: API_KEY, logger, fallback: 'direct' })
  t.teardown(() => client.close())
  const seen = states(client)
  client.register({ host: '127.0.0.1', port: 12875 }).catch(() => {})
  await eventually(() => gateway.tries() >= 4, { within: 10_000, what: 'four registration tries' })
  t.same(seen, ['unreachable', 'direct'])
  t.equal(logger.warnings.length, 1)
})

t.test('register() again while a call is in flight: the newest registration is the one the gateway gets', async (t) => {
  const gw = await startGateway(t)
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => client.close())
  client.register({ host: '127.0.0.1', port: 12876 }).catch(() => {})
  client.register({ host: '127.0.0.1', port: 12877 }).catch(() => {})
  await eventually(async () => (await gw.app.mcpRegistry.discover('todoodles'))?.port === 12877, { within: 5000, what: 'the second registration' })
  t.equal(client.state, 'registered')
})

t.test('close() emits closed once, however often it is called', async (t) => {
  const gw = await startGateway(t)
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  const seen = states(client)
  await client.register({ host: '127.0.0.1', port: 12878 })
  await Promise.all([client.close(), client.close()])
  await client.close()
  t.same(seen, ['registered', 'closed'])
  t.equal(await gw.app.mcpRegistry.discover('todoodles'), null)
})

t.test('gateway mode without register(): createSession asks the gateway for a registration made elsewhere with this secret', async (t) => {
  const gw = await startGateway(t)
  const serverSecret = 'registered-elsewhere-secret-0123456789abcdef'
  await gw.app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 12879, secret: serverSecret })
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger(), serverSecret })
  const link = await client.createSession('alice')
  t.equal((await gw.app.mcpRegistry.validate(link.token)).valid, true)
})

t.test('closeOnExit: a signal after the end of stdin started the close is not taken for a second one', async (t) => {
  const exits: number[] = []
  let release!: () => void
  const closing = new Promise<void>((resolve) => { release = resolve })
  const shutdown = closeOnExit([{ close: async () => { await closing } }], { signals: ['SIGUSR1'], stdin: false, uncaught: false, timeoutMs: 5000, exit: (code) => { exits.push(code) } })
  const done = shutdown(0) // what the end of stdin does
  process.emit('SIGUSR1' as never) // a supervisor's SIGTERM a moment later
  t.same(exits, [], 'still closing: deregistration is not cut short')
  release()
  await done
  t.same(exits, [0])
  process.emit('SIGUSR1' as never)
  t.same(exits, [0, 130], 'a second signal does exit at once')
})

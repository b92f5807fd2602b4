import { createServer } from 'node:net'
import type { Server } from 'node:net'
import t from 'tap'
import { createGatewayClient } from '../src/client.js'
import { gatewayIdentity, publicBasePath, startWebUI } from '../src/web-ui.js'
import { eventually } from '@mcp-gw/testkit'
import { API_KEY, quietLogger, startGateway } from './helpers.js'

t.test('register, heartbeat, create and revoke sessions, close', async (t) => {
  const gw = await startGateway(t)
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => client.close())
  t.equal(client.mode, 'gateway')
  await client.register({ host: '127.0.0.1', port: 12861 })
  t.equal(client.registered, true)
  const first = await gw.app.mcpRegistry.discover('todoodles')
  t.equal(first?.port, 12861)
  // The registration lives 3 s; heartbeats (at a third of that) keep it alive past its first expiry.
  await eventually(async () => {
    const later = await gw.app.mcpRegistry.discover('todoodles')
    return later !== null && later.expiresAt > first!.expiresAt + 1000 && Date.now() > first!.expiresAt
  }, { within: 8000, what: 'heartbeats carrying the registration past its first expiry' })
  t.pass('heartbeats extended it')

  const link = await client.createSession('alice', { scopes: ['view'] })
  t.match(link.url, /^https:\/\/gw\.example\/mcp\/[\w-]+\.[\w-]+\.[\w-]+\/$/)
  t.ok(link.expiresAt > new Date())
  t.equal((await gw.app.mcpRegistry.validate(link.token)).valid, true)
  t.equal(await client.revokeSession({ userId: 'alice' }), 1)
  t.equal((await gw.app.mcpRegistry.validate(link.token)).valid, false)

  await client.close()
  t.equal(await gw.app.mcpRegistry.discover('todoodles'), null, 'close deregisters')
})

t.test('after the gateway restarts and forgets it, the client registers again by itself', async (t) => {
  const gw = await startGateway(t)
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => client.close())
  await client.register({ host: '127.0.0.1', port: 12862 })
  await gw.app.close()
  const restarted = await startGateway(t, gw.port)
  t.equal(await restarted.app.mcpRegistry.discover('todoodles'), null, 'the new gateway starts empty')
  await eventually(async () => (await restarted.app.mcpRegistry.discover('todoodles')) !== null, { within: 6000, what: 're-registration' })
  t.equal((await restarted.app.mcpRegistry.discover('todoodles'))?.port, 12862)
})

t.test('createSession right after the gateway forgot the server registers first, never handing out a refused link', async (t) => {
  const gw = await startGateway(t, 0, 90)
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => client.close())
  await client.register({ host: '127.0.0.1', port: 12866 })
  await gw.app.close()
  const restarted = await startGateway(t, gw.port, 90)
  // The next heartbeat is a minute away: only createSession itself can register in time.
  const link = await client.createSession('alice')
  t.equal((await restarted.app.mcpRegistry.validate(link.token)).valid, true)
  t.equal((await restarted.app.mcpRegistry.discover('todoodles'))?.port, 12866, 'registered before the link was made')
})

t.test('a second process of a server is an instance of its own: its own links, never the first one\'s sessions', async (t) => {
  const gw = await startGateway(t, 0, 90)
  const first = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => first.close())
  await first.register({ host: '127.0.0.1', port: 12867 })
  const second = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => second.close())
  await second.register({ host: '127.0.0.1', port: 6666 })
  t.equal(second.state, 'registered', 'the second process registers too (it used to get 409)')
  const instances = await gw.app.mcpRegistry.instances('todoodles')
  t.same(instances.map((i) => i.port).sort((a, b) => a - b), [6666, 12867], 'two live instances of one name')
  const a = await first.createSession('alice')
  const b = await second.createSession('alice')
  t.not(a.token, b.token, 'alice gets one session per process')
  const routeOf = async (token: string): Promise<number | undefined> => {
    const result = await gw.app.mcpRegistry.validate(token)
    if (!result.valid) return undefined
    return (await gw.app.mcpRegistry.discoverInstance(result.session.instanceId))?.port
  }
  t.equal(await routeOf(a.token), 12867, "the first process's link goes to the first process")
  t.equal(await routeOf(b.token), 6666, "the second's to the second")
  t.equal(await second.revokeSession({ userId: 'alice' }), 1, "the second process revokes alice's session of its own")
  t.equal((await gw.app.mcpRegistry.validate(a.token)).valid, true, "and not the first process's")
  await second.close()
  t.same((await gw.app.mcpRegistry.instances('todoodles')).map((i) => i.port), [12867], "the second's close removes its own instance only")
  t.equal(await routeOf(a.token), 12867)
})

t.test('two live processes with one shared secret never share sessions; a restart of one takes its own back', async (t) => {
  const gw = await startGateway(t, 0, 90)
  const serverSecret = 'shared-by-every-process-0123456789abcdef'
  const start = async (instance?: string) => {
    const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger(), serverSecret, ...(instance !== undefined && { instance }) })
    t.teardown(() => client.close())
    // A real UI server: it answers the gateway's instance probe.
    const ui = await startWebUI((_req, res) => { res.end('ui') }, { client, portRange: [20000, 30000] })
    t.teardown(() => ui.close())
    await client.ready
    return { client, ui }
  }
  const carol = await start()
  const dave = await start()
  const carolLink = await carol.client.createSession('carol')
  const daveLink = await dave.client.createSession('dave')
  const portOf = async (token: string): Promise<number | undefined> => {
    const result = await gw.app.mcpRegistry.validate(token)
    return result.valid ? (await gw.app.mcpRegistry.discoverInstance(result.session.instanceId))?.port : undefined
  }
  t.equal(await portOf(carolLink.token), carol.ui.port, "carol's link reaches carol's process")
  t.equal(await portOf(daveLink.token), dave.ui.port, "dave's link reaches dave's process, though both share the secret")
  // Heartbeats change nothing.
  await dave.client.register({ host: '127.0.0.1', port: dave.ui.port })
  t.equal(await portOf(carolLink.token), carol.ui.port, 'still, after a heartbeat of the second')

  // Per-user processes named by the platform: a restart takes its own instance back.
  const erin = await start('erin')
  const erinLink = await erin.client.createSession('erin')
  await erin.ui.server.close()
  erin.ui.server.closeAllConnections()
  const erinAgain = await start('erin')
  t.equal((await erinAgain.client.createSession('erin')).token, erinLink.token, "the restarted process hands out erin's earlier link again")
  t.equal(await portOf(erinLink.token), erinAgain.ui.port, 'which now reaches the new process')
  t.equal(await portOf(carolLink.token), carol.ui.port, 'and nobody else moved')
})

t.test('a server restarted with the same serverSecret keeps its name and the links it handed out', async (t) => {
  const gw = await startGateway(t, 0, 90)
  const serverSecret = 'todoodles-secret-kept-across-restarts-0123'
  const before = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger(), serverSecret })
  await before.register({ host: '127.0.0.1', port: 12868 })
  const link = await before.createSession('alice')
  // A crash: the process is gone, its registration is not.
  const after = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger(), env: { MCP_WEB_UI_SERVER_SECRET: serverSecret } })
  t.teardown(() => after.close())
  await after.register({ host: '127.0.0.1', port: 12869 })
  t.equal((await gw.app.mcpRegistry.discover('todoodles'))?.port, 12869, 'the restarted server took its name back at once')
  t.equal((await after.createSession('alice')).token, link.token, 'the link handed out before the restart is the same live session')
  t.throws(() => createGatewayClient({ serverName: 'x', gatewayUrl: gw.url, serverSecret: 'short' }), { code: 'MCPGW_SDK_INVALID_OPTION' })
})

t.test('a wrong API key is a clear error at once (that nothing retries it: lifecycle.test.ts)', async (t) => {
  const gw = await startGateway(t)
  const logger = quietLogger()
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: 'not-the-key-0123456789', logger })
  t.teardown(() => client.close())
  await t.rejects(client.register({ host: '127.0.0.1', port: 12863 }), { code: 'MCPGW_SDK_UNAUTHORIZED' })
  t.equal(client.registered, false)
  await t.rejects(client.createSession('alice'), { code: 'MCPGW_SDK_UNAUTHORIZED' })
})

t.test('a registrant key for other server names: a clear error at once, never retried, never a direct link', async (t) => {
  const gw = await startGateway(t, 0, 3, { api: { apiKeys: [{ key: 'registrant-key-for-notes-0123456789', role: 'registrant', servers: ['notes'] }] } })
  const logger = quietLogger()
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: 'registrant-key-for-notes-0123456789', logger, fallback: 'direct' })
  t.teardown(() => client.close())
  await t.rejects(client.register({ host: '127.0.0.1', port: 12871 }), { code: 'MCPGW_SDK_KEY_SCOPE', message: /does not act for server todoodles/ })
  t.equal(client.state, 'refused')
  await t.rejects(client.createSession('alice'), { code: 'MCPGW_SDK_KEY_SCOPE' }, 'tool calls hear why, and get no direct link')
  t.match(JSON.stringify(logger.warnings), /does not act for the server name todoodles/)
})

t.test('a quota refusal is told apart from an unreachable gateway: coded, with when to retry, never a direct link', async (t) => {
  const gw = await startGateway(t, 0, 30, { api: { quota: { ratePerSecond: 1, burst: 2 } } })
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger(), fallback: 'direct' })
  t.teardown(() => client.close())
  await client.register({ host: '127.0.0.1', port: 12872 })
  await client.createSession('alice')
  await client.createSession('bob')
  const refused = await client.createSession('carol').then(() => null, (err: unknown) => err as Record<string, unknown>)
  t.match(refused, { code: 'MCPGW_SDK_REQUEST_FAILED', gatewayStatus: 429, gatewayCode: 'MCPGW_REGISTRY_RATE_LIMITED', retryAfterSeconds: 1 })
  t.equal(client.state, 'registered', 'still registered: the gateway is there')
})

t.test("a full store is the gateway's refusal too, not its absence", async (t) => {
  const gw = await startGateway(t, 0, 30, { registry: { maxSessions: 2 } })
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger(), fallback: 'direct' })
  t.teardown(() => client.close())
  await client.register({ host: '127.0.0.1', port: 12873 })
  await client.createSession('alice')
  await client.createSession('bob')
  const full = await client.createSession('carol').then(() => null, (err: unknown) => err as Record<string, unknown>)
  t.match(full, { gatewayStatus: 503, gatewayCode: 'MCPGW_REGISTRY_CAPACITY_EXCEEDED' })
  t.equal(client.state, 'registered')
})

t.test('an unreachable gateway: a typed error, then registration when it appears', async (t) => {
  const { freePort } = await import('@mcp-gw/testkit')
  const port = await freePort()
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: `http://127.0.0.1:${port}`, apiKey: API_KEY, logger: quietLogger(), registerTimeoutMs: 500 })
  t.teardown(() => client.close())
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  await t.rejects(client.register({ host: '127.0.0.1', port: 12864 }), { code: 'MCPGW_SDK_GATEWAY_UNREACHABLE' })
  const gw = await startGateway(t, port)
  // The gateway stores the registration before its answer reaches the client: wait for both.
  await eventually(async () => client.registered && (await gw.app.mcpRegistry.discover('todoodles')) !== null, { within: 8000, what: 'registration once the gateway is up' })
  t.equal(client.registered, true)
  t.not(await gw.app.mcpRegistry.discover('todoodles'), null)
  t.same(unhandled, [], 'no unhandled rejection on the way')
})

t.test('startWebUI binds a free port in the range without touching the busy ones', async (t) => {
  const { freePort } = await import('@mcp-gw/testkit')
  let base = 0
  let busy: Server[] = []
  let touched = 0
  // Two ports in a row that this test holds: another test may take base + 1 first (tests run
  // side by side), and then a fresh base is tried (at most ten times).
  for (let attempt = 0; attempt < 10 && busy.filter((s) => s.listening).length < 2; attempt++) {
    for (const s of busy) s.close()
    busy = []
    base = await freePort()
    for (const port of [base, base + 1]) {
      const server = createServer(() => { touched++ })
      await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve) }).catch(() => {})
      busy.push(server)
    }
  }
  t.teardown(() => { for (const s of busy) s.close() })
  const occupied = busy.filter((s) => s.listening).length
  t.equal(occupied, 2, 'the first two ports are taken')

  const gw = await startGateway(t)
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => client.close())
  const ui = await startWebUI((_req, res) => res.end('ui'), { portRange: [base, base + 2], client })
  t.teardown(() => ui.close())
  t.equal(ui.port, base + 2)
  await client.ready
  t.equal((await gw.app.mcpRegistry.discover('todoodles'))?.port, base + 2, 'registered with the port it got')
  t.equal(await (await fetch(`http://127.0.0.1:${ui.port}/`)).text(), 'ui')

  await t.rejects(startWebUI((_req, res) => res.end('x'), { portRange: [base, base + 1] }), { code: 'MCPGW_SDK_PORT_RANGE_EXHAUSTED' })
  t.equal(touched, 0, 'no other server was connected to')
})

t.test('direct mode: without gateway settings, links point at the UI server, as before', async (t) => {
  const client = createGatewayClient({ serverName: 'todoodles', env: {}, logger: quietLogger() })
  t.equal(client.mode, 'direct')
  const ui = await startWebUI((_req, res) => res.end('ui'), { portRange: [12000, 13000], client })
  t.teardown(() => ui.close())
  const link = await client.createSession('alice')
  t.equal(link.url, `http://127.0.0.1:${ui.port}/?token=${link.token}`)
  t.same(client.validateDirectToken(link.token), { userId: 'alice' })
  t.equal(client.validateDirectToken('forged'), null)
  t.equal(await client.revokeSession({ userId: 'alice' }), 1)
  t.equal(client.validateDirectToken(link.token), null)
  t.equal(createGatewayClient({ serverName: 'x', env: { MCP_WEB_UI_USE_GATEWAY: 'false', MCP_WEB_UI_GATEWAY_URL: 'http://gw' } }).mode, 'direct')
  t.equal(createGatewayClient({ serverName: 'x', env: { MCP_WEB_UI_GATEWAY_URL: 'http://gw' } }).mode, 'gateway', 'a gateway URL alone turns gateway mode on')
  t.throws(() => createGatewayClient({ serverName: 'x', env: { MCP_WEB_UI_USE_GATEWAY: 'true' } }), { code: 'MCPGW_SDK_INVALID_OPTION' })
  t.throws(() => createGatewayClient({ serverName: 'bad name' }), { code: 'MCPGW_SDK_INVALID_OPTION' })
})

t.test('nothing is ever written to stdout (a stdio MCP server speaks JSON-RPC there)', async (t) => {
  const writes: string[] = []
  const original = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => { writes.push(String(chunk)); return (original as (...a: unknown[]) => boolean)(chunk, ...rest) }) as typeof process.stdout.write
  const stderrWrites: string[] = []
  const originalErr = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array) => { stderrWrites.push(String(chunk)); return true }) as typeof process.stderr.write
  try {
    const { freePort } = await import('@mcp-gw/testkit')
    const gwPort = await freePort()
    // Default logger: the failures below must be logged, on stderr.
    const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: `http://127.0.0.1:${gwPort}`, apiKey: API_KEY, registerTimeoutMs: 300 })
    await client.register({ host: '127.0.0.1', port: 12865 }).catch(() => {})
    const gw = await startGateway(t, gwPort)
    await eventually(() => client.registered, { within: 8000, what: 'registration' })
    await client.createSession('alice')
    await client.close()
    await gw.app.close()
  } finally {
    process.stdout.write = original
    process.stderr.write = originalErr
  }
  t.same(writes.filter((w) => !w.startsWith('TAP') && !/^\s*(#|ok|not ok|1\.\.)/.test(w)), [], 'no SDK output on stdout')
  t.ok(stderrWrites.some((w) => w.includes('"retrying"') || w.includes('retrying')), 'its warnings went to stderr')
})

t.test('publicBasePath follows X-Forwarded-Prefix', async (t) => {
  t.equal(publicBasePath({ 'x-forwarded-prefix': '/mcp/abc.def.ghi' }), '/mcp/abc.def.ghi/')
  t.equal(publicBasePath({ 'x-forwarded-prefix': '/mcp/s/_nVJzBtmQYeZras-8vJJFI' }), '/mcp/s/_nVJzBtmQYeZras-8vJJFI/', 'a page opened from its link: under its label')
  t.equal(publicBasePath({}), '/')
  t.equal(publicBasePath({ 'x-forwarded-prefix': 'javascript:alert(1)' }), '/')
  t.equal(publicBasePath({ 'x-forwarded-prefix': '/a\r\nSet-Cookie: x' }), '/')
})

t.test('gatewayIdentity reads what the gateway says about the user', async (t) => {
  t.same(gatewayIdentity({ 'x-mcpgw-user-id': 'alice%40example.com', 'x-mcpgw-session-id': 'sid1', 'x-mcpgw-server-type': 'mcp-webui', 'x-mcpgw-scopes': 'view,interact' }),
    { userId: 'alice@example.com', sessionId: 'sid1', serverType: 'mcp-webui', scopes: ['view', 'interact'] })
  t.equal(gatewayIdentity({}), null, 'not through a gateway')
  t.equal(gatewayIdentity({ 'x-mcpgw-user-id': '%E0%A4%A', 'x-mcpgw-session-id': 's' }), null, 'undecodable')
})

t.test('startWebUI binds a Fastify app by its server', async (t) => {
  const Fastify = (await import('fastify')).default
  const app = Fastify()
  app.get('/', async (request) => ({ base: publicBasePath(request.headers) }))
  await app.ready()
  t.teardown(() => app.close())
  const ui = await startWebUI(app.server, { portRange: [12000, 13000] })
  t.same(await (await fetch(`http://127.0.0.1:${ui.port}/`, { headers: { 'x-forwarded-prefix': '/mcp/t.o.k' } })).json(), { base: '/mcp/t.o.k/' })
  await ui.close()
})

t.test('shareLevel: asked of the gateway, and never answered with a direct (bearer) link', async (t) => {
  const { freePort } = await import('@mcp-gw/testkit')
  const gw = await startGateway(t, 0, 3, { registry: { logins: true } })
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger(), fallback: 'direct' })
  t.teardown(() => client.close())
  await client.register({ host: '127.0.0.1', port: 12871 })
  const owner = await client.createSession('alice', { shareLevel: 'owner' })
  const read = await gw.app.mcpRegistry.validate(owner.token)
  t.equal(read.valid && read.session.shareLevel, 'owner', 'the gateway made an owner session')
  // A gateway without a login refuses it: said as the gateway's refusal.
  const plain = await startGateway(t)
  const plainClient = createGatewayClient({ serverName: 'todoodles', gatewayUrl: plain.url, apiKey: API_KEY, logger: quietLogger(), fallback: 'direct' })
  t.teardown(() => plainClient.close())
  await plainClient.register({ host: '127.0.0.1', port: 12872 })
  await t.rejects(plainClient.createSession('alice', { shareLevel: 'owner' }), { code: 'MCPGW_SDK_REQUEST_FAILED' })
  // The gateway gone, with the direct fallback on: an owner link fails, a bearer one falls back.
  const gone = createGatewayClient({ serverName: 'todoodles', gatewayUrl: `http://127.0.0.1:${await freePort()}`, apiKey: API_KEY, logger: quietLogger(), fallback: 'direct', registerTimeoutMs: 300 })
  t.teardown(() => gone.close())
  const ui = await startWebUI((_req, res) => res.end('ui'), { portRange: [12000, 13000], client: gone })
  t.teardown(() => ui.close())
  await t.rejects(gone.createSession('alice', { shareLevel: 'owner' }), { code: 'MCPGW_SDK_GATEWAY_UNREACHABLE' })
  t.equal((await gone.createSession('alice', { shareLevel: 'link' })).via, 'direct')
  // Direct mode: no gateway, no login: refused, never a bearer link.
  const direct = createGatewayClient({ serverName: 'todoodles', env: {}, logger: quietLogger() })
  const directUi = await startWebUI((_req, res) => res.end('ui'), { portRange: [12000, 13000], client: direct })
  t.teardown(() => directUi.close())
  await t.rejects(direct.createSession('alice', { shareLevel: 'authenticated' }), { code: 'MCPGW_SDK_INVALID_OPTION', message: /authenticated needs the gateway's login/ })
  t.equal(gatewayIdentity({ 'x-mcpgw-user-id': 'alice', 'x-mcpgw-session-id': 's', 'x-mcpgw-login-user': 'bob%40example.test' })?.loginUser, 'bob@example.test', 'who is logged in, on a session bound to a person')
})

t.test('shareSession: a link of its own for another person, view-only by default, revoked by its id; never in direct mode', async (t) => {
  const gw = await startGateway(t, 0, 3, { registry: { logins: true } })
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: gw.url, apiKey: API_KEY, logger: quietLogger() })
  t.teardown(() => client.close())
  await client.register({ host: '127.0.0.1', port: 12874 })
  const own = await client.createSession('alice', { shareLevel: 'owner' })
  const share = await client.shareSession(own.sessionId!, { person: 'bob' })
  t.equal(share.via, 'gateway')
  t.not(share.token, own.token)
  t.match(share.url, new RegExp(`/mcp/${share.token}/$`))
  const read = await gw.app.mcpRegistry.validate(share.token)
  t.same(read.valid && [read.session.share, read.session.scopes, read.session.shareLevel], [{ from: own.sessionId, with: 'bob' }, ['view'], 'owner'])
  const anyone = await client.shareSession(own.sessionId!, { shareLevel: 'authenticated', scopes: ['view', 'interact'] })
  const anyoneRead = await gw.app.mcpRegistry.validate(anyone.token)
  t.same(anyoneRead.valid && [anyoneRead.session.scopes, anyoneRead.session.shareLevel, anyoneRead.session.share?.with], [['view', 'interact'], 'authenticated', null], 'an interactive share for anyone logged in')
  const again = client.shareSession(share.sessionId!, { person: 'carol' })
  await t.rejects(again, { code: 'MCPGW_SDK_REQUEST_FAILED', gatewayCode: 'MCPGW_REGISTRY_INVALID_ARGUMENT', gatewayMessage: /a share cannot be shared again/, message: /answered 400 MCPGW_REGISTRY_INVALID_ARGUMENT: Invalid sessionId: a share cannot be shared again/ },
    'the gateway\'s refusal (a share shared again), with its reason, as it said')
  t.equal(await client.revokeSession({ sessionId: share.sessionId! }), 1)
  t.equal((await gw.app.mcpRegistry.validate(share.token)).valid, false, 'revoked')
  const direct = createGatewayClient({ serverName: 'todoodles', env: {}, logger: quietLogger() })
  t.teardown(() => direct.close())
  await t.rejects(direct.shareSession('AAAAAAAAAAAAAAAAAAAAAA', { person: 'bob' }), { code: 'MCPGW_SDK_INVALID_OPTION', message: /sharing needs the gateway/ })
})

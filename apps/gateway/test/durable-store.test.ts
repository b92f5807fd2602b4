import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { statSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { GATEWAY_CLI, spawnGateway, within } from '@mcp-gw/testkit'
import type { GatewayProcess } from '@mcp-gw/testkit'
import t from 'tap'

const API_KEY = 'durable-store-test-api-key-0123'

/**
 * The default embedded store, as one person on a laptop runs it (`mcp-gw start`, no MongoDB),
 * with its data directory: a restart, clean or SIGKILL, keeps the links handed out, the
 * revocations and the registrations.
 */
t.test('a gateway restarted on the embedded store opens the links it handed out before, and keeps revocations', async (t) => {
  const dataDir = join(t.testdir(), 'state')
  const backend = createServer((req, res) => { res.end(`todo list for ${String(req.headers['x-mcpgw-user-id'] ?? 'nobody')}`) })
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
  t.teardown(() => backend.close())
  const backendPort = (backend.address() as AddressInfo).port

  const running: GatewayProcess[] = []
  t.teardown(async () => { for (const gw of running) await gw.stop('SIGKILL') })
  const start = async (port?: number): Promise<GatewayProcess> => {
    const gw = await spawnGateway({ apiKey: API_KEY, captureLog: true, ...(port !== undefined && { port }), env: { MCP_WEB_UI_DATA_DIR: dataDir } })
    running.push(gw)
    return gw
  }
  let gw = await start()
  await gw.admin.register('todoodles', backendPort)
  const alice = await gw.admin.session('alice', 'todoodles')
  const bob = await gw.admin.session('bob', 'todoodles')
  t.equal((await fetch(alice.url)).status, 200)
  await gw.admin.call('POST', '/revoke-session', { userId: 'bob' })

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const log = gw.log()
    await gw.stop(signal)
    t.notOk([alice.token, bob.token].some((token) => log.includes(token)), 'no token in the log')
    gw = await start(gw.port)
    const res = await fetch(alice.url)
    t.equal(res.status, 200, `after a ${signal} restart, alice's link opens`)
    t.equal(await res.text(), 'todo list for alice')
    t.equal((await fetch(bob.url)).status, 401, `after a ${signal} restart, bob's revoked link stays refused`)
    const { servers } = await gw.admin.call<{ servers: Array<{ serverName: string, port: number }> }>('GET', '/servers')
    t.same(servers.map((s) => [s.serverName, s.port]), [['todoodles', backendPort]], 'the registration is back before the server heartbeats')
    t.match(gw.log(), new RegExp(`"storeFile":"${join(dataDir, `store-${gw.port}.journal`).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`), 'the log says where the store is kept')
  }
  t.equal(statSync(join(dataDir, 'secret')).mode & 0o777, 0o600, 'the signing secret is the owner\'s alone')
  t.equal(statSync(dataDir).mode & 0o777, 0o700)
})

t.test('MCP_WEB_UI_DATA_DIR=off keeps the store in memory: a restart forgets the links', async (t) => {
  const backend = createServer((_req, res) => { res.end('ui') })
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
  t.teardown(() => backend.close())
  let gw = await spawnGateway({ apiKey: API_KEY, env: { MCP_WEB_UI_DATA_DIR: 'off' } })
  t.teardown(() => gw.stop('SIGKILL'))
  await gw.admin.register('todoodles', (backend.address() as AddressInfo).port)
  const { url } = await gw.admin.session('alice', 'todoodles')
  t.equal((await fetch(url)).status, 200)
  await gw.stop()
  gw = await spawnGateway({ apiKey: API_KEY, port: gw.port, env: { MCP_WEB_UI_DATA_DIR: 'off' } })
  t.equal((await fetch(url)).status, 401)
})

t.test('a second gateway on the same data directory and port is refused, naming the holder', async (t) => {
  const dataDir = join(t.testdir(), 'state')
  const gw = await spawnGateway({ apiKey: API_KEY, env: { MCP_WEB_UI_DATA_DIR: dataDir } })
  t.teardown(() => gw.stop('SIGKILL'))
  // Same port: the store's lock answers before the listen would.
  const second = spawn(process.execPath, [GATEWAY_CLI, 'start'], { env: { ...process.env, MCP_WEB_UI_GATEWAY_PORT: String(gw.port), MCP_WEB_UI_DATA_DIR: dataDir, MCP_WEB_UI_DASHBOARD_PORT: 'off' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { second.kill('SIGKILL') })
  let stderr = ''
  second.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const [code] = await within(15_000, 'the second gateway exiting', once(second, 'exit')) as [number | null]
  t.equal(code, 69)
  t.match(stderr, new RegExp(`store-${gw.port}\\.journal cannot be used: process ${gw.pid} holds it`))
  t.equal((await fetch(`${gw.origin}/health`)).status, 200, 'the first one serves on')
})

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort, startTestMongo } from '@mcp-gw/testkit'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import t from 'tap'
import type { Test } from 'tap'
import { API_KEY, JWT_SECRET, callText, connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'
import type { ExampleProcess, GatewayProcess } from './helpers.js'

/**
 * A multi-user chat platform as LibreChat runs MCP servers, against the real gateway:
 * - one stdio process per user, its `env` placeholders filled in with the user
 *   (`MCP_WEB_UI_LOCAL_USER: "{{LIBRECHAT_USER_ID}}"`), every process with the same
 *   configured secret (what a platform-wide config gives them);
 * - one shared Streamable HTTP server for every user, called with the user in a header
 *   (`X-User-ID: "{{LIBRECHAT_USER_ID}}"`) and the platform's credential beside it.
 */

const EXAMPLE = fileURLToPath(new URL('../dist/main.js', import.meta.url))
const USERS = ['carol', 'dave', 'erin'] as const
const SHARED_SECRET = 'one-secret-in-the-platform-config-0123456789'
const PLATFORM_TOKEN = 'platform-credential-0123456789abcdef'

interface TodoAnswer { userId: string, items: string[], servedBy: number }

async function todosOf (link: string): Promise<{ status: number, body: TodoAnswer }> {
  const res = await fetch(new URL('api/todos', link), { signal: AbortSignal.timeout(5000) })
  return { status: res.status, body: await res.json() as TodoAnswer }
}

/** The shared HTTP MCP server, as a platform runs it: users come in a header. */
async function startSharedHttpServer (t: Test, gateway: GatewayProcess): Promise<{ port: number, pid: number }> {
  const port = await freePort()
  const child = spawn(process.execPath, [EXAMPLE, '--http', String(port)], {
    env: {
      ...process.env,
      MCP_SERVER_NAME: 'todo-shared',
      MCP_WEB_UI_GATEWAY_URL: gateway.origin,
      MCP_WEB_UI_GATEWAY_API_KEY: API_KEY,
      MCP_WEB_UI_LOCAL_USER: '',
      MCP_WEB_UI_USER_HEADER: 'X-User-ID',
      MCP_WEB_UI_PLATFORM_TOKEN: PLATFORM_TOKEN
    },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    let err = ''
    const timer = setTimeout(() => reject(new Error(`the shared server did not start: ${err}`)), 10_000)
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); if (err.includes('Streamable HTTP')) { clearTimeout(timer); resolve() } })
    child.once('exit', () => { clearTimeout(timer); reject(new Error(`the shared server exited: ${err}`)) })
  })
  return { port, pid: child.pid! }
}

async function httpClient (t: Test, port: number, headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'platform-harness', version: '0.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), { requestInit: { headers } }))
  t.teardown(() => client.close())
  return client
}

async function platformRun (t: Test, gatewayEnv: Record<string, string>): Promise<void> {
  const gateway = await startGatewayProcess(t, gatewayEnv)
  const browser = await launchBrowser(t)

  // Per-user stdio processes of one server, one shared secret.
  const procs = new Map<string, ExampleProcess>()
  const links = new Map<string, string>()
  for (const user of USERS) {
    const proc = await connectExample(t, gateway, { MCP_WEB_UI_LOCAL_USER: user, MCP_WEB_UI_SERVER_SECRET: SHARED_SECRET })
    procs.set(user, proc)
    await callText(proc.mcp, 'add_todo', { text: `${user}'s errand` })
    links.set(user, linkOf(await callText(proc.mcp, 'open_todo_ui')))
  }
  const servers = await (await gateway.api('/servers')).json() as { servers: Array<{ serverName: string, instances: unknown[] }> }
  t.equal(servers.servers.find((s) => s.serverName === 'todoodles')?.instances.length, 3, 'three live instances of one server name')
  for (const user of USERS) {
    const { status, body } = await todosOf(links.get(user)!)
    t.equal(status, 200)
    t.same(body, { userId: user, items: [`${user}'s errand`], changes: 1, servedBy: procs.get(user)!.child.pid }, `${user}'s link reaches ${user}'s own process, with ${user}'s data only`)
    const page = await browser.newPage()
    await page.goto(links.get(user)!)
    await page.waitForFunction(() => document.querySelectorAll('#items li').length === 1 && document.getElementById('ws-state')?.textContent === 'open', null, { timeout: 10_000 })
    t.equal(await page.textContent('#user'), user, `the page shows ${user}`)
    t.same(await page.$$eval('#items li', (items) => items.map((li) => li.textContent)), [`${user}'s errand`], 'and nobody else\'s items')
    await page.close()
  }

  // One shared HTTP server: the user comes in a header, believed only with the platform's credential.
  const shared = await startSharedHttpServer(t, gateway)
  for (const user of USERS) {
    const client = await httpClient(t, shared.port, { 'X-User-ID': user, authorization: `Bearer ${PLATFORM_TOKEN}` })
    await callText(client, 'add_todo', { text: `${user} via http` })
    const link = linkOf(await callText(client, 'open_todo_ui'))
    const { body } = await todosOf(link)
    t.same([body.userId, body.items, body.servedBy], [user, [`${user} via http`], shared.pid], `${user}'s link on the shared server shows ${user}'s list`)
  }
  const forged = await httpClient(t, shared.port, { 'X-User-ID': 'carol' })
  const refused = await forged.callTool({ name: 'open_todo_ui', arguments: {} })
  t.equal(refused.isError, true, 'a user header without the platform credential is refused')
  t.match(JSON.stringify(refused.content), /platform credential is missing or wrong/)
  const wrong = await httpClient(t, shared.port, { 'X-User-ID': 'carol', authorization: 'Bearer not-the-platform-credential' })
  t.equal((await wrong.callTool({ name: 'open_todo_ui', arguments: {} })).isError, true, 'and so is one with a wrong credential')
  const anonymous = await httpClient(t, shared.port, { authorization: `Bearer ${PLATFORM_TOKEN}` })
  const none = await anonymous.callTool({ name: 'open_todo_ui', arguments: {} })
  t.equal(none.isError, true, 'a request that names no user gets no link (never the OS user)')
  t.match(JSON.stringify(none.content), /No user for this MCP request: the platform sent no X-User-ID header/)

  // The platform ends carol's process (as it does when her chat session ends).
  const carol = procs.get('carol')!
  carol.child.kill('SIGTERM')
  t.equal(await Promise.race([carol.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 5000))]), 0, "carol's process exits")
  const stopped = await fetch(new URL('api/todos', links.get('carol')!), { signal: AbortSignal.timeout(5000) })
  t.same([stopped.status, ((await stopped.json()) as { code: string }).code], [503, 'MCPGW_PROXY_NO_BACKEND'], "carol's link answers that her server stopped, and never opens another process")
  const page = await browser.newPage()
  await page.goto(links.get('carol')!)
  t.match(await page.textContent('body'), /not running any more[\s\S]*open the UI again/, 'a browser is told what happened and what to do')
  await page.close()
  for (const user of ['dave', 'erin']) {
    const { status, body } = await todosOf(links.get(user)!)
    t.same([status, body.userId, body.servedBy], [200, user, procs.get(user)!.child.pid], `${user}'s link still works`)
  }

  // Erin's process crashes: no deregistration, its registration lives on for a while.
  const erin = procs.get('erin')!
  erin.child.kill('SIGKILL')
  t.equal(await Promise.race([erin.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 5000))]), 'SIGKILL')
  const crashed = await fetch(new URL('api/todos', links.get('erin')!), { signal: AbortSignal.timeout(5000) })
  t.same([crashed.status, ((await crashed.json()) as { code: string }).code], [503, 'MCPGW_PROXY_NO_BACKEND'], "a crashed process's link answers at once that its server stopped")
  const { status, body } = await todosOf(links.get('dave')!)
  t.same([status, body.userId], [200, 'dave'], "dave's link still works")
}

t.test('a platform with three users, per-user stdio processes and a shared HTTP server, on the embedded store', async (t) => {
  await platformRun(t, {})
})

t.test('the same on MongoDB', async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  await platformRun(t, { MCP_WEB_UI_MONGO_URL: mongo.url, MCP_WEB_UI_MONGO_DB_NAME: mongo.uniqueDbName(), MCP_WEB_UI_JWT_SECRET: JWT_SECRET })
})

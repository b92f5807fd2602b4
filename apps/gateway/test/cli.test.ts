import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { eventually, freePort } from '@mcp-gw/testkit'
import t from 'tap'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

async function run (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

t.test('--help on every command', async (t) => {
  t.match((await run(['--help'])).stdout, /commands:[\s\S]*start[\s\S]*sessions list[\s\S]*servers list/)
  t.match((await run(['start', '--help'])).stdout, /MCP_WEB_UI_MONGO_URL/)
  t.match((await run(['sessions', '--help'])).stdout, /sessions revoke/)
  t.match((await run(['servers', 'list', '--help'])).stdout, /servers list/)
  const unknown = await run(['frobnicate'])
  t.equal(unknown.code, 64)
  t.match(unknown.stderr, /unknown command/)
})

t.test('a bad configuration stops the boot naming the variable', async (t) => {
  const res = await run(['start'], { MCP_WEB_UI_GATEWAY_PORT: '70000' })
  t.equal(res.code, 78)
  t.match(res.stderr, /MCP_WEB_UI_GATEWAY_PORT/)
  const mongoNoSecret = await run(['start'], { MCP_WEB_UI_MONGO_URL: 'mongodb://127.0.0.1:1/' })
  t.equal(mongoNoSecret.code, 78)
  t.match(mongoNoSecret.stderr, /MCP_WEB_UI_JWT_SECRET/)
})

t.test('start serves, the client commands talk to it, and SIGTERM exits 0', async (t) => {
  const port = await freePort()
  const key = 'cli-test-api-key-0123456789'
  const env = { MCP_WEB_UI_GATEWAY_PORT: String(port), MCP_WEB_UI_GATEWAY_API_KEY: key, MCP_WEB_UI_GATEWAY_URL: `http://127.0.0.1:${port}` }
  const child = spawn(process.execPath, [CLI, 'start'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let log = ''
  child.stdout.on('data', (c: Buffer) => { log += c.toString() })
  await eventually(async () => await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 0) === 200, { what: 'the started gateway answering /health', within: 15_000, everyMs: 100 })
  t.match(log, /"msg":"mcp-gw listening"/)
  t.match(log, /JWT_SECRET is not set/)
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-mcpgw-server-secret': 'cli-test-registrant-secret-0123456789abc' }
  await fetch(`http://127.0.0.1:${port}/register-server`, { method: 'POST', headers, body: JSON.stringify({ serverName: 'todoodles', host: '127.0.0.1', port: 12861 }) })
  const { token } = await (await fetch(`http://127.0.0.1:${port}/create-session`, { method: 'POST', headers, body: JSON.stringify({ userId: 'alice', serverName: 'todoodles' }) })).json()

  const servers = await run(['servers', 'list'], env)
  t.equal(servers.code, 0)
  t.match(servers.stdout, /serverName\s+instanceId\s+instance\s+host\s+port\s+protocol\s+since\s+sessions/, 'one row per instance, with its session count')
  t.match(servers.stdout, /todoodles\s+[\w-]{22}\s+127\.0\.0\.1\s+12861\s+http\s+\S+\s+1\s/)
  const sessions = await run(['sessions', 'list', '--user', 'alice'], env)
  t.match(sessions.stdout, /alice:todoodles:mcp-webui/)
  t.notOk(sessions.stdout.includes(token), 'tokens are never listed')
  const wrongKey = await run(['servers', 'list'], { ...env, MCP_WEB_UI_GATEWAY_API_KEY: 'not-the-right-key-000' })
  t.equal(wrongKey.code, 1)
  t.match(wrongKey.stderr, /401 MCPGW_API_UNAUTHORIZED/)
  const revoke = await run(['sessions', 'revoke', '--user', 'alice'], env)
  t.match(revoke.stdout, /revoked 1 session/)
  t.equal((await run(['sessions', 'revoke'], env)).code, 64)

  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.notOk(log.includes(token), 'the token never reached the log')
})

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { freePort } from '@mcp-gw/testkit'
import t from 'tap'
import { buildGateway } from '../src/app.js'

t.test('GET /health answers without auth', async (t) => {
  const app = await buildGateway()
  t.teardown(() => app.close())
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('the gateway runs on the embedded store with a generated secret', async (t) => {
  const app = await buildGateway()
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.mcpRegistry.store.kind, 'memory')
  const { token } = await app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  t.equal((await app.mcpRegistry.validate(token)).valid, true)
})

t.test('the start command listens on the configured port, answers /health, and exits 0 on SIGTERM', async (t) => {
  const port = await freePort()
  const main = fileURLToPath(new URL('../dist/main.js', import.meta.url))
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, MCP_WEB_UI_GATEWAY_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const deadline = Date.now() + 15_000
  let status = 0
  while (Date.now() < deadline) {
    status = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 0)
    if (status !== 0) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(status, 200)
  t.match(out, /"msg":"mcp-gw listening"/)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
})

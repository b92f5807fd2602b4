import { createServer } from 'node:net'
import { eventually, portToListenOnLater } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { API_KEY, callText, connectExample, linkOf, startGatewayProcess } from './helpers.js'
import type { ExampleProcess, GatewayProcess } from './helpers.js'

/**
 * The example's life with a real gateway process and a real MCP client over
 * stdio: a gateway that is down, late or restarted never holds up `initialize`
 * nor yields a link that fails; SIGTERM, stdin's end or a crash leave no
 * registration behind; and stdout carries JSON-RPC only, all along.
 */

async function registered (gateway: GatewayProcess): Promise<string[]> {
  const servers = await (await gateway.api('/servers')).json() as { servers: Array<{ serverName: string }> } | Array<{ serverName: string }>
  return (Array.isArray(servers) ? servers : servers.servers).map((s) => s.serverName)
}

async function startedWithin (t: Test, gateway: GatewayProcess | null, env: Record<string, string>): Promise<{ example: ExampleProcess, ms: number }> {
  const started = Date.now()
  const example = await connectExample(t, gateway, env)
  return { example, ms: Date.now() - started }
}

t.test('gateway down at start: initialize is not held up, links are direct at once, and gateway links as soon as it is up', async (t) => {
  // The baseline: the same start with a gateway that answers.
  const up = await startGatewayProcess(t)
  const baseline = await startedWithin(t, up, {})
  await up.stop()

  // Listened on seconds later, once the example has started without it.
  const port = await portToListenOnLater()
  const gatewayUrl = `http://127.0.0.1:${port}`
  const { example, ms } = await startedWithin(t, null, { MCP_WEB_UI_USE_GATEWAY: 'true', MCP_WEB_UI_GATEWAY_URL: gatewayUrl, MCP_WEB_UI_GATEWAY_API_KEY: API_KEY, MCP_WEB_UI_FALLBACK: 'direct' })
  t.comment(`spawn to initialize answered: ${ms} ms with the gateway down, ${baseline.ms} ms with it up`)
  // It was 10.5 s more: startWebUI waited for the gateway before the server read stdin. The
  // margin leaves room for a loaded machine (two test files at once, each start a few hundred
  // ms to seconds apart) and still catches that wait.
  t.ok(ms < baseline.ms + 5000, `initialize answered without waiting for the gateway (${ms} ms vs ${baseline.ms} ms)`)

  const asked = Date.now()
  const direct = linkOf(await callText(example.mcp, 'open_todo_ui'))
  t.ok(Date.now() - asked < 1000, 'a link within a second')
  t.match(direct, /^http:\/\/127\.0\.0\.1:1\d{4}\/\?token=[\w-]+$/, 'a direct link while the gateway is down')
  const page = await fetch(direct)
  t.equal(page.status, 200, 'and it works')
  await page.text()

  const gateway = await startGatewayProcess(t, { MCP_WEB_UI_GATEWAY_PORT: String(port) })
  const late = await callText(example.mcp, 'open_todo_ui')
  const link = linkOf(late)
  t.ok(link.startsWith(`${gateway.origin}/mcp/`), 'the next call, once the gateway is up, gives a gateway link')
  const res = await fetch(new URL('api/todos', link))
  t.equal(res.status, 200, 'that answers at once (never a 503 while a heartbeat is pending)')
  t.match(await res.json(), { userId: 'alice' })
  t.ok(linkOf(await callText(example.mcp, 'open_todo_ui')).startsWith(gateway.origin), 'and direct links stop')
  t.same(example.strayStdout(), [], 'nothing but JSON-RPC on stdout')
})

t.test('gateway restarted (its embedded store forgot everything): the next link answers 200 at once', async (t) => {
  const first = await startGatewayProcess(t)
  const { mcp, strayStdout } = await connectExample(t, first)
  const before = linkOf(await callText(mcp, 'open_todo_ui'))
  t.equal((await fetch(new URL('api/todos', before))).status, 200)
  await first.stop()
  const second = await startGatewayProcess(t, { MCP_WEB_UI_GATEWAY_PORT: String(first.port) })
  const after = linkOf(await callText(mcp, 'open_todo_ui'))
  t.not(after, before)
  const res = await fetch(new URL('api/todos', after))
  t.equal(res.status, 200, 'not 503 MCPGW_PROXY_NO_BACKEND until a heartbeat')
  t.same(await registered(second), ['todoodles'])
  t.same(strayStdout(), [])
})

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  t.test(`gateway restarted after ${signal}: the server is back in its list within seconds, with no tool call`, async (t) => {
    const first = await startGatewayProcess(t)
    const { mcp, strayStdout } = await connectExample(t, first)
    linkOf(await callText(mcp, 'open_todo_ui'))
    t.same(await registered(first), ['todoodles'])
    if (signal === 'SIGKILL') {
      first.child.kill('SIGKILL')
      await new Promise((resolve) => first.child.once('exit', resolve))
    } else {
      await first.stop()
    }
    const second = await startGatewayProcess(t, { MCP_WEB_UI_GATEWAY_PORT: String(first.port) })
    const listening = Date.now()
    // The heartbeat is 24 s away: only the watch's end brings the server back this soon.
    await eventually(async () => (await registered(second)).includes('todoodles'), { within: 5000, what: 'the server registered again' })
    t.pass(`back ${Date.now() - listening} ms after the new gateway listened`)
    t.same(strayStdout(), [])
  })
}

for (const [how, end] of [
  ['SIGTERM', (example: ExampleProcess) => { example.child.kill('SIGTERM') }],
  ['SIGINT', (example: ExampleProcess) => { example.child.kill('SIGINT') }],
  ['SIGHUP (the terminal or parent went away)', (example: ExampleProcess) => { example.child.kill('SIGHUP') }],
  ['the end of stdin (the MCP client went away)', (example: ExampleProcess) => { example.child.stdin!.end() }]
] as const) {
  t.test(`${how}: the process exits within 2 s with its registration removed`, async (t) => {
    const gateway = await startGatewayProcess(t)
    const example = await connectExample(t, gateway)
    linkOf(await callText(example.mcp, 'open_todo_ui'))
    t.same(await registered(gateway), ['todoodles'])
    const asked = Date.now()
    end(example)
    const code = await example.exited
    const took = Date.now() - asked
    t.ok(took < 2000, `exited after ${took} ms`)
    t.equal(code, 0)
    t.same(await registered(gateway), [], 'deregistered before exiting')
    t.same(example.strayStdout(), [])
  })
}

t.test('a taken MCP HTTP port: a message and exit code 1, its registration removed, no crash trace', async (t) => {
  const gateway = await startGatewayProcess(t)
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const port = (taken.address() as import('node:net').AddressInfo).port
  const { spawn } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  const child = spawn(process.execPath, [fileURLToPath(new URL('../dist/main.js', import.meta.url)), '--http', String(port)], {
    env: { ...process.env, MCP_WEB_UI_GATEWAY_URL: gateway.origin, MCP_WEB_UI_GATEWAY_API_KEY: API_KEY },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stderr = ''
  let stdout = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  const code = await new Promise((resolve) => child.once('exit', resolve))
  t.equal(code, 1)
  t.match(stderr, new RegExp(`cannot serve MCP on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`))
  t.notMatch(stderr, /\n\s+at /, 'no stack trace: a message the user can act on')
  t.same(await registered(gateway), [], 'no registration left to answer 502 until it lapses')
  t.equal(stdout, '')
})

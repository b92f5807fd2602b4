import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually, freePort, within } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

async function run (args: string[], env: Record<string, string> = {}, command: string[] = [process.execPath, CLI]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  // The embedded store in memory unless a test names a data directory: nothing written under $HOME.
  const child = spawn(command[0]!, [...command.slice(1), ...args], { env: { ...process.env, MCP_WEB_UI_DATA_DIR: 'off', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  // A command that hangs fails the test in seconds, not at the runner's timeout.
  const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(deadline)
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

t.test('on the workspace PATH, with --version; alone, the help and a non-zero exit', async (t) => {
  const shim = fileURLToPath(new URL('../../../node_modules/.bin/mcp-gw', import.meta.url))
  const version = await run(['--version'], {}, [shim])
  t.same([version.code, version.stdout], [0, 'mcp-gw 0.0.0\n'], 'the workspace bin pnpm exec runs')
  const bare = await run([])
  t.equal(bare.code, 64, 'nothing asked: not a success')
  t.equal(bare.stdout, '')
  t.match(bare.stderr, /usage: mcp-gw <command>/)
})

t.test('boot errors say what to do: a bad value by example or by its values, a taken port, an unreachable store', async (t) => {
  const wildcard = await run(['start'], { MCP_WEB_UI_WILDCARD_URL: 'https://apps.example.com' })
  t.equal(wildcard.code, 78)
  t.match(wildcard.stderr, /MCP_WEB_UI_WILDCARD_URL must be a scheme, \*\. and a domain, with an optional port, e\.g\. https:\/\/\*\.apps\.example\.com/)
  t.notMatch(wildcard.stderr, /\^https/, 'no regular expression')
  const both = await run(['start'], { MCP_WEB_UI_ACCESS_LOG: 'yes', MCP_WEB_UI_DRAIN_TIMEOUT_MS: 'soon' })
  t.match(both.stderr, /MCP_WEB_UI_DRAIN_TIMEOUT_MS must be a whole number/)
  t.match(both.stderr, /MCP_WEB_UI_ACCESS_LOG must be one of true, false/, 'every bad variable at once, an enum with its values')
  const relative = await run(['start'], { MCP_WEB_UI_DATA_DIR: 'state' })
  t.equal(relative.code, 78)
  t.match(relative.stderr, /MCP_WEB_UI_DATA_DIR must be an absolute directory path, e\.g\. \/var\/lib\/mcp-gw, or off/)

  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const takenPort = (taken.address() as AddressInfo).port
  const busy = await run(['start'], { MCP_WEB_UI_GATEWAY_PORT: String(takenPort) })
  t.equal(busy.code, 69)
  t.match(busy.stderr, new RegExp(`port ${takenPort} on 127\\.0\\.0\\.1 is taken .*set MCP_WEB_UI_GATEWAY_PORT to a free port`))

  const closed = await freePort()
  const store = await run(['start'], { MCP_WEB_UI_GATEWAY_PORT: String(await freePort()), MCP_WEB_UI_MONGO_URL: `mongodb://admin:hunter2-secret@127.0.0.1:${closed}/`, MCP_WEB_UI_JWT_SECRET: 'cli-test-jwt-secret-0123456789abcdef0123' })
  t.equal(store.code, 69)
  t.match(store.stderr, new RegExp(`cannot reach the session store \\(MongoDB at mongodb://127\\.0\\.0\\.1:${closed}/\\).*unset MCP_WEB_UI_MONGO_URL to use the embedded store`))
  t.notMatch(store.stderr + store.stdout, /hunter2/, 'never the URL\'s password')
})

/** Starts `mcp-gw start` with `command` around it; resolves once the start's summary is on its screen. */
async function startForPeople (t: Test, command: string[], env: Record<string, string>, cwd?: string): Promise<{ child: ChildProcessWithoutNullStreams, screen: () => string, port: number, dataDir: string }> {
  const port = await freePort()
  const dataDir = join(t.testdir(), 'state')
  const child = spawn(command[0]!, command.slice(1), { cwd, env: { ...process.env, MCP_WEB_UI_GATEWAY_PORT: String(port), MCP_WEB_UI_JWT_SECRET: 'cli-test-jwt-secret-0123456789abcdef0123', MCP_WEB_UI_DATA_DIR: dataDir, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let screen = ''
  child.stdout.on('data', (c: Buffer) => { screen += c.toString() })
  child.stderr.on('data', (c: Buffer) => { screen += c.toString() })
  // A loaded CI machine starts pino-pretty's worker slowly: the deadline is generous, and a miss shows the screen.
  await eventually(() => screen.includes('Ctrl-C stops it') || child.exitCode !== null, { what: 'the start\'s summary on the screen', within: 30_000, everyMs: 50 })
    .catch((err: Error) => { throw new Error(`${err.message}; the screen so far:\n${screen}`) })
  t.equal(child.exitCode, null, `the gateway runs (the screen: ${screen})`)
  return { child, screen: () => screen, port, dataDir }
}

t.test('lines for people: where everything is and how a server registers; SIGINT (Ctrl-C) exits 0', async (t) => {
  const { child, screen, port, dataDir } = await startForPeople(t, [process.execPath, CLI, 'start'], { MCP_WEB_UI_LOG_FORMAT: 'pretty' })
  const url = `http://127.0.0.1:${port}`
  t.match(screen(), `mcp-gw is listening on ${url}: path mode, embedded store, kept in ${join(dataDir, `store-${port}.journal`)}`)
  t.match(screen(), `OpenAPI document: ${url}/openapi.json`)
  t.match(screen(), /Dashboard: (http:\/\/127\.0\.0\.1:\d+\/dashboard|off)/, 'where the dashboard is, on a port of its own')
  t.match(screen(), `An MCP server registers its UI with MCP_WEB_UI_GATEWAY_URL=${url}`)
  t.notMatch(screen(), /\{"level":/, 'log lines for people, not JSON')
  child.kill('SIGINT')
  const [code] = await within(15_000, 'the gateway exiting on SIGINT', once(child, 'exit')) as [number | null]
  t.equal(code, 0, `a clean stop (the screen: ${screen()})`)
  t.notMatch(screen(), /ERR|Error|failed|Deprecation|Warning/, `no error or warning lines (the screen: ${screen()})`)
})

// A pseudo-terminal, as a person's shell gives it (util-linux script; -e: its exit code is the
// gateway's). Where this machine can make none, the test says so and is counted as skipped.
// script runs the command through $SHELL -c: `exec` makes the gateway the terminal's only
// process, as an interactive shell's job is. Without it dash (the /bin/sh script falls back to
// when SHELL is unset) stays in the foreground group, takes the Ctrl-C too and exits 130.
const ptyProbe = spawnSync('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore', timeout: 10_000 })
const noPty = ptyProbe.status === 0 ? false : `no pseudo-terminal here (script exited ${String(ptyProbe.status)}${ptyProbe.error === undefined ? '' : `: ${ptyProbe.error.message}`})`

t.test('on a terminal, lines for people without being asked; Ctrl-C exits 0', { skip: noPty }, async (t) => {
  const { child, screen, port } = await startForPeople(t, ['script', '-qfec', `exec '${process.execPath}' '${CLI}' start`, '/dev/null'], { SHELL: '/bin/sh' })
  t.match(screen(), `mcp-gw is listening on http://127.0.0.1:${port}: path mode`)
  t.notMatch(screen(), /\{"level":/, 'log lines for people, not JSON')
  child.stdin.write('\x03')
  const [code] = await within(15_000, 'the gateway exiting on Ctrl-C', once(child, 'exit')) as [number | null]
  t.equal(code, 0, `Ctrl-C: a clean stop (the screen: ${screen()})`)
})

// The pnpm running this suite (`pnpm test` names itself in npm_execpath), else one on the PATH.
const pnpmCli = /pnpm\.c?js$/.test(process.env.npm_execpath ?? '') ? `'${process.execPath}' '${process.env.npm_execpath!}'` : 'pnpm'
const pnpmProbe = spawnSync('/bin/sh', ['-c', `${pnpmCli} --version`], { stdio: 'ignore', timeout: 20_000 })
// CI always has pnpm: there a missing one fails the test instead of skipping it.
const noPnpm = pnpmProbe.status === 0 || process.env.CI === 'true' ? false : 'no pnpm here (the README\'s start command needs it)'

t.test('`pnpm start` on a terminal: Ctrl-C exits 0, with no ELIFECYCLE line', { skip: noPty || noPnpm }, async (t) => {
  // The README's start command, in the workspace root: pnpm, its script runner, then the gateway.
  // The terminal's Ctrl-C reaches all of them; before the fix /bin/sh between pnpm and node died
  // of it, and pnpm said `ELIFECYCLE Command failed.` and exited by SIGINT.
  const root = fileURLToPath(new URL('../../../', import.meta.url))
  const { child, screen } = await startForPeople(t, ['script', '-qfec', `exec ${pnpmCli} start`, '/dev/null'], { SHELL: '/bin/sh' }, root)
  child.stdin.write('\x03')
  const [code, signal] = await within(15_000, 'pnpm start exiting on Ctrl-C', once(child, 'exit')) as [number | null, string | null]
  t.same([code, signal], [0, null], `Ctrl-C: a clean stop (the screen: ${screen()})`)
  t.notMatch(screen(), /Command failed|ERR_PNPM/, `no error lines (the screen: ${screen()})`)
})

t.test('the dashboard\'s port taken: the gateway says so, serves on, and stops cleanly', async (t) => {
  // The dashboard defaults to the gateway's port + 1: another program there must not stop the gateway.
  const taken = createServer()
  let port = 0
  for (let tries = 0; port === 0 && tries < 20; tries++) {
    const candidate = await freePort()
    if (candidate === 65535) continue
    port = await new Promise<number>((resolve) => {
      taken.once('error', () => resolve(0))
      taken.listen(candidate + 1, '127.0.0.1', () => resolve(candidate))
    })
  }
  t.not(port, 0, 'a free port whose next port could be taken')
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const child = spawn(process.execPath, [CLI, 'start'], { env: { ...process.env, MCP_WEB_UI_DATA_DIR: 'off', MCP_WEB_UI_GATEWAY_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let log = ''
  child.stdout.on('data', (c: Buffer) => { log += c.toString() })
  child.stderr.on('data', (c: Buffer) => { log += c.toString() })
  await eventually(() => log.includes('"msg":"mcp-gw listening"') || child.exitCode !== null, { what: 'the gateway listening', within: 15_000, everyMs: 50 })
  t.match(log, 'the dashboard did not start: its port is taken; set MCP_WEB_UI_DASHBOARD_PORT to a free port (or off)')
  t.match(log, /"dashboard":null/, 'its start line says there is no dashboard')
  // It serves on, past the moment a late error of the dashboard's listener would have stopped it.
  for (let i = 0; i < 5; i++) {
    t.equal(await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 0), 200, `it serves (${i + 1}/5; the log: ${log})`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(child.exitCode, null, 'still running')
  child.kill('SIGTERM')
  const [code] = await within(15_000, 'the gateway exiting on SIGTERM', once(child, 'exit')) as [number | null]
  t.equal(code, 0, `a clean stop (the log: ${log})`)
  t.notMatch(log, /Unhandled|EADDRINUSE|shutdown failed/, 'no crash and no failed stop')
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
  const env = { MCP_WEB_UI_GATEWAY_PORT: String(port), MCP_WEB_UI_GATEWAY_API_KEY: key, MCP_WEB_UI_GATEWAY_URL: `http://127.0.0.1:${port}`, MCP_WEB_UI_DASHBOARD_PORT: 'off' }
  const child = spawn(process.execPath, [CLI, 'start'], { env: { ...process.env, MCP_WEB_UI_DATA_DIR: 'off', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let log = ''
  child.stdout.on('data', (c: Buffer) => { log += c.toString() })
  await eventually(async () => await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 0) === 200, { what: 'the started gateway answering /health', within: 15_000, everyMs: 100 })
  t.match(log, /"msg":"mcp-gw listening"/)
  t.match(log, /JWT_SECRET is not set/)
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-mcpgw-server-secret': 'cli-test-registrant-secret-0123456789abc' }
  await fetch(`http://127.0.0.1:${port}/register-server`, { method: 'POST', headers, body: JSON.stringify({ serverName: 'todoodles', host: '127.0.0.1', port: 12861 }) })
  const { token } = await (await fetch(`http://127.0.0.1:${port}/create-session`, { method: 'POST', headers, body: JSON.stringify({ userId: 'alice', serverName: 'todoodles' }) })).json()

  const byPort = await run(['servers', 'list'], { MCP_WEB_UI_GATEWAY_PORT: String(port), MCP_WEB_UI_GATEWAY_API_KEY: key, MCP_WEB_UI_GATEWAY_URL: '' })
  t.match(byPort.stdout, /todoodles/, 'without a URL, the gateway on this machine at MCP_WEB_UI_GATEWAY_PORT')
  const servers = await run(['servers', 'list'], env)
  t.equal(servers.code, 0)
  t.match(servers.stdout, /serverName\s+instanceId\s+instance\s+host\s+port\s+protocol\s+since\s+sessions/, 'one row per instance, with its session count')
  t.match(servers.stdout, /todoodles\s+[\w-]{22}\s+127\.0\.0\.1\s+12861\s+http\s+\S+\s+1\s/)
  const sessions = await run(['sessions', 'list', '--user', 'alice'], env)
  t.match(sessions.stdout, /alice:todoodles:mcp-webui/)
  t.notOk(sessions.stdout.includes(token), 'tokens are never listed')
  const wrongKey = await run(['servers', 'list'], { ...env, MCP_WEB_UI_GATEWAY_API_KEY: 'not-the-right-key-000' })
  t.equal(wrongKey.code, 1)
  t.match(wrongKey.stderr, /401 MCPGW_API_UNAUTHORIZED.*\(this command sends the key in MCP_WEB_UI_GATEWAY_API_KEY\)/, 'a refused key: which variable holds it')
  const noKey = await run(['servers', 'list'], { ...env, MCP_WEB_UI_GATEWAY_API_KEY: '' })
  t.match(noKey.stderr, /MCP_WEB_UI_GATEWAY_API_KEY, which is not set/)
  const nowhere = await run(['servers', 'list'], { MCP_WEB_UI_GATEWAY_URL: `http://127.0.0.1:${await freePort()}`, MCP_WEB_UI_GATEWAY_API_KEY: key })
  t.equal(nowhere.code, 1)
  t.match(nowhere.stderr, /cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+: .*set MCP_WEB_UI_GATEWAY_URL, or MCP_WEB_UI_GATEWAY_PORT/, 'a gateway not there: where to point the command')
  const revoke = await run(['sessions', 'revoke', '--user', 'alice'], env)
  t.match(revoke.stdout, /revoked 1 session/)
  t.equal((await run(['sessions', 'revoke'], env)).code, 64)

  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.notOk(log.includes(token), 'the token never reached the log')
})

import { spawn } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually, freePort } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { rawRequest, startBackend } from './helpers.js'

// The README's embedding snippets, run as they are written (only the port is this test's): a
// plain Fastify app in its own process, the plugin from its package name, a backend, a link.

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const readme = readFileSync(join(packageDir, 'README.md'), 'utf8')

function snippet (name: string): string {
  const match = new RegExp(`<!-- readme-snippet: ${name} [^>]*-->\\n\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme)
  if (match === null) throw new Error(`README snippet ${name} not found`)
  return match[1]!
}

// What the test adds after the snippet: a server registered at the test's backend, and a session.
const AFTER = `
const { sessionHostLabel } = await import('@mcp-gw/registry')
await app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: Number(process.env.BACKEND_PORT) })
const issued = await app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
process.stderr.write('SESSION ' + JSON.stringify({ token: issued.token, label: sessionHostLabel(issued.session) }) + '\\n')
`

async function runSnippet (t: Test, name: string): Promise<{ port: number, token: string, label: string, logs: () => string }> {
  const port = await freePort()
  const file = join(packageDir, `.readme-snippet-${name}-${process.pid}.mjs`)
  writeFileSync(file, snippet(name).replaceAll('3082', String(port)) + AFTER)
  t.teardown(() => rmSync(file, { force: true }))
  const backend = await startBackend(t)
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, MCP_WEB_UI_JWT_SECRET: 'readme-snippet-secret-0123456789abcdef', BACKEND_PORT: String(backend.port) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  let stdout = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  t.teardown(() => { child.kill('SIGKILL') })
  await eventually(() => /SESSION (\{.*\})/.test(stderr) || child.exitCode !== null, { what: `the ${name} snippet listening and minting a session`, within: 15_000 })
  const found = /SESSION (\{.*\})/.exec(stderr)
  if (found === null) throw new Error(`the snippet exited (${String(child.exitCode)}): ${stderr.slice(0, 2000)}`)
  t.match(stdout, /Server listening at/, 'the snippet logs as Fastify does (logger: true)')
  const session = JSON.parse(found[1]!) as { token: string, label: string }
  return { port, ...session, logs: () => stdout + stderr.replace(found[0], '') }
}

t.test('the README path-mode snippet serves a session link', async (t) => {
  const { port, token, logs } = await runSnippet(t, 'path-mode')
  const page = await rawRequest(port, `/mcp/${token}/hello?x=1`, { headers: { host: `127.0.0.1:${port}` } })
  t.equal(page.status, 200)
  t.equal(JSON.parse(page.body).url, '/hello?x=1', 'the backend got the page')
  const own = await rawRequest(port, '/', { headers: { host: `127.0.0.1:${port}` } })
  t.equal(own.body, 'your own routes keep working')
  const refused = await rawRequest(port, '/mcp/not-a-token/', { headers: { host: `127.0.0.1:${port}`, accept: 'application/json' } })
  t.equal(JSON.parse(refused.body).code, 'MCPGW_PROXY_TOKEN_MALFORMED', 'a coded refusal')
  t.notMatch(logs(), token, 'its logs never hold the token')
})

t.test('the README isolated-mode snippet serves a session on its own host', async (t) => {
  const { port, token, label, logs } = await runSnippet(t, 'isolated-mode')
  const host = `${label}.localhost:${port}`
  const swap = await rawRequest(port, `/hello?mcpgw_link=${token}`, { headers: { host } })
  t.equal(swap.status, 303, 'the link is swapped for a cookie')
  const cookie = String(swap.headers['set-cookie']).split(';')[0]!
  const page = await rawRequest(port, '/hello', { headers: { host, cookie } })
  t.equal(page.status, 200)
  t.equal(JSON.parse(page.body).url, '/hello', "on the session host, `/` is the backend's `/`")
  t.notMatch(logs(), token, 'its logs never hold the token')
})

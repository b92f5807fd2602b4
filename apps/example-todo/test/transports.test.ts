import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from '@mcp-gw/testkit'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import t from 'tap'
import { API_KEY, callText, connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'

const EXAMPLE = fileURLToPath(new URL('../dist/main.js', import.meta.url))

t.test('over Streamable HTTP the same tools work', async (t) => {
  const gateway = await startGatewayProcess(t)
  const port = await freePort()
  // No auth on this HTTP transport: the user is the local one.
  const env = { ...process.env, MCP_WEB_UI_GATEWAY_URL: gateway.origin, MCP_WEB_UI_GATEWAY_API_KEY: API_KEY, MCP_WEB_UI_LOCAL_USER: 'carol' }
  const child = spawn(process.execPath, [EXAMPLE, '--http', String(port)], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stdout = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  await new Promise<void>((resolve, reject) => {
    let err = ''
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); if (err.includes('Streamable HTTP')) resolve() })
    child.once('exit', () => reject(new Error(`example exited: ${err}`)))
  })
  const client = new Client({ name: 'e2e-http', version: '0.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)))
  t.teardown(() => client.close())
  await callText(client, 'add_todo', { text: 'over http' })
  const url = linkOf(await callText(client, 'open_todo_ui'))
  t.match(url, new RegExp(`^${gateway.origin}/mcp/`))
  const res = await fetch(new URL('api/todos', url))
  t.equal(res.status, 200)
  t.match(await res.json(), { userId: 'carol', items: ['over http'] })
  t.equal(stdout, '', 'nothing on stdout')
})

t.test('without a gateway, links point straight at the UI server, as before the gateway existed', async (t) => {
  const { mcp, strayStdout } = await connectExample(t, null, { MCP_WEB_UI_LOCAL_USER: 'dave' })
  await callText(mcp, 'add_todo', { text: 'direct' })
  const opened = await callText(mcp, 'open_todo_ui')
  const url = linkOf(opened)
  t.match(url, /^http:\/\/127\.0\.0\.1:1\d{4}\/\?token=[\w-]+$/, 'http://host:port/?token=...')
  t.match(opened.text, url, 'a client without MCP Apps gets the link as text too')
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(url)
  await page.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open' && document.querySelectorAll('#items li').length === 1, null, { timeout: 10_000 })
  t.equal(await page.textContent('#user'), 'dave')
  await callText(mcp, 'add_todo', { text: 'still live' })
  await page.waitForFunction(() => document.querySelectorAll('#items li').length === 2, null, { timeout: 2000 })
  t.pass('live updates in direct mode too')
  t.equal((await fetch(url.replace(/token=.*/, 'token=forged'))).status, 401, 'a forged token is refused by the UI')
  t.equal((await fetch(new URL('api/todos', url))).status, 401, 'the page\'s own requests need the cookie its first load set')
  t.same(strayStdout(), [], 'nothing but JSON-RPC on stdout')
})

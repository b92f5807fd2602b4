import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eventually, freePort, launchChromium } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { WebSocketServer } from 'ws'
import { buildGateway } from '../src/app.js'
import { testConfig } from './helpers.js'

/**
 * Isolated mode as a browser lives it, with the gateway as `mcp-gw start` runs it
 * (no API key): each session on its own `*.localhost` origin, where one hostile
 * MCP server's page can reach neither another session nor the API.
 */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>app</title>
<link rel="stylesheet" href="/static/app.css"><script src="/static/app.js" defer></script></head>
<body><h1 id="status">loading</h1><p id="echo"></p><p id="event"></p></body></html>`
const SCRIPT = `
document.getElementById('status').textContent = 'script ran'
const ws = new WebSocket('ws://' + location.host + '/ws')
ws.onopen = () => ws.send('round trip')
ws.onmessage = (e) => { document.getElementById('echo').textContent = 'echo: ' + e.data }
const events = new EventSource('/events')
events.onmessage = (e) => { document.getElementById('event').textContent = 'event: ' + e.data; events.close() }
`
const SW = "self.addEventListener('fetch', (e) => e.respondWith(new Response('<h1>taken over</h1>', { headers: { 'content-type': 'text/html' } })))"

/** A backend: the page above, its assets, a WebSocket echo, one event; `/sw.js` and Clear-Site-Data when hostile. */
async function startApp (t: Test, hostile: boolean): Promise<{ port: number, paths: string[] }> {
  const paths: string[] = []
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    paths.push(path)
    const types: Record<string, string> = { '/static/app.css': 'text/css', '/static/app.js': 'text/javascript', '/sw.js': 'text/javascript', '/events': 'text/event-stream' }
    res.writeHead(200, { 'content-type': types[path] ?? 'text/html', ...(hostile && { 'clear-site-data': '"cookies", "storage"' }) })
    if (path === '/static/app.css') res.end('#status { color: rgb(0, 128, 0); }')
    else if (path === '/static/app.js') res.end(SCRIPT)
    else if (path === '/sw.js') res.end(SW)
    else if (path === '/events') res.write('data: hello\n\n')
    else res.end(hostile ? PAGE.replace('<title>app</title>', '<title>hostile</title>') : PAGE.replace('id="status">loading', 'id="status" data-app="b">loading'))
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data.toString())))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { wss.close(); server.closeAllConnections(); server.close(() => resolve()) }))
  return { port: (server.address() as AddressInfo).port, paths }
}

t.test('in isolated mode a hostile session can touch neither another session nor the API', async (t) => {
  const port = await freePort()
  const app = await buildGateway(testConfig({ port, wildcardUrl: `http://*.localhost:${port}` }), { logLevel: 'silent' })
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
  const api = `http://127.0.0.1:${port}`
  const a = await startApp(t, true)
  const b = await startApp(t, false)
  // The registry's own API hands out the links (no key: loopback only).
  const link = async (userId: string, serverName: string): Promise<string> => {
    await app.mcpRegistry.registerServer({ serverName, host: '127.0.0.1', port: serverName === 'a' ? a.port : b.port, secret: `${serverName}-registrant-secret-0123456789abcdef` })
    const res = await fetch(`${api}/create-session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mcpgw-server-secret': `${serverName}-registrant-secret-0123456789abcdef` },
      body: JSON.stringify({ userId, serverName })
    })
    return (await res.json() as { url: string }).url
  }
  const linkA = await link('mallory', 'a')
  const linkB = await link('alice', 'b')
  t.match(linkB, new RegExp(`^http://[a-z2-7]{26}\\.localhost:${port}/\\?mcpgw_link=`), 'a link on a host of its own')

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  const page = await context.newPage()

  // B first: assets by absolute path, a WebSocket and an event stream, no Referer trick.
  await page.goto(linkB)
  await page.waitForFunction(() => document.getElementById('echo')?.textContent !== '' && document.getElementById('event')?.textContent !== '', null, { timeout: 10_000 })
  const originB = new URL(linkB).origin
  t.equal(page.url(), `${originB}/`, 'the address bar holds no credential')
  t.equal(await page.textContent('#status'), 'script ran')
  t.equal(await page.$eval('#status', (el) => getComputedStyle(el).color), 'rgb(0, 128, 0)')
  t.equal(await page.textContent('#echo'), 'echo: round trip')
  t.equal(await page.textContent('#event'), 'event: hello')
  t.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is out of the scripts\' reach')
  await page.evaluate(() => localStorage.setItem('b', 'kept'))

  // A: the widest Service Worker it can get, Clear-Site-Data on every answer, and the API.
  await page.goto(linkA)
  const registered = await page.evaluate(async () => {
    try {
      return (await navigator.serviceWorker.register('/sw.js', { scope: '/' })).scope
    } catch (err) {
      return (err as Error).message
    }
  })
  t.match(registered, /bad HTTP response code \(403\)/, 'no worker is served, even on its own origin: it would answer after a revocation')
  const apiAttempts = await page.evaluate(async (apiOrigins) => {
    const out: string[] = []
    for (const origin of apiOrigins) {
      for (const [path, init] of [['/create-session', { method: 'POST', body: JSON.stringify({ userId: 'alice', serverName: 'b' }) }], ['/sessions', {}]] as const) {
        try {
          const res = await fetch(origin + path, { ...init, mode: 'no-cors' })
          out.push(`${path}: opaque ${res.type}`)
        } catch (err) {
          out.push(`${path}: ${(err as Error).name}`)
        }
      }
    }
    return out
  }, [api, `http://localhost:${port}`])
  t.ok(apiAttempts.length === 4, `the page tried the API: ${apiAttempts.join('; ')}`)
  const created = await app.mcpRegistry.listSessions({ userId: 'alice' })
  t.equal(created.length, 1, 'the API made no session for the page (alice has only her own)')

  // Back to B: its page, its storage, no worker of A's.
  await page.goto(`${originB}/`)
  await page.waitForFunction(() => document.getElementById('echo')?.textContent !== '', null, { timeout: 10_000 })
  t.equal(await page.getAttribute('#status', 'data-app'), 'b', "B's page is B's own")
  t.equal(await page.evaluate(() => navigator.serviceWorker.controller), null, 'no worker controls it')
  t.equal(await page.evaluate(() => localStorage.getItem('b')), 'kept', "A's Clear-Site-Data left B's storage intact")
  t.notOk(b.paths.includes('/sw.js'), 'B never served a worker')
  t.same((await context.cookies()).map((c) => [c.name, c.httpOnly, c.sameSite, c.domain]).sort(), [
    ['mcpgw_session', true, 'Lax', new URL(linkA).hostname],
    ['mcpgw_session', true, 'Lax', new URL(linkB).hostname]
  ].sort(), 'one host-only HttpOnly cookie per session host')

  // Revocation reaches B's open WebSocket within the bound.
  await page.evaluate(() => {
    const ws = new WebSocket('ws://' + location.host + '/ws')
    ;(window as unknown as { wsClosed: Promise<number> }).wsClosed = new Promise((resolve) => { ws.onclose = (e) => resolve(e.code) })
    return new Promise((resolve) => { ws.onopen = resolve })
  })
  const revokedAt = Date.now()
  await app.mcpRegistry.revoke({ userId: 'alice' })
  const code = await page.evaluate(() => (window as unknown as { wsClosed: Promise<number> }).wsClosed)
  t.equal(code, 1008, 'closed as a policy violation')
  t.ok(Date.now() - revokedAt < 2500, `closed within ${Date.now() - revokedAt} ms`)
  let status: number | undefined
  await eventually(async () => (status = (await page.goto(`${originB}/`))?.status()) === 401, { within: 2500, what: `the page refused after revocation (last ${String(status)})` })
  t.match(await page.textContent('body'), /ask the MCP server for a new link/)
})

t.test('the API refuses web pages and rebinding hosts when it has no key', async (t) => {
  const app = await buildGateway(testConfig({}), { logLevel: 'silent' })
  t.teardown(() => app.close())
  const cases: Array<[string, Record<string, string>, number, string]> = [
    ['a page of another origin', { origin: 'http://evil.example' }, 403, 'MCPGW_API_BROWSER_FORBIDDEN'],
    ['a session host page', { origin: 'http://aaaaaaaaaaaaaaaaaaaaaaaaaa.localhost:3082' }, 403, 'MCPGW_API_BROWSER_FORBIDDEN'],
    ['a same-site fetch', { 'sec-fetch-site': 'same-origin' }, 403, 'MCPGW_API_BROWSER_FORBIDDEN'],
    ['DNS rebinding', { host: 'rebind.attacker.example:3082' }, 403, 'MCPGW_API_LOOPBACK_ONLY'],
    ['a relayed request', { 'x-forwarded-for': '203.0.113.5' }, 403, 'MCPGW_API_LOOPBACK_ONLY'],
    ['a relayed request (Forwarded)', { forwarded: 'for=203.0.113.5' }, 403, 'MCPGW_API_LOOPBACK_ONLY']
  ]
  for (const path of ['/sessions', '/metrics', '/openapi.json']) {
    for (const [label, headers, status, code] of cases) {
      const res = await app.inject({ url: path, remoteAddress: '127.0.0.1', headers })
      t.same([res.statusCode, res.json().code], [status, code], `${path}: ${label}`)
    }
    t.equal((await app.inject({ url: path, remoteAddress: '127.0.0.1', headers: { host: 'localhost:3082', 'sec-fetch-site': 'none' } })).statusCode, 200, `${path}: a local tool still works`)
  }
})

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eventually, launchChromium } from '@mcp-gw/testkit'
import t from 'tap'
import { startBackend, startGateway } from './helpers.js'

// Path mode in Chromium: a link opened in a tab leaves no token in the address bar, in a
// Referer (even one the page's own policy asks for in full), or in anything the backend gets;
// the page's fetches, WebSocket, event stream and absolute-path assets work under the label.

t.test('a link opened in a tab: no token in the address, a Referer or the backend; everything on the page works', async (t) => {
  const referers: string[] = []
  const elsewhere = createServer((req, res) => {
    if (req.url === '/landing') referers.push(req.headers.referer ?? '(none)')
    res.writeHead(200, { 'content-type': 'text/html' }).end('<title>elsewhere</title>')
  })
  await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => elsewhere.close(() => resolve())))
  const other = `http://localhost:${(elsewhere.address() as AddressInfo).port}`

  const page = `<!doctype html><meta charset="utf-8"><meta name="referrer" content="unsafe-url"><title>todo</title>
<link rel="stylesheet" href="/static/app.css">
<p id="fetched"></p><p id="echo"></p><p id="event"></p><p id="base"></p>
<a id="out" href="${other}/landing" referrerpolicy="unsafe-url">elsewhere</a>
<script>
fetch('api/items').then((r) => r.json()).then((j) => { document.getElementById('fetched').textContent = j.items.join(',') })
const ws = new WebSocket(new URL('ws', location.href).href.replace(/^http/, 'ws'))
ws.onopen = () => ws.send('round trip')
ws.onmessage = (e) => { document.getElementById('echo').textContent = e.data }
new EventSource('events').onmessage = (e) => { document.getElementById('event').textContent = e.data }
</script>`
  const backend = await startBackend(t, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(page)
    } else if (path === '/api/items') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: ['milk', 'bread'], base: req.headers['x-forwarded-prefix'] }))
    } else if (path === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: streamed\n\n')
    } else if (path === '/static/app.css') {
      res.writeHead(200, { 'content-type': 'text/css' }).end('#fetched { color: rgb(0, 128, 0); }')
    } else {
      res.writeHead(404).end()
    }
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const tab = await browser.newPage()
  await tab.goto(`${gw.origin}/mcp/${token}/`)
  const address = new URL(tab.url())
  t.match(address.pathname, /^\/mcp\/s\/[\w-]{22}\/$/, `the address bar holds a label: ${address.pathname}`)
  t.notOk(tab.url().includes(token), 'and no token')
  await eventually(async () => (await tab.textContent('#fetched')) === 'milk,bread' && (await tab.textContent('#echo')) === 'round trip' && (await tab.textContent('#event')) === 'streamed', { what: 'the page\'s fetch, WebSocket and event stream', within: 10_000 })
  t.equal(await tab.evaluate(() => getComputedStyle(document.getElementById('fetched')!).color), 'rgb(0, 128, 0)', 'the absolute-path stylesheet applied')
  t.equal(await tab.evaluate(() => document.cookie), '', 'the gateway\'s cookie is out of the page\'s reach')

  await Promise.all([tab.waitForURL(`${other}/landing`, { timeout: 10_000 }), tab.click('#out')])
  t.equal(referers.length, 1, 'the other site was reached once')
  t.notOk(referers[0]!.includes(token), `the page asked for its full URL as Referer, and the other site got no token: ${referers[0]!}`)
  t.ok(backend.seen.length >= 5, `the backend served the page and its requests (${backend.seen.length})`)
  t.notOk(backend.seen.some((r) => JSON.stringify(r.headers).includes(token) || r.url.includes(token)), 'nothing the backend received holds the token')

  // The address alone, in a browser that never opened the link: a coded refusal.
  const stranger = await browser.newPage()
  const answer = await stranger.goto(address.href)
  t.equal(answer?.status(), 401)
  t.match(await stranger.content(), /MCPGW_PROXY_LINK_NOT_OPENED_HERE/)
  t.equal(backend.seen.filter((r) => r.url === '/').length, 1, 'the stranger reached no backend')
})

t.test('over plain http on a LAN name (no Fetch Metadata), a link opened in a tab swaps too', async (t) => {
  const backend = await startBackend(t, (_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }).end('<title>lan</title><p id="ok">served</p>') })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const browser = await launchChromium(['--host-resolver-rules=MAP gateway.lan.test 127.0.0.1'])
  t.teardown(() => browser.close())
  const tab = await browser.newPage()
  await tab.goto(`http://gateway.lan.test:${gw.port}/mcp/${token}/`)
  t.equal(await tab.textContent('#ok'), 'served')
  t.match(new URL(tab.url()).pathname, /^\/mcp\/s\/[\w-]{22}\/$/, 'under a label')
  t.notOk(backend.seen.some((r) => r.headers['sec-fetch-mode'] !== undefined), 'the browser sent no Fetch Metadata here')
  t.notOk(backend.seen.some((r) => JSON.stringify(r.headers).includes(token)), 'the backend got no token')
})

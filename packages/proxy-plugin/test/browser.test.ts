import { eventually, launchChromium } from '@mcp-gw/testkit'
import t from 'tap'
import { startBackend, startGateway } from './helpers.js'

// The original gateway served these absolute-path assets as HTML. A browser is the judge.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Todo</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head><body><h1 id="status">loading</h1><ul id="items"></ul><p id="echo"></p></body></html>`

const SCRIPT = `
document.getElementById('status').textContent = 'script ran'
fetch('/api/data').then((r) => r.json()).then((data) => {
  for (const item of data.items) {
    const li = document.createElement('li')
    li.textContent = item
    document.getElementById('items').appendChild(li)
  }
})
const ws = new WebSocket(new URL('ws', location.href).href.replace(/^http/, 'ws'))
ws.onopen = () => ws.send('round trip')
ws.onmessage = (event) => { document.getElementById('echo').textContent = 'echo: ' + event.data }
`

t.test('a page with absolute-path assets, fetches and a WebSocket works through the gateway', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(PAGE)
    } else if (path === '/static/app.css') {
      res.writeHead(200, { 'content-type': 'text/css' })
      res.end('#status { color: rgb(0, 128, 0); }')
    } else if (path === '/static/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.end(SCRIPT)
    } else if (path === '/api/data') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ items: ['milk', 'bread'] }))
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const failed: string[] = []
  page.on('requestfailed', (r) => failed.push(r.url()))
  await page.goto(`${gw.origin}/mcp/${token}/`)
  await page.waitForFunction(() => document.querySelectorAll('#items li').length === 2 && document.getElementById('echo')?.textContent !== '', null, { timeout: 10_000 })

  t.equal(await page.textContent('#status'), 'script ran', '/static/app.js ran as JavaScript')
  t.equal(await page.$eval('#status', (el) => getComputedStyle(el).color), 'rgb(0, 128, 0)', '/static/app.css applied as CSS')
  t.same(await page.$$eval('#items li', (els) => els.map((el) => el.textContent)), ['milk', 'bread'], "fetch('/api/data') answered by the backend")
  t.equal(await page.textContent('#echo'), 'echo: round trip', 'WebSocket round trip')
  t.same(failed, [], 'no request failed')
  const assetUrls = backend.seen.map((r) => r.url)
  t.ok(assetUrls.includes('/static/app.css') && assetUrls.includes('/static/app.js') && assetUrls.includes('/api/data'), 'the backend served the assets')

  // Another site's page gets no Referer with the token, so it cannot borrow the session.
  const leak = await (await fetch(`${gw.origin}/static/app.css`, { headers: { referer: `http://other.example/mcp/${token}/` } })).status
  t.equal(leak, 404, 'a Referer from another origin is not followed')
  const revoked = await (async () => {
    await gw.registry.revoke({ userId: 'alice' })
    // Until the revalidation bound has passed the cached session may still be honoured.
    await eventually(async () => (await fetch(`${gw.origin}/mcp/${token}/`)).status === 401, { within: 5000, what: 'the revocation reaching the cache' })
    return (await fetch(`${gw.origin}/static/app.css`, { headers: { referer: `${gw.origin}/mcp/${token}/` } })).status
  })()
  t.equal(revoked, 404, 'a revoked session is not redirected into')
})

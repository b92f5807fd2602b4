import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eventually, launchChromium } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { startBackend, startIsolatedGateway } from './helpers.js'

/**
 * Isolated mode inside an MCP Apps host, judged by Chromium: the host frames a
 * session page (its cookie then partitioned under the host's site) and, beside
 * it, another app from another site. That app's requests to the session host
 * carry the session's cookie, since they share the host's partition: the
 * gateway must refuse them from Fetch Metadata before the backend sees them,
 * while the session's own page keeps working.
 */
async function listen (t: Test, html: (port: number) => string): Promise<number> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(html((server.address() as AddressInfo).port))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return (server.address() as AddressInfo).port
}

t.test('another app in the same MCP Apps host cannot post to, fetch from or open a WebSocket on a framed session', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    if ((req.url ?? '').startsWith('/page')) {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<!doctype html><meta charset="utf-8"><title>session</title><p id="me">the session\'s page</p><script>fetch("/own-request", { method: "POST", body: "mine" }).then((r) => { document.getElementById("me").dataset.own = String(r.status) })</script>')
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('backend answered')
  })
  // The host's page origin is known only once it listens (the allowlist names its port), its page once the link is made.
  let hostHtml = ''
  const hostPort = await listen(t, () => hostHtml)
  const gw = await startIsolatedGateway(t, { frameAncestors: [`http://host.localhost:${hostPort}`] })
  const { link } = await gw.session(backend)
  const sessionOrigin = new URL(link).origin
  const evilPort = await listen(t, () => `<!doctype html><meta charset="utf-8"><title>evil</title>
<form id="f" method="POST" action="${sessionOrigin}/form-post"><input name="x" value="1"></form>
<script>
const target = ${JSON.stringify(sessionOrigin)}
const results = {}
window.results = results
const attempts = [
  ['no-cors POST', () => fetch(target + '/no-cors-post', { method: 'POST', mode: 'no-cors', credentials: 'include', body: 'x' })],
  ['credentialed GET', () => fetch(target + '/cors-get', { credentials: 'include' })],
  ['image', () => new Promise((resolve, reject) => { const img = new Image(); img.onload = resolve; img.onerror = reject; img.src = target + '/image' })],
  ['websocket', () => new Promise((resolve, reject) => { const ws = new WebSocket(target.replace('http', 'ws') + '/ws'); ws.onopen = resolve; ws.onerror = reject })]
]
Promise.all(attempts.map(([name, run]) => run().then(() => { results[name] = 'went through' }, (err) => { results[name] = 'refused' }))).then(() => {
  parent.postMessage(results, '*')
  document.getElementById('f').submit()
})
</script>`)
  hostHtml = `<!doctype html><meta charset="utf-8"><title>host</title>
<iframe id="session" sandbox="allow-scripts allow-same-origin allow-forms" src="${link.replace('/?', '/page?')}"></iframe>
<script>window.addEventListener('message', (event) => { window.evilResults = event.data })</script>
<iframe id="other" sandbox="allow-scripts allow-same-origin allow-forms" src="http://evil.localhost:${evilPort}/"></iframe>`

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.goto(`http://host.localhost:${hostPort}/`)

  let sessionFrame: import('playwright-core').Frame | undefined
  await eventually(async () => {
    sessionFrame = page.frames().find((f) => f.url().startsWith(sessionOrigin))
    return sessionFrame !== undefined && (await sessionFrame.$eval('#me', (el) => (el as HTMLElement).dataset.own).catch(() => undefined)) === '200'
  }, { within: 10_000, what: `the session's page, framed by the host, making its own request (frames: ${page.frames().map((f) => f.url()).join(' ')}; backend saw ${backend.seen.map((r) => r.method + ' ' + r.url.split('?')[0]).join(', ')})` })
  t.pass('the framed session page loaded (the link swapped for its cookie in the frame) and its own POST went through')

  // The last attempt is the form: its navigation ends on the gateway's refusal.
  await eventually(() => page.frames().some((f) => f.url() === `${sessionOrigin}/form-post`), { within: 10_000, what: "the other app's attempts, ending with its form" })
  const results = await page.evaluate(() => (window as unknown as { evilResults?: Record<string, string> }).evilResults)
  t.same(results, { 'no-cors POST': 'went through', 'credentialed GET': 'refused', image: 'refused', websocket: 'refused' }, 'as the other app saw it (an opaque no-cors answer cannot be told from success; the backend below says what arrived)')
  const paths = backend.seen.map((r) => r.url.split('?')[0])
  for (const path of ['/no-cors-post', '/cors-get', '/image', '/ws', '/form-post']) {
    t.notOk(paths.includes(path), `${path}: refused before the backend`)
  }
  t.same(paths.filter((p) => p !== '/page'), ['/own-request'], 'the backend saw the session page and its own request only')
})

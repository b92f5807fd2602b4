import { launchChromium } from '@mcp-gw/testkit'
import type { Page } from 'playwright-core'
import t from 'tap'
import type { Test } from 'tap'
import { startBackend, startGateway } from './helpers.js'
import type { Backend, Gateway } from './helpers.js'

/**
 * Path mode, judged by a real browser: what a hostile backend sends in its
 * headers cannot reach another session on the shared origin. (What its
 * scripts do on that origin is beyond any header policy: isolated mode.)
 */
/** Sessions A (hostile) and B on one gateway, and a browser page on A's. */
async function openA (t: Test, hostile: Backend, victim: Backend): Promise<{ gw: Gateway, tokenA: string, tokenB: string, page: Page }> {
  const gw = await startGateway(t)
  const tokenA = await gw.session(hostile, { serverName: 'a' })
  const tokenB = await gw.session(victim, { serverName: 'b' })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.goto(`${gw.origin}/mcp/${tokenA}/`)
  return { gw, tokenA, tokenB, page }
}

const HOSTILE_PAGE = '<!doctype html><meta charset="utf-8"><title>A</title><p id="a">hostile</p>'

/** A backend answering every request with `html`, and what `headers` gives for it. */
async function htmlBackend (t: Test, html: (req: import('node:http').IncomingMessage) => string, headers: (path: string) => Record<string, string | string[]> = () => ({})): Promise<Backend> {
  return await startBackend(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', ...headers((req.url ?? '/').split('?')[0]!) })
    res.end(html(req))
  })
}
const SW = "self.addEventListener('fetch', (event) => { event.respondWith(new Response('<h1>taken over</h1>', { headers: { 'content-type': 'text/html' } })) })"

t.test('cookies a backend sets, in any spelling of Path and Domain, stay with its session', async (t) => {
  const hostile = await htmlBackend(t, () => HOSTILE_PAGE, () => ({
    'set-cookie': ['spaced=1; Path=/x; Path =/', 'upper=2; PATH=/', 'domain=3; Domain=127.0.0.1; Path=/', 'bare=4', 'tabbed=5; Path\t=/; Domain\t=127.0.0.1']
  }))
  const victim = await htmlBackend(t, (req) => `<!doctype html><meta charset="utf-8"><title>B</title><pre id="seen">${req.headers.cookie ?? ''}</pre>`)
  const { gw, tokenB, page } = await openA(t, hostile, victim)
  const onA = (await page.evaluate(() => document.cookie)).split('; ').sort()
  t.same(onA, ['bare=4', 'domain=3', 'spaced=1', 'tabbed=5', 'upper=2'], "the cookies exist, on A's own pages")

  await page.goto(`${gw.origin}/mcp/${tokenB}/`)
  t.equal(await page.textContent('#seen'), '', "B's backend received none of A's cookies")
  t.equal(await page.evaluate(() => document.cookie), '', "and B's page sees none")
  // A's link was swapped for the gateway's cookie on A's label: every cookie is on that path.
  const stored = await page.context().cookies()
  const labelA = stored.find((c) => c.name === 'mcpgw_s')?.path
  t.match(labelA, /^\/mcp\/s\/[\w-]{22}$/, 'the gateway\'s own cookie holds A\'s credential on A\'s label')
  t.same(stored.filter((c) => c.name !== 'mcpgw_s').map((c) => c.path), Array(5).fill(`${labelA!}/`), 'every cookie A set is scoped to A')
})

t.test("a backend's page cannot install a Service Worker, in its own session's scope or beyond (one would outlive a revocation)", async (t) => {
  const hostile = await startBackend(t, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/sw.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'service-worker-allowed': '/' })
      res.end(SW)
      return
    }
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(HOSTILE_PAGE)
  })
  const victim = await htmlBackend(t, () => '<!doctype html><meta charset="utf-8"><title>B</title><h1 id="b">the real B</h1>')
  const { gw, tokenB, page } = await openA(t, hostile, victim)
  const attempts = await page.evaluate(async () => {
    const results: string[] = []
    for (const [script, scope] of [['sw.js', '/'], ['sw.js', '/mcp/'], ['/sw.js', '/'], ['sw.js', undefined]]) {
      try {
        const registration = await navigator.serviceWorker.register(script!, scope === undefined ? {} : { scope })
        results.push(`registered ${registration.scope}`)
      } catch (err) {
        results.push((err as Error).name)
      }
    }
    return results
  })
  t.equal(attempts.length, 4)
  t.notOk(attempts.some((a) => a.startsWith('registered')), `no worker registered: ${attempts.join(', ')}`)
  t.notOk(hostile.seen.some((r) => r.headers['service-worker'] === 'script'), 'the backend never served a worker script')

  await page.goto(`${gw.origin}/mcp/${tokenB}/`)
  t.equal(await page.textContent('#b'), 'the real B', "B's page is B's own")
  t.equal(await page.evaluate(() => navigator.serviceWorker.controller), null, 'no worker controls it')
})

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { launchChromium } from '@mcp-gw/testkit'
import t from 'tap'
import { createGatewayClient } from '../src/client.js'
import { startWebUI } from '../src/web-ui.js'

/**
 * Direct mode is for loopback: over plain http on any other name browsers send no Fetch
 * Metadata, and cookies ignore ports, so another port's page on that name could use the
 * UI's cookie. Chromium maps `lan.test` to 127.0.0.1 (every socket stays on loopback) and
 * treats it as the LAN name it stands for: no secure context.
 */
const LAN = 'lan.test'

t.test('direct links on a plain-http LAN name are refused with a coded error, and said once on stderr', async (t) => {
  const lines: string[] = []
  const logger = { info: () => {}, debug: () => {}, warn: (_fields: object, msg?: string) => { lines.push(msg ?? '') } }
  const client = createGatewayClient({ serverName: 'lan', useGateway: false, logger, env: {} })
  const ui = await startWebUI((_req, res) => { res.end('ui') }, { host: '127.0.0.1', advertiseHost: LAN, client })
  t.teardown(() => ui.close())
  await t.rejects(client.createSession('alice'), { code: 'MCPGW_SDK_DIRECT_LOOPBACK_ONLY', statusCode: 500 })
  t.same(client.linkOrigins, [], 'no origin a view should frame')
  t.equal(lines.filter((l) => /loopback/.test(l)).length, 1, 'one warning when the UI registered')
  t.match(lines.find((l) => /loopback/.test(l)), /MCP_WEB_UI_GATEWAY_URL/)
})

t.test("another port's page on the same plain-http name cannot use the UI's cookie; the UI's own page on loopback can", async (t) => {
  const client = createGatewayClient({ serverName: 'lan', useGateway: false, logger: { info () {}, warn () {}, debug () {} }, env: {} })
  const seen: Array<{ path: string, host: string, user: string | null }> = []
  const ui = await startWebUI((req, res) => {
    const user = client.authenticate(req, res)?.userId ?? null
    seen.push({ path: (req.url ?? '').split('?')[0]!, host: String(req.headers.host).split(':')[0]!, user })
    res.writeHead(user === null ? 401 : 200, { 'content-type': 'text/html' }).end(user === null ? 'no' : `<p id="user">${user}</p>`)
  }, { host: '127.0.0.1', client })
  t.teardown(() => ui.close())
  const other = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(`<script>fetch(location.protocol + '//' + location.hostname + ':${ui.port}/probe', { mode: 'no-cors', credentials: 'include' }).finally(() => { document.title = 'sent' })</script>`)
  })
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
  t.teardown(() => other.close())
  const otherPort = (other.address() as AddressInfo).port

  const browser = await launchChromium([`--host-resolver-rules=MAP ${LAN} 127.0.0.1`])
  t.teardown(() => browser.close())
  for (const name of [LAN, '127.0.0.1']) {
    const link = await client.createSession('alice')
    const context = await browser.newContext()
    const page = await context.newPage()
    // The link, opened under this name: its token is swapped for the UI's cookie.
    await page.goto(link.url.replace('127.0.0.1', name))
    t.equal(await page.textContent('#user'), 'alice', `${name}: the link opens the UI`)
    // The page's own request, on the cookie alone.
    const own = await page.evaluate(async () => (await fetch('/own')).status)
    // Another port's page on the same name, on the same cookie.
    const probe = await context.newPage()
    await probe.goto(`http://${name}:${otherPort}/`)
    await probe.waitForFunction("document.title === 'sent'", null, { timeout: 5000 })
    const probed = seen.filter((s) => s.path === '/probe' && s.host === name)
    t.equal(probed.length, 1, `${name}: the other page's request reached the UI`)
    t.equal(probed[0]?.user, null, `${name}: and was not let in on the cookie`)
    t.equal(own, name === LAN ? 401 : 200, name === LAN
      ? `${name}: no Fetch Metadata, so not even the UI's own page is let in on the cookie (direct mode is for loopback)`
      : `${name}: the UI's own page is`)
    await context.close()
  }
})

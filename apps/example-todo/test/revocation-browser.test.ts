import t from 'tap'
import { callText, connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'

t.test('revoking a user cuts the open page: its event stream and its WebSocket end within the bound, as the page sees them', async (t) => {
  const gateway = await startGatewayProcess(t)
  const { mcp } = await connectExample(t, gateway)
  const url = linkOf(await callText(mcp, 'open_todo_ui'))
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(url)
  await page.waitForFunction("document.getElementById('ws-state')?.textContent === 'open' && events.readyState === EventSource.OPEN", null, { timeout: 10_000 })
  const open = await (await gateway.api('/metrics')).text()
  t.match(open, /^mcpgw_sse_streams_open 1$/m, 'the page holds one event stream')

  const revoked = await (await gateway.api('/revoke-session', { userId: 'alice' })).json()
  t.same(revoked, { revoked: 1 })
  const revokedAt = Date.now()
  // The stream ends (the page's EventSource leaves OPEN) and the socket closes with 1008.
  await page.waitForFunction("events.readyState !== EventSource.OPEN && document.getElementById('ws-state')?.textContent === 'closed 1008'", null, { timeout: 5000 })
  const took = Date.now() - revokedAt
  t.ok(took < 3000, `the page's stream and socket ended ${took} ms after the revocation (bound 2.25 s)`)
  const after = await (await gateway.api('/metrics')).text()
  t.match(after, /^mcpgw_sse_streams_open 0$/m, 'no event stream is left open at the gateway')
  // EventSource reconnects after its retry delay, is refused (401), and gives up for good.
  await page.waitForFunction('events.readyState === EventSource.CLOSED', null, { timeout: 10_000 })
  t.pass('the reconnection is refused: the page stays cut off')
})

t.test('the page tells its user when its link died (revoked, or a gateway that restarted and forgot it), and how to get a new one', async (t) => {
  const first = await startGatewayProcess(t)
  const { mcp } = await connectExample(t, first)
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(linkOf(await callText(mcp, 'open_todo_ui')))
  await page.waitForFunction("document.getElementById('ws-state')?.textContent === 'open'", null, { timeout: 10_000 })
  t.equal(await page.$('#mcpgw-link'), null, 'no banner while the link works')

  // Revoked: the socket closes, the page asks the SDK's helper, which says so.
  await first.api('/revoke-session', { userId: 'alice' })
  const banner = await page.waitForSelector('#mcpgw-link', { timeout: 5000 })
  t.equal(await banner.getAttribute('role'), 'alert')
  t.equal(await banner.textContent(), 'This page is no longer live: it expired or was revoked. Ask the assistant for a new link to Todos.')

  // A new link; then the gateway restarts with an embedded store that forgot it.
  await page.goto(linkOf(await callText(mcp, 'open_todo_ui')))
  await page.waitForFunction("document.getElementById('ws-state')?.textContent === 'open'", null, { timeout: 10_000 })
  await first.stop()
  await page.waitForFunction(() => /cannot be reached/.test(document.getElementById('mcpgw-link')?.textContent ?? ''), null, { timeout: 5000 })
  t.pass('gateway down: the page says the server cannot be reached')
  await startGatewayProcess(t, { MCP_WEB_UI_GATEWAY_PORT: String(first.port) })
  await page.evaluate(async () => { await (window as unknown as { mcpgw: { check: () => Promise<void> } }).mcpgw.check() })
  t.match(await page.textContent('#mcpgw-link'), /^This page is no longer live: it expired or was revoked\. Ask the assistant for a new link/, 'back up, but the link is gone with the old store')
})

t.test('a gateway that answers 503 while it restarts: the page says it cannot be reached, and recovers by itself', async (t) => {
  const gateway = await startGatewayProcess(t)
  const { mcp } = await connectExample(t, gateway)
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(linkOf(await callText(mcp, 'open_todo_ui')))
  await page.waitForFunction("document.getElementById('ws-state')?.textContent === 'open'", null, { timeout: 10_000 })
  // The check lands while the gateway drains (what a page's check meets during a restart).
  const draining = async (route: { fulfill: (r: object) => Promise<void> }): Promise<void> => {
    await route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ statusCode: 503, code: 'MCPGW_PROXY_SHUTTING_DOWN', error: 'Service Unavailable', message: 'The gateway is shutting down; try again shortly' }) })
  }
  await page.route('**/.well-known/mcp-gw/link', draining)
  await page.evaluate(async () => { await (window as unknown as { mcpgw: { check: () => Promise<void> } }).mcpgw.check() })
  t.match(await page.textContent('#mcpgw-link'), /^This page is no longer live: the server cannot be reached\./, 'a restart is not "the server answers 503"')
  await page.unroute('**/.well-known/mcp-gw/link', draining)
  // Back: the page checks again soon by itself (well before its 15-s round) and the banner goes.
  await page.waitForFunction(() => document.getElementById('mcpgw-link') === null || !document.getElementById('mcpgw-link')!.isConnected, null, { timeout: 8000 })
  t.pass('the banner went once the gateway answered again')
})

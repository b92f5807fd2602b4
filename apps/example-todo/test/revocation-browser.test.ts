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

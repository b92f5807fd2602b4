import t from 'tap'
import { API_KEY, callText, connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'

const SERVER_SECRET = 'e2e-example-server-secret-0123456789abcdef'

t.test('an MCP client opens the todo UI for alice; the browser sees live updates through the gateway', async (t) => {
  const gateway = await startGatewayProcess(t)
  const { mcp, strayStdout } = await connectExample(t, gateway, { MCP_WEB_UI_SERVER_SECRET: SERVER_SECRET })
  const tools = (await mcp.listTools()).tools
  t.same(tools.map((tool) => tool.name).sort(), ['add_todo', 'open_todo_ui', 'share_todo_ui', 'stop_sharing_todo_ui'])
  t.same(Object.fromEntries(tools.map((tool) => [tool.name, Object.keys(tool.inputSchema.properties ?? {})])), { open_todo_ui: [], share_todo_ui: ['person', 'group', 'interactive'], stop_sharing_todo_ui: ['shareId'], add_todo: ['text'] },
    'no tool takes the user acting: that is who the MCP request is from (a share names whom it is for)')

  await callText(mcp, 'add_todo', { text: 'buy milk' })
  const opened = await callText(mcp, 'open_todo_ui')
  const aliceUrl = linkOf(opened)
  t.match(aliceUrl, new RegExp(`^${gateway.origin}/mcp/[\\w-]+\\.[\\w-]+\\.[\\w-]+/$`), 'a gateway URL')
  t.match(opened.content.find((c) => c.type === 'resource_link'), { uri: aliceUrl, mimeType: 'text/html' }, 'also as a resource link, for a client without MCP Apps')

  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(aliceUrl)
  await page.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open' && document.querySelectorAll('#items li').length === 1, null, { timeout: 10_000 })
  t.equal(await page.textContent('#user'), 'alice')
  t.same(await page.$$eval('#items li', (els) => els.map((el) => el.textContent)), ['buy milk'])
  t.equal(await page.$eval('.status', (el) => getComputedStyle(el).color), 'rgb(90, 90, 90)', 'the stylesheet applied')
  await page.waitForFunction(() => document.getElementById('count')?.textContent === '1', null, { timeout: 5000 })

  // A tool call changes the list: the open page shows it without a reload, and the SSE counter moves.
  await callText(mcp, 'add_todo', { text: 'walk the dog' })
  await page.waitForFunction(() => document.querySelectorAll('#items li').length === 2, null, { timeout: 2000 })
  t.same(await page.$$eval('#items li', (els) => els.map((el) => el.textContent)), ['buy milk', 'walk the dog'], 'updated live over the WebSocket within 2 s')
  await page.waitForFunction(() => document.getElementById('count')?.textContent === '2', null, { timeout: 2000 })
  t.pass('the SSE-driven counter moved')

  // Bob's link (asked for with the server's own secret, as bob's own MCP client would get it) shows bob's list, not alice's.
  const bobRes = await fetch(`${gateway.origin}/create-session`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'x-mcpgw-server-secret': SERVER_SECRET, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'bob', serverName: 'todoodles' })
  })
  const bobUrl = ((await bobRes.json()) as { url: string }).url
  t.not(bobUrl, aliceUrl)
  const bobPage = await browser.newPage()
  await bobPage.goto(bobUrl)
  await bobPage.waitForFunction(() => document.getElementById('user')?.textContent === 'bob', null, { timeout: 10_000 })
  t.equal(await bobPage.$$eval('#items li', (els) => els.length), 0, "bob does not see alice's items")

  // Revoking alice: her URL answers 401 and her open WebSocket is closed.
  const revoked = await (await gateway.api('/revoke-session', { userId: 'alice' })).json()
  t.same(revoked, { revoked: 1 })
  await page.waitForFunction(() => document.getElementById('ws-state')?.textContent?.startsWith('closed') === true, null, { timeout: 5000 })
  t.equal(await page.textContent('#ws-state'), 'closed 1008', "alice's WebSocket was closed by the gateway")
  t.equal((await fetch(aliceUrl)).status, 401, "alice's URL answers 401")
  t.equal((await fetch(bobUrl)).status, 200, "bob's still works")
  t.notOk(gateway.log().includes(aliceUrl.split('/')[4]!), "alice's token never reached the gateway log")
  t.same(strayStdout(), [], 'nothing but JSON-RPC on stdout')
})

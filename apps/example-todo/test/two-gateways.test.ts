import { eventually, startTestMongo } from '@mcp-gw/testkit'
import t from 'tap'
import { callText, connectExample, JWT_SECRET, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'

t.test('two gateways on one MongoDB: a session made through one works through the other, and so does its revocation', async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const shared = { MCP_WEB_UI_MONGO_URL: mongo.url, MCP_WEB_UI_MONGO_DB_NAME: mongo.uniqueDbName('e2e'), MCP_WEB_UI_JWT_SECRET: JWT_SECRET }
  const first = await startGatewayProcess(t, shared)
  const second = await startGatewayProcess(t, shared)
  t.match(first.log(), /"store":"mongo"/)

  // The example registers with the first gateway only.
  const { mcp } = await connectExample(t, first)
  await callText(mcp, 'add_todo', { text: 'shared state' })
  const url = linkOf(await callText(mcp, 'open_todo_ui'))
  t.ok(url.startsWith(first.origin))
  const viaSecond = url.replace(first.origin, second.origin)

  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(viaSecond)
  await page.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open' && document.querySelectorAll('#items li').length === 1, null, { timeout: 10_000 })
  t.same(await page.$$eval('#items li', (els) => els.map((el) => el.textContent)), ['shared state'], 'the session and the registration made through the first work through the second')
  await callText(mcp, 'add_todo', { text: 'live through the second' })
  await page.waitForFunction(() => document.querySelectorAll('#items li').length === 2, null, { timeout: 2000 })
  t.pass('live updates through the second gateway')

  t.equal((await fetch(url)).status, 200, 'the first gateway has the session cached')
  const revokedAt = Date.now()
  t.same(await (await second.api('/revoke-session', { userId: 'alice' })).json(), { revoked: 1 }, 'revoked through the second')
  let status = 200
  await eventually(async () => (status = (await fetch(url)).status) !== 200, { what: 'the first gateway refusing the revoked session', within: 5000, everyMs: 100 })
  const took = Date.now() - revokedAt
  t.equal(status, 401, 'the first gateway refuses it')
  // The bound is revalidateMs (2 s); the margin covers polling and a loaded machine.
  t.ok(took <= 2600, `honoured by the first gateway after ${took} ms`)
})

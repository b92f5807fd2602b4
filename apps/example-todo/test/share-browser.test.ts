import { freePort, logInAtTestIdp, startTestIdp } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { callText, connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'

const SERVER_SECRET = 'share-example-server-secret-0123456789abcdef'

/**
 * Sharing a live UI, as its people live it: alice's MCP client asks the example server (over
 * stdio) to share her todo list with bob; the gateway process logs people in through the test
 * OpenID provider; bob's browser sees her list, live and view-only; eve's does not; a share for
 * bob's group lets him add to it; and when alice stops sharing, bob's open page stops at once.
 * In path mode and in isolated mode.
 */
async function setUp (t: Test, isolated: boolean) {
  const port = await freePort()
  const publicUrl = `http://${isolated ? '127.0.0.1' : 'gw.localhost'}:${port}`
  const idp = await startTestIdp({ redirectUris: [`${publicUrl}/_mcpgw/login/callback`] })
  t.teardown(() => idp.close())
  const gateway = await startGatewayProcess(t, {
    MCP_WEB_UI_GATEWAY_PORT: String(port),
    MCP_WEB_UI_PUBLIC_URL: publicUrl,
    ...(isolated && { MCP_WEB_UI_WILDCARD_URL: `http://*.localhost:${port}` }),
    MCP_WEB_UI_OIDC_ISSUER: idp.issuer,
    MCP_WEB_UI_OIDC_CLIENT_ID: idp.clientId,
    MCP_WEB_UI_OIDC_CLIENT_SECRET: idp.clientSecret,
    MCP_WEB_UI_OIDC_GROUPS_CLAIM: 'groups'
  })
  const { mcp } = await connectExample(t, gateway, { MCP_WEB_UI_SERVER_SECRET: SERVER_SECRET })
  return { gateway, idp, mcp }
}

for (const isolated of [false, true]) {
  t.test(`${isolated ? 'isolated' : 'path'} mode: alice shares her live list with bob (view-only, until she stops) and with a group`, async (t) => {
    const { idp, mcp } = await setUp(t, isolated)
    const tools = (await mcp.listTools()).tools.map((tool) => tool.name)
    t.ok(tools.includes('share_todo_ui') && tools.includes('stop_sharing_todo_ui'), 'the example offers sharing as tools')
    await callText(mcp, 'add_todo', { text: 'buy milk' })
    const own = linkOf(await callText(mcp, 'open_todo_ui'))
    const shared = await callText(mcp, 'share_todo_ui', { person: 'bob' })
    const shareUrl = /(http\S+) \(share id ([\w-]+)\)/.exec(shared.text)
    t.ok(shareUrl, `the tool answers with the share's link and id: ${shared.text.replace(/(mcp\/|mcpgw_link=)[^/ ]+/, '$1<token>')}`)
    const [, link, shareId] = shareUrl!
    t.not(link, own, 'a link of its own')

    const browser = await launchBrowser(t)
    // Bob, not logged in: the link sends him to log in, and back to alice's list, live.
    const bobContext = await browser.newContext()
    const bob = await bobContext.newPage()
    await bob.goto(link!)
    await logInAtTestIdp(bob, idp.issuer, 'bob')
    await bob.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open' && document.querySelectorAll('#items li').length === 1, null, { timeout: 10_000 })
    t.equal(await bob.textContent('#user'), 'alice', "bob sees alice's list")
    await callText(mcp, 'add_todo', { text: 'walk the dog' })
    await bob.waitForFunction(() => document.querySelectorAll('#items li').length === 2, null, { timeout: 5000 })
    t.pass('and her changes, live over its WebSocket')
    await bob.waitForFunction(() => document.getElementById('count')?.textContent === '2', null, { timeout: 5000 })
    t.pass('and over its event stream')

    // View-only: a write over the WebSocket is refused by the server (the SDK says the session
    // cannot interact), one over HTTP by the gateway.
    await bob.fill('#add input', 'bob was here')
    await bob.click('#add button')
    await bob.waitForFunction(() => document.getElementById('ws-state')?.textContent?.startsWith('view-only') === true, null, { timeout: 5000 })
    const posted = await bob.evaluate(async () => { const res = await fetch('api/todos', { method: 'POST', body: '{}' }); return [res.status, (await res.json() as { code: string }).code] })
    t.same(posted, [403, 'MCPGW_PROXY_SCOPE_DENIED'], 'a POST: refused by the gateway')
    t.same(await bob.$$eval('#items li', (els) => els.map((el) => el.textContent)), ['buy milk', 'walk the dog'], 'the list is as alice left it')

    // Eve, logged in as herself, with bob's share: the 403 page.
    const eve = await (await browser.newContext()).newPage()
    await eve.goto(link!)
    await logInAtTestIdp(eve, idp.issuer, 'eve')
    await eve.waitForSelector('text=MCPGW_PROXY_NOT_YOUR_SESSION', { timeout: 10_000 })
    t.pass("eve is refused bob's share")

    // Shared with a group, to change: bob (in ops) adds to her list from the page; eve (not) is
    // refused. (Path mode only: the group rule is the same in both, and browser time is dear.)
    if (!isolated) await shareWithOps()
    async function shareWithOps (): Promise<void> {
      const forOps = /(http\S+) \(share id/.exec((await callText(mcp, 'share_todo_ui', { group: 'ops', interactive: true })).text)![1]!
      const bobOps = await bobContext.newPage()
      await bobOps.goto(forOps)
      await bobOps.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open', null, { timeout: 10_000 })
      await bobOps.fill('#add input', 'bob was here')
      await bobOps.click('#add button')
      await bobOps.waitForFunction(() => document.querySelectorAll('#items li').length === 3, null, { timeout: 5000 })
      t.equal(await bobOps.textContent('#items li:last-child'), 'bob was here', 'an interactive share for his group: his add lands in her list')
      await eve.goto(forOps)
      await eve.waitForSelector('text=MCPGW_PROXY_NOT_YOUR_SESSION', { timeout: 10_000 })
      t.pass('eve, not in ops, is refused it')
      await bobOps.close()
    }

    // Alice stops sharing: bob's socket closes, his stream is refused, his page opens nothing more.
    t.match((await callText(mcp, 'stop_sharing_todo_ui', { shareId })).text, /Stopped sharing/)
    await bob.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'closed 1008', null, { timeout: 5000 })
    t.pass('his WebSocket closed (1008) within the revocation bound')
    t.equal(await bob.evaluate(async () => (await fetch('events')).status), 401, 'his event stream is refused')
    t.equal((await bob.goto(bob.url()))?.status(), 401, 'and so is the page')
    t.match((await callText(mcp, 'stop_sharing_todo_ui', { shareId: 'someone-elses-session-id' })).text, /No such share of yours/, 'a session id that is not her share ends nothing')
  })
}

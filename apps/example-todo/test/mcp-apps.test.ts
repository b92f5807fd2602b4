import t from 'tap'
import { eventually, freePort } from '@mcp-gw/testkit'
import { startAppsHost } from './apps-host.js'
import { callText, connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'
import { APPS_CAPABILITIES, gatewayFrame, linkFromDefaultGateway, liveInHost, openedSession, render, shellFrame, wsRoundTrip } from './apps-view.js'

/**
 * The example in an MCP Apps host: a real MCP client (declaring MCP Apps) lists
 * the tools, reads the `ui://` resource and calls the tool; a host page in
 * Chromium renders the resource in its sandbox the way web hosts do, and the
 * gateway's page inside it is live, WebSocket included. The link reaches the
 * view, never the model's text; and the gateway lets only the hosts it was told
 * about frame its pages.
 */
t.test('an MCP Apps host renders the live UI: ui:// resource, sandboxed shell, gateway page with its WebSocket', async (t) => {
  const host = await startAppsHost(t)
  const gateway = await startGatewayProcess(t, { MCP_WEB_UI_FRAME_ANCESTORS: `${host.hostOrigin} ${host.sandboxOrigin}` })
  const { mcp, strayStdout } = await connectExample(t, gateway, {}, { capabilities: APPS_CAPABILITIES })

  const tool = (await mcp.listTools()).tools.find((x) => x.name === 'open_todo_ui')!
  const uri = (tool._meta?.ui as { resourceUri?: string } | undefined)?.resourceUri
  t.equal(uri, 'ui://todoodles/web-ui', 'the tool names its ui:// resource')
  t.equal(tool._meta?.['ui/resourceUri'], uri)
  const [content] = (await mcp.readResource({ uri: uri! })).contents as unknown as Array<{ mimeType: string, text: string, _meta: { ui: { csp: { frameDomains: string[] } } } }>
  t.equal(content!.mimeType, 'text/html;profile=mcp-app')
  t.same(content!._meta.ui.csp.frameDomains, [gateway.origin], "the host is asked to allow framing the gateway's origin")

  await callText(mcp, 'add_todo', { text: 'inline' })
  const result = await mcp.callTool({ name: 'open_todo_ui', arguments: {} })
  const link = linkOf(result as { _meta?: Record<string, unknown> })
  t.notMatch(JSON.stringify(result.content), link.split('/')[4]!, 'the token is not in anything the model reads')
  t.notMatch(JSON.stringify(result.content), /\/mcp\//)

  const { page, errors, view } = await liveInHost(t, host.pageUrl, content!, result, new RegExp(`^${gateway.origin}/mcp/`))
  t.equal(await view.textContent('#user'), 'alice')
  const shell = page.frames().find((f) => f.url() === 'about:srcdoc')!
  t.equal(await shell.getAttribute('#open', 'href'), link, 'beside the frame, the link in a new tab')
  t.ok(await shell.isVisible('#open'))
  t.same(await page.evaluate(() => (window as unknown as { messages: string[] }).messages), ['ui/notifications/sandbox-proxy-ready', 'ui/initialize', 'ui/notifications/initialized', 'ui/notifications/size-changed'], 'the view spoke the protocol')

  // A WebSocket round trip from the framed page, and a live update pushed to it.
  const echoed = await wsRoundTrip(view)
  t.match(JSON.parse(echoed), { userId: 'alice', items: ['inline'] }, 'sent and answered through the gateway inside the host frame')
  await callText(mcp, 'add_todo', { text: 'pushed' })
  await view.waitForFunction(() => document.querySelectorAll('#items li').length === 2, null, { timeout: 2000 })
  t.pass('live update inside the host')
  t.same(errors, [], 'no CSP or console errors')
  t.same(strayStdout(), [])
})

t.test("the gateway's default frame policy: the view offers the link in a new tab through the host, and frames nothing the browser would refuse", async (t) => {
  const { host, content, result, link } = await linkFromDefaultGateway(t, { openLinks: true })
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  const refused: string[] = []
  page.on('console', (m) => { if (/frame-ancestors/.test(m.text())) refused.push(m.text()) })
  await page.goto(host.pageUrl)
  await render(page, content.text, content._meta.ui.csp, result)
  const shell = await shellFrame(page, /^Todo list opens in a new tab: its gateway does not let this app show it here\.$/)
  t.equal(await shell.$eval('#ui', (el) => (el as HTMLIFrameElement).getAttribute('src')), null, 'no frame the browser would refuse')
  t.equal(await shell.getAttribute('#open', 'href'), link, 'the button opens the link')
  t.ok(await shell.isVisible('#open'), 'and is on screen')

  const opened = page.context().waitForEvent('page', { timeout: 10_000 })
  await shell.click('#open')
  // The click reaches the host through two postMessage hops: wait for it (with a deadline), and
  // compare without printing the link (it holds a token).
  const openedLinks = async (): Promise<string[]> => await page.evaluate(() => (window as unknown as { openedLinks: string[] }).openedLinks)
  await eventually(async () => (await openedLinks()).length > 0, { within: 5_000, what: 'the host asked to open the link (ui/open-link)' })
  const asked = await openedLinks()
  t.ok(asked.length === 1 && asked[0] === link, `asked the host (ui/open-link) once, for the link, and the host opens links itself (${asked.length} asked)`)
  t.equal(await openedSession(await opened), 'alice', "the user's live page, in a tab of its own")
  t.same(refused, [], 'the browser refused nothing: nothing was framed')

  // The gateway refuses that frame by itself too, whatever a view tries.
  await shell.evaluate((url) => { const frame = document.createElement('iframe'); frame.src = url; document.body.append(frame) }, link)
  await eventually(() => refused.length > 0, { within: 10_000, what: "Chromium refusing the frame for the gateway's frame-ancestors" })
  t.match(refused[0], /frame-ancestors 'self'/)
  for (const frame of page.frames()) {
    t.equal(await frame.$('#user').catch(() => null), null, `nothing of the session rendered in ${frame.url().replace(/\/mcp\/[^/]+/, '/mcp/<token>')}`)
  }
})

t.test('a host the gateway was not told about: no frame; the link opens in a new tab, or is shown to copy where the host allows no tabs', async (t) => {
  const gateway = await startGatewayProcess(t, { MCP_WEB_UI_FRAME_ANCESTORS: 'http://other.localhost:1' })
  const { mcp } = await connectExample(t, gateway, {}, { capabilities: APPS_CAPABILITIES })
  const [content] = (await mcp.readResource({ uri: 'ui://todoodles/web-ui' })).contents as unknown as Array<{ text: string, _meta: { ui: { csp: object } } }>
  const result = await mcp.callTool({ name: 'open_todo_ui', arguments: {} })
  const link = linkOf(result as { _meta?: Record<string, unknown> })
  const browser = await launchBrowser(t)

  const popups = await startAppsHost(t, { name: 'elsewhere', sandbox: 'allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox' })
  let page = await browser.newPage()
  await page.goto(popups.pageUrl)
  await render(page, content!.text, content!._meta.ui.csp, result)
  let shell = await shellFrame(page, /opens in a new tab/)
  t.equal(await shell.$eval('#ui', (el) => (el as HTMLIFrameElement).getAttribute('src')), null, 'nothing framed')
  const opened = page.context().waitForEvent('page', { timeout: 10_000 })
  await shell.click('#open')
  const tab = await opened
  t.equal(await openedSession(tab), 'alice', 'a host without ui/open-link that allows popups: a new tab')
  t.equal(await tab.evaluate(() => window.opener), null, 'which cannot reach back into the view')
  await page.close()

  const closed = await startAppsHost(t, { name: 'elsewhere' })
  page = await browser.newPage()
  await page.goto(closed.pageUrl)
  await render(page, content!.text, content!._meta.ui.csp, result)
  shell = await shellFrame(page, /opens in a new tab/)
  t.notOk(await shell.isVisible('#copy'), 'the link is not shown until asked for')
  await shell.click('#open')
  await shell.waitForSelector('#copy', { state: 'visible', timeout: 5000 })
  t.equal(await shell.inputValue('#copy'), link, 'no ui/open-link, no popups: the link, selected, to copy')
})

t.test('isolated mode in an MCP Apps host: the session host is framed, its partitioned cookie works inside the frame, and so does its WebSocket', async (t) => {
  const host = await startAppsHost(t)
  const port = await freePort()
  const wildcard = `http://*.localhost:${port}`
  const gateway = await startGatewayProcess(t, {
    MCP_WEB_UI_GATEWAY_PORT: String(port),
    MCP_WEB_UI_WILDCARD_URL: wildcard,
    MCP_WEB_UI_FRAME_ANCESTORS: `${host.hostOrigin} ${host.sandboxOrigin}`
  })
  const { mcp } = await connectExample(t, gateway, {}, { capabilities: APPS_CAPABILITIES })
  await callText(mcp, 'add_todo', { text: 'isolated' })
  const [content] = (await mcp.readResource({ uri: 'ui://todoodles/web-ui' })).contents as unknown as Array<{ text: string, _meta: { ui: { csp: { frameDomains: string[] } } } }>
  t.same(content!._meta.ui.csp.frameDomains, [wildcard], 'the wildcard origin, as the gateway reported it')
  const result = await mcp.callTool({ name: 'open_todo_ui', arguments: {} })
  t.match(linkOf(result as { _meta?: Record<string, unknown> }), new RegExp(`^http://[a-z2-7]{26}\\.localhost:${port}/\\?mcpgw_link=`))

  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(host.pageUrl)
  await render(page, content!.text, content!._meta.ui.csp, result)
  const view = await gatewayFrame(page, new RegExp(`^http://[a-z2-7]{26}\\.localhost:${port}/\\?mcpgw_frame=[\\w-]{43}$`))
  await view.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open' && document.querySelectorAll('#items li').length === 1, null, { timeout: 10_000 })
  t.equal(await view.textContent('#user'), 'alice', 'the link was swapped for the cookie inside the frame, and the cookie sent on')
  t.match(JSON.parse(await wsRoundTrip(view)), { items: ['isolated'] }, 'a WebSocket round trip on the session host, inside the host frame')

  // Another app's view in the same host shares the partitioned cookie; it frames the session
  // host (unseen, as a clickjacking overlay would) without the link, and gets nothing.
  const sessionOrigin = new URL(view.url()).origin
  await render(page, `<iframe style="opacity:0.01" src="${sessionOrigin}/"></iframe>`, { frameDomains: [wildcard] }, { content: [] })
  const overlay = await gatewayFrame(page, new RegExp(`^${sessionOrigin.replace(/\./g, '\\.')}/$`))
  await overlay.waitForLoadState('domcontentloaded', { timeout: 10_000 })
  const seen = await overlay.textContent('body', { timeout: 10_000 }) ?? ''
  t.match(seen, /only through its link/, 'another view in the host: refused with a coded page')
  t.notMatch(seen, /alice|isolated/, 'and shown nothing of the session')
  await gateway.stop()
})

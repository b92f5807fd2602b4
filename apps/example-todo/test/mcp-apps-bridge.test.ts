import t from 'tap'
import type { Frame } from 'playwright-core'
import { eventually, freePort } from '@mcp-gw/testkit'
import { startAppsHost } from './apps-host.js'
import { callText, connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'
import { APPS_CAPABILITIES, gatewayFrame, linkFromDefaultGateway, liveInHost, openedSession, render, shellFrame, wsRoundTrip } from './apps-view.js'

/**
 * The example's MCP Apps view against ext-apps' own host side (AppBridge), a host that never
 * answers, the origins the shell frames, and the direct fallback inside a host frame.
 */
t.test("ext-apps' own host side (AppBridge) renders the shell: the handshake, the size, the live page, and the link through ui/open-link", async (t) => {
  const host = await startAppsHost(t, { bridge: 'ext-apps', openLinks: true })
  const gateway = await startGatewayProcess(t, { MCP_WEB_UI_FRAME_ANCESTORS: `${host.hostOrigin} ${host.sandboxOrigin}` })
  const { mcp } = await connectExample(t, gateway, {}, { capabilities: APPS_CAPABILITIES })
  const [content] = (await mcp.readResource({ uri: 'ui://todoodles/web-ui' })).contents as unknown as Array<{ text: string, _meta: { ui: { csp: object } } }>
  await callText(mcp, 'add_todo', { text: 'bridged' })
  const result = await mcp.callTool({ name: 'open_todo_ui', arguments: {} })
  const link = linkOf(result as { _meta?: Record<string, unknown> })

  const { page, errors, view } = await liveInHost(t, host.pageUrl, content!, result, new RegExp(`^${gateway.origin}/mcp/`))
  t.equal(await view.textContent('#user'), 'alice', 'the tool result reached the view through the bridge, and the live page opened')
  t.same(await page.evaluate(() => (window as unknown as { sizes: number[] }).sizes), [600], 'the view asked the bridge for its height')

  const shell = page.frames().find((f) => f.url() === 'about:srcdoc')!
  const tab = page.context().waitForEvent('page', { timeout: 10_000 })
  await shell.click('#open')
  const opened = await tab
  t.same(await page.evaluate(() => (window as unknown as { openedLinks: string[] }).openedLinks), [link], 'the bridge was asked to open the link')
  t.equal(await openedSession(opened), 'alice', 'and it opened the live page in a tab')
  t.same(errors, [], 'no protocol, CSP or console errors')
})

t.test('a host that says it opens links and never answers: the link is shown to copy within seconds', async (t) => {
  const { host, content, result, link } = await linkFromDefaultGateway(t, { bridge: 'ext-apps', openLinks: 'never-answers' })
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(host.pageUrl)
  await render(page, content.text, content._meta.ui.csp, result)
  const shell = await shellFrame(page, /opens in a new tab/)
  await shell.click('#open')
  await shell.waitForSelector('#copy', { state: 'visible', timeout: 5000 })
  t.equal(await shell.inputValue('#copy'), link, 'the link, selected, to copy')
  t.same(await page.evaluate(() => (window as unknown as { openedLinks: string[] }).openedLinks), [link], 'after the host was asked')
})

t.test('the shell frames only the link origins it was built with', async (t) => {
  const host = await startAppsHost(t)
  const gateway = await startGatewayProcess(t, { MCP_WEB_UI_FRAME_ANCESTORS: `${host.hostOrigin} ${host.sandboxOrigin}` })
  const { mcp } = await connectExample(t, gateway, {}, { capabilities: APPS_CAPABILITIES })
  const [content] = (await mcp.readResource({ uri: 'ui://todoodles/web-ui' })).contents as unknown as Array<{ text: string, _meta: { ui: { csp: object } } }>
  const browser = await launchBrowser(t)
  for (const [url, expected] of [
    ['javascript:alert(1)', 'This link points somewhere this view may not open.'],
    [`${host.hostOrigin}/`, 'This link points somewhere this view may not open.'],
    [`http://evil.localhost:${gateway.port}/mcp/x/`, 'This link points somewhere this view may not open.'],
    [`http://127.0.0.1:${gateway.port + 1}/mcp/x/`, 'This link points somewhere this view may not open.'],
    [`http://127.0.0.1:${gateway.port}@evil.localhost/`, 'This link points somewhere this view may not open.'],
    [null, 'No link in this result.']
  ] as const) {
    const page = await browser.newPage()
    await page.goto(host.pageUrl)
    await render(page, content!.text, content!._meta.ui.csp, { content: [], _meta: url === null ? {} : { 'mcp-gw/link': { url } } })
    let shell: Frame | undefined
    await eventually(async () => {
      shell = page.frames().find((f) => f.url() === 'about:srcdoc')
      return shell !== undefined && (await shell.textContent('#status').catch(() => null)) === expected
    }, { within: 10_000, what: `the shell refusing ${String(url)}` })
    t.equal(await shell!.$eval('#ui', (el) => (el as HTMLIFrameElement).getAttribute('src')), null, `${String(url)}: nothing framed`)
    await page.close()
  }
})

t.test('gateway down, fallback on: the MCP Apps view frames the direct link, and its cookie works inside the host frame', async (t) => {
  const host = await startAppsHost(t)
  const port = await freePort()
  const { mcp } = await connectExample(t, null, { MCP_WEB_UI_USE_GATEWAY: 'true', MCP_WEB_UI_GATEWAY_URL: `http://127.0.0.1:${port}`, MCP_WEB_UI_FALLBACK: 'direct' }, { capabilities: APPS_CAPABILITIES })
  await callText(mcp, 'add_todo', { text: 'offline' })
  const result = await mcp.callTool({ name: 'open_todo_ui', arguments: {} })
  const link = linkOf(result as { _meta?: Record<string, unknown> })
  t.match(link, /^http:\/\/127\.0\.0\.1:1\d{4}\/\?token=/)
  const [content] = (await mcp.readResource({ uri: 'ui://todoodles/web-ui' })).contents as unknown as Array<{ text: string, _meta: { ui: { csp: { frameDomains: string[] } } } }>
  t.ok(content!._meta.ui.csp.frameDomains.includes(new URL(link).origin), 'the UI server\'s own origin may be framed too')
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(host.pageUrl)
  await render(page, content!.text, content!._meta.ui.csp, result)
  const view = await gatewayFrame(page, new RegExp(`^${new URL(link).origin}/`))
  await view.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open' && document.querySelectorAll('#items li').length === 1, null, { timeout: 10_000 })
  t.match(JSON.parse(await wsRoundTrip(view)), { items: ['offline'] }, 'fetch, SSE and the WebSocket carry the partitioned cookie')
})

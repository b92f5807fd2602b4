import t from 'tap'
import type { Test } from 'tap'
import type { Frame, Page } from 'playwright-core'
import { eventually, freePort } from '@mcp-gw/testkit'
import { startAppsHost } from './apps-host.js'
import type { AppsHost, AppsHostOptions } from './apps-host.js'
import { callText, connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'

/**
 * The example in an MCP Apps host: a real MCP client (declaring MCP Apps) lists
 * the tools, reads the `ui://` resource and calls the tool; a host page in
 * Chromium renders the resource in its sandbox the way web hosts do, and the
 * gateway's page inside it is live, WebSocket included. The link reaches the
 * view, never the model's text; and the gateway lets only the hosts it was told
 * about frame its pages.
 */
const APPS_CAPABILITIES = { extensions: { 'io.modelcontextprotocol/ui': { mimeTypes: ['text/html;profile=mcp-app'] } } }

async function gatewayFrame (page: Page, url: RegExp): Promise<Frame> {
  let found: Frame | undefined
  await eventually(() => {
    found = page.frames().find((f) => url.test(f.url()))
    return found !== undefined
  }, { within: 10_000, what: 'the gateway page framed in the view' })
  return found!
}

async function render (page: Page, html: string, csp: object, toolResult: unknown): Promise<void> {
  await page.evaluate(([h, c, r]) => (window as unknown as { render: (...a: unknown[]) => void }).render(h, c, r), [html, csp, toolResult] as const)
}

/** A WebSocket round trip from a page: the list on open, `again`, the list again. */
async function wsRoundTrip (frame: Frame): Promise<string> {
  return await frame.evaluate(async () => await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(new URL('ws', location.href).href.replace(/^http/, 'ws'))
    let first = true
    ws.onmessage = (event) => { if (first) { first = false; ws.send('again'); return } resolve(String(event.data)); ws.close() }
    ws.onerror = () => reject(new Error('websocket failed'))
  }))
}

/** The host page rendering the view, once its gateway page (`url`) is live with one item; console errors collected. */
async function liveInHost (t: Test, pageUrl: string, content: { text: string, _meta: { ui: { csp: object } } }, result: unknown, url: RegExp): Promise<{ page: Page, errors: string[], view: Frame }> {
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()) })
  await page.goto(pageUrl)
  await render(page, content.text, content._meta.ui.csp, result)
  const view = await gatewayFrame(page, url)
  await view.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open' && document.querySelectorAll('#items li').length === 1, null, { timeout: 10_000 })
  return { page, errors, view }
}

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

/** A host, a gateway with its default frame policy, the example over stdio: the resource and a tool result with its link. */
async function linkFromDefaultGateway (t: Test, hostOptions: AppsHostOptions): Promise<{ host: AppsHost, content: { text: string, _meta: { ui: { csp: object } } }, result: unknown, link: string }> {
  const host = await startAppsHost(t, hostOptions)
  const gateway = await startGatewayProcess(t)
  const { mcp } = await connectExample(t, gateway, {}, { capabilities: APPS_CAPABILITIES })
  const [content] = (await mcp.readResource({ uri: 'ui://todoodles/web-ui' })).contents as unknown as Array<{ text: string, _meta: { ui: { csp: object } } }>
  const result = await mcp.callTool({ name: 'open_todo_ui', arguments: {} })
  return { host, content: content!, result, link: linkOf(result as { _meta?: Record<string, unknown> }) }
}

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

/** The view's own frame: the shell page the host rendered from the resource. */
async function shellFrame (page: Page, status: RegExp): Promise<Frame> {
  let shell: Frame | undefined
  await eventually(async () => {
    shell = page.frames().find((f) => f.url() === 'about:srcdoc')
    return shell !== undefined && status.test(await shell.textContent('#status').catch(() => '') ?? '')
  }, { within: 10_000, what: `the view saying ${String(status)}` })
  return shell!
}

/** A page the browser opened, once it shows the session's user. */
async function openedSession (page: Page): Promise<string | null> {
  await page.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open', null, { timeout: 10_000 })
  return await page.textContent('#user')
}

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
  t.same(await page.evaluate(() => (window as unknown as { openedLinks: string[] }).openedLinks), [link], 'asked the host (ui/open-link), which opens links itself')
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

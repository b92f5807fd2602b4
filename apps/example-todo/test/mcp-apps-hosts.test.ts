import t from 'tap'
import type { Frame, Page } from 'playwright-core'
import { eventually } from '@mcp-gw/testkit'
import { startAppsHost } from './apps-host.js'
import type { AppsHost, AppsHostOptions } from './apps-host.js'
import { freePort } from '@mcp-gw/testkit'
import { connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'

/**
 * The README's table of MCP Apps hosts, row by row: each host as reported (its view's
 * sandbox flags, whether its CSP takes `frameDomains`, whether it opens links for the view),
 * the gateway configured as the README says (MCP_WEB_UI_FRAME_ANCESTORS naming the host's
 * origins), and what its user sees: the live page in the frame, or the link one click away.
 * Sources: docs/mcp-apps-hosts.md. LibreChat renders no MCP Apps: its row is the plain tool
 * result (the link as text), tested in e2e.test.ts.
 */
const APPS_CAPABILITIES = { extensions: { 'io.modelcontextprotocol/ui': { mimeTypes: ['text/html;profile=mcp-app'] } } }

interface Row extends AppsHostOptions {
  host: string
  /** What the user sees in the view. */
  shows: 'the live page' | 'a new-tab link'
}

const ROWS: Row[] = [
  { host: 'ext-apps basic-host', name: 'basic', sandbox: 'allow-scripts allow-same-origin allow-forms', openLinks: true, shows: 'the live page' },
  // An opaque view: Chromium refuses every frame-ancestors source (even *) above an opaque frame.
  { host: 'MCP Inspector v2', name: 'inspector', sandbox: 'allow-scripts allow-forms', openLinks: true, shows: 'a new-tab link' },
  { host: 'Goose', name: 'goose', sandbox: 'allow-scripts allow-same-origin allow-forms', openLinks: true, shows: 'the live page' },
  { host: 'VS Code', name: 'vscode', sandbox: 'allow-same-origin allow-pointer-lock allow-scripts allow-downloads allow-forms', openLinks: true, shows: 'the live page' },
  { host: 'ChatGPT', name: 'chatgpt', sandbox: 'allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox allow-forms', openLinks: false, shows: 'the live page' },
  // frameDomains ignored: `frame-src 'self' blob: data:` whatever the resource asks; no ui/open-link reported.
  { host: 'Claude', name: 'claude', sandbox: 'allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox', openLinks: false, frameSrc: "'self' blob: data:", shows: 'a new-tab link' }
]

async function shellOf (page: Page): Promise<Frame> {
  let shell: Frame | undefined
  await eventually(async () => {
    shell = page.frames().find((f) => f.url() === 'about:srcdoc')
    return shell !== undefined && await shell.isVisible('#open').catch(() => false)
  }, { within: 10_000, what: 'the view showing its link' })
  return shell!
}

t.test('each MCP Apps host of the README: the live page where the host lets it be framed, else the link one click away', async (t) => {
  const hosts: Array<{ row: Row, host: AppsHost }> = []
  for (const row of ROWS) hosts.push({ row, host: await startAppsHost(t, row) })
  // As the README says: the hosts' origins (here each host page's and its sandbox's).
  const gateway = await startGatewayProcess(t, { MCP_WEB_UI_FRAME_ANCESTORS: hosts.flatMap(({ host }) => [host.hostOrigin, host.sandboxOrigin]).join(' ') })
  const { mcp } = await connectExample(t, gateway, {}, { capabilities: APPS_CAPABILITIES })
  const [content] = (await mcp.readResource({ uri: 'ui://todoodles/web-ui' })).contents as unknown as Array<{ text: string, _meta: { ui: { csp: object } } }>
  const browser = await launchBrowser(t)

  for (const { row, host } of hosts) {
    const result = await mcp.callTool({ name: 'open_todo_ui', arguments: {} })
    const link = linkOf(result as { _meta?: Record<string, unknown> })
    const page = await browser.newPage()
    await page.goto(host.pageUrl)
    await page.evaluate(([h, c, r]) => (window as unknown as { render: (...a: unknown[]) => void }).render(h, c, r), [content!.text, content!._meta.ui.csp, result] as const)
    const shell = await shellOf(page)
    t.equal(await shell.getAttribute('#open', 'href'), link, `${row.host}: the link, beside whatever else shows`)

    if (row.shows === 'the live page') {
      let view: Frame | undefined
      await eventually(async () => {
        view = page.frames().find((f) => f.url().startsWith(`${gateway.origin}/mcp/`))
        return view !== undefined && await view.evaluate(() => document.getElementById('ws-state')?.textContent === 'open').catch(() => false)
      }, { within: 10_000, what: `${row.host}: the live page in the view` })
      t.equal(await view!.textContent('#user'), 'alice', `${row.host}: the live page, its WebSocket open`)
    } else {
      await eventually(async () => /opens in a new tab/.test(await shell.textContent('#status') ?? ''), { within: 10_000, what: `${row.host}: the view saying the link opens in a new tab` })
      t.equal(await shell.isVisible('#ui'), false, `${row.host}: no empty frame left on screen`)
    }

    // The link in a new tab: through the host (ui/open-link), or a popup the sandbox allows.
    const opened = page.context().waitForEvent('page', { timeout: 10_000 })
    await shell.click('#open')
    const tab = await opened
    await tab.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open', null, { timeout: 10_000 })
    t.equal(await tab.textContent('#user'), 'alice', `${row.host}: the link opens in a new tab${row.openLinks === true ? ' (the host opened it)' : ''}`)
    await tab.close()
    await page.close()
  }
})

t.test("MCP_WEB_UI_FRAME_ANCESTORS='*': a host whose views have an opaque origin (MCP Inspector v2) shows the live page in path mode, the link in isolated mode", async (t) => {
  const inspector = ROWS.find((row) => row.name === 'inspector')!
  const host = await startAppsHost(t, inspector)
  const browser = await launchBrowser(t)
  const port = await freePort()
  for (const [mode, env] of [
    ['path mode', {}],
    ['isolated mode', { MCP_WEB_UI_GATEWAY_PORT: String(port), MCP_WEB_UI_WILDCARD_URL: `http://*.localhost:${port}` }]
  ] as const) {
    const gateway = await startGatewayProcess(t, { MCP_WEB_UI_FRAME_ANCESTORS: '*', ...env })
    const { mcp } = await connectExample(t, gateway, {}, { capabilities: APPS_CAPABILITIES })
    const [content] = (await mcp.readResource({ uri: 'ui://todoodles/web-ui' })).contents as unknown as Array<{ text: string, _meta: { ui: { csp: object } } }>
    await mcp.callTool({ name: 'add_todo', arguments: { text: mode } })
    const result = await mcp.callTool({ name: 'open_todo_ui', arguments: {} })
    const link = new URL(linkOf(result as { _meta?: Record<string, unknown> }))
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()) })
    await page.goto(host.pageUrl)
    await page.evaluate(([h, c, r]) => (window as unknown as { render: (...a: unknown[]) => void }).render(h, c, r), [content!.text, content!._meta.ui.csp, result] as const)
    const shell = await shellOf(page)
    if (mode === 'path mode') {
      let view: Frame | undefined
      await eventually(async () => {
        view = page.frames().find((f) => f.url().startsWith(`${link.origin}/mcp/`))
        return view !== undefined && await view.evaluate(() => document.getElementById('ws-state')?.textContent === 'open' && document.querySelectorAll('#items li').length === 1).catch(() => false)
      }, { within: 10_000, what: `${mode}: the live page inside the opaque view` })
      t.equal(await view!.textContent('#user'), 'alice', `${mode}: the live page at an opaque origin: its fetches, event stream and WebSocket carry the link's credential`)
      t.same(errors, [], `${mode}: no CORS or WebSocket errors`)
    } else {
      await eventually(async () => /cannot keep its session/.test(await shell.textContent('#status') ?? ''), { within: 10_000, what: `${mode}: the view saying why the link opens in a new tab` })
      t.equal(await shell.isVisible('#ui'), false, `${mode}: no frame whose page could not work (its cookie cannot reach an opaque origin)`)
    }
    await page.close()
    await gateway.stop()
  }
})

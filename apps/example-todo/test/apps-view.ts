import type { Frame, Page } from 'playwright-core'
import type { Test } from 'tap'
import { eventually } from '@mcp-gw/testkit'
import { startAppsHost } from './apps-host.js'
import type { AppsHost, AppsHostOptions } from './apps-host.js'
import { connectExample, launchBrowser, linkOf, startGatewayProcess } from './helpers.js'

/** What the MCP Apps tests share: the client's capability, a view's frames, a host page rendering the resource. */
export const APPS_CAPABILITIES = { extensions: { 'io.modelcontextprotocol/ui': { mimeTypes: ['text/html;profile=mcp-app'] } } }

export async function gatewayFrame (page: Page, url: RegExp): Promise<Frame> {
  let found: Frame | undefined
  await eventually(() => {
    found = page.frames().find((f) => url.test(f.url()))
    return found !== undefined
  }, { within: 10_000, what: 'the gateway page framed in the view' })
  return found!
}

export async function render (page: Page, html: string, csp: object, toolResult: unknown): Promise<void> {
  await page.evaluate(([h, c, r]) => (window as unknown as { render: (...a: unknown[]) => void }).render(h, c, r), [html, csp, toolResult] as const)
}

/** A WebSocket round trip from a page: the list on open, `again`, the list again. */
export async function wsRoundTrip (frame: Frame): Promise<string> {
  return await frame.evaluate(async () => await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(new URL('ws', location.href).href.replace(/^http/, 'ws'))
    let first = true
    ws.onmessage = (event) => { if (first) { first = false; ws.send('again'); return } resolve(String(event.data)); ws.close() }
    ws.onerror = () => reject(new Error('websocket failed'))
  }))
}

/** The host page rendering the view, once its gateway page (`url`) is live with one item; console errors collected. */
export async function liveInHost (t: Test, pageUrl: string, content: { text: string, _meta: { ui: { csp: object } } }, result: unknown, url: RegExp): Promise<{ page: Page, errors: string[], view: Frame }> {
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

/** A host, a gateway with its default frame policy, the example over stdio: the resource and a tool result with its link. */
export async function linkFromDefaultGateway (t: Test, hostOptions: AppsHostOptions): Promise<{ host: AppsHost, content: { text: string, _meta: { ui: { csp: object } } }, result: unknown, link: string }> {
  const host = await startAppsHost(t, hostOptions)
  const gateway = await startGatewayProcess(t)
  const { mcp } = await connectExample(t, gateway, {}, { capabilities: APPS_CAPABILITIES })
  const [content] = (await mcp.readResource({ uri: 'ui://todoodles/web-ui' })).contents as unknown as Array<{ text: string, _meta: { ui: { csp: object } } }>
  const result = await mcp.callTool({ name: 'open_todo_ui', arguments: {} })
  return { host, content: content!, result, link: linkOf(result as { _meta?: Record<string, unknown> }) }
}

/** The view's own frame: the shell page the host rendered from the resource. */
export async function shellFrame (page: Page, status: RegExp): Promise<Frame> {
  let shell: Frame | undefined
  await eventually(async () => {
    shell = page.frames().find((f) => f.url() === 'about:srcdoc')
    return shell !== undefined && status.test(await shell.textContent('#status').catch(() => '') ?? '')
  }, { within: 10_000, what: `the view saying ${String(status)}` })
  return shell!
}

/** A page the browser opened, once it shows the session's user. */
export async function openedSession (page: Page): Promise<string | null> {
  await page.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open', null, { timeout: 10_000 })
  return await page.textContent('#user')
}

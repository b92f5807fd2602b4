import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { build } from 'esbuild'

/**
 * An MCP Apps host as web hosts build one (SEP-1865, ext-apps' basic-host): the
 * host page on one origin, a sandbox proxy on another (`allow-scripts
 * allow-same-origin`, the view's CSP as an HTTP header built from the
 * resource's `_meta.ui.csp`), the view's HTML in an inner frame, and the
 * JSON-RPC over postMessage: `ui/initialize`, then `ui/notifications/tool-result`
 * once the view says `initialized`.
 */
export interface AppsHost {
  hostOrigin: string
  sandboxOrigin: string
  /**
   * The host page: open it, then call `window.render(html, csp, toolResult)` in it.
   * `window.openedLinks` lists the URLs the view asked the host to open (`ui/open-link`).
   */
  pageUrl: string
}

export interface AppsHostOptions {
  /** The host's first DNS label under `localhost`. Default `host`. */
  name?: string
  /**
   * The view frame's `sandbox` flags. Default `allow-scripts allow-same-origin allow-forms` (ext-apps'
   * basic-host). The sandbox proxy's frame has these and the default's (it must keep its origin).
   */
  sandbox?: string
  /**
   * Whether the host says `openLinks` and opens what the view asks it to (in a new tab).
   * `never-answers` (ext-apps bridge only): says it, and leaves the request unanswered. Default false.
   */
  openLinks?: boolean | 'never-answers'
  /** The view's `frame-src`, whatever `frameDomains` asks (a host that ignores them). Default: from `frameDomains`. */
  frameSrc?: string
  /**
   * `ext-apps`: the host page speaks through ext-apps' own host side (`AppBridge` and its
   * `PostMessageTransport`, bundled for the browser) instead of the JSON-RPC written here.
   * `window.sizes` then lists the heights the view asked for.
   */
  bridge?: 'ext-apps'
}

/** The host page's script that makes the sandbox proxy's frame, as `frame`, for `render(html, csp, ...)`. */
function viewFrame (sandboxOrigin: string, sandbox: string): string {
  return `  const frame = document.createElement('iframe')
  frame.setAttribute('sandbox', '${[...new Set([...SANDBOX.split(' '), ...sandbox.split(' ')])].join(' ')}')
  frame.style.cssText = 'width:800px;height:600px;border:0'
  frame.src = '${sandboxOrigin}/sandbox.html?csp=' + encodeURIComponent(JSON.stringify(csp || {}))`
}

let extAppsBundle: Promise<string> | undefined
/** ext-apps' host side for browsers, as `window.ExtApps`. */
async function extAppsHostScript (): Promise<string> {
  extAppsBundle ??= build({
    stdin: {
      contents: "import { AppBridge, PostMessageTransport } from '@modelcontextprotocol/ext-apps/app-bridge'\nwindow.ExtApps = { AppBridge, PostMessageTransport }",
      resolveDir: new URL('.', import.meta.url).pathname
    },
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    logLevel: 'silent'
  }).then((result) => result.outputFiles[0]!.text)
  return await extAppsBundle
}

/** The host page on ext-apps' AppBridge: the same `window.render` and `window.openedLinks`. */
const BRIDGE_HOST_PAGE = (sandboxOrigin: string, sandbox: string, openLinks: boolean | 'never-answers'): string => `<!doctype html>
<meta charset="utf-8"><title>host</title>
<body>
<script src="/ext-apps.js"></script>
<script>
window.openedLinks = []
window.sizes = []
window.render = (html, csp, toolResult) => {
${viewFrame(sandboxOrigin, sandbox)}
  document.body.append(frame)
  const { AppBridge, PostMessageTransport } = window.ExtApps
  const bridge = new AppBridge(null, { name: 'ext-apps-host', version: '1' }, ${openLinks ? '{ openLinks: {} }' : '{}'})
  bridge.onsandboxready = () => bridge.sendSandboxResourceReady({ html, sandbox: '${sandbox}', csp })
  bridge.oninitialized = () => bridge.sendToolResult(toolResult)
  bridge.onsizechange = (size) => window.sizes.push(size.height)
  bridge.onopenlink = async ({ url }) => {
    window.openedLinks.push(url)
    if (${openLinks === 'never-answers'}) return await new Promise(() => {})
    window.open(url, '_blank', 'noopener')
    return {}
  }
  bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow))
}
</script>
</body>`

const SANDBOX = 'allow-scripts allow-same-origin allow-forms'

const HOST_PAGE = (sandboxOrigin: string, sandbox: string, openLinks: boolean): string => `<!doctype html>
<meta charset="utf-8"><title>host</title>
<body>
<script>
window.messages = []
window.openedLinks = []
window.render = (html, csp, toolResult) => {
${viewFrame(sandboxOrigin, sandbox)}
  const reply = (message) => frame.contentWindow.postMessage(Object.assign({ jsonrpc: '2.0' }, message), '${sandboxOrigin}')
  window.addEventListener('message', (event) => {
    if (event.source !== frame.contentWindow || event.origin !== '${sandboxOrigin}') return
    const message = event.data
    window.messages.push(message.method || 'result')
    if (message.method === 'ui/notifications/sandbox-proxy-ready') reply({ method: 'ui/notifications/sandbox-resource-ready', params: { html, sandbox: '${sandbox}' } })
    else if (message.method === 'ui/initialize') reply({ id: message.id, result: { protocolVersion: message.params.protocolVersion, hostInfo: { name: 'test-host', version: '1' }, hostCapabilities: ${openLinks ? '{ openLinks: {} }' : '{}'}, hostContext: {} } })
    else if (message.method === 'ui/open-link') {
      window.openedLinks.push(message.params.url)
      if (${openLinks}) {
        window.open(message.params.url, '_blank', 'noopener')
        reply({ id: message.id, result: {} })
      } else {
        reply({ id: message.id, error: { code: -32601, message: 'Method not found' } })
      }
    }
    else if (message.method === 'ui/notifications/initialized') reply({ method: 'ui/notifications/tool-result', params: toolResult })
  })
  document.body.append(frame)
}
</script>
</body>`

const SANDBOX_PAGE = (hostOrigin: string): string => `<!doctype html>
<meta charset="utf-8"><title>sandbox</title>
<style>html,body{margin:0;height:100%}iframe{border:0;width:100%;height:100%}</style>
<body>
<script>
let inner = null
window.addEventListener('message', (event) => {
  const message = event.data
  if (event.source === window.parent && event.origin === '${hostOrigin}') {
    if (message.method === 'ui/notifications/sandbox-resource-ready') {
      inner = document.createElement('iframe')
      inner.setAttribute('sandbox', message.params.sandbox)
      inner.srcdoc = message.params.html
      document.body.append(inner)
    } else if (inner !== null) {
      inner.contentWindow.postMessage(message, '*')
    }
  } else if (inner !== null && event.source === inner.contentWindow) {
    window.parent.postMessage(message, '${hostOrigin}')
  }
})
window.parent.postMessage({ jsonrpc: '2.0', method: 'ui/notifications/sandbox-proxy-ready', params: {} }, '${hostOrigin}')
</script>
</body>`

/** The CSP a host gives the view, from `_meta.ui.csp` (ext-apps' mapping). */
export function viewCsp (csp: { connectDomains?: string[], resourceDomains?: string[], frameDomains?: string[] }): string {
  const list = (domains: string[] | undefined, none: string): string => domains !== undefined && domains.length > 0 ? domains.join(' ') : none
  return [
    "default-src 'none'",
    `script-src 'self' 'unsafe-inline' ${list(csp.resourceDomains, '')}`.trim(),
    `style-src 'self' 'unsafe-inline' ${list(csp.resourceDomains, '')}`.trim(),
    `img-src 'self' data: ${list(csp.resourceDomains, '')}`.trim(),
    `connect-src ${list(csp.connectDomains, "'none'")}`,
    `frame-src ${list(csp.frameDomains, "'none'")}`,
    "object-src 'none'",
    "base-uri 'none'"
  ].join('; ')
}

async function listen (t: Test, handler: Parameters<typeof createServer>[1]): Promise<number> {
  const server: Server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return (server.address() as AddressInfo).port
}

export async function startAppsHost (t: Test, options: AppsHostOptions = {}): Promise<AppsHost> {
  const sandbox = options.sandbox ?? SANDBOX
  let hostOrigin = ''
  const sandboxPort = await listen(t, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname !== '/sandbox.html') {
      res.writeHead(404).end()
      return
    }
    const csp = JSON.parse(url.searchParams.get('csp') ?? '{}') as Parameters<typeof viewCsp>[0]
    // The view inherits this document's policy: srcdoc frames take their parent's.
    let policy = viewCsp(csp).replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
    if (options.frameSrc !== undefined) policy = policy.replace(/frame-src [^;]+/, `frame-src ${options.frameSrc}`)
    res.writeHead(200, { 'content-type': 'text/html', 'content-security-policy': policy })
    res.end(SANDBOX_PAGE(hostOrigin))
  })
  const sandboxOrigin = `http://sandbox.localhost:${sandboxPort}`
  const bridgeScript = options.bridge === 'ext-apps' ? await extAppsHostScript() : null
  const hostPort = await listen(t, (req, res) => {
    if (bridgeScript !== null && req.url === '/ext-apps.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.end(bridgeScript)
      return
    }
    res.writeHead(200, { 'content-type': 'text/html' })
    const openLinks = options.openLinks ?? false
    res.end(bridgeScript === null ? HOST_PAGE(sandboxOrigin, sandbox, openLinks === true) : BRIDGE_HOST_PAGE(sandboxOrigin, sandbox, openLinks))
  })
  hostOrigin = `http://${options.name ?? 'host'}.localhost:${hostPort}`
  return { hostOrigin, sandboxOrigin, pageUrl: `${hostOrigin}/` }
}

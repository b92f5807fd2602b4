import type { GatewayClient, SessionLink } from './client.js'
import { InvalidOptionError } from './errors.js'

/** MCP Apps (SEP-1865): the MIME type of a `ui://` resource a host renders. */
export const MCP_APP_MIME_TYPE = 'text/html;profile=mcp-app'
/** The client capability (under `extensions`) of hosts that render MCP Apps. */
export const MCP_APPS_EXTENSION = 'io.modelcontextprotocol/ui'
/** Where the session link travels in a tool result: `_meta`, which hosts give the app and not the model. */
export const LINK_META_KEY = 'mcp-gw/link'
const PROTOCOL_VERSION = '2026-01-26'
/** How long a `resources/read` waits for the first registration before answering with what it knows. */
const READ_WAIT_MS = 2000

/** The part of an McpServer (`@modelcontextprotocol/sdk`) the bridge uses. */
export interface McpServerLike {
  registerResource (name: string, uri: string, config: { title?: string, description?: string, mimeType?: string }, read: () => Promise<ResourceRead> | ResourceRead): unknown
}

export interface ResourceRead {
  [key: string]: unknown
  contents: Array<{ uri: string, mimeType: string, text: string, _meta: Record<string, unknown> }>
}

export interface ToolResult {
  [key: string]: unknown
  content: Array<{ type: 'text', text: string } | { type: 'resource_link', uri: string, name: string, mimeType: string }>
  _meta: Record<string, unknown>
}

export interface McpAppOptions {
  /** The resource's URI. Default `ui://<serverName>/web-ui`. */
  uri?: string
  /** Shown by hosts, and the nested frame's title. Default: the server name. */
  title?: string
  /** The height (CSS pixels) the shell asks the host for. Default 600. */
  height?: number
  /**
   * Origins the shell may frame (and that hosts are asked to allow in `frame-src`).
   * Default: where the client's links point (the gateway's public origin, or its
   * wildcard in isolated mode, as the gateway reports it), plus the UI server's own
   * origin in direct mode or with `fallback: 'direct'`.
   */
  frameOrigins?: string[]
  /**
   * A dedicated origin for the view, sent verbatim as `_meta.ui.domain`, for hosts that
   * ask for one (ChatGPT; Claude's `<hash>.claudemcpcontent.com`): its format is the
   * host's, see its documentation. Default: none (the host's own sandbox origin).
   */
  domain?: string
}

export interface McpAppBridge {
  readonly uri: string
  /** Spread into the tool's `_meta`: links the tool to the `ui://` resource. */
  readonly toolMeta: Record<string, unknown>
  /** Registers the `ui://` resource on an McpServer. */
  registerResource (server: McpServerLike): void
  /** The resource's `resources/read` answer: the shell page and its CSP needs. */
  read (): ResourceRead
  /**
   * A tool result that carries the link to the shell in `_meta` (not in what the model
   * reads). For hosts without MCP Apps (`appsSupported` false), the text also carries
   * the link, as a plain tool would.
   */
  toolResult (link: SessionLink, options: { text: string, appsSupported: boolean }): ToolResult
}

/** Whether an MCP client said it renders MCP Apps (its `initialize` capabilities). */
export function supportsMcpApps (capabilities: { extensions?: Record<string, unknown> } | undefined): boolean {
  const ui = capabilities?.extensions?.[MCP_APPS_EXTENSION] as { mimeTypes?: unknown } | undefined
  return Array.isArray(ui?.mimeTypes) && ui.mimeTypes.includes(MCP_APP_MIME_TYPE)
}

// Origins as CSP host-sources: scheme://host[:port], with an optional leading `*.` label.
const FRAME_ORIGIN = /^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$/
// `_meta.ui.domain`: the host's format, so only its shape is checked: a host name, or an https origin.
const APP_DOMAIN = /^(https:\/\/)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d{1,5})?$/

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/**
 * The shell page: speaks just enough of the MCP Apps postMessage protocol to
 * learn the tool result, then offers the link in a new tab (through the host's
 * `ui/open-link` when it has one) and shows the session's live UI in a nested
 * frame beside it, when the link points at an allowed origin and the page's
 * `frame-ancestors` (as the gateway told the client) lets every frame above it in.
 */
function shellHtml (title: string, origins: string[], height: number): string {
  const config = JSON.stringify({ origins, height, version: PROTOCOL_VERSION, title }).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>
html,body{margin:0;height:100%}
body{display:flex;flex-direction:column;font:14px system-ui,sans-serif}
#bar{display:flex;gap:.75rem;align-items:center;padding:.25rem .5rem}
[hidden]{display:none!important}
#open{font-weight:600}
#copy{flex:1;font:inherit;min-width:0}
iframe{display:block;border:0;width:100%;flex:1}
p{margin:1rem}
</style>
</head>
<body>
<div id="bar" hidden><a id="open" target="_blank" rel="noopener noreferrer">Open in a new tab ↗</a><input id="copy" readonly hidden aria-label="The link"></div>
<p id="status">Opening…</p>
<iframe id="ui" title="${escapeHtml(title)}" hidden></iframe>
<script>
(() => {
  const config = ${config}
  const host = window.parent
  let nextId = 2
  let openLinks = false
  const pending = new Map()
  const send = (message) => host.postMessage(Object.assign({ jsonrpc: '2.0' }, message), '*')
  const request = (method, params) => new Promise((resolve) => {
    const id = nextId++
    pending.set(id, resolve)
    send({ id, method, params })
  })
  const wildcardOf = (source) => /^(https?:)\\/\\/\\*(\\.[^:/]+)(?::(\\d+))?$/.exec(source)
  const matches = (url, source) => {
    const wildcard = wildcardOf(source)
    if (wildcard === null) return url.origin === source
    return url.protocol === wildcard[1] && url.hostname.endsWith(wildcard[2]) && url.port === (wildcard[3] || '')
  }
  const allowed = (link) => {
    let url
    try { url = new URL(link) } catch { return false }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return false
    return config.origins.some((origin) => matches(url, origin))
  }
  // Whether the browser will show the page in a frame here: every frame above it (this
  // view included) must be one of its frame-ancestors. Unknown policy: try.
  const framable = (sources, link) => {
    if (!Array.isArray(sources)) return true
    const list = sources.map((s) => String(s).toLowerCase().replace(/\\/$/, ''))
    const page = new URL(link).origin
    // The view's own origin: window.origin (a srcdoc view's location says about:srcdoc, opaque).
    const ancestors = [window.origin].concat(Array.from(location.ancestorOrigins || []))
    return ancestors.every((origin) => {
      if (origin === 'null') return false
      const url = new URL(origin)
      return list.some((source) => source === "'self'" ? url.origin === page : source !== "'none'" && matches(url, source))
    })
  }
  const reveal = (url) => {
    const copy = document.getElementById('copy')
    copy.value = url
    copy.hidden = false
    copy.select()
  }
  // The host's own policy may refuse the frame whatever frameDomains asked (a host that
  // ignores them): said, and the link stays one click away.
  const refused = () => {
    const frame = document.getElementById('ui')
    if (frame.hidden) return
    frame.hidden = true
    frame.removeAttribute('src')
    const status = document.getElementById('status')
    status.textContent = config.title + ' opens in a new tab: this app does not let its views show other pages.'
    status.hidden = false
  }
  document.addEventListener('securitypolicyviolation', (event) => {
    if (event.effectiveDirective === 'frame-src' || event.effectiveDirective === 'child-src' || event.effectiveDirective === 'default-src') refused()
  })
  const show = (result) => {
    const link = result && result._meta && result._meta[${JSON.stringify(LINK_META_KEY)}]
    const url = link && typeof link.url === 'string' ? link.url : null
    const status = document.getElementById('status')
    if (url === null || !allowed(url)) {
      status.textContent = url === null ? 'No link in this result.' : 'This link points somewhere this view may not open.'
      return
    }
    const open = document.getElementById('open')
    open.href = url
    open.onclick = (event) => {
      event.preventDefault()
      const fallback = () => {
        const tab = window.open(url, '_blank')
        if (tab) { try { tab.opener = null } catch {} } else reveal(url)
      }
      if (!openLinks) return fallback()
      request('ui/open-link', { url }).then((answer) => { if (answer.error || (answer.result && answer.result.isError)) reveal(url) })
    }
    document.getElementById('bar').hidden = false
    if (!framable(link.frameAncestors, url)) {
      status.textContent = config.title + ' opens in a new tab: its gateway does not let this app show it here.'
      return
    }
    const frame = document.getElementById('ui')
    frame.src = url
    frame.hidden = false
    status.hidden = true
  }
  window.addEventListener('message', (event) => {
    if (event.source !== host) return
    const message = event.data
    if (message === null || typeof message !== 'object' || message.jsonrpc !== '2.0') return
    if (message.id === 1 && ('result' in message || 'error' in message)) {
      openLinks = Boolean(message.result && message.result.hostCapabilities && message.result.hostCapabilities.openLinks)
      send({ method: 'ui/notifications/initialized', params: {} })
      send({ method: 'ui/notifications/size-changed', params: { height: config.height } })
      return
    }
    if (message.method === undefined && pending.has(message.id)) {
      const resolve = pending.get(message.id)
      pending.delete(message.id)
      return resolve(message)
    }
    if (message.method === 'ui/notifications/tool-result') return show(message.params)
    // Requests this view has nothing to do for (teardown, ping): answered, so the host need not wait.
    if (message.method !== undefined && message.id !== undefined) send({ id: message.id, result: {} })
  })
  send({ id: 1, method: 'ui/initialize', params: { protocolVersion: config.version, appInfo: { name: document.title, version: '1' }, appCapabilities: {} } })
})()
</script>
</body>
</html>
`
}

/**
 * Brings the server's live web UI into hosts that render MCP Apps (Claude,
 * ChatGPT, VS Code, Goose): a `ui://` resource whose shell frames the session
 * link, the tool `_meta` that points at it, and tool results that hand the
 * link to the shell rather than to the model.
 */
export function mcpAppBridge (client: GatewayClient, options: McpAppOptions = {}): McpAppBridge {
  const uri = options.uri ?? `ui://${client.serverName}/web-ui`
  if (typeof uri !== 'string' || !uri.startsWith('ui://')) throw new InvalidOptionError('uri', 'expected a ui:// URI')
  const title = options.title ?? client.serverName
  const height = options.height ?? 600
  if (!Number.isInteger(height) || height < 100 || height > 4000) throw new InvalidOptionError('height', 'expected an integer from 100 to 4000')
  if (options.frameOrigins !== undefined && (!Array.isArray(options.frameOrigins) || !options.frameOrigins.every((o) => typeof o === 'string' && FRAME_ORIGIN.test(o)))) {
    throw new InvalidOptionError('frameOrigins', 'expected origins such as https://gw.example.com or https://*.apps.example.com')
  }
  if (options.domain !== undefined && (typeof options.domain !== 'string' || !APP_DOMAIN.test(options.domain))) {
    throw new InvalidOptionError('domain', 'expected a host name or an https origin, as the host documents (e.g. a904794854a047f6.claudemcpcontent.com)')
  }

  function read (): ResourceRead {
    const origins = options.frameOrigins ?? client.linkOrigins
    return {
      contents: [{
        uri,
        mimeType: MCP_APP_MIME_TYPE,
        text: shellHtml(title, origins, height),
        _meta: { ui: { csp: { frameDomains: origins }, prefersBorder: false, ...(options.domain !== undefined && { domain: options.domain }) } }
      }]
    }
  }

  return {
    uri,
    // `ui/resourceUri` is the key hosts read before `ui.resourceUri`; both are sent.
    toolMeta: { ui: { resourceUri: uri }, 'ui/resourceUri': uri },
    read,
    registerResource (server) {
      server.registerResource(`${client.serverName}-web-ui`, uri, { title, description: `The live web UI of ${client.serverName}`, mimeType: MCP_APP_MIME_TYPE }, async () => {
        // Hosts read (and cache) the resource right after initialize: give the first
        // registration a moment to report where links really point.
        if (options.frameOrigins === undefined && client.state !== 'registered') {
          let timer: NodeJS.Timeout | undefined
          await Promise.race([client.ready.catch(() => {}), new Promise((resolve) => { timer = setTimeout(resolve, READ_WAIT_MS) })])
          clearTimeout(timer)
        }
        return read()
      })
    },
    toolResult (link, { text, appsSupported }) {
      return {
        content: appsSupported
          ? [{ type: 'text', text }]
          : [{ type: 'text', text: `${text}\n${link.url}` }, { type: 'resource_link', uri: link.url, name: title, mimeType: 'text/html' }],
        _meta: {
          [LINK_META_KEY]: { url: link.url, expiresAt: link.expiresAt.toISOString(), ...(link.frameAncestors !== undefined && { frameAncestors: link.frameAncestors }) }
        }
      }
    }
  }
}

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

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/**
 * The shell page: speaks just enough of the MCP Apps postMessage protocol to
 * learn the tool result, then shows the session's live UI in a nested frame,
 * if the link points at an allowed origin.
 */
function shellHtml (title: string, origins: string[], height: number): string {
  const config = JSON.stringify({ origins, height, version: PROTOCOL_VERSION }).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>html,body{margin:0;height:100%}iframe{display:block;border:0;width:100%;height:100%}p{font:14px system-ui,sans-serif;margin:1rem}</style>
</head>
<body>
<p id="status">Opening…</p>
<iframe id="ui" title="${escapeHtml(title)}" hidden></iframe>
<script>
(() => {
  const config = ${config}
  const host = window.parent
  const send = (message) => host.postMessage(Object.assign({ jsonrpc: '2.0' }, message), '*')
  const allowed = (link) => {
    let url
    try { url = new URL(link) } catch { return false }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return false
    return config.origins.some((origin) => {
      const wildcard = /^(https?:)\\/\\/\\*(\\.[^:]+)(?::(\\d+))?$/.exec(origin)
      if (wildcard === null) return url.origin === origin
      return url.protocol === wildcard[1] && url.hostname.endsWith(wildcard[2]) && url.port === (wildcard[3] || '')
    })
  }
  const show = (result) => {
    const link = result && result._meta && result._meta[${JSON.stringify(LINK_META_KEY)}]
    const url = link && typeof link.url === 'string' ? link.url : null
    const status = document.getElementById('status')
    if (url === null || !allowed(url)) {
      status.textContent = url === null ? 'No link in this result.' : 'This link points somewhere this view may not open.'
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
      send({ method: 'ui/notifications/initialized', params: {} })
      send({ method: 'ui/notifications/size-changed', params: { height: config.height } })
      return
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

  function read (): ResourceRead {
    const origins = options.frameOrigins ?? client.linkOrigins
    return {
      contents: [{
        uri,
        mimeType: MCP_APP_MIME_TYPE,
        text: shellHtml(title, origins, height),
        _meta: { ui: { csp: { frameDomains: origins }, prefersBorder: false } }
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
        _meta: { [LINK_META_KEY]: { url: link.url, expiresAt: link.expiresAt.toISOString() } }
      }
    }
  }
}

import { EXTENSION_ID, getUiCapability, registerAppResource, RESOURCE_MIME_TYPE, RESOURCE_URI_META_KEY } from '@modelcontextprotocol/ext-apps/server'
import type { GatewayClient, SessionLink } from './client.js'
import { InvalidOptionError } from './errors.js'
import { SHELL_SCRIPT } from './mcp-app-shell.generated.js'

/** MCP Apps (SEP-1865): the MIME type of a `ui://` resource a host renders. */
export const MCP_APP_MIME_TYPE: 'text/html;profile=mcp-app' = RESOURCE_MIME_TYPE
/** The client capability (under `extensions`) of hosts that render MCP Apps. */
export const MCP_APPS_EXTENSION: 'io.modelcontextprotocol/ui' = EXTENSION_ID
/** Where the session link travels in a tool result: `_meta`, which hosts give the app and not the model. */
export const LINK_META_KEY = 'mcp-gw/link'
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
  const ui = getUiCapability(capabilities as never) as { mimeTypes?: unknown } | undefined
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
 * The shell page: ext-apps' App (bundled at build time, see shell/mcp-app-shell.js) learns
 * the tool result from the host, then the page offers the link in a new tab (through the
 * host's `ui/open-link` when it has one) and shows the session's live UI in a nested frame
 * beside it, when the link points at an allowed origin and the page's `frame-ancestors` (as
 * the gateway told the client) lets every frame above it in.
 */
function shellHtml (title: string, origins: string[], height: number): string {
  // JSON in a script element: `<` escaped, so nothing in it can end the element.
  const config = JSON.stringify({ origins, height, title }).replace(/</g, '\\u003c')
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
<script type="application/json" id="mcpgw-config">${config}</script>
<script>${SHELL_SCRIPT}</script>
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
    toolMeta: { ui: { resourceUri: uri }, [RESOURCE_URI_META_KEY]: uri },
    read,
    registerResource (server) {
      // ext-apps' helper is typed for the MCP SDK's next major; an McpServer of either major fits.
      registerAppResource(server as never, `${client.serverName}-web-ui`, uri, { title, description: `The live web UI of ${client.serverName}` } as never, async () => {
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

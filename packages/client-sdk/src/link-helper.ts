import type { IncomingMessage, ServerResponse } from 'node:http'
import { errorBody } from '@mcp-gw/protocol'
import type { GatewayClient } from './client.js'
import { LinkInvalidError } from './errors.js'

/** Where `startWebUI` serves the browser helper: include it in a page as `<script src=".well-known/mcp-gw/link.js" defer></script>`. */
export const LINK_HELPER_PATH = '/.well-known/mcp-gw/link.js'
/** What the helper asks, through the link, to learn whether the link still opens this UI. */
export const LINK_CHECK_PATH = '/.well-known/mcp-gw/link'
/** How often an open, visible page checks its link. */
const CHECK_EVERY_MS = 15_000
/** How soon it checks again while the gateway cannot be reached (down, or restarting: 502, 503, 504). */
const RECHECK_UNREACHABLE_MS = 3000

/**
 * The browser helper: checks the page's link now and then (every 15 s while the page is
 * shown, when it is shown again, when the browser is back online, and whenever the page
 * calls `mcpgw.check()`, e.g. when its WebSocket closes; every 3 s while the gateway cannot be
 * reached or answers 502-504, as it does while it restarts). When the link no longer opens the
 * UI (revoked, expired, a gateway that forgot it, a server that stopped) a banner says so
 * and how to get a new one, and `mcpgw:link` fires on window with `{ alive, status, code }`;
 * the banner goes once the link works again. Every URL is relative to the page, so it works
 * at `/`, under `/mcp/<token>/` and on a session host.
 */
const HELPER = `(() => {
  if (window.mcpgw !== undefined) return
  const checkUrl = new URL(${JSON.stringify(LINK_CHECK_PATH.slice(1))}, document.baseURI).href
  let banner = null
  let alive = true
  let running = null
  /** At most one pending re-check, however often the page calls check(). */
  let recheck = null
  const say = (text) => {
    if (banner === null) {
      banner = document.createElement('div')
      banner.setAttribute('role', 'alert')
      banner.id = 'mcpgw-link'
      banner.style.cssText = 'position:fixed;left:0;right:0;top:0;z-index:2147483647;padding:.75rem 1rem;font:15px/1.4 system-ui,sans-serif;background:#7a1f1f;color:#fff'
    }
    banner.textContent = text
    if (!banner.isConnected) document.body.prepend(banner)
  }
  const reasons = {
    MCPGW_PROXY_NO_BACKEND: 'the server behind it stopped',
    MCPGW_SDK_LINK_INVALID: 'it expired or was revoked'
  }
  const check = () => {
    running ??= (async () => {
      let status = 0
      let code = null
      try {
        const res = await fetch(checkUrl, { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } })
        status = res.status
        if (!res.ok) code = await res.json().then((b) => typeof b.code === 'string' ? b.code : null, () => null)
      } catch {}
      const now = status >= 200 && status < 300
      if (now !== alive || !now) window.dispatchEvent(new CustomEvent('mcpgw:link', { detail: { alive: now, status, code } }))
      alive = now
      if (now) { if (banner !== null) banner.remove(); return }
      const known = Object.hasOwn(reasons, code) && reasons[code]
      // Down, or answering for a moment while it restarts: said as such, and checked again soon.
      const unreachable = !known && (status === 0 || status === 502 || status === 503 || status === 504)
      if (unreachable && recheck === null) recheck = setTimeout(() => { recheck = null; check() }, ${RECHECK_UNREACHABLE_MS})
      const why = unreachable ? 'the server cannot be reached' : known || (status === 401 || status === 403 || status === 404 ? 'it expired or was revoked' : 'the server answers ' + status)
      say('This page is no longer live: ' + why + '. Ask the assistant for a new link' + (document.title ? ' to ' + document.title : '') + '.')
    })().finally(() => { running = null })
    return running
  }
  window.mcpgw = { check }
  setInterval(() => { if (document.visibilityState === 'visible') check() }, ${CHECK_EVERY_MS})
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') check() })
  window.addEventListener('online', check)
})()
`

function send (res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(body)), ...headers }).end(body)
}

/**
 * Answers the browser helper's two requests (the script, and its check of the link: 204
 * while the request is let in, else 401 MCPGW_SDK_LINK_INVALID); true when it answered.
 * `startWebUI` calls it for you before your handler.
 */
export function answerLinkHelper (client: GatewayClient, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false
  const path = (req.url ?? '/').split('?')[0]
  if (path === LINK_HELPER_PATH) {
    send(res, 200, { 'content-type': 'text/javascript; charset=utf-8', 'x-content-type-options': 'nosniff' }, HELPER)
    return true
  }
  if (path !== LINK_CHECK_PATH) return false
  if (client.authenticate(req) !== null) {
    res.writeHead(204, { 'cache-control': 'no-store' }).end()
  } else {
    const err = new LinkInvalidError()
    send(res, 401, { 'content-type': 'application/json' }, JSON.stringify(errorBody(401, err.code, err.message)))
  }
  return true
}

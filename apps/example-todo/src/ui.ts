import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { GatewayClient } from '@mcp-gw/client-sdk'
import { WebSocketServer } from 'ws'
import type { TodoList, TodoStore } from './todos.js'

// Every URL is relative: the page works at `/` (direct links), under `/mcp/<token>/` (path
// mode, also behind an nginx `location /mcp/`) and on a session host of its own (isolated mode).
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Todos</title>
<link rel="stylesheet" href="static/app.css">
<script src="static/app.js" defer></script>
<script src=".well-known/mcp-gw/link.js" defer></script>
</head>
<body>
<h1>Todos of <span id="user">…</span></h1>
<p class="status">live: <span id="ws-state">connecting</span> · changes: <span id="count">0</span></p>
<ul id="items"></ul>
<p id="empty">Nothing to do yet.</p>
<form id="add"><input name="text" aria-label="New todo" maxlength="500" required> <button>Add</button></form>
</body>
</html>
`

const CSS = `body { font: 16px system-ui, sans-serif; margin: 2rem; }
.status { color: rgb(90, 90, 90); }
#items li { padding: 0.2rem 0; }
`

const SCRIPT = `const $ = (id) => document.getElementById(id)
function render (list) {
  $('user').textContent = list.userId
  $('items').replaceChildren(...list.items.map((text) => { const li = document.createElement('li'); li.textContent = text; return li }))
  $('empty').hidden = list.items.length > 0
}
fetch('api/todos').then((r) => r.json()).then(render)
const ws = new WebSocket(new URL('ws', location.href).href.replace(/^http/, 'ws'))
ws.onopen = () => { $('ws-state').textContent = 'open' }
ws.onmessage = (event) => { const m = JSON.parse(event.data); if (m.error) $('ws-state').textContent = m.error; else render(m) }
// A closed socket may be a dead link: the SDK's helper checks it and tells the user.
ws.onclose = (event) => { $('ws-state').textContent = 'closed ' + event.code; window.mcpgw?.check() }
// Adding goes over the WebSocket; a view-only link's server says no.
$('add').onsubmit = (event) => {
  event.preventDefault()
  ws.send(JSON.stringify({ add: event.target.elements.text.value }))
  event.target.reset()
}
const events = new EventSource('events')
events.onmessage = (event) => { $('count').textContent = JSON.parse(event.data).changes }
`

/** The text of an `{"add": "text"}` message, or null for any other message. */
function addOf (data: unknown): string | null {
  try {
    const message = JSON.parse(String(data)) as unknown
    const add = typeof message === 'object' && message !== null ? (message as { add?: unknown }).add : undefined
    return typeof add === 'string' && add.length > 0 && add.length <= 500 ? add : null
  } catch {
    return null
  }
}

export interface TodoUi {
  handler: RequestListener
  /** Serves the UI's WebSocket on this server. */
  attach (server: Server): void
}

/** The todo list's web UI: a page, its assets, a JSON API, an SSE counter and a WebSocket. */
export function createTodoUi (todos: TodoStore, client: GatewayClient): TodoUi {
  // Through the gateway the user comes from its identity headers; directly, from the link's
  // token, which the page's first load swaps for a cookie (so its own requests need no token).
  function userOf (req: IncomingMessage, res?: ServerResponse): string | null {
    return client.authenticate(req, res)?.userId ?? null
  }

  function send (res: ServerResponse, status: number, type: string, body: string): void {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
    res.end(body)
  }

  const handler: RequestListener = (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (path === '/static/app.css') return send(res, 200, 'text/css; charset=utf-8', CSS)
    if (path === '/static/app.js') return send(res, 200, 'text/javascript; charset=utf-8', SCRIPT)
    const userId = userOf(req, res)
    if (userId === null) return send(res, 401, 'text/plain; charset=utf-8', 'open this page from a link the MCP server gave you\n')
    if (path === '/') return send(res, 200, 'text/html; charset=utf-8', PAGE)
    // `servedBy`: which process answered (one per user on some platforms), for whoever wonders.
    if (path === '/api/todos') return send(res, 200, 'application/json', JSON.stringify({ ...todos.get(userId), servedBy: process.pid }))
    if (path === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
      const push = (list: TodoList): void => { if (list.userId === userId) res.write(`data: ${JSON.stringify({ changes: list.changes })}\n\n`) }
      push(todos.get(userId))
      todos.on('change', push)
      req.on('close', () => todos.off('change', push))
      return
    }
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n')
  }

  const wss = new WebSocketServer({ noServer: true })
  function attach (server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy())
      const identity = client.authenticate(req)
      const userId = identity?.userId ?? null
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/ws' || userId === null) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
        return
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => ws.terminate())
        const push = (list: TodoList): void => { if (list.userId === userId) ws.send(JSON.stringify(list)) }
        ws.send(JSON.stringify(todos.get(userId)))
        ws.on('message', (data) => {
          const add = addOf(data)
          // `{"add": "text"}` adds an item: a write, which a view-only link (a share, say) may
          // not make. The gateway lets its socket open (a read) and cannot see inside it.
          if (add !== null && identity?.interact !== true) ws.send(JSON.stringify({ error: 'view-only: this link cannot change the list' }))
          else if (add !== null) todos.add(userId, add)
          // Any other message asks for the list again: a round trip a page (or a test) can make.
          else ws.send(JSON.stringify(todos.get(userId)))
        })
        todos.on('change', push)
        ws.on('close', () => todos.off('change', push))
      })
    })
  }
  return { handler, attach }
}

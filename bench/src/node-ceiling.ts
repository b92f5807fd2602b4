// The most a Node.js proxy can do on this machine: node:http and an undici Pool
// to one fixed upstream, no Fastify, no auth, no logging, no header policy.
// Bodies stream both ways with backpressure; WebSocket upgrades are spliced raw.
// usage: node node-ceiling.js <port> <upstream origin>
import { createServer } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { Pool } from 'undici'
import type { Dispatcher } from 'undici'

const [port, upstream] = [Number(process.argv[2]), process.argv[3]!]
const target = new URL(upstream)
const pool = new Pool(upstream, { keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 })
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'])

function strip (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const name in headers) if (!HOP.has(name)) out[name] = headers[name]
  return out
}

const server = createServer((req, res) => {
  const headers = strip(req.headers)
  headers.host = target.host
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  let controller: Dispatcher.DispatchController | null = null
  res.once('close', () => { if (!res.writableFinished) controller?.abort(new Error('client left')) })
  pool.dispatch({ path: req.url!, method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null }, {
    onRequestStart (c) { controller = c },
    onResponseStart (_c, status, upstreamHeaders) { res.writeHead(status, strip(upstreamHeaders) as Record<string, string>) },
    onResponseData (c, chunk) {
      if (!res.write(chunk)) {
        c.pause()
        res.once('drain', () => c.resume())
      }
    },
    onResponseEnd () { res.end() },
    onResponseError () {
      if (res.headersSent) res.destroy()
      else { res.statusCode = 502; res.end() }
    }
  })
})

server.on('upgrade', (req, socket, head) => {
  const backend = connect(Number(target.port), target.hostname, () => {
    const lines = [`${req.method!} ${req.url!} HTTP/1.1`]
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]!}: ${req.rawHeaders[i + 1]!}`)
    backend.write(lines.join('\r\n') + '\r\n\r\n')
    if (head.length > 0) backend.write(head)
    backend.pipe(socket)
    socket.pipe(backend)
  })
  const close = (): void => { socket.destroy(); backend.destroy() }
  backend.on('error', close)
  socket.on('error', close)
  backend.on('close', close)
  socket.on('close', close)
})

server.keepAliveTimeout = 72_000
server.listen(port, '127.0.0.1')
process.on('SIGTERM', () => {
  server.close()
  server.closeAllConnections()
  pool.destroy().then(() => process.exit(0), () => process.exit(1))
})

// The fixed backend every target proxies to: small JSON, a 1 MiB body, upload
// sink and echo, a sized download, an SSE ticker and a WebSocket echo.
// usage: node backend.js <port>
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'

const port = Number(process.argv[2])
const SMALL = Buffer.from(JSON.stringify({ ok: true, todos: [{ id: 1, title: 'measure' }, { id: 2, title: 'ship' }] }))
const MIB = Buffer.alloc(1024 * 1024, 'x')
const CHUNK = Buffer.alloc(64 * 1024, 'y')
/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
const wallMs = (): number => performance.timeOrigin + performance.now()

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://backend')
  const path = url.pathname
  if (path === '/small' || path === '/health') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': SMALL.length })
    res.end(SMALL)
  } else if (path === '/1mib') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': MIB.length })
    res.end(MIB)
  } else if (path === '/upload') {
    let bytes = 0
    req.on('data', (c: Buffer) => { bytes += c.length })
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ bytes }))
    })
  } else if (path === '/echo') {
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' })
    req.pipe(res)
  } else if (path === '/download') {
    let left = Number(url.searchParams.get('bytes') ?? 0)
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left })
    const pump = (): void => {
      while (left > 0) {
        const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left)
        left -= chunk.length
        if (!res.write(chunk)) { res.once('drain', pump); return }
      }
      res.end()
    }
    pump()
  } else if (path === '/sse') {
    const count = Number(url.searchParams.get('count') ?? 100)
    const interval = Number(url.searchParams.get('interval') ?? 5)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.flushHeaders()
    let sent = 0
    const timer = setInterval(() => {
      res.write(`data: ${wallMs()}\n\n`)
      if (++sent >= count) { clearInterval(timer); res.end() }
    }, interval)
    res.on('close', () => clearInterval(timer))
  } else {
    res.writeHead(404).end()
  }
})
server.keepAliveTimeout = 60_000

const wss = new WebSocketServer({ server, perMessageDeflate: false })
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
})

server.listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))

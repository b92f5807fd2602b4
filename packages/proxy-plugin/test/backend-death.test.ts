import { request } from 'node:http'
import type { Socket } from 'node:net'
import t from 'tap'
import { Agent } from 'undici'
import { openWebSocket, startBackend, startGateway } from './helpers.js'
import { eventually } from '@mcp-gw/testkit'

/** Open TCP handles in this process: the gateway, its backends and clients all live here. */
const tcpHandles = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length

async function settlesTo (baseline: number, timeoutMs = 3000): Promise<number> {
  // The count is what the caller asserts on: a timeout is not an error here.
  await eventually(() => tcpHandles() <= baseline, { what: 'TCP handles back to the baseline', within: timeoutMs }).catch(() => {})
  return tcpHandles()
}

/** Polls a count until it reaches 0 or a second passes (close events land a tick after the fact). */
async function gone (count: () => number): Promise<number> {
  await eventually(() => count() === 0, { what: 'the count reaching 0', within: 1000, everyMs: 10 }).catch(() => {})
  return count()
}

const within = async <T>(ms: number, what: string, p: Promise<T>): Promise<T> => await Promise.race([
  p, new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms).unref())
])

t.test('a backend that dies mid-request, mid-upload, mid-SSE and mid-WebSocket: the client learns promptly, no socket is left', async (t) => {
  const sockets = new Set<Socket>()
  const backend = await startBackend(t, (req, res) => {
    sockets.add(req.socket)
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: one\n\n')
      res.write('data: two\n\n', () => setTimeout(() => req.socket.destroy(), 50))
    } else if (req.url === '/upload') {
      // Dies after the first bytes of a body the client is still sending.
      req.once('data', () => req.socket.destroy())
    } else if (req.url === '/slow') {
      setTimeout(() => req.socket.destroy(), 100)
    } else {
      res.end('fine')
    }
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const baseline = tcpHandles()
  // Our own client pool, so that its keep-alive sockets can be closed before counting.
  const client = new Agent()
  const fetch = async (url: string): Promise<Response> => await globalThis.fetch(url, { dispatcher: client } as RequestInit)
  t.equal(await (await fetch(`${gw.origin}/mcp/${token}/warm`)).text(), 'fine')

  // Mid-request: waiting for headers when the backend goes.
  const slow = await within(2000, 'mid-request', fetch(`${gw.origin}/mcp/${token}/slow`))
  t.equal(slow.status, 502, 'mid-request: 502')
  t.equal((await slow.json()).code, 'MCPGW_PROXY_BAD_GATEWAY')

  // Mid-SSE: the stream ends for the client, and the gateway stops counting it.
  const events = await fetch(`${gw.origin}/mcp/${token}/events`)
  t.equal(events.status, 200)
  const reader = events.body!.getReader()
  let text = ''
  const ended = await within(2000, 'mid-SSE', (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return 'ended'
        text += Buffer.from(value).toString()
      }
    } catch {
      return 'cut'
    }
  })())
  t.match(text, /data: one\n\ndata: two\n\n/, 'events before the death arrived')
  // A clean end (the terminating chunk) would tell the client the stream was complete.
  t.equal(ended, 'cut', 'mid-SSE: the stream is cut (an error), never ended as if complete')
  t.equal(await gone(() => gw.app.mcpGateway.streams.size), 0, 'no SSE stream counted afterwards')

  // Mid-upload: the client, still sending, gets an answer or a reset, not a hang.
  const upload = await within(3000, 'mid-upload', new Promise<string>((resolve) => {
    const req = request({ host: '127.0.0.1', port: gw.port, path: `/mcp/${token}/upload`, method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume()
      resolve(`status ${res.statusCode}`)
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`))
    const chunk = Buffer.alloc(64 * 1024, 'u')
    const timer = setInterval(() => { if (!req.destroyed) req.write(chunk) }, 5)
    req.on('close', () => clearInterval(timer))
    t.teardown(() => { clearInterval(timer); req.destroy() })
  }))
  t.match(upload, /^(status 502|error E[A-Z]+)$/, `mid-upload: ${upload}`)

  // Mid-WebSocket: the client gets a close frame or its socket ends.
  const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  for (const client of backend.wss.clients) client.terminate()
  const code = await within(2000, 'mid-WebSocket', closed)
  t.ok(code === 1006 || code === 1011 || code === 1001, `mid-WebSocket: closed with ${code}`)
  t.equal(await gone(() => gw.app.mcpGateway.tunnels.size), 0, 'no tunnel counted afterwards')

  t.equal(await (await fetch(`${gw.origin}/mcp/${token}/again`)).text(), 'fine', 'still serving')

  // With the clients gone and the backend gone, the gateway holds no socket at all.
  ws.terminate()
  await client.close()
  backend.server.closeAllConnections()
  const after = await settlesTo(baseline)
  t.equal(after, baseline, `TCP sockets back to the ${baseline} before the first request`)
})

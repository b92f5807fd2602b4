import { createServer, request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { eventually, within } from '@mcp-gw/testkit'
import { openWebSocket, startBackend, startGateway, startIsolatedGateway, upgradeRequest } from './helpers.js'
import type { Backend } from './helpers.js'

// The bound these tests run with: what is open on a revoked or expired session ends within
// 1.125 of it (SessionWatch); the slack covers a loaded machine, not a slower sweep.
const REVALIDATE_MS = 400
const BOUND_MS = REVALIDATE_MS * 1.125 + 400

/** A backend with an endless event stream, a long-poll that never answers, and a body that stops halfway. */
async function streamingBackend (t: Test): Promise<Backend & { pollsClosed: () => number }> {
  let pollsClosed = 0
  const backend = await startBackend(t, (req, res) => {
    if (req.url?.startsWith('/events') === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
      const tick = setInterval(() => res.write('data: tick\n\n'), 50)
      res.write('data: first\n\n')
      req.on('close', () => clearInterval(tick))
      return
    }
    if (req.url?.startsWith('/poll') === true) {
      req.on('close', () => { pollsClosed++ })
      return
    }
    if (req.url?.startsWith('/partial') === true) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000000' })
      res.write(Buffer.alloc(1000, 1))
      return
    }
    res.end('ok')
  })
  return Object.assign(backend, { pollsClosed: () => pollsClosed })
}

interface OpenResponse {
  res: IncomingMessage
  /** How the response finished: `end` (a clean end), `cut`, or `still open` after 5 s (a regression fails fast). */
  finished: Promise<{ how: 'end' | 'cut' | 'still open', at: number }>
  bytes: () => number
  text: () => string
}

/** A request whose answer may never end: headers back, the body read as it comes. */
function openRequest (port: number, path: string, headers: Record<string, string> = {}): Promise<OpenResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { accept: 'application/json', ...headers }, agent: false }, (res) => {
      let bytes = 0
      let text = ''
      const finished = new Promise<{ how: 'end' | 'cut' | 'still open', at: number }>((resolve) => {
        const deadline = setTimeout(() => { resolve({ how: 'still open', at: Date.now() }); res.destroy() }, 5000)
        res.once('close', () => clearTimeout(deadline))
        res.on('data', (chunk: Buffer) => { bytes += chunk.length; if (text.length < 4096) text += chunk.toString() })
        res.once('end', () => resolve({ how: 'end', at: Date.now() }))
        res.once('error', () => resolve({ how: 'cut', at: Date.now() }))
        res.once('aborted', () => resolve({ how: 'cut', at: Date.now() }))
      })
      resolve({ res, finished, bytes: () => bytes, text: () => text })
    })
    req.on('error', reject)
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')))
    req.end()
  })
}

async function untilBytes (open: OpenResponse, min: number): Promise<void> {
  await eventually(() => open.bytes() >= min, { what: `${min} bytes of the answer`, within: 3000 })
}

t.test('revocation ends every open stream of the session within the bound: event streams, long-polls, bodies under way (path mode)', async (t) => {
  const backend = await streamingBackend(t)
  const gw = await startGateway(t, { revalidateMs: REVALIDATE_MS })
  const alice = await gw.session(backend)
  const bob = await gw.session(backend, { userId: 'bob' })
  const aliceEvents = await openRequest(gw.port, `/mcp/${alice}/events`)
  const bobEvents = await openRequest(gw.port, `/mcp/${bob}/events`)
  t.teardown(() => bobEvents.res.destroy())
  const partial = await openRequest(gw.port, `/mcp/${alice}/partial`)
  const poll = openRequest(gw.port, `/mcp/${alice}/poll`)
  await untilBytes(aliceEvents, 1)
  await untilBytes(partial, 1000)
  await eventually(() => backend.seen.some((r) => r.url === '/poll'), { what: 'the long-poll reaching the backend', within: 3000 })
  t.equal(gw.app.mcpGateway.streams.size, 2, 'two event streams open')

  const revokedAt = Date.now()
  t.equal(await gw.registry.revoke({ userId: 'alice' }), 1)

  const events = await aliceEvents.finished
  t.equal(events.how, 'end', "alice's event stream ends (an EventSource then reconnects and is refused)")
  t.ok(events.at - revokedAt < BOUND_MS, `within the bound (${events.at - revokedAt} ms)`)
  const polled = await poll
  t.equal(polled.res.statusCode, 401, 'the long-poll in flight is answered with the refusal')
  await polled.finished
  t.equal(JSON.parse(polled.text()).code, 'MCPGW_PROXY_TOKEN_REVOKED')
  t.ok(Date.now() - revokedAt < BOUND_MS + 200, 'within the bound too')
  const cut = await partial.finished
  t.equal(cut.how, 'cut', 'a body under way is cut, never taken for a whole one')
  await eventually(() => backend.pollsClosed() === 1, { what: 'the backend request of the long-poll dropped', within: 2000 })
  t.pass('the backend request of the long-poll is dropped')

  const before = bobEvents.bytes()
  await untilBytes(bobEvents, before + 1)
  t.pass("bob's stream goes on")
  t.equal(gw.app.mcpGateway.streams.size, 1, 'one event stream open: bob\'s')
  const again = await openRequest(gw.port, `/mcp/${alice}/events`)
  t.equal(again.res.statusCode, 401, 'a reconnection is refused')
  again.res.destroy()
})

t.test('expiry ends open streams too', async (t) => {
  const backend = await streamingBackend(t)
  const gw = await startGateway(t, { revalidateMs: REVALIDATE_MS })
  await gw.registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port })
  const { token, session } = await gw.registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 1 })
  const events = await openRequest(gw.port, `/mcp/${token}/events`)
  await untilBytes(events, 1)
  const ended = await events.finished
  t.equal(ended.how, 'end')
  t.ok(ended.at - session.expiresAt < BOUND_MS, `ended ${ended.at - session.expiresAt} ms after the session expired`)
  t.equal(gw.app.mcpGateway.streams.size, 0)
})

t.test('revocation ends open streams in isolated mode', async (t) => {
  const backend = await streamingBackend(t)
  const gw = await startIsolatedGateway(t, { revalidateMs: REVALIDATE_MS })
  const mine = await gw.session(backend)
  const headers = { host: mine.host, cookie: `mcpgw_session=${mine.token}` }
  const events = await openRequest(gw.port, '/events', headers)
  t.equal(events.res.statusCode, 200)
  const poll = openRequest(gw.port, '/poll', headers)
  await untilBytes(events, 1)
  const revokedAt = Date.now()
  await gw.registry.revoke({ sessionId: mine.sessionId })
  const ended = await events.finished
  t.equal(ended.how, 'end')
  t.ok(ended.at - revokedAt < BOUND_MS, `within the bound (${ended.at - revokedAt} ms)`)
  t.equal((await poll).res.statusCode, 401, 'and the long-poll is answered with the refusal')
})

t.test('a WebSocket handshake still waiting on its backend is refused when the session is revoked, never completed late', async (t) => {
  // A backend that takes upgrades and never answers them.
  const silent = createServer()
  silent.on('upgrade', () => {})
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { silent.closeAllConnections(); silent.close() })
  const gw = await startGateway(t, { revalidateMs: REVALIDATE_MS })
  await gw.registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: (silent.address() as AddressInfo).port })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'todoodles' })
  const handshake = upgradeRequest(gw.port, `/mcp/${token}/ws`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const revokedAt = Date.now()
  await gw.registry.revoke({ userId: 'alice' })
  const answer = await handshake
  t.same([answer.status, JSON.parse(answer.body).code], [401, 'MCPGW_PROXY_TOKEN_REVOKED'], 'the handshake gets the refusal, not a late 101 or a timeout')
  t.ok(Date.now() - revokedAt < BOUND_MS, `within the bound (${Date.now() - revokedAt} ms)`)
})

t.test('revocation closes an open WebSocket with 1008 within the bound (path mode)', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { revalidateMs: REVALIDATE_MS })
  const token = await gw.session(backend)
  const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  const closed = new Promise<{ code: number, at: number }>((resolve) => ws.once('close', (code) => resolve({ code, at: Date.now() })))
  // Revoked right after a sweep tick or right before one: the bound holds either way.
  await new Promise((resolve) => setTimeout(resolve, REVALIDATE_MS / 3))
  const revokedAt = Date.now()
  await gw.registry.revoke({ userId: 'alice' })
  const { code, at } = await within(BOUND_MS + 2000, 'the WebSocket close', closed)
  t.equal(code, 1008, 'closed with 1008 (policy violation)')
  t.ok(at - revokedAt < BOUND_MS, `within the bound (${at - revokedAt} ms; README: 1.125 times revalidateMs)`)
})

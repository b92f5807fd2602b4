import { request as httpRequest } from 'node:http'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mcpRegistryPlugin, sessionHostLabel } from '@mcp-gw/registry'
import { eventually, freePort, within } from '@mcp-gw/testkit'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import type { Test } from 'tap'
import { WebSocket } from 'ws'
import { gatewayServerOptions, mcpGateway } from '../src/index.js'
import type { McpGatewayOptions } from '../src/index.js'
import { SECRET, startBackend } from './helpers.js'
import type { Backend } from './helpers.js'

// The plugin as an embedder uses it: a plain Fastify app, the registry plugin, the gateway
// plugin, no code of the prebuilt gateway. Its app.close() must finish with a WebSocket, an
// event stream and a long-poll open, each ended the way its client can tell.

const DRAIN_MS = 600
// A close that does not finish by then has hung: the test fails here, not at tap's timeout.
const CLOSE_DEADLINE_MS = DRAIN_MS + 2500

async function sseAndLongPollBackend (t: Test): Promise<Backend> {
  return await startBackend(t, (req, res) => {
    if (req.url?.startsWith('/events') === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
      res.write('data: first\n\n')
      const tick = setInterval(() => res.write('data: tick\n\n'), 100)
      res.on('close', () => clearInterval(tick))
      return
    }
    if (req.url?.startsWith('/poll') === true) return // a long-poll: no answer until its client gives up
    res.end('ok')
  })
}

/** Fastify configured from the plugin's options alone, as the README shows. */
async function embedderApp (t: Test, options: McpGatewayOptions, port = 0, routes?: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify(gatewayServerOptions(options, { logger: false }))
  routes?.(app)
  await app.register(mcpRegistryPlugin, { secret: SECRET })
  await app.register(mcpGateway, options)
  await app.listen({ port, host: '127.0.0.1' })
  // Whatever a failed test leaves open, the process must not wait on it.
  t.teardown(() => { app.server.closeAllConnections() })
  return { app, port: (app.server.address() as AddressInfo).port }
}

interface Opened { res: IncomingMessage, ended: Promise<'end' | 'aborted'>, body: () => string }

function open (port: number, path: string, headers: Record<string, string>): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, headers: { accept: 'application/json', ...headers } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      const ended = new Promise<'end' | 'aborted'>((resolve) => {
        res.once('end', () => resolve('end'))
        res.once('aborted', () => resolve('aborted'))
        res.once('error', () => resolve('aborted'))
      })
      resolve({ res, ended, body: () => text })
    })
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')))
    req.on('error', reject)
    req.end()
  })
}

for (const mode of ['path', 'isolated'] as const) {
  test(`${mode} mode: app.close() ends the plugin's WebSockets (1001), event streams and long-polls within the drain bound`, async (t) => {
    const backend = await sseAndLongPollBackend(t)
    const port = await freePort()
    const options: McpGatewayOptions = {
      drainTimeoutMs: DRAIN_MS,
      ...(mode === 'isolated' && { isolation: { wildcardUrl: `http://*.localhost:${port}` } })
    }
    const { app } = await embedderApp(t, options, port)
    await app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port })
    const { session, token } = await app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
    const [base, headers] = mode === 'path'
      ? [`/mcp/${token}`, { host: `127.0.0.1:${port}` }]
      : ['', { host: `${sessionHostLabel(session)}.localhost:${port}`, cookie: `mcpgw_session=${token}` }]

    const ws = new WebSocket(`ws://127.0.0.1:${port}${base}/ws`, { headers })
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
    ws.on('error', () => {})
    await within(5000, 'the WebSocket handshake', new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('unexpected-response', () => reject(new Error('refused'))) }))
    const events = await within(5000, 'the event stream', open(port, `${base}/events`, headers))
    t.equal(events.res.statusCode, 200, 'the event stream is open')
    const poll = open(port, `${base}/poll`, headers)
    poll.catch(() => {})
    await eventually(() => backend.seen.some((r) => r.url.startsWith('/poll')), { what: 'the long-poll reaching the backend' })

    const started = Date.now()
    await within(CLOSE_DEADLINE_MS, 'app.close()', app.close())
    const took = Date.now() - started
    t.ok(took < DRAIN_MS + 1500, `app.close() finished in ${took} ms (drain bound ${DRAIN_MS} ms)`)

    t.equal(await within(2000, 'the WebSocket close', closed), 1001, 'the WebSocket client got a close frame with 1001 (going away)')
    t.equal(await within(2000, 'the event stream end', events.ended), 'end', 'the event stream ended cleanly (the browser reconnects elsewhere)')
    t.match(events.body(), /data: first/, 'events flowed before the close')
    const answer = await within(2000, 'the long-poll answer', poll)
    t.equal(answer.res.statusCode, 503, 'the long-poll got 503')
    await within(2000, 'the long-poll body', answer.ended)
    t.equal(JSON.parse(answer.body()).code, 'MCPGW_PROXY_SHUTTING_DOWN', 'with a stable code')
  })
}

test('a plain app closes at once when nothing is open', async (t) => {
  const { app } = await embedderApp(t, {})
  await within(2000, 'app.close()', app.close())
  t.pass('closed')
})

// An upgrade socket is off Node's connection list and allows half-open connections: answered
// with end() alone, a client that keeps its side open held app.close() forever.
test('upgrades answered without a tunnel are hung up: a client that never closes does not hold app.close()', async (t) => {
  const { app, port } = await embedderApp(t, { drainTimeoutMs: DRAIN_MS }, 0, (app) => { app.get('/hello', async () => 'hi') })
  const { connect } = await import('node:net')
  const asks = [
    'GET /hello HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n',
    'HEAD /nothing HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n',
    'GET /mcp/abc/x HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n'
  ]
  const statuses: string[] = []
  for (const ask of asks) {
    // A client that keeps its side open after the server's FIN (allowHalfOpen), as some do.
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    socket.on('error', () => {})
    t.teardown(() => { socket.destroy() })
    const closedByServer = new Promise<void>((resolve) => socket.once('end', () => resolve()))
    let text = ''
    socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
    socket.write(ask)
    await within(3000, 'the server hanging up after its answer', closedByServer)
    statuses.push(text.split('\r\n')[0]!)
  }
  t.same(statuses, ['HTTP/1.1 200 OK', 'HTTP/1.1 404 Not Found', 'HTTP/1.1 400 Bad Request'], 'each answered, then hung up by the server')
  // The client still holds its side of all three.
  await within(2000, 'app.close()', app.close())
})

import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { eventually, FRONT_PROXY_DIRECTIVES } from '@mcp-gw/testkit'
import { rawRoundTrip, startGateway, upgradeRequest } from './helpers.js'

/**
 * What a registered backend sends a browser passes one policy, whether it
 * answers a request, refuses an upgrade or accepts one: nothing acts on the
 * whole gateway origin, cookies stay under the session's prefix however their
 * attributes are spelled, redirects stay in the session, referrers never leak.
 */
const HOSTILE: Record<string, string | string[]> = {
  'service-worker-allowed': '/',
  'clear-site-data': '"*"',
  'referrer-policy': 'unsafe-url',
  // Twice: undici hands repeated headers on as an array, Node's parser (the handshake) keeps the first.
  location: ['/login', '/login'],
  // A header meant for the backend's hop only, named in its Connection.
  connection: 'x-hop',
  'x-hop': 'secret',
  'set-cookie': ['a=1; Path=/x; Path =/', 'b=2; PATH=/; Domain=127.0.0.1', 'c=3; path', 'd=4; Domain=.example.com; Path=/y; Secure', 'e=5;Path=/;pAtH=/z;HttpOnly'],
  // What would make a proxy in front of the gateway act for the backend (nginx: an internal
  // redirect to the gateway's API).
  ...Object.fromEntries(Object.entries(FRONT_PROXY_DIRECTIVES).map(([name, value]) => [name, value.replace('{{target}}', '/servers')]))
}

function hostileLines (): string {
  let out = ''
  for (const [name, value] of Object.entries(HOSTILE)) for (const v of Array.isArray(value) ? value : [value]) out += `${name}: ${v}\r\n`
  return out
}

interface RawBackend {
  port: number
  upgrades: string[]
  requests: string[]
  /** Backend sides of accepted upgrades, in order. */
  sockets: Socket[]
}

/** A backend that answers everything with HOSTILE headers, at the HTTP and the handshake level. */
async function startHostileBackend (t: Test): Promise<RawBackend> {
  const backend: RawBackend = { port: 0, upgrades: [], requests: [], sockets: [] }
  const server: Server = createServer((req, res) => {
    backend.requests.push(req.url ?? '')
    if (req.url === '/broken-chunks' || req.url === '/304-with-body') {
      res.socket!.end(req.url === '/broken-chunks'
        ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok'
        : 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello')
      return
    }
    if (req.url === '/te-foo') {
      // A coding nobody applies, a body delimited by the close, and a header meant for this hop only.
      res.socket!.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: foo\r\nConnection: x-secret, close\r\nX-Secret: hop\r\nTrailer: X-Later\r\n\r\n<p>hostile</p>')
      return
    }
    if (req.url === '/early-hints') {
      res.socket!.end('HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\npage')
      return
    }
    if (req.url === '/status-600') {
      // A status no HTTP client accepts, written raw.
      res.socket!.end('HTTP/1.1 600 Nope\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno')
      return
    }
    res.writeHead(200, { ...HOSTILE, 'content-type': 'text/plain' })
    res.end('hostile')
  })
  server.on('upgrade', (req, socket: Socket) => {
    backend.upgrades.push(req.url ?? '')
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    if (req.url === '/refuse') {
      socket.end(`HTTP/1.1 302 Found\r\n${hostileLines()}Content-Length: 0\r\nConnection: close\r\n\r\n`)
    } else if (req.url === '/refuse-200') {
      socket.end(`HTTP/1.1 200 OK\r\n${hostileLines()}Content-Length: 2\r\nConnection: close\r\n\r\nno`)
    } else if (req.url === '/status-600' || req.url === '/status-000' || req.url === '/status-101') {
      const status = req.url.slice(-3)
      socket.end(`HTTP/1.1 ${status} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
    } else if (req.url === '/stall') {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial')
      backend.sockets.push(socket)
    } else if (req.url === '/no-answer') {
      backend.sockets.push(socket)
    } else if (req.url === '/wrong-accept') {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBhbnN3ZXI=\r\n\r\n')
      backend.sockets.push(socket)
    } else {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${hostileLines()}\r\n`)
      backend.sockets.push(socket)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of backend.sockets) s.destroy()
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  backend.port = (server.address() as AddressInfo).port
  return backend
}

function assertPoliced (t: Test, headers: IncomingHttpHeaders, token: string, label: string): void {
  const base = `/mcp/${token}`
  t.equal(headers['service-worker-allowed'], undefined, `${label}: Service-Worker-Allowed dropped`)
  t.equal(headers['clear-site-data'], undefined, `${label}: Clear-Site-Data dropped`)
  t.equal(headers['referrer-policy'], 'same-origin', `${label}: a leaky Referrer-Policy replaced`)
  t.equal(headers.location, `${base}/login`, `${label}: Location kept in the session, however many times it is sent`)
  t.equal(headers['x-hop'], undefined, `${label}: what the backend's Connection names stays on its hop`)
  t.same(Object.keys(FRONT_PROXY_DIRECTIVES).filter((name) => headers[name] !== undefined), [], `${label}: nothing that makes a front proxy act for the backend`)
  t.same(headers['set-cookie'], [
    `a=1; Path=${base}/`,
    `b=2; Path=${base}/`,
    `c=3; Path=${base}/`,
    `d=4; Secure; Path=${base}/y`,
    `e=5;HttpOnly; Path=${base}/z`
  ], `${label}: every cookie has exactly one Path, under the session, and no Domain`)
}

async function setUp (t: Test): Promise<{ backend: RawBackend, port: number, token: string, gw: Awaited<ReturnType<typeof startGateway>> }> {
  const backend = await startHostileBackend(t)
  const gw = await startGateway(t)
  await gw.registry.registerServer({ serverName: 'hostile', host: '127.0.0.1', port: backend.port })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'hostile' })
  return { backend, port: gw.port, token, gw }
}

t.test('an HTTP response passes the response-header policy', async (t) => {
  const { port, token } = await setUp(t)
  const res = await fetch(`http://127.0.0.1:${port}/mcp/${token}/page`, { redirect: 'manual' })
  await res.text()
  const headers: IncomingHttpHeaders = {}
  res.headers.forEach((value, name) => { headers[name] = value })
  headers['set-cookie'] = res.headers.getSetCookie()
  assertPoliced(t, headers, token, 'HTTP')
})

t.test('a refused upgrade (302, 200) passes the same policy', async (t) => {
  const { port, token } = await setUp(t)
  for (const path of ['/refuse', '/refuse-200']) {
    const answer = await upgradeRequest(port, `/mcp/${token}${path}`)
    t.equal(answer.status, path === '/refuse' ? 302 : 200, `${path}: the backend's status is relayed`)
    assertPoliced(t, answer.headers, token, `refused upgrade ${path}`)
  }
})

t.test('an accepted upgrade (101) passes the same policy', async (t) => {
  const { port, token } = await setUp(t)
  const answer = await upgradeRequest(port, `/mcp/${token}/ws`)
  t.teardown(() => answer.socket?.destroy())
  t.equal(answer.status, 101)
  t.equal(answer.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'the handshake itself is intact')
  assertPoliced(t, answer.headers, token, '101')
})

t.test("a 101 whose Sec-WebSocket-Accept does not answer the client's key is not spliced", async (t) => {
  const { backend, port, token, gw } = await setUp(t)
  const answer = await upgradeRequest(port, `/mcp/${token}/wrong-accept`)
  t.equal(answer.status, 502)
  t.equal(answer.socket, null, 'no tunnel')
  t.equal(gw.app.mcpGateway.tunnels.size, 0)
  await eventually(() => backend.sockets[0]?.readableEnded === true, { what: 'the gateway hung up on the backend' })
})

t.test('only a WebSocket GET is upgraded: other methods and protocols get 400 and never reach the backend', async (t) => {
  const { backend, gw } = await setUp(t)
  const { token: viewer } = await gw.registry.createSession({ userId: 'viewer', serverName: 'hostile', scopes: ['view'] })
  const cases: Array<[string, { method?: string, headers?: Record<string, string> }]> = [
    ['POST with Upgrade: h2c', { method: 'POST', headers: { upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAAP__' } }],
    ['POST with Upgrade: websocket', { method: 'POST' }],
    ['GET with Upgrade: h2c', { headers: { upgrade: 'h2c' } }],
    ['GET without a key', { headers: { 'sec-websocket-key': '' } }],
    ['GET with a short key', { headers: { 'sec-websocket-key': 'c2hvcnQ=' } }],
    ['GET with version 8', { headers: { 'sec-websocket-version': '8' } }],
    ['GET with a body', { headers: { 'content-length': '5' } }]
  ]
  for (const [label, options] of cases) {
    const answer = await upgradeRequest(gw.port, `/mcp/${viewer}/admin`, options)
    answer.socket?.destroy()
    t.same([answer.status, JSON.parse(answer.body).code], [400, 'MCPGW_PROXY_BAD_UPGRADE'], label)
  }
  t.same([backend.upgrades, backend.requests], [[], []], 'the backend saw none of them')
})

t.test('a client that half-closes a tunnel gets both sides closed', async (t) => {
  const { backend, port, token, gw } = await setUp(t)
  const answer = await upgradeRequest(port, `/mcp/${token}/ws`)
  const client = answer.socket!
  t.teardown(() => client.destroy())
  t.equal(answer.status, 101)
  await eventually(() => backend.sockets.length === 1, { what: 'the backend holds the tunnel' })
  const backendEnded = new Promise<void>((resolve) => backend.sockets[0]!.once('end', resolve))
  const clientEnded = new Promise<void>((resolve) => client.once('end', resolve))
  client.resume()
  // The backend never ends its side: only the gateway can close the client's.
  client.end()
  await backendEnded
  t.pass('the client\'s FIN reached the backend')
  await clientEnded
  t.pass('the gateway ended its side of the client socket (no CLOSE-WAIT)')
  await eventually(() => gw.app.mcpGateway.tunnels.size === 0, { what: 'the tunnel is gone' })
})

t.test("a backend's hop-by-hop headers never reach the client: its Connection: close is honoured", async (t) => {
  const { port, token } = await setUp(t)
  const answer = await rawRoundTrip(port, `GET /mcp/${token}/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 3000)
  t.equal(answer.status, 200)
  t.match(answer.text, /\r\nconnection: close\r\n/i, 'the gateway says it closes')
  t.notMatch(answer.text, /\r\nkeep-alive:/i, "the backend's Keep-Alive is not passed on")
  t.match(answer.text, /hostile/, 'and it closed (rawRoundTrip waits for that) after the body')
})

t.test('a backend answering with a status that is not HTTP gets the client a 502, never a crash, and no token in the log', async (t) => {
  const lines: string[] = []
  const backend = await startHostileBackend(t)
  const { Writable } = await import('node:stream')
  const gw = await startGateway(t, { fastify: { logger: { level: 'info', stream: new Writable({ write (chunk, _enc, done) { lines.push(chunk.toString()); done() } }) } } })
  await gw.registry.registerServer({ serverName: 'hostile', host: '127.0.0.1', port: backend.port })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'hostile', scopes: ['view'] })
  for (const path of ['/status-600', '/status-000', '/status-101']) {
    const answer = await upgradeRequest(gw.port, `/mcp/${token}${path}`)
    t.same([answer.status, answer.socket], [502, null], `refused upgrade ${path}`)
  }
  const http = await fetch(`${gw.origin}/mcp/${token}/status-600`)
  t.equal(http.status, 502, 'HTTP')
  t.equal((await fetch(`${gw.origin}/mcp/${token}/page`)).status, 200, 'still serving')
  t.same(lines.filter((l) => l.includes(token)), [], 'no log line holds the token')
})

t.test('a client that hangs up during a handshake the backend never finishes releases the backend connection', async (t) => {
  const { backend, port, token } = await setUp(t)
  const { connect } = await import('node:net')
  for (const [path, waitForAnswer] of [['/stall', true], ['/no-answer', false]] as const) {
    const before = backend.sockets.length
    const client = connect(port, '127.0.0.1')
    client.write(`GET /mcp/${token}${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    await eventually(() => backend.sockets.length === before + 1, { what: `${path}: the backend has the handshake` })
    if (waitForAnswer) await new Promise((resolve) => client.once('data', resolve))
    const held = backend.sockets[before]!
    // The backend's server socket allows half-open connections: the gateway letting go is its FIN.
    const released = new Promise<void>((resolve) => held.once('end', () => resolve()))
    held.resume()
    client.destroy()
    await released
    t.pass(`${path}: the gateway let go of the backend when the client left`)
  }
})

t.test('a backend answer that is not valid HTTP is a 502 with a code', async (t) => {
  const { port, token } = await setUp(t)
  for (const path of ['/broken-chunks', '/304-with-body']) {
    const res = await rawRoundTrip(port, `GET /mcp/${token}${path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n`)
    t.equal(res.status, 502, path)
    t.match(res.text, /"code":"MCPGW_PROXY_BAD_GATEWAY"/, `${path}: the backend's fault, with a code`)
  }
})

t.test('a backend\'s Transfer-Encoding, Trailer and the names its Connection lists stay on its hop: the client\'s answer is framed by the gateway, the next one is not read into it', async (t) => {
  const { port, token } = await setUp(t)
  const res = await rawRoundTrip(port,
    `GET /mcp/${token}/te-foo HTTP/1.1\r\nHost: x\r\n\r\n` +
    `GET /mcp/${token}/plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  const [head, rest] = [res.text.slice(0, res.text.indexOf('\r\n\r\n')), res.text.slice(res.text.indexOf('\r\n\r\n') + 4)]
  t.equal(res.status, 200)
  t.notMatch(head, /transfer-encoding: foo/i, 'not the backend\'s coding')
  t.match(head, /transfer-encoding: chunked|content-length: \d+/i, 'framed by the gateway')
  t.notMatch(head, /x-secret|^trailer:/im, 'nor the headers its Connection named, nor its Trailer')
  const second = rest.indexOf('HTTP/1.1 ')
  t.ok(second > 0, 'the second answer starts after the first ends')
  t.match(rest.slice(0, second), /<p>hostile<\/p>/, 'with the first one\'s body whole before it')
  t.match(rest.slice(second), /^HTTP\/1\.1 200/, 'and the second answer is an answer of its own')
})

t.test('an informational answer (103 Early Hints) before the backend\'s real one is skipped, not a 502', async (t) => {
  const { port, token } = await setUp(t)
  const res = await fetch(`http://127.0.0.1:${port}/mcp/${token}/early-hints`)
  t.equal(res.status, 200)
  t.equal(await res.text(), 'page')
})

import { connect } from 'node:net'
import t from 'tap'
import { WebSocket } from 'ws'
import { openWebSocket as open, startBackend, startGateway } from './helpers.js'

function next (ws: WebSocket): Promise<{ data: Buffer, isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })))
}

function closed (ws: WebSocket): Promise<{ code: number, reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
}

t.test('text and binary frames, both ways', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const ws = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  t.teardown(() => ws.terminate())
  ws.send('hello')
  const text = await next(ws)
  t.same([text.data.toString(), text.isBinary], ['hello', false])
  const bytes = Buffer.from([0, 1, 2, 253, 254, 255])
  ws.send(bytes)
  const binary = await next(ws)
  t.same([binary.data, binary.isBinary], [bytes, true])
  const big = Buffer.alloc(2 * 1024 * 1024, 7)
  ws.send(big)
  t.same((await next(ws)).data.length, big.length, 'a 2 MiB frame')
  const upgrade = backend.seen.find((r) => r.method === 'UPGRADE')
  t.equal(upgrade?.url, '/ws', 'the backend saw the path without the token')
  t.equal(upgrade?.headers['x-forwarded-prefix'], `/mcp/${token}`)
})

t.test('subprotocol negotiation passes through', async (t) => {
  const backend = await startBackend(t, undefined, { handleProtocols: (protocols) => protocols.has('todo.v2') ? 'todo.v2' : false })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const ws = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`, ['todo.v1', 'todo.v2'])
  t.teardown(() => ws.terminate())
  t.equal(ws.protocol, 'todo.v2')
  t.match(backend.seen.find((r) => r.method === 'UPGRADE')?.headers['sec-websocket-protocol'], /^todo\.v1, ?todo\.v2$/, 'the backend was offered both')
})

t.test('close codes and reasons pass both ways', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const fromBackend = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  const done = closed(fromBackend)
  fromBackend.send('close:4001:backend-bye')
  t.same(await done, { code: 4001, reason: 'backend-bye' })

  const fromClient = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  const backendSide = await new Promise<WebSocket>((resolve) => {
    const latest = [...backend.wss.clients].at(-1)
    if (latest !== undefined) resolve(latest)
  })
  const seenByBackend = new Promise<{ code: number, reason: string }>((resolve) => backendSide.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  fromClient.close(4002, 'client-bye')
  t.same(await seenByBackend, { code: 4002, reason: 'client-bye' })
})

t.test('ping and pong pass both ways', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const ws = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  t.teardown(() => ws.terminate())
  const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve))
  ws.ping('are-you-there')
  t.equal((await pong).toString(), 'are-you-there', 'client ping answered by the backend')
  const backendSide = [...backend.wss.clients].at(-1)!
  const backendPong = new Promise<Buffer>((resolve) => backendSide.once('pong', resolve))
  backendSide.ping('and-you')
  t.equal((await backendPong).toString(), 'and-you', 'backend ping answered by the client')
})

t.test('a bad token never opens a backend connection', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const good = await gw.session(backend)
  await gw.registry.revoke({ userId: 'alice' })
  const cases: Array<[string, string]> = [['garbage', 'MCPGW_PROXY_TOKEN_MALFORMED'], [good, 'MCPGW_PROXY_TOKEN_REVOKED']]
  for (const [token, code] of cases) {
    const err = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`).catch((e: { statusCode: number, body: string }) => e)
    t.match(err, { statusCode: 401 }, code)
    t.equal(JSON.parse((err as { body: string }).body).code, code)
  }
  t.equal(backend.connections, 0, 'no TCP connection reached the backend')
})

t.test('a backend that refuses the upgrade gives the client its HTTP answer, not a hang', async (t) => {
  const backend = await startBackend(t)
  const refuse = false
  backend.wss.options.verifyClient = (_info: unknown, cb: (ok: boolean, code?: number, message?: string) => void) => cb(refuse, 403, 'Forbidden')
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const err = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`).catch((e: { statusCode: number }) => e)
  t.match(err, { statusCode: 403 })
})

t.test('a backend that is down (nothing listens) gives the stopped answer, 503, on upgrade', async (t) => {
  const { freePort } = await import('@mcp-gw/testkit')
  const gw = await startGateway(t)
  await gw.registry.registerServer({ serverName: 'gone', host: '127.0.0.1', port: await freePort() })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'gone' })
  const err = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`).catch((e: { statusCode: number, body: string }) => e)
  t.match(err, { statusCode: 503 })
  t.equal(JSON.parse((err as { body: string }).body).code, 'MCPGW_PROXY_NO_BACKEND')
})

t.test('garbage upgrades and resets never crash the gateway', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const attempts = [
    `GET /mcp/${token}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
    `GET /mcp/${token}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\u0000\u00ff\u00fe garbage frame bytes`,
    'GET /mcp/x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    '\u0016\u0003\u0001 not http at all\r\n\r\n'
  ]
  for (const text of attempts) {
    await new Promise<void>((resolve) => {
      const socket = connect(gw.port, '127.0.0.1', () => {
        socket.write(text)
        setTimeout(() => socket.destroy(), 100)
      })
      socket.on('error', () => {})
      socket.on('close', () => resolve())
    })
  }
  // Reset in the middle of a handshake.
  await new Promise<void>((resolve) => {
    const socket = connect(gw.port, '127.0.0.1', () => {
      socket.write(`GET /mcp/${token}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`)
      socket.resetAndDestroy()
      resolve()
    })
    socket.on('error', () => {})
  })
  const ws = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  ws.send('still here')
  t.equal((await next(ws)).data.toString(), 'still here', 'the gateway still serves')
  ws.terminate()
  t.equal(gw.app.server.listening, true)
})

t.test('upgrades outside the prefix are not ours: 404 when nothing else handles them', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  await gw.session(backend)
  const err = await open(`ws://127.0.0.1:${gw.port}/elsewhere`).catch((e: { statusCode: number }) => e)
  t.match(err, { statusCode: 404 })
  t.equal(backend.connections, 0)
})

t.test('cross-site WebSocket hijacking: a foreign Origin is refused, same-origin and listed ones pass', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { wsAllowedOrigins: ['https://trusted.example'] })
  const token = await gw.session(backend)
  const url = `ws://127.0.0.1:${gw.port}/mcp/${token}/ws`
  const err = await open(url, undefined, { origin: 'https://evil.example' }).catch((e: { statusCode: number, body: string }) => e)
  t.match(err, { statusCode: 403 })
  t.equal(JSON.parse((err as { body: string }).body).code, 'MCPGW_PROXY_ORIGIN_DENIED')
  for (const origin of [`http://127.0.0.1:${gw.port}`, 'https://trusted.example']) {
    const ws = await open(url, undefined, { origin })
    t.pass(`${origin} allowed`)
    ws.terminate()
  }
})

t.test('a view-only session may open WebSockets', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend, { scopes: ['view'] })
  const ws = await open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  ws.send('hi')
  t.equal((await next(ws)).data.toString(), 'hi')
  ws.terminate()
})

t.test('revoking a session closes its open WebSockets with 1008', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { revalidateMs: 300 })
  const alice = await gw.session(backend)
  const bob = await gw.session(backend, { userId: 'bob' })
  const aliceWs = await open(`ws://127.0.0.1:${gw.port}/mcp/${alice}/ws`)
  const bobWs = await open(`ws://127.0.0.1:${gw.port}/mcp/${bob}/ws`)
  t.teardown(() => bobWs.terminate())
  const aliceClosed = closed(aliceWs)
  await gw.registry.revoke({ userId: 'alice' })
  t.same(await aliceClosed, { code: 1008, reason: 'session ended' })
  bobWs.send('bob still here')
  t.equal((await next(bobWs)).data.toString(), 'bob still here')
  t.equal(gw.app.mcpGateway.tunnels.size, 1)
})

t.test('a backend that dies mid-WebSocket closes the client promptly and leaves no tunnel behind', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const sockets = await Promise.all([1, 2, 3].map(() => open(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)))
  t.equal(gw.app.mcpGateway.tunnels.size, 3)
  const closes = sockets.map((ws) => closed(ws))
  for (const client of backend.wss.clients) client.terminate()
  const results = await Promise.all(closes)
  t.ok(results.every((r) => r.code === 1006), 'each client sees the connection drop')
  t.equal(gw.app.mcpGateway.tunnels.size, 0, 'no tunnel is left open')
  const connections = await new Promise<number>((resolve, reject) => gw.app.server.getConnections((err, n) => err ? reject(err) : resolve(n)))
  t.equal(connections, 0, 'the gateway holds no socket for them')
})

import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import t from 'tap'
import { startBackend, startGateway } from './helpers.js'

/** Rejects if `promise` has not settled within `ms`: a buffering proxy would hang here. */
function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<T>((_resolve, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms).unref())])
}

t.test('an upload streams: the backend has the first bytes before the client sends the last', async (t) => {
  let firstChunkArrived!: () => void
  const arrived = new Promise<void>((resolve) => { firstChunkArrived = resolve })
  const backend = await startBackend(t, (req, res) => {
    let received = ''
    req.once('data', () => firstChunkArrived())
    req.on('data', (c: Buffer) => { received += c.toString() })
    req.on('end', () => res.end(received))
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)

  const response = new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.port, path: `/mcp/${token}/upload`, method: 'POST', headers: { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve(body))
    })
    req.on('error', reject)
    req.write('first-part;')
    within(arrived, 5000, 'the backend receiving the first chunk').then(() => {
      req.end('last-part')
    }, (err: Error) => { req.destroy(); reject(err) })
  })
  t.equal(await response, 'first-part;last-part')
})

t.test('a download streams: the client has the first bytes before the backend writes the last', async (t) => {
  let clientHasFirst!: () => void
  const seenByClient = new Promise<void>((resolve) => { clientHasFirst = resolve })
  const backend = await startBackend(t, async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    res.write('head;')
    await within(seenByClient, 5000, 'the client receiving the first chunk')
    res.end('tail')
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const res = await fetch(`${gw.origin}/mcp/${token}/download`)
  const reader = res.body!.getReader()
  const first = await reader.read()
  t.equal(Buffer.from(first.value!).toString(), 'head;')
  clientHasFirst()
  let rest = ''
  for (let chunk = await reader.read(); chunk.done !== true; chunk = await reader.read()) rest += Buffer.from(chunk.value).toString()
  t.equal(rest, 'tail')
})

t.test('Server-Sent Events arrive one by one as written, uncompressed', async (t) => {
  const acks: Array<() => void> = []
  const backend = await startBackend(t, async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    for (let i = 1; i <= 3; i++) {
      res.write(`id: ${i}\nevent: tick\ndata: {"n":${i}}\n\n`)
      await within(new Promise<void>((resolve) => acks.push(resolve)), 5000, `event ${i} reaching the client`)
    }
    res.end()
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend, { scopes: ['view'] })
  const res = await fetch(`${gw.origin}/mcp/${token}/events`, { headers: { accept: 'text/event-stream', 'accept-encoding': 'gzip, br' } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream')
  t.equal(res.headers.get('content-encoding'), null)
  t.equal(res.headers.get('x-accel-buffering'), 'no')
  const reader = res.body!.getReader()
  const events: string[] = []
  let buffer = ''
  while (events.length < 3) {
    const chunk = await reader.read()
    if (chunk.done === true) break
    buffer += Buffer.from(chunk.value).toString()
    let end
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      events.push(buffer.slice(0, end))
      buffer = buffer.slice(end + 2)
      acks.shift()?.()
    }
  }
  t.same(events, [1, 2, 3].map((i) => `id: ${i}\nevent: tick\ndata: {"n":${i}}`))
})

t.test('large bodies pass intact both ways', async (t) => {
  const payload = randomBytes(8 * 1024 * 1024)
  const digest = createHash('sha256').update(payload).digest('hex')
  const backend = await startBackend(t, (req, res) => {
    if (req.method === 'POST') {
      const hash = createHash('sha256')
      let size = 0
      req.on('data', (c: Buffer) => { hash.update(c); size += c.length })
      req.on('end', () => res.end(JSON.stringify({ size, digest: hash.digest('hex') })))
    } else {
      res.writeHead(200, { 'content-length': payload.length })
      res.end(payload)
    }
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const up = await (await fetch(`${gw.origin}/mcp/${token}/blob`, { method: 'POST', body: payload, headers: { 'content-type': 'application/octet-stream' } })).json()
  t.same(up, { size: payload.length, digest })
  const down = Buffer.from(await (await fetch(`${gw.origin}/mcp/${token}/blob`)).arrayBuffer())
  t.equal(createHash('sha256').update(down).digest('hex'), digest)
})

t.test('backpressure: a client that stops reading stops the backend, the gateway does not buffer', async (t) => {
  let written = 0
  let stalled!: () => void
  const stall = new Promise<void>((resolve) => { stalled = resolve })
  const chunk = Buffer.alloc(64 * 1024, 120)
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    const pump = (): void => {
      while (written < 256 * 1024 * 1024) {
        written += chunk.length
        if (!res.write(chunk)) {
          stalled()
          res.once('drain', pump)
          return
        }
      }
      res.end()
    }
    pump()
    res.on('close', () => stalled())
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.port, path: `/mcp/${token}/huge` }, (res) => {
      res.once('data', () => {
        res.pause()
        // Give every buffer on the way time to fill up.
        setTimeout(() => {
          const settled = written
          setTimeout(() => {
            t.equal(written, settled, 'the backend is held back while the client reads nothing')
            t.ok(written < 64 * 1024 * 1024, `at most a few buffers in flight (${(written / 1048576).toFixed(1)} MiB of 256)`)
            req.destroy()
            resolve()
          }, 300)
        }, 700)
      })
    })
    req.on('error', reject)
    req.end()
  })
  await within(stall, 5000, 'the backend stalling')
})

t.test('a long-poll that ends while the server closes takes its keep-alive connection with it: close() does not wait out the keep-alive timeout', async (t) => {
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let arrived!: () => void
  const waiting = new Promise<void>((resolve) => { arrived = resolve })
  const backend = await startBackend(t, async (_req, res) => {
    arrived()
    await released
    res.end('{"late":true}')
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const answer = fetch(`${gw.origin}/mcp/${token}/poll`).then(async (res) => await res.text())
  await within(waiting, 5000, 'the long-poll reaching the backend')
  const closing = gw.app.close()
  release()
  t.equal(await within(answer, 5000, 'the long-poll answer'), '{"late":true}')
  // Fastify's keep-alive timeout is 72 s: a connection left open would hold close() that long.
  await within(closing, 5000, 'the server closing')
  t.pass('closed as soon as the answer was out')
})

t.test('headers the host app sets on the reply before the proxy answers travel with the backend\'s answer, under it', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.setHeader('x-from', 'backend')
    res.end('ok')
  })
  const gw = await startGateway(t, {
    beforeGateway: (app) => {
      app.addHook('onRequest', async (_request, reply) => {
        reply.header('strict-transport-security', 'max-age=63072000')
        reply.header('x-from', 'host app')
      })
    }
  })
  const token = await gw.session(backend)
  const res = await fetch(`${gw.origin}/mcp/${token}/page`)
  t.equal(await res.text(), 'ok')
  t.equal(res.headers.get('strict-transport-security'), 'max-age=63072000')
  t.equal(res.headers.get('x-from'), 'backend', 'the backend\'s own value wins')
})

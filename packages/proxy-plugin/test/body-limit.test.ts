import { request } from 'node:http'
import t from 'tap'
import { startBackend, startGateway } from './helpers.js'

t.test('maxBodyBytes: a declared oversized body is refused before the backend; an endless chunked one is cut with 413', async (t) => {
  let received = 0
  const backend = await startBackend(t, (req, res, body) => {
    if (req.url === '/sink') {
      req.on('data', (c: Buffer) => { received += c.length })
      req.on('error', () => {})
      return
    }
    return body().then((text) => { res.end(`got ${text.length}`) })
  })
  const gw = await startGateway(t, { maxBodyBytes: 1024 * 1024 })
  const token = await gw.session(backend)

  const small = await fetch(`${gw.origin}/mcp/${token}/echo`, { method: 'POST', body: 'x'.repeat(1024 * 1024) })
  t.equal(await small.text(), `got ${1024 * 1024}`, 'exactly the limit passes')

  const seenBefore = backend.seen.length
  const declared = await fetch(`${gw.origin}/mcp/${token}/echo`, { method: 'POST', body: 'x'.repeat(1024 * 1024 + 1) })
  t.equal(declared.status, 413)
  t.equal((await declared.json()).code, 'MCPGW_PROXY_BODY_TOO_LARGE')
  t.equal(backend.seen.length, seenBefore, 'a body declared too large never reaches the backend')

  const endless = await new Promise<{ status: number, body: string } | { error: string }>((resolve) => {
    const req = request({ host: '127.0.0.1', port: gw.port, path: `/mcp/${token}/sink`, method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked', accept: 'application/json' } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? 'error' }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? 'error' }))
    const chunk = Buffer.alloc(64 * 1024, 'e')
    const pump = (): void => { while (!req.destroyed && req.write(chunk)) { /* until backpressure */ } if (!req.destroyed) req.once('drain', pump) }
    pump()
    t.teardown(() => req.destroy())
  })
  if ('status' in endless) {
    t.equal(endless.status, 413, 'the endless body is answered with 413')
    t.equal(JSON.parse(endless.body).code, 'MCPGW_PROXY_BODY_TOO_LARGE')
  } else {
    t.match(endless.error, /^E[A-Z]+$/, `or its connection is cut (${endless.error}) after the 413 was written`)
  }
  t.ok(received <= 1024 * 1024, `the backend got ${received} bytes, no more than the limit`)
  t.equal(await (await fetch(`${gw.origin}/mcp/${token}/echo`, { method: 'POST', body: 'ok' })).text(), 'got 2', 'still serving')
})

import { freePort } from '@mcp-gw/testkit'
import t from 'tap'
import { startBackend, startGateway, upgradeRequest } from './helpers.js'

t.test('a backend that refuses connections (its process crashed, its registration not yet lapsed) gives the stopped page, JSON or HTML', async (t) => {
  const gw = await startGateway(t)
  const port = await freePort()
  await gw.registry.registerServer({ serverName: 'gone', host: '127.0.0.1', port })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'gone' })
  const json = await fetch(`${gw.origin}/mcp/${token}/`, { headers: { accept: 'application/json' } })
  t.equal(json.status, 503)
  t.match(await json.json(), { statusCode: 503, code: 'MCPGW_PROXY_NO_BACKEND' })
  const html = await fetch(`${gw.origin}/mcp/${token}/`, { headers: { accept: 'text/html' } })
  t.equal(html.status, 503)
  t.match(await html.text(), /not running any more[\s\S]*open the UI again/)
  const upgrade = await upgradeRequest(gw.port, `/mcp/${token}/ws`)
  t.same([upgrade.status, JSON.parse(upgrade.body).code], [503, 'MCPGW_PROXY_NO_BACKEND'], 'a WebSocket handshake too')
})

t.test('a backend that does not answer in time gives 504', async (t) => {
  const backend = await startBackend(t, () => { /* never answers */ })
  const gw = await startGateway(t, { upstreamHeadersTimeoutMs: 300 })
  const token = await gw.session(backend)
  const res = await fetch(`${gw.origin}/mcp/${token}/slow`)
  t.equal(res.status, 504)
  t.equal((await res.json()).code, 'MCPGW_PROXY_GATEWAY_TIMEOUT')
})

t.test('a backend that resets before answering gives 502; one that resets mid-body cuts the client cleanly', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/reset-now') {
      req.socket.destroy()
      return
    }
    if (req.url === '/reset-midway') {
      res.writeHead(200, { 'content-length': '100000' })
      res.write('x'.repeat(1000), () => setTimeout(() => req.socket.destroy(), 20))
      return
    }
    res.end('fine')
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const early = await fetch(`${gw.origin}/mcp/${token}/reset-now`)
  t.equal(early.status, 502)
  t.equal((await early.json()).code, 'MCPGW_PROXY_BAD_GATEWAY')
  const midway = await fetch(`${gw.origin}/mcp/${token}/reset-midway`)
  t.equal(midway.status, 200, 'headers had already gone out')
  await t.rejects(midway.arrayBuffer(), 'the client sees the body cut short, not a silent truncation')
  t.equal(await (await fetch(`${gw.origin}/mcp/${token}/ok`)).text(), 'fine', 'the gateway is still serving')
})

t.test('a client that disconnects mid-upload releases the backend request', async (t) => {
  let backendSawAbort!: () => void
  const aborted = new Promise<void>((resolve) => { backendSawAbort = resolve })
  let backendGotData!: () => void
  const gotData = new Promise<void>((resolve) => { backendGotData = resolve })
  const backend = await startBackend(t, (req) => {
    req.once('data', () => backendGotData())
    req.on('error', () => backendSawAbort())
    req.on('aborted', () => backendSawAbort())
    req.on('close', () => { if (!req.complete) backendSawAbort() })
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const { request } = await import('node:http')
  const req = request({ host: '127.0.0.1', port: gw.port, path: `/mcp/${token}/upload`, method: 'POST', headers: { 'transfer-encoding': 'chunked', 'content-type': 'text/plain' } })
  req.on('error', () => {})
  req.write('partial')
  // The upload is under way at the backend when the client goes.
  await gotData
  req.destroy()
  await Promise.race([aborted, new Promise((_resolve, reject) => setTimeout(() => reject(new Error('backend request still open after 5 s')), 5000).unref())])
  t.pass('the backend request was aborted')
})

import { readFile } from 'node:fs/promises'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { freePort, startNginx } from '@mcp-gw/testkit'
import { sessionHostLabel } from '@mcp-gw/registry'
import t from 'tap'
import { WebSocket } from 'ws'
import { API_KEY, startBackend, startGateway } from './helpers.js'

const SNIPPET = fileURLToPath(new URL('../../../docs/deploy/nginx.conf', import.meta.url))
const ISOLATED_SNIPPET = fileURLToPath(new URL('../../../docs/deploy/nginx-isolated.conf', import.meta.url))

/** A GET through nginx with the Host a browser would send for a session host. */
function get (port: number, path: string, headers: Record<string, string>): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('the documented nginx snippet passes HTTP, WebSocket and SSE through to the gateway', async (t) => {
  const backend = await startBackend(t)
  // Behind a proxy the API needs its key (a boot error otherwise).
  const gw = await startGateway(t, { trustProxy: ['127.0.0.1'], apiKey: API_KEY })
  await gw.app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port })
  const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })

  // The snippet exactly as documented, with only the gateway's port changed.
  const snippet = (await readFile(SNIPPET, 'utf8')).replace('http://127.0.0.1:3082', `http://127.0.0.1:${gw.port}`)
  const [mapBlock, locationBlock] = snippet.split('# --- in server { ... } ---')
  const nginx = await startNginx({ http: `${mapBlock}\n  server {\n    listen 127.0.0.1:{{port}};\n    ${locationBlock}\n  }` })
  t.teardown(() => nginx.stop())
  const port = nginx.port
  const origin = `http://127.0.0.1:${port}`

  const http = await fetch(`${origin}/mcp/${token}/hello?x=1`)
  t.equal(await http.text(), 'backend saw /hello?x=1', 'HTTP')

  const ws = new WebSocket(`ws://127.0.0.1:${port}/mcp/${token}/ws`, { origin })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.send('through nginx')
  t.equal((await new Promise<Buffer>((resolve) => ws.once('message', resolve))).toString(), 'through nginx', 'WebSocket')
  ws.terminate()

  // The backend writes one event and keeps the stream open: it must arrive now, not at the end.
  const sse = await fetch(`${origin}/mcp/${token}/events`)
  t.equal(sse.headers.get('content-type'), 'text/event-stream')
  const reader = sse.body!.getReader()
  const first = await Promise.race([
    reader.read(),
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('SSE event held back by nginx')), 5000).unref())
  ])
  t.equal(Buffer.from(first.value!).toString(), 'data: hello\n\n', 'SSE, unbuffered')
  await reader.cancel()
})

t.test('the documented isolated-mode nginx snippet: session hosts by wildcard, the link swap, WebSocket and SSE', async (t) => {
  const backend = await startBackend(t)
  // nginx's port is the browser's: the wildcard URL names it before nginx starts.
  const snippet = await readFile(ISOLATED_SNIPPET, 'utf8')
  const nginxPort = await freePort()
  const wildcardUrl = `http://*.localhost:${nginxPort}`
  const gw = await startGateway(t, { trustProxy: ['127.0.0.1'], apiKey: API_KEY, wildcardUrl })
  await gw.app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port })
  const { session, token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  const host = `${sessionHostLabel(session)}.localhost:${nginxPort}`

  // As documented, but for what a test on loopback cannot have: TLS, the real domain, port 443.
  const config = snippet
    .replace('listen 443 ssl;', 'listen 127.0.0.1:{{port}};')
    .replace(/^\s*ssl_certificate.*$/gm, '')
    .replace('server_name *.apps.example.com;', 'server_name *.localhost;')
    .replace('http://127.0.0.1:3082', `http://127.0.0.1:${gw.port}`)
  const nginx = await startNginx({ http: config, port: nginxPort })
  t.teardown(() => nginx.stop())

  const swap = await get(nginx.port, `/?mcpgw_link=${token}`, { host })
  t.equal(swap.status, 303, 'the link is swapped for a cookie')
  t.equal(swap.headers.location, '/')
  const cookie = String(swap.headers['set-cookie']).split(';')[0]!
  const page = await get(nginx.port, '/static/app.css', { host, cookie })
  t.equal(page.body, 'backend saw /static/app.css', 'an absolute path is the backend\'s own')
  t.equal((await get(nginx.port, '/static/app.css', { host })).status, 401, 'no cookie, no page')

  const ws = new WebSocket(`ws://127.0.0.1:${nginx.port}/ws`, { headers: { host, cookie }, origin: `http://${host}` })
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.send('through nginx')
  t.equal((await new Promise<Buffer>((resolve) => ws.once('message', resolve))).toString(), 'through nginx', 'WebSocket')

  const sse = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: nginx.port, path: '/events', headers: { host, cookie }, agent: false }, (res) => {
      res.once('data', (c: Buffer) => { resolve(c.toString()); req.destroy() })
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(sse, 'data: hello\n\n', 'SSE, unbuffered')
})

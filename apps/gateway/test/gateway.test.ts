import { Writable } from 'node:stream'
import t from 'tap'
import { WebSocket } from 'ws'
import { shutdown } from '../src/shutdown.js'
import { API_KEY, REGISTRANT, startBackend, startGateway } from './helpers.js'

const auth = { authorization: `Bearer ${API_KEY}` }

t.test('register, create a session over the API, and use it through the proxy', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { apiKey: API_KEY, publicUrl: 'https://apps.example.com' })
  const reg = await fetch(`${gw.origin}/register-server`, { method: 'POST', headers: { ...REGISTRANT, 'content-type': 'application/json' }, body: JSON.stringify({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port }) })
  t.equal(reg.status, 200)
  const created = await fetch(`${gw.origin}/create-session`, { method: 'POST', headers: { ...REGISTRANT, 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'alice', serverName: 'todoodles' }) })
  t.equal(created.status, 201)
  const { token, url } = await created.json()
  t.equal(url, `https://apps.example.com/mcp/${token}/`)
  t.equal(await (await fetch(`${gw.origin}/mcp/${token}/list`)).text(), 'backend saw /list')
})

t.test('/metrics and /openapi.json need the key; /health and /ready do not', async (t) => {
  const gw = await startGateway(t, { apiKey: API_KEY })
  t.equal((await fetch(`${gw.origin}/health`)).status, 200)
  t.equal((await fetch(`${gw.origin}/ready`)).status, 200)
  for (const path of ['/metrics', '/openapi.json', '/stats', '/servers']) {
    t.equal((await fetch(`${gw.origin}${path}`)).status, 401, `${path} without key`)
    t.equal((await fetch(`${gw.origin}${path}`, { headers: auth })).status, 200, `${path} with key`)
  }
})

t.test('the OpenAPI document describes every route', async (t) => {
  const gw = await startGateway(t, { apiKey: API_KEY })
  const doc = await (await fetch(`${gw.origin}/openapi.json`, { headers: auth })).json()
  t.match(doc.openapi, /^3\./)
  for (const path of ['/health', '/ready', '/register-server', '/register-server/{serverName}', '/create-session', '/revoke-session', '/discover-server/{serverName}', '/stats', '/sessions', '/servers', '/metrics']) {
    t.ok(doc.paths[path], `${path} is described`)
  }
  t.ok(doc.paths['/create-session'].post.requestBody.content['application/json'].schema.required.includes('userId'))
})

t.test('metrics count proxied traffic, sockets, streams and the registry', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { apiKey: API_KEY })
  await gw.app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port })
  const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  for (let i = 0; i < 3; i++) await (await fetch(`${gw.origin}/mcp/${token}/x`)).text()
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  await new Promise((resolve) => ws.once('open', resolve))
  t.teardown(() => ws.terminate())
  const text = await (await fetch(`${gw.origin}/metrics`, { headers: auth })).text()
  t.match(text, /mcpgw_proxy_responses_total\{class="2xx"\} 3/)
  t.match(text, /mcpgw_proxy_duration_ms_count 3/)
  t.match(text, /mcpgw_proxy_duration_ms_bucket\{le="\+Inf"\} 3/)
  t.match(text, /mcpgw_websockets_open 1/)
  t.match(text, /mcpgw_sessions_live 1/)
  t.match(text, /mcpgw_registrations_live 1/)
  t.match(text, /mcpgw_session_cache_hits_total \d+/)
  t.match(text, /mcpgw_store_up 1/)
  t.match(text, /mcpgw_store_operations_total\{operation="createSession"\} 1\n/)
  t.match(text, /mcpgw_store_operations_total\{operation="findSessionByJti"\} 1\n/, 'three requests and a WebSocket on one session: one lookup')
})

t.test('no access log by default; a backend that fails is still logged, without the token', async (t) => {
  const lines: string[] = []
  const logStream = new Writable({ write (chunk, _enc, done) { lines.push(chunk.toString()); done() } })
  const backend = await startBackend(t)
  const gw = await startGateway(t, {}, { logStream })
  await gw.app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port })
  const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  t.equal((await fetch(`${gw.origin}/mcp/${token}/page`)).status, 200)
  t.same(lines.filter((l) => l.includes('request completed') || l.includes('incoming request')), [], 'no line per request')
  await new Promise<void>((resolve) => backend.server.close(() => resolve()))
  backend.server.closeAllConnections()
  const res = await fetch(`${gw.origin}/mcp/${token}/page`)
  t.equal(res.status, 503, 'nothing listens there any more: the stopped page')
  const failure = lines.map((l) => JSON.parse(l) as { level: number, msg: string, code?: string }).find((l) => l.msg === 'backend request failed')
  t.match(failure, { level: 40, code: 'ECONNREFUSED' }, 'logged at warn with the cause code')
  t.same(lines.filter((l) => l.includes(token)), [], 'never the token')
})

t.test('CORS: listed origins may call the API, never with credentials; others get no CORS headers', async (t) => {
  const gw = await startGateway(t, { apiKey: API_KEY, corsOrigins: ['https://console.example'] })
  const allowed = await fetch(`${gw.origin}/stats`, { headers: { ...auth, origin: 'https://console.example' } })
  t.equal(allowed.headers.get('access-control-allow-origin'), 'https://console.example')
  t.equal(allowed.headers.get('access-control-allow-credentials'), null)
  const preflight = await fetch(`${gw.origin}/create-session`, { method: 'OPTIONS', headers: { origin: 'https://console.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } })
  t.equal(preflight.status, 204)
  const foreign = await fetch(`${gw.origin}/stats`, { headers: { ...auth, origin: 'https://evil.example' } })
  t.equal(foreign.headers.get('access-control-allow-origin'), null, 'an unlisted origin is not reflected')
})

t.test('the log of a full session holds no token, key or cookie', async (t) => {
  const lines: string[] = []
  const logStream = new Writable({ write (chunk, _enc, done) { lines.push(chunk.toString()); done() } })
  const backend = await startBackend(t)
  const gw = await startGateway(t, { apiKey: API_KEY, accessLog: true }, { logStream, logLevel: 'debug' })
  const json = { ...REGISTRANT, 'content-type': 'application/json' }
  await fetch(`${gw.origin}/register-server`, { method: 'POST', headers: json, body: JSON.stringify({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port }) })
  const { token } = await (await fetch(`${gw.origin}/create-session`, { method: 'POST', headers: json, body: JSON.stringify({ userId: 'alice', serverName: 'todoodles' }) })).json()
  await fetch(`${gw.origin}/mcp/${token}/page?token=${token}`, { headers: { cookie: `sid=${token}` } })
  await fetch(`${gw.origin}/mcp/${token}`, { redirect: 'manual' })
  await fetch(`${gw.origin}/mcp/${token}/%zz`)
  await fetch(`${gw.origin}/static/app.css`, { headers: { referer: `${gw.origin}/mcp/${token}/` } })
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  await new Promise((resolve) => ws.once('open', resolve))
  ws.close()
  await fetch(`${gw.origin}/revoke-session`, { method: 'POST', headers: json, body: JSON.stringify({ userId: 'alice' }) })
  await fetch(`${gw.origin}/stats`, { headers: { authorization: 'Bearer wrong-key-for-the-log-test' } })
  t.ok(lines.length > 10, `${lines.length} log lines`)
  t.ok(lines.some((l) => l.includes('[redacted]')))
  for (const secret of [token, token.split('.')[2]!, API_KEY, REGISTRANT['x-mcpgw-server-secret'], 'wrong-key-for-the-log-test']) {
    t.same(lines.filter((l) => l.includes(secret)), [], 'never in the log')
  }
})

t.test('shutdown closes WebSockets with 1001, ends SSE streams, and finishes within the drain timeout', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  await gw.app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port })
  const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  const sockets = await Promise.all([1, 2].map(async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
    await new Promise((resolve) => ws.once('open', resolve))
    return ws
  }))
  const closes = sockets.map((ws) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))))
  const sse = await fetch(`${gw.origin}/mcp/${token}/events`)
  const body = sse.text()
  t.equal(gw.app.mcpGateway.streams.size, 1)
  const started = Date.now()
  await shutdown(gw.app, 5000)
  t.ok(Date.now() - started < 5000, 'done before the drain timeout')
  t.same(await Promise.all(closes), [1001, 1001], 'WebSocket clients were told 1001')
  t.equal(await body, 'data: hello\n\n', 'the SSE stream ended cleanly')
})

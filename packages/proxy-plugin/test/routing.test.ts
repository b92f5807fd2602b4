import t from 'tap'
import { frameworkErrors } from '../src/error-reply.js'
import { rawRequest, startBackend, startGateway } from './helpers.js'

t.test('<prefix>/<token>/<rest>?q reaches the backend at /<rest>?q, every method, bodies intact', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)

  const get = await fetch(`${gw.origin}/mcp/${token}/api/items?filter=open&page=2`)
  t.equal(get.status, 200)
  t.match(await get.json(), { method: 'GET', url: '/api/items?filter=open&page=2' })

  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    const res = await fetch(`${gw.origin}/mcp/${token}/api/update`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 7, done: true })
    })
    t.equal(res.status, 200, method)
    t.match(await res.json(), { method, url: '/api/update', body: '{"id":7,"done":true}' }, `${method} body arrives byte for byte`)
  }
  // Bodies of any type, with no content-type at all, and empty ones.
  const raw = await fetch(`${gw.origin}/mcp/${token}/upload`, { method: 'POST', headers: { 'content-type': 'application/x-weird' }, body: 'a=1&b=2' })
  t.match(await raw.json(), { body: 'a=1&b=2' })
  const untyped = await fetch(`${gw.origin}/mcp/${token}/upload`, { method: 'POST', body: new Uint8Array([1, 2, 3]) })
  t.equal((await untyped.json()).body, '\u0001\u0002\u0003')
  const head = await fetch(`${gw.origin}/mcp/${token}/api/items`, { method: 'HEAD' })
  t.equal(head.status, 200)
  const options = await fetch(`${gw.origin}/mcp/${token}/api/items`, { method: 'OPTIONS' })
  t.match(await options.json(), { method: 'OPTIONS' })
})

t.test('<prefix>/<token> without the slash is redirected with 308, query kept', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const res = await fetch(`${gw.origin}/mcp/${token}?tab=2`, { redirect: 'manual' })
  t.equal(res.status, 308)
  t.equal(res.headers.get('location'), `/mcp/${token}/?tab=2`)
  t.equal(backend.seen.length, 0, 'the backend was not asked')
})

t.test('the backend never receives the gateway token as a credential', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const res = await fetch(`${gw.origin}/mcp/${token}/page?token=${token}&keep=1&t2=${encodeURIComponent(token)}`, {
    headers: { authorization: `Bearer ${token}`, cookie: `mcpgw=${token}; theme=dark` }
  })
  const seen = await res.json()
  t.equal(seen.url, '/page?keep=1', 'stripped from the path and the query')
  t.equal(seen.headers.authorization, undefined, 'stripped from Authorization')
  t.equal(seen.headers.cookie, 'theme=dark', 'stripped from cookies, others kept')
  t.equal(seen.headers['x-forwarded-prefix'], `/mcp/${token}`, 'only in X-Forwarded-Prefix')
  const without = JSON.stringify({ ...seen.headers, 'x-forwarded-prefix': undefined })
  t.notOk(without.includes(token), 'nowhere else in what the backend saw')
  // A different bearer credential belongs to the app and passes through.
  const own = await (await fetch(`${gw.origin}/mcp/${token}/page`, { headers: { authorization: 'Bearer app-own-credential' } })).json()
  t.equal(own.headers.authorization, 'Bearer app-own-credential')
})

t.test('the backend learns who the gateway authenticated, and clients cannot pretend', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend, { userId: 'alice@example.com', scopes: ['view'] })
  const seen = await (await fetch(`${gw.origin}/mcp/${token}/`, { headers: { 'x-mcpgw-user-id': 'mallory', 'X-MCPGW-Admin': 'yes' } })).json()
  t.equal(decodeURIComponent(seen.headers['x-mcpgw-user-id']), 'alice@example.com')
  t.match(seen.headers['x-mcpgw-session-id'], /^[\w-]{16,}$/)
  t.equal(seen.headers['x-mcpgw-server-type'], 'mcp-webui')
  t.equal(seen.headers['x-mcpgw-scopes'], 'view')
  t.equal(seen.headers['x-mcpgw-instance-id'], (await gw.registry.listServers())[0]?.instanceId, 'and which instance the session belongs to')
  t.equal(seen.headers['x-mcpgw-admin'], undefined, 'client-sent x-mcpgw-* headers are dropped')
})

t.test('forwardToken: true passes the token on', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { forwardToken: true })
  const token = await gw.session(backend)
  const seen = await (await fetch(`${gw.origin}/mcp/${token}/p?token=${token}`, { headers: { authorization: `Bearer ${token}` } })).json()
  t.equal(seen.url, `/p?token=${token}`)
  t.equal(seen.headers.authorization, `Bearer ${token}`)
})

t.test('X-Forwarded-* are set, and client-supplied ones are not trusted by default', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const seen = await (await fetch(`${gw.origin}/mcp/${token}/`, {
    headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' }
  })).json()
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${gw.port}`)
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers.host, `127.0.0.1:${backend.port}`, 'Host is the backend')
})

t.test('behind a trusted proxy the forwarded chain is kept', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { fastify: { trustProxy: '127.0.0.1' } })
  const token = await gw.session(backend)
  const seen = await (await fetch(`${gw.origin}/mcp/${token}/`, {
    headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'apps.example.com', 'x-forwarded-proto': 'https' }
  })).json()
  t.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
  t.equal(seen.headers['x-forwarded-host'], 'apps.example.com')
  t.equal(seen.headers['x-forwarded-proto'], 'https')
})

t.test('responses: Location under the prefix, a safe Referrer-Policy, cookies scoped to the session', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/login') {
      res.writeHead(302, { location: '/dashboard?x=1', 'set-cookie': ['sid=abc; Path=/; HttpOnly', 'pref=1'] })
      res.end()
    } else if (req.url === '/absolute') {
      res.writeHead(301, { location: `http://127.0.0.1:${backend.port}/moved#top` })
      res.end()
    } else if (req.url === '/elsewhere') {
      res.writeHead(302, { location: 'https://example.org/x', 'referrer-policy': 'unsafe-url' })
      res.end()
    } else {
      res.writeHead(200, { 'referrer-policy': 'no-referrer' })
      res.end('ok')
    }
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const login = await fetch(`${gw.origin}/mcp/${token}/login`, { redirect: 'manual' })
  t.equal(login.headers.get('location'), `/mcp/${token}/dashboard?x=1`)
  t.equal(login.headers.get('referrer-policy'), 'same-origin')
  t.same(login.headers.getSetCookie(), [`sid=abc; HttpOnly; Path=/mcp/${token}/`, `pref=1; Path=/mcp/${token}/`])
  const absolute = await fetch(`${gw.origin}/mcp/${token}/absolute`, { redirect: 'manual' })
  t.equal(absolute.headers.get('location'), `/mcp/${token}/moved#top`)
  const elsewhere = await fetch(`${gw.origin}/mcp/${token}/elsewhere`, { redirect: 'manual' })
  t.equal(elsewhere.headers.get('location'), 'https://example.org/x', 'other sites are left alone')
  t.equal(elsewhere.headers.get('referrer-policy'), 'same-origin', 'a leaky policy is replaced')
  const strict = await fetch(`${gw.origin}/mcp/${token}/`)
  t.equal(strict.headers.get('referrer-policy'), 'no-referrer', 'a stricter one is kept')
})

t.test('two sessions of one user on two servers each reach only their own backend', async (t) => {
  const todo = await startBackend(t, (_req, res) => { res.end('todo') })
  const grocery = await startBackend(t, (_req, res) => { res.end('grocery') })
  const gw = await startGateway(t)
  const todoToken = await gw.session(todo, { serverName: 'todoodles' })
  const groceryToken = await gw.session(grocery, { serverName: 'grocery-list' })
  t.not(todoToken, groceryToken)
  for (let i = 0; i < 5; i++) {
    t.equal(await (await fetch(`${gw.origin}/mcp/${todoToken}/`)).text(), 'todo')
    t.equal(await (await fetch(`${gw.origin}/mcp/${groceryToken}/`)).text(), 'grocery')
  }
  t.equal(todo.seen.length, 5)
  t.equal(grocery.seen.length, 5)
})

t.test('the host app is untouched: its routes, parsers and 404s', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, {
    assetFallback: false,
    beforeGateway: (app) => {
      app.post('/api/echo', async (request) => ({ parsed: request.body }))
      app.get('/mcp-not-really', async () => 'host route')
    }
  })
  const token = await gw.session(backend)
  const echo = await fetch(`${gw.origin}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
  t.same(await echo.json(), { parsed: { a: 1 } }, "the host's JSON parser still parses")
  t.equal(await (await fetch(`${gw.origin}/mcp-not-really`)).text(), 'host route')
  t.equal((await fetch(`${gw.origin}/nothing-here`)).status, 404)
  t.equal((await fetch(`${gw.origin}/mcp/${token}/x`)).status, 200)
})

t.test('dot segments never climb out of the backend root', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { fastify: { frameworkErrors } })
  const token = await gw.session(backend)
  // Names starting with `..` are refused too: the rule is @fastify/reply-from's, and undecodable escapes with them.
  for (const path of ['/a/../../etc/passwd', '/%2e%2e/x', '/a/.%2E/x', '/a/%2e./x', '/..', '/a/..b', '/%zz']) {
    const res = await rawRequest(gw.port, `/mcp/${token}${path}`)
    t.equal(res.status, 400, path)
    t.equal(JSON.parse(res.body).code, 'MCPGW_PROXY_BAD_PATH')
    t.notOk(res.body.includes(token), 'the answer never quotes the token')
  }
  // Not dot segments: names that merely contain dots pass.
  t.equal((await rawRequest(gw.port, `/mcp/${token}/a/b..c/x..?q=../`)).status, 200)
  t.equal(backend.seen.length, 1, 'only the harmless one reached the backend')
})

t.test('a backend that restarts on a new port is routed to at once, not after the cache bound', async (t) => {
  const first = await startBackend(t, (_req, res) => { res.end('first') })
  const second = await startBackend(t, (_req, res) => { res.end('second') })
  const gw = await startGateway(t, { revalidateMs: 60_000 })
  const token = await gw.session(first)
  t.equal(await (await fetch(`${gw.origin}/mcp/${token}/`)).text(), 'first')
  await gw.registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: second.port })
  t.equal(await (await fetch(`${gw.origin}/mcp/${token}/`)).text(), 'second', 'the next request already goes to the new port')
  await gw.registry.deregisterServer('todoodles')
  const gone = await fetch(`${gw.origin}/mcp/${token}/`)
  t.equal(gone.status, 503)
  t.equal((await gone.json()).code, 'MCPGW_PROXY_NO_BACKEND', 'and a deregistration is seen at once too')
})

t.test('hop-by-hop headers meant for the gateway do not break or reach the backend', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  for (const [name, value] of [['upgrade', ''], ['upgrade', 'h2c'], ['keep-alive', 'timeout=5'], ['proxy-connection', 'keep-alive'], ['te', 'gzip'], ['http2-settings', 'AAMAAABkAAQCAAAAAAIAAAAA']]) {
    const res = await rawRequest(gw.port, `/mcp/${token}/x`, { headers: { [name!]: value! } })
    t.equal(res.status, 200, `${name}: ${value}`)
    t.notOk(name! in JSON.parse(res.body).headers, `${name} stays with the gateway`)
  }
  const trailers = await rawRequest(gw.port, `/mcp/${token}/x`, { headers: { te: 'trailers' } })
  t.equal(JSON.parse(trailers.body).headers.te, 'trailers', 'TE: trailers is end to end')
})

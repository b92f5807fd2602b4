import { request as httpRequest } from 'node:http'
import Fastify from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import type { AddressInfo } from 'node:net'
import { MemoryStore, Registry } from '@mcp-gw/registry'
import { parseWildcardUrl } from '@mcp-gw/registry'
import { sessionHostLabel, sessionLink } from '@mcp-gw/protocol'
import { gatewayRewriteUrl, mcpGateway, FORWARD_AUTH_ENDED_PATH, FORWARD_AUTH_PATH } from '../src/index.js'
import { clientErrorHandler, frameworkErrors } from '../src/error-reply.js'
import { eventually, freePort } from '@mcp-gw/testkit'
import { SECRET, startBackend } from './helpers.js'

const KEY = 'edge-key-0123456789abcdef'

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/** What an edge sends: the original's headers, its method, URI and Host in X-Forwarded-*, and the key. */
async function ask (port: number, original: { method?: string, uri: string, host: string, headers?: Record<string, string> }, key: string | null = KEY): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path: FORWARD_AUTH_PATH,
      method: 'GET',
      headers: {
        accept: 'application/json',
        ...original.headers,
        host: `127.0.0.1:${port}`,
        'x-forwarded-method': original.method ?? 'GET',
        'x-forwarded-uri': original.uri,
        'x-forwarded-host': original.host,
        ...(key !== null && { 'x-mcpgw-forward-auth-key': key })
      }
    }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function start (t: Test, isolated: boolean): Promise<{ port: number, registry: Registry, backendPort: number, wildcardUrl: string, hits: () => number }> {
  const port = await freePort()
  const wildcardUrl = `http://*.localhost:${port}`
  const store = new MemoryStore()
  const registry = new Registry({ secret: SECRET, store })
  await registry.init()
  const options = { forwardAuth: { key: KEY }, ...(isolated && { isolation: { wildcardUrl } }) }
  const app = Fastify({ logger: false, frameworkErrors, clientErrorHandler, rewriteUrl: gatewayRewriteUrl(options) })
  t.teardown(async () => { await app.close(); await store.close() })
  await app.register(mcpGateway, { registry, ...options })
  await app.listen({ port, host: '127.0.0.1' })
  const backend = await startBackend(t)
  await registry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: backend.port })
  return { port: (app.server.address() as AddressInfo).port, registry, backendPort: backend.port, wildcardUrl, hits: () => backend.seen.length }
}

t.test('path mode: the edge learns where to send an authenticated request and what to tell the backend; nothing reaches the backend', async (t) => {
  const gw = await start(t, false)
  const { token, session } = await gw.registry.createSession({ userId: 'alice', serverName: 'todo' })
  const host = `127.0.0.1:${gw.port}`
  const yes = await ask(gw.port, { uri: `/mcp/${token}/api/items?x=1`, host, headers: { cookie: 'theirs=1; mcpgw_direct_1=zz', referer: `http://${host}/mcp/${token}/page` } })
  t.equal(yes.status, 200)
  t.equal(yes.headers['x-mcpgw-upstream'], `127.0.0.1:${gw.backendPort}`)
  t.equal(yes.headers['x-mcpgw-upstream-proto'], 'http')
  t.equal(yes.headers['x-mcpgw-upstream-path'], '/api/items?x=1', 'the token segment removed')
  t.equal(yes.headers['x-mcpgw-user-id'], 'alice')
  t.equal(yes.headers['x-mcpgw-session-id'], session.sessionId)
  t.equal(yes.headers['x-mcpgw-scopes'], 'view,interact')
  t.equal(yes.headers['x-forwarded-prefix'], `/mcp/${token}`)
  t.equal(yes.headers['x-mcpgw-request-cookie'], 'theirs=1', 'the gateway\'s own cookies are not the backend\'s')
  t.equal(yes.headers['x-mcpgw-request-referer'], `http://127.0.0.1:${gw.backendPort}/page`, 'a Referer naming the session becomes the backend\'s own page')
  t.equal(yes.headers['x-mcpgw-frame-ancestors'], "frame-ancestors 'self'", 'the frame-ancestors the gateway would add, for the edge to add')
  t.equal(yes.headers['cache-control'], 'no-store', 'no edge cache asked for: nothing kept')
  t.equal(gw.hits(), 0, 'the backend saw nothing')

  const cached = await ask(gw.port, { uri: `/mcp/${token}/api`, host, headers: { 'x-mcpgw-edge-cache-ms': '1000' } })
  t.equal(cached.headers['cache-control'], 'max-age=1', 'an edge that keeps answers is told for how long')
})

t.test('path mode: a page load is answered with the link swap, for the edge to relay; the label with its cookie is a yes', async (t) => {
  const gw = await start(t, false)
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'todo' })
  const host = `127.0.0.1:${gw.port}`
  const swap = await ask(gw.port, { uri: `/mcp/${token}/app?x=1`, host, headers: { accept: 'text/html', 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' } })
  t.equal(swap.status, 303, 'the swap, as the proxy itself answers a page load')
  const location = String(swap.headers.location)
  t.match(location, /^\/mcp\/s\/[\w-]{22}\/app\?x=1$/)
  const cookie = String(swap.headers['set-cookie']).split(';')[0]!
  const base = location.slice(0, location.indexOf('/app'))
  const yes = await ask(gw.port, { uri: `${base}/api`, host, headers: { cookie, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' } })
  t.same([yes.status, yes.headers['x-forwarded-prefix'], yes.headers['x-mcpgw-upstream-path'], yes.headers['x-mcpgw-request-cookie']], [200, base, '/api', undefined], 'the label\'s request: a yes, the label as prefix, the cookie kept from the backend')
  const script = await ask(gw.port, { uri: `/mcp/${token}/api`, host, headers: { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' } })
  t.same([script.status, script.headers['x-forwarded-prefix']], [200, `/mcp/${token}`], 'a script\'s request keeps the link')
  t.equal(gw.hits(), 0, 'the backend saw nothing')
})

t.test('a session bound to a person: the edge learns who is logged in, for the backend, and never the login cookie', async (t) => {
  const store = new MemoryStore()
  const registry = new Registry({ secret: SECRET, store, logins: true })
  await registry.init()
  const logins = { personOf: (request: { headers: { cookie?: string } }) => /mcpgw_test_login=alice/.test(request.headers.cookie ?? '') ? { userId: 'alice', label: 'alice' } : null }
  const app = Fastify({ logger: false, frameworkErrors, clientErrorHandler, rewriteUrl: gatewayRewriteUrl({ forwardAuth: { key: KEY } }) })
  t.teardown(async () => { await app.close(); await store.close() })
  await app.register(mcpGateway, { registry, forwardAuth: { key: KEY }, logins: logins as never })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  const backend = await startBackend(t)
  await registry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: backend.port })
  const { token } = await registry.createSession({ userId: 'alice', serverName: 'todo', shareLevel: 'owner' })
  const host = `127.0.0.1:${port}`
  const yes = await ask(port, { uri: `/mcp/${token}/`, host, headers: { cookie: 'mcpgw_test_login=alice; theirs=1' } })
  t.equal(yes.status, 200)
  t.equal(yes.headers['x-mcpgw-login-user'], 'alice', 'who is logged in, for the edge to pass on')
  t.equal(yes.headers['x-mcpgw-request-cookie'], 'theirs=1', 'the login cookie is not the backend\'s')
  const kept = await ask(port, { uri: `/mcp/${token}/`, host, headers: { cookie: 'mcpgw_test_login=alice', 'x-mcpgw-edge-cache-ms': '1000' } })
  t.same([kept.status, kept.headers['cache-control']], [200, 'no-store'], 'a yes for a person is never to be kept, even by an edge that keeps answers')
  const none = await ask(port, { uri: `/mcp/${token}/`, host, headers: { 'sec-fetch-mode': 'navigate' } })
  t.same([none.status, JSON.parse(none.body).code], [401, 'MCPGW_PROXY_LOGIN_REQUIRED'], 'no login, and no way to log in offered: a coded 401 the edge relays')
  t.equal(backend.seen.length, 0)
})

t.test('path mode: refusals are the proxy\'s own coded answers, and only the edge with the key is answered', async (t) => {
  const gw = await start(t, false)
  const host = `127.0.0.1:${gw.port}`
  const viewer = (await gw.registry.createSession({ userId: 'bob', serverName: 'todo', scopes: ['view'] })).token
  const cases: Array<[string, Parameters<typeof ask>[1], number, string]> = [
    ['no token', { uri: '/mcp/', host }, 401, 'MCPGW_PROXY_TOKEN_MISSING'],
    ['a bad token', { uri: '/mcp/abc.def.ghi/x', host }, 401, 'MCPGW_PROXY_TOKEN_MALFORMED'],
    ['a POST on a view-only session', { method: 'POST', uri: `/mcp/${viewer}/api`, host }, 403, 'MCPGW_PROXY_SCOPE_DENIED'],
    ['a method override on a view-only session', { uri: `/mcp/${viewer}/api`, host, headers: { 'x-http-method-override': 'DELETE' } }, 403, 'MCPGW_PROXY_SCOPE_DENIED'],
    ['a method override spelled with _ on a view-only session', { uri: `/mcp/${viewer}/api`, host, headers: { x_http_method: 'DELETE' } }, 403, 'MCPGW_PROXY_SCOPE_DENIED'],
    ['a Service Worker script', { uri: `/mcp/${viewer}/sw.js`, host, headers: { 'service-worker': 'script' } }, 403, 'MCPGW_PROXY_SERVICE_WORKER_REFUSED'],
    ['a WebSocket from another origin', { uri: `/mcp/${viewer}/ws`, host, headers: { upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', origin: 'https://evil.example' } }, 403, 'MCPGW_PROXY_ORIGIN_DENIED'],
    ['a path that climbs', { uri: `/mcp/${viewer}/../../admin`, host }, 400, 'MCPGW_PROXY_BAD_PATH']
  ]
  for (const [what, original, status, code] of cases) {
    const answer = await ask(gw.port, original)
    t.equal(answer.status, status, what)
    t.match(answer.body, `"code":"${code}"`, `${what}: ${code}`)
    t.equal(answer.headers['x-mcpgw-upstream'], undefined, `${what}: no upstream named`)
  }
  const redirect = await ask(gw.port, { uri: `/mcp/${viewer}`, host })
  t.equal(redirect.status, 308, 'the slash redirect is the proxy\'s own')
  t.equal(redirect.headers.location, `/mcp/${viewer}/`)

  for (const key of [null, 'wrong-key-0123456789abcdef']) {
    const answer = await ask(gw.port, { uri: `/mcp/${viewer}/api`, host }, key)
    t.equal(answer.status, 403, `key ${key === null ? 'missing' : 'wrong'}: refused`)
    t.match(answer.body, '"code":"MCPGW_PROXY_FORWARD_AUTH_DENIED"')
    t.equal(answer.headers['x-mcpgw-user-id'], undefined, 'and no identity given away')
  }
  t.equal(gw.hits(), 0, 'the backend saw nothing')
})

t.test('revocation: with the edge keeping answers, the gateway checks the store that much sooner', async (t) => {
  let now = 1_000_000
  const port = await freePort()
  const store = new MemoryStore({ now: () => now })
  const registry = new Registry({ secret: SECRET, store, now: () => now })
  await registry.init()
  const options = { forwardAuth: { key: KEY } }
  const app = Fastify({ logger: false, rewriteUrl: gatewayRewriteUrl(options) })
  t.teardown(async () => { await app.close(); await store.close() })
  await app.register(mcpGateway, { registry, now: () => now, ...options })
  await app.listen({ port, host: '127.0.0.1' })
  const backend = await startBackend(t)
  await registry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: backend.port })
  const { token, session } = await registry.createSession({ userId: 'alice', serverName: 'todo' })
  const host = `127.0.0.1:${port}`
  const withCache = { uri: `/mcp/${token}/x`, host, headers: { 'x-mcpgw-edge-cache-ms': '2000' } }
  t.equal((await ask(port, withCache)).status, 200)
  t.equal((await ask(port, { uri: `/mcp/${token}/x`, host })).status, 200, 'and cached by the gateway for plain requests')
  await registry.revoke({ sessionId: session.sessionId })
  now += 10
  t.equal((await ask(port, { uri: `/mcp/${token}/x`, host })).status, 200, 'the gateway\'s own cache may still say yes within its bound')
  const answer = await ask(port, withCache)
  t.equal(answer.status, 401, 'an answer the edge will keep 2 s is checked against the store now')
  t.match(answer.body, 'MCPGW_PROXY_TOKEN_REVOKED')
})

t.test('isolated mode: the session host\'s cookie authenticates, the link is swapped for a cookie, the cookie never reaches the backend', async (t) => {
  const gw = await start(t, true)
  const wildcard = parseWildcardUrl(gw.wildcardUrl)
  const { token, session } = await gw.registry.createSession({ userId: 'carol', serverName: 'todo' })
  const host = `${sessionHostLabel(session)}.localhost:${gw.port}`
  const link = new URL(sessionLink(wildcard, session, token))
  const swap = await ask(gw.port, { uri: link.pathname + link.search, host })
  t.equal(swap.status, 303, 'the link\'s credential is swapped, as the proxy does it')
  const cookie = String(swap.headers['set-cookie']).split(';')[0]!
  t.match(cookie, /^mcpgw_session/)
  const yes = await ask(gw.port, { uri: '/api/items', host, headers: { cookie: `${cookie}; theirs=2`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' } })
  t.equal(yes.status, 200)
  t.equal(yes.headers['x-mcpgw-upstream-path'], '/api/items')
  t.equal(yes.headers['x-mcpgw-user-id'], 'carol')
  t.equal(yes.headers['x-mcpgw-request-cookie'], 'theirs=2', 'the session cookie is the gateway\'s, never the backend\'s')
  t.equal(yes.headers['x-forwarded-prefix'], undefined, 'no prefix on a session host')
  const cross = await ask(gw.port, { uri: '/api/items', host, headers: { cookie, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' } })
  t.equal(cross.status, 403, 'another site\'s fetch is refused, as by the proxy')
  t.match(cross.body, 'MCPGW_PROXY_CROSS_SITE')
  // Another site's frame: the link's swap adds the frame ticket, which the edge is told to leave out.
  const frame = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }
  const framedSwap = await ask(gw.port, { uri: `/page${link.search}`, host, headers: frame })
  t.equal(framedSwap.status, 303)
  const ticketed = String(framedSwap.headers.location)
  t.match(ticketed, /^\/page\?mcpgw_frame=[\w-]{43}$/)
  const framed = await ask(gw.port, { uri: ticketed, host, headers: { cookie, ...frame } })
  t.equal(framed.status, 200, 'the embed the link made')
  t.equal(framed.headers['x-mcpgw-upstream-path'], '/page', 'the ticket is not the backend\'s')
  const unbound = await ask(gw.port, { uri: '/page', host, headers: { cookie, ...frame } })
  t.equal(unbound.status, 403, 'the cookie alone in another site\'s frame, as the proxy refuses it')
  t.match(unbound.body, 'MCPGW_PROXY_FRAME_UNBOUND')
  const other = await gw.registry.createSession({ userId: 'dan', serverName: 'todo' })
  const wrongHost = await ask(gw.port, { uri: '/', host: `${sessionHostLabel(other.session)}.localhost:${gw.port}`, headers: { cookie } })
  t.equal(wrongHost.status, 403, 'a cookie opens its own host and no other')
  t.match(wrongHost.body, 'MCPGW_PROXY_WRONG_SESSION_HOST')
  t.equal(gw.hits(), 0, 'the backend saw nothing')
})

t.test('the original request is read from one spelling, once: repeated or disagreeing headers are refused, not guessed at', async (t) => {
  const gw = await start(t, false)
  const host = `127.0.0.1:${gw.port}`
  const viewer = (await gw.registry.createSession({ userId: 'bob', serverName: 'todo', scopes: ['view'] })).token
  const other = (await gw.registry.createSession({ userId: 'eve', serverName: 'todo' })).token
  const raw = async (headers: Array<[string, string]>): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: gw.port, path: FORWARD_AUTH_PATH, headers: [['host', host], ['accept', 'application/json'], ['x-mcpgw-forward-auth-key', KEY], ...headers].flat() }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
  const cases: Array<[string, Array<[string, string]>]> = [
    ['a client\'s X-Forwarded-Method: GET beside the edge\'s X-Original-Method: POST', [['x-original-method', 'POST'], ['x-forwarded-method', 'GET'], ['x-forwarded-uri', `/mcp/${viewer}/api`]]],
    ['X-Forwarded-Uri twice', [['x-forwarded-uri', `/mcp/${viewer}/x`], ['x-forwarded-uri', `/mcp/${other}/x`]]],
    ['X-Original-URI and X-Forwarded-Uri naming different sessions', [['x-original-uri', `/mcp/${viewer}/x`], ['x-forwarded-uri', `/mcp/${other}/x`]]],
    ['X-Forwarded-Method twice', [['x-forwarded-method', 'GET'], ['x-forwarded-method', 'POST'], ['x-forwarded-uri', `/mcp/${viewer}/x`]]],
    ['X-Forwarded-Host twice', [['x-forwarded-uri', `/mcp/${viewer}/x`], ['x-forwarded-host', host], ['x-forwarded-host', 'elsewhere.example']]]
  ]
  for (const [what, headers] of cases) {
    const answer = await raw(headers)
    t.equal(answer.status, 403, what)
    t.match(answer.body, 'MCPGW_PROXY_FORWARD_AUTH_DENIED', `${what}: refused as a question the gateway cannot read`)
  }
  const agreeing = await raw([['x-original-method', 'GET'], ['x-forwarded-method', 'GET'], ['x-forwarded-uri', `/mcp/${viewer}/api`], ['x-original-uri', `/mcp/${viewer}/api`]])
  t.equal(agreeing.status, 200, 'both spellings saying the same thing are fine')
})

/** POSTs `body` to the ended-sessions path as an edge would. */
async function askEnded (port: number, body: string, headers: Record<string, string> = { 'content-type': 'text/plain', 'x-mcpgw-forward-auth-key': KEY }): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: FORWARD_AUTH_ENDED_PATH, method: 'POST', headers: { accept: 'application/json', ...headers } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

t.test('an edge carrying streams learns which of their sessions ended, by line number, with the refusal to give', async (t) => {
  const { port, registry } = await start(t, false)
  const live = await registry.createSession({ userId: 'alice', serverName: 'todo' })
  const revoked = await registry.createSession({ userId: 'bob', serverName: 'todo' })
  const forged = `${live.token.slice(0, -4)}AAAA`
  // Seen by the gateway before the revocation, as a stream's session is.
  t.equal((await ask(port, { uri: `/mcp/${revoked.token}/events`, host: `127.0.0.1:${port}` })).status, 200)
  await registry.revoke({ sessionId: revoked.session.sessionId })

  let answer: Answer | undefined
  await eventually(async () => {
    answer = await askEnded(port, `${live.token}\n${revoked.token}\n${forged}\n`)
    return answer.body.includes('\n2 ') && answer.body.includes('1 ')
  }, { what: 'the revocation seen (the session cache revalidates within its bound)', within: 5000 })
  t.equal(answer!.status, 200)
  t.match(answer!.headers['content-type'], /^text\/plain/)
  t.equal(answer!.headers['cache-control'], 'no-store')
  const lines = answer!.body.trimEnd().split('\n').sort()
  t.equal(lines.length, 2, 'the live session is not listed')
  t.match(JSON.parse(lines[0]!.slice(2)), { statusCode: 401, code: 'MCPGW_PROXY_TOKEN_REVOKED' }, 'line 1: revoked, with the refusal a request would get')
  t.match(JSON.parse(lines[1]!.slice(2)), { statusCode: 401, code: 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE' }, 'line 2: never a session of this gateway')
  t.notMatch(answer!.body, live.token.split('.')[2]!, 'no token comes back')

  const noKey = await askEnded(port, live.token, { 'content-type': 'text/plain' })
  t.same([noKey.status, JSON.parse(noKey.body).code], [403, 'MCPGW_PROXY_FORWARD_AUTH_DENIED'], 'only the edge with the key is answered')
  const wrongKey = await askEnded(port, live.token, { 'content-type': 'text/plain', 'x-mcpgw-forward-auth-key': `${KEY.slice(0, -1)}x` })
  t.equal(wrongKey.status, 403, 'nor with another key')
  const noKeyJson = await askEnded(port, '{}', { 'content-type': 'application/json' })
  t.equal(noKeyJson.status, 403, 'the key is checked before the body is read')
  for (const [what, body, type] of [
    ['JSON', JSON.stringify([live.token]), 'application/json'],
    ['1001 tokens', `${live.token}\n`.repeat(1001), 'text/plain']
  ] as const) {
    const bad = await askEnded(port, body, { 'content-type': type, 'x-mcpgw-forward-auth-key': KEY })
    t.same([bad.status, JSON.parse(bad.body).code], [400, 'MCPGW_PROXY_FORWARD_AUTH_BAD_LIST'], `${what}: a coded 400`)
  }
  t.equal((await askEnded(port, `${live.token}\n`.repeat(1000))).status, 200, '1000 tokens are answered')
  // A line that cannot be a token (a credential an edge read oddly) is that line's answer: the
  // others are still answered, so one odd request cannot keep an edge from ending any stream.
  const odd = await askEnded(port, `${'x'.repeat(5000)}\n\n${revoked.token}\n${live.token}\n`)
  t.equal(odd.status, 200)
  const oddLines = odd.body.trimEnd().split('\n').sort()
  t.same(oddLines.map((line) => [line.slice(0, 2), JSON.parse(line.slice(2)).code]), [['0 ', 'MCPGW_PROXY_TOKEN_MALFORMED'], ['1 ', 'MCPGW_PROXY_TOKEN_MALFORMED'], ['2 ', 'MCPGW_PROXY_TOKEN_REVOKED']], 'a line too long and an empty one: ended; the revoked session still reported; the live one not')
})

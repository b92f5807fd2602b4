import { Registry } from '@mcp-gw/registry'
import { eventually } from '@mcp-gw/testkit'
import t from 'tap'
import { startBackend, startGateway } from './helpers.js'

t.test('every kind of bad token gets 401 with its own code, and never reaches the backend', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const good = await gw.session(backend)
  const expiring = await gw.session(backend, { userId: 'bob', ttlSeconds: 1 })
  const revoked = await gw.session(backend, { userId: 'carol' })
  await gw.registry.revoke({ userId: 'carol' })
  const stranger = new Registry({ secret: 'a-different-gateway-secret-0123456789ab' })
  t.teardown(() => stranger.close())
  const foreign = (await stranger.createSession({ userId: 'alice', serverName: 'todoodles' })).token
  const [h, p] = good.split('.')
  const forgedId = gw.registry.tokens.sign({ sub: 'alice', serverName: 'todoodles', serverType: 'mcp-webui', sid: 'no-such-session', jti: 'no-such-jti-0000', scopes: ['view'], iat: 1, exp: Math.floor(Date.now() / 1000) + 60 })
  // exp is a whole second, so a 1 s session can last up to 2 s: poll until it is over.
  await eventually(async () => !(await gw.registry.validate(expiring)).valid, { within: 5000, what: 'the 1-s session expiring' })

  const cases: Array<[string, string]> = [
    ['not-a-jwt', 'MCPGW_PROXY_TOKEN_MALFORMED'],
    [`${h}.${p}.c2lnbmF0dXJl`, 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    [foreign, 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    [forgedId, 'MCPGW_PROXY_TOKEN_UNKNOWN'],
    [expiring, 'MCPGW_PROXY_TOKEN_EXPIRED'],
    [revoked, 'MCPGW_PROXY_TOKEN_REVOKED']
  ]
  for (const [token, code] of cases) {
    const res = await fetch(`${gw.origin}/mcp/${token}/api`, { method: 'POST', body: 'x' })
    t.equal(res.status, 401, code)
    const body = await res.json()
    t.equal(body.code, code)
    t.notOk(JSON.stringify(body).includes(token), 'the answer does not quote the token')
  }
  for (const path of ['/mcp/', '/mcp']) {
    const res = await fetch(`${gw.origin}${path}`)
    t.equal(res.status, 401, path)
    t.equal((await res.json()).code, 'MCPGW_PROXY_TOKEN_MISSING')
  }
  t.equal(backend.seen.length, 0, 'no refused request reached the backend')
  t.equal((await fetch(`${gw.origin}/mcp/${good}/`)).status, 200)
})

t.test('a session whose server has no live registration gets 503 with its own code', async (t) => {
  const gw = await startGateway(t)
  const token = await gw.session(null, { serverName: 'never-registered' })
  const res = await fetch(`${gw.origin}/mcp/${token}/`)
  t.equal(res.status, 503)
  t.equal((await res.json()).code, 'MCPGW_PROXY_NO_BACKEND')
})

t.test('scopes: without interact, only GET and HEAD', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const viewer = await gw.session(backend, { userId: 'viewer', scopes: ['view'] })
  t.equal((await fetch(`${gw.origin}/mcp/${viewer}/list`)).status, 200)
  t.equal((await fetch(`${gw.origin}/mcp/${viewer}/list`, { method: 'HEAD' })).status, 200)
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const res = await fetch(`${gw.origin}/mcp/${viewer}/list`, { method, body: method === 'OPTIONS' ? null : '{}' })
    t.equal(res.status, 403, method)
    t.equal((await res.json()).code, 'MCPGW_PROXY_SCOPE_DENIED')
  }
  t.equal(backend.seen.filter((r) => r.method !== 'GET' && r.method !== 'HEAD').length, 0)
  // A GET a backend framework would take for the method it names: refused, never forwarded.
  const before = backend.seen.length
  for (const name of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', 'X_HTTP_Method_Override', 'x_method-override']) {
    const res = await fetch(`${gw.origin}/mcp/${viewer}/list`, { headers: { [name]: 'DELETE' } })
    t.equal(res.status, 403, `a view session's GET with ${name}`)
    t.equal((await res.json()).code, 'MCPGW_PROXY_SCOPE_DENIED')
  }
  t.equal(backend.seen.length, before, 'none reached the backend')
  const editor = await gw.session(backend, { userId: 'editor' })
  t.equal((await fetch(`${gw.origin}/mcp/${editor}/list`, { method: 'POST', body: '{}' })).status, 200)
  t.equal((await fetch(`${gw.origin}/mcp/${editor}/list`, { method: 'POST', headers: { 'X-HTTP-Method-Override': 'DELETE' }, body: '{}' })).status, 200, 'an interact session\'s override passes')
})

t.test('errors are JSON for API clients and a small HTML page for browsers', async (t) => {
  const gw = await startGateway(t)
  const asBrowser = await fetch(`${gw.origin}/mcp/not-a-jwt/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } })
  t.equal(asBrowser.status, 401)
  t.match(asBrowser.headers.get('content-type'), /^text\/html/)
  const page = await asBrowser.text()
  t.match(page, /<h1>401 Unauthorized<\/h1>/)
  t.match(page, /MCPGW_PROXY_TOKEN_MALFORMED/)
  const asApi = await fetch(`${gw.origin}/mcp/not-a-jwt/`, { headers: { accept: 'application/json' } })
  t.match(asApi.headers.get('content-type'), /^application\/json/)
  t.same(await asApi.json(), { statusCode: 401, code: 'MCPGW_PROXY_TOKEN_MALFORMED', error: 'Unauthorized', message: 'The session token is malformed' })
})

t.test('revocation reaches a cached session within the bound, 2 s by default', async (t) => {
  let now = Math.floor(Date.now() / 1000) * 1000
  const clock = (): number => now
  const backend = await startBackend(t)
  // No revalidateMs: the default is the guarantee the README states.
  const gw = await startGateway(t, { now: clock })
  const token = await gw.session(backend)
  t.equal((await fetch(`${gw.origin}/mcp/${token}/`)).status, 200)
  await gw.registry.revoke({ userId: 'alice' })
  // Within the bound the cached session may still be served...
  now += 999
  t.equal((await fetch(`${gw.origin}/mcp/${token}/`)).status, 200)
  // ...and at the bound it no longer is, whatever happened in between.
  now += 1001
  const res = await fetch(`${gw.origin}/mcp/${token}/`)
  t.equal(res.status, 401)
  t.equal((await res.json()).code, 'MCPGW_PROXY_TOKEN_REVOKED')
})

t.test('a cached session costs no store round trip; a revalidation costs one, in the background', async (t) => {
  let now = Math.floor(Date.now() / 1000) * 1000
  const clock = (): number => now
  const backend = await startBackend(t)
  const gw = await startGateway(t, { now: clock, revalidateMs: 2000 })
  const token = await gw.session(backend)
  const calls: string[] = []
  for (const method of ['findSessionByJti', 'findInstance', 'touchSession'] as const) {
    const original = gw.store[method].bind(gw.store) as (...args: unknown[]) => Promise<unknown>
    ;(gw.store as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => { calls.push(method); return original(...args) }
  }
  for (let i = 0; i < 200; i++) t.equal((await fetch(`${gw.origin}/mcp/${token}/`)).status, 200, `request ${i}`)
  t.same(calls.filter((c) => c !== 'touchSession'), ['findSessionByJti', 'findInstance'], 'one lookup each for 200 requests')
  t.ok(calls.filter((c) => c === 'touchSession').length <= 1, 'activity written at most once')
  calls.length = 0
  now += 1500
  t.equal((await fetch(`${gw.origin}/mcp/${token}/`)).status, 200, 'served from cache while it refreshes')
  await eventually(() => calls.includes('findInstance') && calls.includes('findSessionByJti'), { within: 2000, what: 'the background refresh' })
  t.same(calls.filter((c) => c !== 'touchSession').sort(), ['findInstance', 'findSessionByJti'], 'one background refresh each')
})

t.test('the registry can come from @mcp-gw/registry registered on the host', async (t) => {
  const { mcpRegistryPlugin } = await import('@mcp-gw/registry')
  const { mcpGateway } = await import('../src/plugin.js')
  const Fastify = (await import('fastify')).default
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(mcpRegistryPlugin, { secret: 'host-registry-secret-0123456789abcdef01' })
  await app.register(mcpGateway, { prefix: '/apps' })
  const { token } = await app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  const res = await app.inject(`/apps/${token}/`)
  t.equal(res.statusCode, 503, 'authenticated, then no backend')
  t.equal(res.json().code, 'MCPGW_PROXY_NO_BACKEND')

  const bare = Fastify()
  t.teardown(() => bare.close())
  bare.register(mcpGateway, {})
  await t.rejects(async () => { await bare.ready() }, { code: 'MCPGW_PROXY_INVALID_OPTION' }, 'no registry: a loud boot error')
})

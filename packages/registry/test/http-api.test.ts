import Fastify from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import { mcpRegistryApi } from '../src/http-api.js'
import type { RegistryApiOptions } from '../src/http-api.js'
import { mcpRegistryPlugin } from '../src/plugin.js'
import { SECRET } from './helpers.js'

const KEY = 'test-api-key-0123456789'
const auth = { authorization: `Bearer ${KEY}` }
const OWNER = 'owner-secret-of-todoodles-0123456789abcdef'
/** The API key and the secret of the registrant of todoodles. */
const owner = { ...auth, 'x-mcpgw-server-secret': OWNER }

async function registerTodoodles (app: Awaited<ReturnType<typeof build>>): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/register-server', headers: owner, payload: { serverName: 'todoodles', host: '127.0.0.1', port: 12861 } })
  if (res.statusCode !== 200) throw new Error(`registration failed: ${res.statusCode}`)
}

async function build (t: Test, options: RegistryApiOptions = { apiKey: KEY }) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(mcpRegistryPlugin, { secret: SECRET })
  await app.register(mcpRegistryApi, options)
  await app.ready()
  return app
}

const ROUTES: Array<{ method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object }> = [
  { method: 'POST', url: '/register-server', payload: { serverName: 'todoodles', host: '127.0.0.1', port: 12861 } },
  { method: 'DELETE', url: '/register-server/todoodles' },
  { method: 'POST', url: '/create-session', payload: { userId: 'alice', serverName: 'todoodles' } },
  { method: 'POST', url: '/share-session', payload: { sessionId: 'AAAAAAAAAAAAAAAAAAAAAA', shareLevel: 'link' } },
  { method: 'POST', url: '/revoke-session', payload: { userId: 'alice' } },
  { method: 'GET', url: '/discover-server/todoodles' },
  { method: 'GET', url: '/servers' },
  { method: 'GET', url: '/sessions' },
  { method: 'GET', url: '/stats' }
]

t.test('every route but health and ready needs the API key', async (t) => {
  const app = await build(t)
  t.same((await app.inject('/health')).json(), { status: 'ok' })
  t.same((await app.inject('/ready')).json(), { status: 'ready' })
  for (const route of ROUTES) {
    for (const headers of [{}, { authorization: 'Bearer wrong-key-0123456789' }, { authorization: KEY }, { authorization: `Bearer ${KEY}x` }]) {
      const res = await app.inject({ ...route, headers })
      t.equal(res.statusCode, 401, `${route.method} ${route.url} ${JSON.stringify(headers)}`)
      t.equal(res.json().code, 'MCPGW_API_UNAUTHORIZED')
    }
    const ok = await app.inject({ ...route, headers: auth })
    t.not(ok.statusCode, 401, `${route.method} ${route.url} with the key`)
  }
})

t.test('a key rotation: the previous keys are accepted beside the current one, nothing else is', async (t) => {
  const PREVIOUS = 'previous-api-key-0123456789'
  const OLDER = 'older-api-key-0123456789abc'
  const app = await build(t, { apiKey: KEY, previousApiKeys: [PREVIOUS, OLDER] })
  for (const key of [KEY, PREVIOUS, OLDER]) {
    const res = await app.inject({ method: 'GET', url: '/servers', headers: { authorization: `Bearer ${key}` } })
    t.equal(res.statusCode, 200, key === KEY ? 'the current key' : 'a previous key')
  }
  for (const key of ['', `${PREVIOUS}x`, PREVIOUS.slice(0, -1), 'wrong-key-0123456789']) {
    const res = await app.inject({ method: 'GET', url: '/servers', headers: { authorization: `Bearer ${key}` } })
    t.same([res.statusCode, res.json().code], [401, 'MCPGW_API_UNAUTHORIZED'], JSON.stringify(key))
    t.notMatch(res.body, /previous-api-key|older-api-key|test-api-key/, 'no key in the answer')
  }
  const registered = await app.inject({ method: 'POST', url: '/register-server', headers: { authorization: `Bearer ${PREVIOUS}`, 'x-mcpgw-server-secret': OWNER }, payload: { serverName: 'todoodles', host: '127.0.0.1', port: 12861 } })
  t.equal(registered.statusCode, 200, 'a registrant still on the previous key registers')
  const session = await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId: 'alice', serverName: 'todoodles' } })
  t.equal(session.statusCode, 201, 'and the same registrant with the new key is the same owner')
  const plain = await build(t, { apiKey: KEY, previousApiKeys: [] })
  t.equal((await plain.inject({ method: 'GET', url: '/servers', headers: { authorization: `Bearer ${PREVIOUS}` } })).statusCode, 401, 'dropped: refused')
})

t.test('without a key, only loopback clients are answered', async (t) => {
  const app = await build(t, {})
  for (const route of ROUTES) {
    const remote = await app.inject({ ...route, remoteAddress: '203.0.113.5' })
    t.equal(remote.statusCode, 403, `${route.method} ${route.url} from afar`)
    t.equal(remote.json().code, 'MCPGW_API_LOOPBACK_ONLY')
  }
  t.equal((await app.inject({ method: 'GET', url: '/servers', remoteAddress: '127.0.0.1' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/servers', remoteAddress: '::1' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/servers', remoteAddress: '::ffff:127.0.0.1' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/health', remoteAddress: '203.0.113.5' })).statusCode, 200, 'health is public')
  const spoofed = await app.inject({ method: 'GET', url: '/servers', remoteAddress: '203.0.113.5', headers: { 'x-forwarded-for': '127.0.0.1' } })
  t.equal(spoofed.statusCode, 403, 'X-Forwarded-For is not believed without trustProxy')
})

t.test('register, heartbeat, discover, list and deregister', async (t) => {
  const app = await build(t)
  const reg = await app.inject({ method: 'POST', url: '/register-server', headers: auth, payload: { serverName: 'todoodles', host: '127.0.0.1', port: 12861, metadata: { v: 1 } } })
  t.equal(reg.statusCode, 200)
  t.match(reg.json(), { serverName: 'todoodles', host: '127.0.0.1', port: 12861, protocol: 'http', metadata: { v: 1 } })
  t.ok(Date.parse(reg.json().expiresAt) > Date.now(), 'returns its expiry')
  const secret = reg.json().secret as string
  t.match(secret, /^[\w-]{43}$/, 'a registration without a secret gets one made for it, once')
  t.equal(reg.headers['cache-control'], 'no-store')
  const beat = await app.inject({ method: 'POST', url: '/register-server', headers: { ...auth, 'x-mcpgw-server-secret': secret }, payload: { serverName: 'todoodles', host: '127.0.0.1', port: 12862 } })
  t.equal(beat.statusCode, 200, 'a heartbeat with that secret')
  t.equal(beat.json().secret, undefined, 'which is never sent again')
  t.match((await app.inject({ url: '/discover-server/todoodles', headers: auth })).json(), { port: 12862 })
  const listed = (await app.inject({ url: '/servers', headers: auth })).json()
  t.equal(listed.servers.length, 1)
  t.notOk(JSON.stringify(listed).includes('owner'), 'listings never show who owns what')
  t.equal((await app.inject({ method: 'DELETE', url: '/register-server/todoodles', headers: { ...auth, 'x-mcpgw-server-secret': secret } })).statusCode, 204)
  const gone = await app.inject({ url: '/discover-server/todoodles', headers: auth })
  t.equal(gone.statusCode, 404)
  t.equal(gone.json().code, 'MCPGW_API_NOT_FOUND')
  t.equal((await app.inject({ method: 'DELETE', url: '/register-server/todoodles', headers: { ...auth, 'x-mcpgw-server-secret': secret } })).statusCode, 404)
})

t.test("a server's instances belong to their registrants: another API client adds its own, but can neither remove, mint for, nor revoke another's", async (t) => {
  const app = await build(t)
  await registerTodoodles(app)
  const alice = await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId: 'alice', serverName: 'todoodles' } })
  t.equal(alice.statusCode, 201)
  const ownerInstance = (await app.mcpRegistry.discover('todoodles'))!.instanceId
  const mallory = { ...auth, 'x-mcpgw-server-secret': 'mallory-0123456789abcdef0123456789abcdef' }
  const added = await app.inject({ method: 'POST', url: '/register-server', headers: mallory, payload: { serverName: 'todoodles', host: '127.0.0.1', port: 6666 } })
  t.equal(added.statusCode, 200, 'a second registrant adds an instance of its own')
  t.not(added.json().instanceId, ownerInstance)
  const listed = (await app.inject({ url: '/servers', headers: auth })).json()
  t.same(listed.servers.map((s: { serverName: string, instances: Array<{ port: number, sessions: number }> }) => [s.serverName, s.instances.map((i) => [i.port, i.sessions])]),
    [['todoodles', [[12861, 1], [6666, 0]]]], '/servers: one name, its instances with their session counts')
  t.match((await app.inject({ url: '/discover-server/todoodles', headers: auth })).json(), { port: 12861, instances: [{ port: 12861 }, { port: 6666 }] })
  const del = await app.inject({ method: 'DELETE', url: `/register-server/todoodles?instanceId=${ownerInstance}`, headers: mallory })
  t.same([del.statusCode, del.json().code], [403, 'MCPGW_REGISTRY_NOT_SERVER_OWNER'], "deregister another's instance")
  const mint = await app.inject({ method: 'POST', url: '/create-session', headers: mallory, payload: { userId: 'alice', serverName: 'todoodles', instanceId: ownerInstance } })
  t.same([mint.statusCode, mint.json().code], [403, 'MCPGW_REGISTRY_NOT_SERVER_OWNER'], "mint for another's instance")
  t.notOk(mint.body.includes(alice.json().token), "alice's token is not handed out")
  const own = await app.inject({ method: 'POST', url: '/create-session', headers: mallory, payload: { userId: 'alice', serverName: 'todoodles' } })
  t.equal(own.statusCode, 201, 'its own instance mints its own session')
  t.not(own.json().token, alice.json().token)
  const revoke = await app.inject({ method: 'POST', url: '/revoke-session', headers: mallory, payload: { userId: 'alice', instanceId: ownerInstance } })
  t.same([revoke.statusCode, revoke.json().code], [403, 'MCPGW_REGISTRY_NOT_SERVER_OWNER'], "revoke another's instance's sessions")
  const listOther = await app.inject({ url: `/sessions?instanceId=${ownerInstance}`, headers: mallory })
  t.same([listOther.statusCode, listOther.json().code], [403, 'MCPGW_REGISTRY_NOT_SERVER_OWNER'], "list another's instance's sessions")
  const revokeOwn = await app.inject({ method: 'POST', url: '/revoke-session', headers: mallory, payload: { userId: 'alice', instanceId: added.json().instanceId } })
  t.same(revokeOwn.json(), { revoked: 1 }, 'its own, yes')
  t.equal((await app.mcpRegistry.validate(alice.json().token)).valid, true, "the owner's session lives on")
  for (const headers of [{ ...auth, 'x-mcpgw-server-secret': 'nobody-0123456789abcdef0123456789abcdef' }, auth]) {
    const none = await app.inject({ method: 'POST', url: '/create-session', headers, payload: { userId: 'alice', serverName: 'todoodles' } })
    t.same([none.statusCode, none.json().code], [403, 'MCPGW_REGISTRY_NOT_SERVER_OWNER'], 'a caller with no instance of the name')
  }
  t.equal((await app.mcpRegistry.instances('todoodles')).length, 2)
  const nobody = await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId: 'alice', serverName: 'ghost' } })
  t.same([nobody.statusCode, nobody.json().code], [404, 'MCPGW_REGISTRY_SERVER_NOT_REGISTERED'], 'no session for a server nobody holds')
})

t.test('create-session answers 201 with the URL, then 200 with the same session', async (t) => {
  const app = await build(t, { apiKey: KEY, publicUrl: 'https://apps.example.com/', proxyPrefix: '/mcp' })
  await registerTodoodles(app)
  const first = await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId: 'alice', serverName: 'todoodles', ttlSeconds: 600, scopes: ['view'] } })
  t.equal(first.statusCode, 201)
  const body = first.json()
  t.match(body, { sessionKey: 'alice:todoodles:mcp-webui', created: true })
  t.equal(body.url, `https://apps.example.com/mcp/${body.token}/`)
  t.equal(first.headers['cache-control'], 'no-store')
  const again = await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId: 'alice', serverName: 'todoodles' } })
  t.equal(again.statusCode, 200)
  t.equal(again.json().sessionId, body.sessionId)
  const listed = (await app.inject({ url: '/sessions?userId=alice', headers: auth })).json()
  t.equal(listed.sessions.length, 1)
  t.notOk(JSON.stringify(listed).includes(body.token), 'listings never include tokens')
  t.same((await app.inject({ method: 'POST', url: '/revoke-session', headers: auth, payload: { sessionKey: 'alice:todoodles:mcp-webui' } })).json(), { revoked: 1 })
  t.equal((await app.mcpRegistry.validate(body.token)).valid, false)
})

t.test('without publicUrl, session URLs use the request origin', async (t) => {
  const app = await build(t)
  await registerTodoodles(app)
  const res = await app.inject({ method: 'POST', url: '/create-session', headers: { ...owner, host: 'gw.local:3082' }, payload: { userId: 'bob', serverName: 'todoodles' } })
  t.match(res.json().url, /^http:\/\/gw\.local:3082\/mcp\/[\w-]+\.[\w-]+\.[\w-]+\/$/)
})

t.test('stats count by server, and name users only when asked', async (t) => {
  const app = await build(t)
  await registerTodoodles(app)
  for (const userId of ['alice', 'bob']) await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId, serverName: 'todoodles' } })
  const plain = (await app.inject({ url: '/stats', headers: auth })).json()
  const instanceId = (await app.mcpRegistry.discover('todoodles'))!.instanceId
  t.same(plain, { sessions: { live: 2, byServer: { todoodles: 2 }, byInstance: { [instanceId]: 2 } }, servers: { live: 1 } })
  t.notOk(JSON.stringify(plain).includes('alice'))
  t.same((await app.inject({ url: '/stats?byUser=true', headers: auth })).json().sessions.byUser, { alice: 1, bob: 1 })
})

t.test('bad bodies get 400 with a code, and nothing is stored', async (t) => {
  const app = await build(t)
  await registerTodoodles(app)
  const bad: Array<[string, object]> = [
    ['/register-server', {}],
    ['/register-server', { serverName: 'x', host: '127.0.0.1', port: 0 }],
    ['/register-server', { serverName: 'x', host: '127.0.0.1', port: 70000 }],
    ['/register-server', { serverName: 'bad name', host: '127.0.0.1', port: 80 }],
    ['/register-server', { serverName: 'x', host: '127.0.0.1', port: 80, protocol: 'ftp' }],
    ['/register-server', { serverName: 'x', host: 'not a host', port: 80 }],
    ['/create-session', { serverName: 'todoodles' }],
    ['/create-session', { userId: '', serverName: 'todoodles' }],
    ['/create-session', { userId: { $ne: null }, serverName: 'todoodles' }],
    ['/create-session', { userId: 'a', serverName: 'todoodles', ttlSeconds: 0 }],
    ['/create-session', { userId: 'a', serverName: 'todoodles', ttlSeconds: 99999999 }],
    ['/create-session', { userId: 'a', serverName: 'todoodles', scopes: ['Bad Scope'] }],
    ['/revoke-session', {}],
    ['/revoke-session', { userId: 'a', sessionId: 'b' }],
    ['/revoke-session', { userId: { $ne: null } }]
  ]
  for (const [url, payload] of bad) {
    const res = await app.inject({ method: 'POST', url, headers: owner, payload })
    t.equal(res.statusCode, 400, `${url} ${JSON.stringify(payload)}`)
    t.match(res.json().code, /^MCPGW_(API_INVALID_REQUEST|REGISTRY_INVALID_ARGUMENT)$/)
  }
  const notJson = await app.inject({ method: 'POST', url: '/create-session', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"userId":' })
  t.equal(notJson.statusCode, 400)
  t.same((await app.inject({ url: '/stats', headers: auth })).json().sessions.live, 0)
  t.same((await app.inject({ url: '/servers', headers: auth })).json().servers.map((s: { serverName: string }) => s.serverName), ['todoodles'])
  // Unknown properties are dropped by Fastify's validator, never stored.
  const extra = await app.inject({ method: 'POST', url: '/register-server', headers: auth, payload: { serverName: 'x', host: '127.0.0.1', port: 80, $where: 'x', extra: 1 } })
  t.equal(extra.statusCode, 200)
  t.same(Object.keys(extra.json()).sort(), ['expiresAt', 'host', 'instanceId', 'lastHeartbeatAt', 'linkOrigin', 'metadata', 'port', 'proofKey', 'protocol', 'registeredAt', 'secret', 'serverName'])
})

t.test('registrations outside the allowed backends get 403 with a code', async (t) => {
  const app = await build(t)
  for (const host of ['169.254.169.254', '2852039166', '0xA9FEA9FE', '::ffff:a9fe:a9fe', 'fe80::1', '8.8.8.8', 'example.com']) {
    const res = await app.inject({ method: 'POST', url: '/register-server', headers: auth, payload: { serverName: 'evil', host, port: 80 } })
    t.equal(res.statusCode, 403, host)
    t.equal(res.json().code, 'MCPGW_REGISTRY_BACKEND_NOT_ALLOWED')
  }
})

t.test('bad API options fail the boot', async (t) => {
  for (const options of [{ apiKey: 'short' }, { publicUrl: 'not a url' }, { publicUrl: 'ftp://x' }, { apiKey: KEY, previousApiKeys: ['short'] }, { previousApiKeys: ['previous-api-key-0123456789'] }, { apiKey: KEY, previousApiKeys: 'previous-api-key-0123456789' as unknown as string[] }]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(mcpRegistryPlugin, { secret: SECRET })
    app.register(mcpRegistryApi, options)
    await t.rejects(async () => { await app.ready() }, { code: 'MCPGW_REGISTRY_INVALID_OPTION' }, JSON.stringify(options))
  }
})

t.test('with a wildcard URL, create-session links a host of the session\'s own, the credential in the query', async (t) => {
  const app = await build(t, { apiKey: KEY, wildcardUrl: 'https://*.apps.example.com', publicUrl: 'https://gw.example.com' })
  await registerTodoodles(app)
  const alice = (await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId: 'alice', serverName: 'todoodles' } })).json()
  const bob = (await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId: 'bob', serverName: 'todoodles' } })).json()
  const again = (await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId: 'alice', serverName: 'todoodles' } })).json()
  const host = (url: string): string => new URL(url).host
  t.match(alice.url, /^https:\/\/[a-z2-7]{26}\.apps\.example\.com\/\?mcpgw_link=[\w-]+\.[\w-]+\.[\w-]+$/)
  t.equal(new URL(alice.url).searchParams.get('mcpgw_link'), alice.token)
  t.not(host(alice.url), host(bob.url), 'two sessions never share a host')
  t.equal(host(again.url), host(alice.url), 'the same live session keeps its host')
  t.notOk(host(alice.url).includes('alice') || host(alice.url).includes('todoodles'), 'the host names neither user nor server')
})

t.test('the API answers no web page whose origin it was not given', async (t) => {
  const app = await build(t, { apiKey: KEY, allowedOrigins: ['https://console.example'] })
  const refused: Array<Record<string, string>> = [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'cross-site' }]
  for (const headers of refused) {
    const res = await app.inject({ url: '/servers', headers: { ...auth, ...headers } })
    t.same([res.statusCode, res.json().code], [403, 'MCPGW_API_BROWSER_FORBIDDEN'], JSON.stringify(headers))
  }
  t.equal((await app.inject({ url: '/servers', headers: { ...auth, origin: 'https://console.example', 'sec-fetch-site': 'cross-site' } })).statusCode, 200, 'an allowed console')
  t.equal((await app.inject({ url: '/servers', headers: { ...auth, 'sec-fetch-site': 'none' } })).statusCode, 200, 'a typed-in address')
})

t.test('register-server says where links point: the public origin, the request origin, or the wildcard origin', async (t) => {
  for (const [options, headers, expected] of [
    [{ apiKey: KEY, publicUrl: 'https://apps.example.com/base/' }, {}, 'https://apps.example.com'],
    [{ apiKey: KEY }, { host: 'gw.local:3082' }, 'http://gw.local:3082'],
    [{ apiKey: KEY, wildcardUrl: 'https://*.apps.example.com', publicUrl: 'https://gw.example.com' }, {}, 'https://*.apps.example.com'],
    [{ apiKey: KEY, wildcardUrl: 'http://*.localhost:3082' }, {}, 'http://*.localhost:3082']
  ] as const) {
    const app = await build(t, options)
    const res = await app.inject({ method: 'POST', url: '/register-server', headers: { ...owner, ...headers }, payload: { serverName: 'todoodles', host: '127.0.0.1', port: 12861 } })
    t.equal(res.json().linkOrigin, expected, JSON.stringify(options))
  }
})

t.test('register-server gives the registrant its proof key: derived from the gateway secret, not from anything stored, never cached', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'POST', url: '/register-server', headers: owner, payload: { serverName: 'todoodles', host: '127.0.0.1', port: 12861 } })
  const { proofKey } = res.json() as { proofKey: string }
  t.match(proofKey, /^[0-9a-f]{64}$/)
  t.equal(res.headers['cache-control'], 'no-store')
  const stored = await app.mcpRegistry.discover('todoodles')
  t.not(proofKey, stored!.ownerHash, 'not the owner hash the store keeps')
  t.equal(proofKey, app.mcpRegistry.tokens.proofKey(stored!.ownerHash!), 'what the proxy signs with')
  t.notOk(JSON.stringify(await app.mcpRegistry.listServers()).includes(proofKey), 'nor anywhere in what the store returns')
})

t.test('share-session: the registrant shares a live session as a link of its own, lists it under the session, revokes it', async (t) => {
  const app = await build(t, { apiKey: KEY, publicUrl: 'https://gw.example' })
  await registerTodoodles(app)
  const own = (await app.inject({ method: 'POST', url: '/create-session', headers: owner, payload: { userId: 'alice', serverName: 'todoodles' } })).json()
  const other = { ...auth, 'x-mcpgw-server-secret': 'someone-else-secret-0123456789abcdefghij' }
  const refused = await app.inject({ method: 'POST', url: '/share-session', headers: other, payload: { sessionId: own.sessionId, shareLevel: 'link' } })
  t.equal(refused.statusCode, 404, 'another secret shares nothing, and learns nothing of the session')
  t.equal(refused.json().code, 'MCPGW_API_NOT_FOUND')
  t.equal((await app.inject({ method: 'POST', url: '/share-session', headers: auth, payload: { sessionId: own.sessionId, shareLevel: 'link' } })).statusCode, 404, 'nor does the API key alone')
  const noLogin = await app.inject({ method: 'POST', url: '/share-session', headers: owner, payload: { sessionId: own.sessionId, person: 'bob' } })
  t.equal(noLogin.statusCode, 400, 'a person, on a gateway without a login')
  t.equal(noLogin.json().code, 'MCPGW_REGISTRY_INVALID_ARGUMENT')
  const res = await app.inject({ method: 'POST', url: '/share-session', headers: owner, payload: { sessionId: own.sessionId, shareLevel: 'link' } })
  t.equal(res.statusCode, 201)
  t.equal(res.headers['cache-control'], 'no-store')
  const share = res.json()
  t.match(share, { sharedFrom: own.sessionId, shareLevel: 'link', created: true, expiresAt: own.expiresAt })
  t.equal(share.url, `https://gw.example/mcp/${share.token}/`, 'a link of its own')
  t.not(share.token, own.token)
  t.equal((await app.inject({ method: 'POST', url: '/share-session', headers: owner, payload: { sessionId: share.sessionId, shareLevel: 'link' } })).json().code, 'MCPGW_REGISTRY_INVALID_ARGUMENT', 'a share is not shared again')
  const gone = await app.inject({ method: 'POST', url: '/share-session', headers: owner, payload: { sessionId: 'AAAAAAAAAAAAAAAAAAAAAA', shareLevel: 'link' } })
  t.equal(gone.statusCode, 404)
  t.equal(gone.json().code, 'MCPGW_API_NOT_FOUND')
  const bad = await app.inject({ method: 'POST', url: '/share-session', headers: owner, payload: { sessionId: own.sessionId, shareLevel: 'everyone' } })
  t.equal(bad.statusCode, 400, 'a level that is none')
  const listed = (await app.inject({ method: 'GET', url: `/sessions?sharedFrom=${own.sessionId}`, headers: auth })).json().sessions
  t.same(listed.map((s: { sessionId: string, sharedFrom: string }) => [s.sessionId, s.sharedFrom]), [[share.sessionId, own.sessionId]], 'listed under the session, without its token')
  t.notOk(JSON.stringify(listed).includes(share.token))
  t.same((await app.inject({ method: 'POST', url: '/revoke-session', headers: owner, payload: { sessionId: share.sessionId } })).json(), { revoked: 1 })
  t.same((await app.inject({ method: 'GET', url: `/sessions?sharedFrom=${own.sessionId}`, headers: auth })).json().sessions, [], 'revoked: gone from the list')
})

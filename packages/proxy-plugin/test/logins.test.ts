import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { validateOptions } from '../src/options.js'
import type { LoggedInPerson, LoginSource } from '../src/logins.js'
import { MemoryAuditSink } from '@mcp-gw/registry'
import type { RegistryOptions } from '@mcp-gw/registry'
import { rawRequest, startBackend, startGateway, startIsolatedGateway, upgradeRequest } from './helpers.js'

/**
 * The plugin's side of links bound to a person: whatever login the host app has (the gateway's
 * OIDC login is tested end to end in apps/gateway), the proxy asks it who is logged in on every
 * request, page, script fetch and WebSocket upgrade alike, for sessions whose share level is
 * owner or authenticated. Here the host's login is a cookie naming a person, as a LoginSource.
 */
const PEOPLE: Record<string, LoggedInPerson> = {
  alice: { userId: 'alice', label: 'alice@example.test', groups: ['staff'], email: 'alice@example.test' },
  bob: { userId: 'bob', label: 'bob@example.test', groups: ['staff', 'ops'], email: 'bob@Corp.Example' },
  // Logged in, with an address the login does not vouch for, and no groups.
  carl: { userId: 'carl', label: 'carl@corp.example' }
}

function testLogins (asked: string[]): LoginSource {
  return {
    personOf: (request: FastifyRequest) => PEOPLE[/(?:^|;\s*)mcpgw_test_login=(\w+)/.exec(request.headers.cookie ?? '')?.[1] ?? ''] ?? null,
    askLogin: (_request, reply, returnTo) => {
      asked.push(returnTo)
      reply.code(302).header('location', '/login-here').send()
    },
    signOutPath: '/log-out'
  }
}

const NAVIGATE = { 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'none', 'sec-fetch-dest': 'document', accept: 'text/html' }

t.test('an owner session opens for its person only; an authenticated one for anyone logged in; a link for whoever holds it', async (t) => {
  const asked: string[] = []
  const backend = await startBackend(t)
  const gw = await startGateway(t, { logins: testLogins(asked), registryOptions: { logins: true } })
  const owner = await gw.session(backend, { userId: 'alice', shareLevel: 'owner' })
  const anyone = await gw.session(backend, { userId: 'carol', serverName: 'notes', shareLevel: 'authenticated' })
  const link = await gw.session(backend, { userId: 'dave', serverName: 'board' })

  // No login: a page's link is first swapped for its cookie (so the login never carries the
  // link), then the page is sent to log in, told to come back to the URL without the token; a
  // script's request is refused with a code. The backend hears of neither.
  const swap = await rawRequest(gw.port, `/mcp/${owner}/todos?list=1`, { headers: NAVIGATE })
  t.equal(swap.status, 303, 'the link swapped before any login')
  const at = String(swap.headers.location)
  const ownerCookie = String(swap.headers['set-cookie']).split(';')[0]!
  t.match(at, /^\/mcp\/s\/[\w-]{22}\/todos\?list=1$/)
  const page = await rawRequest(gw.port, at, { headers: { ...NAVIGATE, cookie: ownerCookie } })
  t.equal(page.status, 302)
  t.equal(page.headers.location, '/login-here')
  t.same(asked, [at], 'the login is told where to come back to: no token in it')
  // (A frame's or a script's request that takes HTML: the coded page, not a login.)
  const loginPage = await rawRequest(gw.port, `/mcp/${owner}/`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin' } })
  t.match(loginPage.body, /MCPGW_PROXY_LOGIN_REQUIRED/)
  t.notMatch(loginPage.body, /no longer valid/, 'a link that needs a login is not called invalid')
  const fetched = await rawRequest(gw.port, `/mcp/${owner}/api/todos`, { headers: { accept: 'application/json', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin' } })
  t.equal(fetched.status, 401)
  t.equal(JSON.parse(fetched.body).code, 'MCPGW_PROXY_LOGIN_REQUIRED')
  const posted = await rawRequest(gw.port, `/mcp/${owner}/api/todos`, { method: 'POST', headers: NAVIGATE })
  t.equal(posted.status, 401, 'a POST is never sent to log in (its body would be lost): refused')
  t.equal(backend.seen.length, 0)

  // Logged in as someone else: 403, offering to log out (naming no one: in path mode any MCP
  // server's page shares this origin and could read it).
  const asBob = { ...NAVIGATE, cookie: `mcpgw_test_login=bob; ${ownerCookie}` }
  const refused = await rawRequest(gw.port, at, { headers: asBob })
  t.equal(refused.status, 403)
  t.match(refused.body, /You are logged in as someone other than the person this link was made for/)
  t.notMatch(refused.body, /bob/, 'nothing about who is logged in')
  t.match(refused.body, /<a href="\/log-out">Log out<\/a>/)
  t.match(refused.body, /MCPGW_PROXY_NOT_YOUR_SESSION/)
  t.notMatch(refused.body, /alice/, 'nothing about whose session it is')
  const refusedJson = await rawRequest(gw.port, `/mcp/${owner}/api`, { headers: { cookie: 'mcpgw_test_login=bob', accept: 'application/json' } })
  t.equal(JSON.parse(refusedJson.body).code, 'MCPGW_PROXY_NOT_YOUR_SESSION')
  t.equal(backend.seen.length, 0)

  // Its person: through, and the backend is told who is logged in, without the login cookie.
  const asAlice = await rawRequest(gw.port, `/mcp/${owner}/whoami`, { headers: { cookie: 'mcpgw_test_login=alice; theme=dark', accept: 'application/json' } })
  t.equal(asAlice.status, 200)
  const seen = JSON.parse(asAlice.body) as { headers: Record<string, string> }
  t.equal(seen.headers['x-mcpgw-login-user'], 'alice')
  t.equal(seen.headers['x-mcpgw-user-id'], 'alice')
  t.equal(seen.headers.cookie, 'theme=dark', 'the host\'s login cookie (mcpgw_*) never reaches a backend')

  // authenticated: anyone logged in, the backend told who.
  const bobOnNotes = await rawRequest(gw.port, `/mcp/${anyone}/`, { headers: { cookie: 'mcpgw_test_login=bob', accept: 'application/json' } })
  t.equal(bobOnNotes.status, 200)
  t.equal((JSON.parse(bobOnNotes.body) as { headers: Record<string, string> }).headers['x-mcpgw-login-user'], 'bob')
  t.equal((await rawRequest(gw.port, `/mcp/${anyone}/`, { headers: { accept: 'application/json' } })).status, 401, 'and no one who is not')

  // link: as before, and a client cannot claim a login the gateway did not see.
  const bearer = await rawRequest(gw.port, `/mcp/${link}/`, { headers: { accept: 'application/json', 'x-mcpgw-login-user': 'alice' } })
  t.equal(bearer.status, 200)
  t.equal((JSON.parse(bearer.body) as { headers: Record<string, string> }).headers['x-mcpgw-login-user'], undefined)
})

t.test('a share with one person opens for that person only, view-only, and ends with its revocation or its session', async (t) => {
  const backend = await startBackend(t)
  const trail = new MemoryAuditSink()
  const gw = await startGateway(t, { logins: testLogins([]), registryOptions: { logins: true, audit: trail } as RegistryOptions, revalidateMs: 0 })
  await gw.session(backend, { userId: 'alice', shareLevel: 'owner' })
  const own = (await gw.registry.listSessions({ userId: 'alice' }))[0]!
  const share = await gw.registry.shareSession({ sessionId: own.sessionId, person: 'bob' })
  const as = (who: string): Record<string, string> => ({ cookie: `mcpgw_test_login=${who}`, accept: 'application/json' })
  const alice = await rawRequest(gw.port, `/mcp/${share.token}/`, { headers: as('alice') })
  t.equal(alice.status, 403, 'not even the sharer: the share is bob\'s')
  t.equal(JSON.parse(alice.body).code, 'MCPGW_PROXY_NOT_YOUR_SESSION')
  t.equal((await rawRequest(gw.port, `/mcp/${share.token}/`, { headers: { accept: 'application/json' } })).status, 401, 'no one logged in: log in first')
  const bob = await rawRequest(gw.port, `/mcp/${share.token}/`, { headers: as('bob') })
  t.equal(bob.status, 200)
  const seen = (JSON.parse(bob.body) as { headers: Record<string, string> }).headers
  t.same([seen['x-mcpgw-user-id'], seen['x-mcpgw-login-user'], seen['x-mcpgw-scopes'], seen['x-mcpgw-session-id']], ['alice', 'bob', 'view', share.session.sessionId], 'alice\'s UI, bob watching, view-only, as the share')
  t.match(trail.events.find((e) => e.event === 'session.opened' && e.sessionId === share.session.sessionId), { userId: 'alice', sharedFrom: own.sessionId, loginUser: 'bob' }, 'the trail says who opened the share, and of which session')
  const posted = await rawRequest(gw.port, `/mcp/${share.token}/api/todos`, { method: 'POST', headers: as('bob') })
  t.equal(posted.status, 403, 'view-only: no writes')
  t.equal(JSON.parse(posted.body).code, 'MCPGW_PROXY_SCOPE_DENIED')
  const overridden = await rawRequest(gw.port, `/mcp/${share.token}/api/todos`, { headers: { ...as('bob'), 'x-http-method-override': 'DELETE' } })
  t.equal(overridden.status, 403, 'nor a GET that says it is a DELETE')
  const ws = await upgradeRequest(gw.port, `/mcp/${share.token}/ws`, { headers: { cookie: 'mcpgw_test_login=bob' } })
  t.equal(ws.status, 101, 'its WebSocket opens (what it sends is the backend\'s to refuse: X-Mcpgw-Scopes says view)')
  ws.socket?.destroy()

  await gw.registry.revoke({ sessionId: share.session.sessionId })
  t.equal((await rawRequest(gw.port, `/mcp/${share.token}/`, { headers: as('bob') })).status, 401, 'revoked: closed to bob')
  const again = await gw.registry.shareSession({ sessionId: own.sessionId, person: 'bob' })
  t.equal((await rawRequest(gw.port, `/mcp/${again.token}/`, { headers: as('bob') })).status, 200)
  await gw.registry.revoke({ sessionId: own.sessionId })
  const after = await rawRequest(gw.port, `/mcp/${again.token}/`, { headers: as('bob') })
  t.equal(after.status, 401, 'the shared session revoked: its shares with it')
  t.equal(JSON.parse(after.body).code, 'MCPGW_PROXY_TOKEN_REVOKED')
})

t.test('an authenticated session limited to groups or email domains opens for the people in them only', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { logins: testLogins([]), registryOptions: { logins: true } })
  await gw.registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port })
  const make = async (audience: { groups?: string[], emailDomains?: string[] }, serverType: string): Promise<string> =>
    (await gw.registry.createSession({ userId: 'dave', serverName: 'todoodles', serverType, shareLevel: 'authenticated', ...audience })).token
  const ops = await make({ groups: ['ops'] }, 'ops')
  const corp = await make({ emailDomains: ['corp.example'] }, 'corp')
  const either = await make({ groups: ['staff'], emailDomains: ['corp.example'] }, 'either')
  const status = async (token: string, who: string): Promise<number | string> => {
    const res = await rawRequest(gw.port, `/mcp/${token}/`, { headers: { cookie: `mcpgw_test_login=${who}`, accept: 'application/json' } })
    return res.status === 200 ? 200 : JSON.parse(res.body).code
  }
  t.same([await status(ops, 'bob'), await status(ops, 'alice'), await status(ops, 'carl')], [200, 'MCPGW_PROXY_NOT_YOUR_SESSION', 'MCPGW_PROXY_NOT_YOUR_SESSION'], 'a group: its members')
  t.same([await status(corp, 'bob'), await status(corp, 'alice'), await status(corp, 'carl')], [200, 'MCPGW_PROXY_NOT_YOUR_SESSION', 'MCPGW_PROXY_NOT_YOUR_SESSION'],
    'an email domain: a verified address there (any case), never a label that only looks like one')
  t.same([await status(either, 'alice'), await status(either, 'bob'), await status(either, 'carl')], [200, 200, 'MCPGW_PROXY_NOT_YOUR_SESSION'], 'groups or domains: either')
  t.equal(await status(ops, 'nobody'), 'MCPGW_PROXY_LOGIN_REQUIRED', 'no login: log in first')
})

t.test('a WebSocket of an owner session opens for its person only', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { logins: testLogins([]), registryOptions: { logins: true } })
  const owner = await gw.session(backend, { userId: 'alice', shareLevel: 'owner' })
  const none = await upgradeRequest(gw.port, `/mcp/${owner}/ws`, { headers: { accept: 'application/json' } })
  t.equal(none.status, 401)
  t.equal(JSON.parse(none.body).code, 'MCPGW_PROXY_LOGIN_REQUIRED')
  const bob = await upgradeRequest(gw.port, `/mcp/${owner}/ws`, { headers: { cookie: 'mcpgw_test_login=bob', accept: 'application/json' } })
  t.equal(bob.status, 403)
  t.equal(JSON.parse(bob.body).code, 'MCPGW_PROXY_NOT_YOUR_SESSION')
  t.equal(backend.seen.length, 0, 'neither reached the backend')
  const alice = await upgradeRequest(gw.port, `/mcp/${owner}/ws`, { headers: { cookie: 'mcpgw_test_login=alice' } })
  t.equal(alice.status, 101)
  alice.socket?.destroy()
})

t.test('logins are checked as options: a LoginSource, and path mode only for now', async (t) => {
  t.throws(() => validateOptions({ logins: {} as LoginSource }), { code: 'MCPGW_PROXY_INVALID_OPTION', message: /personOf/ })
  t.throws(() => validateOptions({ logins: { personOf: () => null, signOutPath: '//elsewhere.example/log-out' } }), { code: 'MCPGW_PROXY_INVALID_OPTION' })
  t.throws(() => validateOptions({ logins: { personOf: () => null, signOutPath: 'javascript:alert(1)' } }), { code: 'MCPGW_PROXY_INVALID_OPTION' })
  t.ok(validateOptions({ logins: { personOf: () => null, signOutPath: 'https://gw.example.com/_mcpgw/logout' } }).logins, 'a URL on the host app\'s host (a session host\'s paths are the backend\'s)')
  t.throws(() => validateOptions({ logins: { personOf: () => null }, isolation: { wildcardUrl: 'http://*.localhost:3082' } }), { code: 'MCPGW_PROXY_INVALID_OPTION', message: /path mode only/ })
  t.ok(validateOptions({ logins: { personOf: () => null, onSessionHosts: true }, isolation: { wildcardUrl: 'http://*.localhost:3082' } }).logins, 'a login every host sees (an edge\'s) works in isolated mode')
  t.equal(validateOptions({}).logins, null)
})

/** A login an edge vouches for on every host: a header naming the person, checked asynchronously (as a signed assertion is). */
function edgeLogins (): LoginSource {
  return {
    personOf: async (request: FastifyRequest) => {
      await new Promise((resolve) => setImmediate(resolve))
      const name = request.headers['x-test-edge-user']
      return typeof name === 'string' && PEOPLE[name] !== undefined ? PEOPLE[name] : null
    },
    onSessionHosts: true
  }
}

t.test('a login checked asynchronously, in path mode and on session hosts', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { logins: edgeLogins(), registryOptions: { logins: true } })
  const owner = await gw.session(backend, { userId: 'alice', shareLevel: 'owner' })
  const answer = async (who?: string): Promise<[number, string | undefined]> => {
    const res = await rawRequest(gw.port, `/mcp/${owner}/`, { headers: { accept: 'application/json', ...(who !== undefined && { 'x-test-edge-user': who }) } })
    return [res.status, (JSON.parse(res.body) as { code?: string }).code]
  }
  t.same(await answer(), [401, 'MCPGW_PROXY_LOGIN_REQUIRED'], 'no login, no page to send it to: 401')
  t.same(await answer('bob'), [403, 'MCPGW_PROXY_NOT_YOUR_SESSION'])
  t.equal((await answer('alice'))[0], 200)
  t.equal((await upgradeRequest(gw.port, `/mcp/${owner}/ws`, { headers: { 'x-test-edge-user': 'bob', accept: 'application/json' } })).status, 403)

  const iso = await startIsolatedGateway(t, { logins: edgeLogins() })
  const isoBackend = await startBackend(t)
  const { host, link } = await iso.session(isoBackend, { userId: 'alice', shareLevel: 'owner' })
  const linkPath = new URL(link).pathname + new URL(link).search
  const onHost = async (path: string, headers: Record<string, string>): Promise<{ status: number, headers: Record<string, unknown>, code?: string }> => {
    const res = await rawRequest(iso.port, path, { headers: { host, accept: 'application/json', ...headers } })
    return { status: res.status, headers: res.headers, ...(res.body.startsWith('{') && { code: (JSON.parse(res.body) as { code?: string }).code }) }
  }
  // The link is swapped for the host's cookie first, whoever holds it (the swap reaches no backend,
  // and the login that follows never carries the link); the person is checked from then on.
  const swapped = await onHost(linkPath, {})
  t.equal(swapped.status, 303, 'the link swapped for the host\'s cookie')
  const cookie = String((swapped.headers['set-cookie'] as string[])[0]).split(';')[0]!
  t.match(await onHost('/', { cookie }), { status: 401, code: 'MCPGW_PROXY_LOGIN_REQUIRED' }, 'then no one without a login')
  t.equal((await onHost('/', { cookie, 'x-test-edge-user': 'alice' })).status, 200)
  t.match(await onHost('/', { cookie, 'x-test-edge-user': 'bob' }), { status: 403, code: 'MCPGW_PROXY_NOT_YOUR_SESSION' }, 'the cookie carried to another person\'s browser opens nothing')
  t.equal(isoBackend.seen.filter((s) => s.headers['x-mcpgw-login-user'] !== 'alice').length, 0, 'the backend saw alice only')
})

t.test('a backend never sets a login cookie of the gateway, in any spelling a browser reads', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.setHeader('set-cookie', ['mcpgw_login=planted; Path=/', '=mcpgw_login=planted-nameless; Path=/', ' =  mcpgw_login_state=planted', 'MCPGW_LOGIN=planted', '__Host-mcpgw_login=planted; Path=/; Secure', 'theme=dark; Path=/'])
    res.end('ok')
  })
  const gw = await startGateway(t)
  const link = await gw.session(backend)
  const res = await rawRequest(gw.port, `/mcp/${link}/`)
  t.equal(res.status, 200)
  t.same([res.headers['set-cookie']].flat().map((c) => String(c).split(';')[0]), ['theme=dark'], 'only the backend\'s own cookie reaches the browser')
})

import { eventually } from '@mcp-gw/testkit'
import t from 'tap'
import { WebSocket } from 'ws'
import { rawExchange, rawRequest, startBackend, startIsolatedGateway, upgradeRequest } from './helpers.js'

/**
 * Isolated mode over real sockets: each session on `<label>.localhost:<port>`,
 * the link's credential swapped for a host-only cookie, `/` the backend's `/`,
 * and every wrong host, cookie or link refused with a code before any backend.
 */
const json = (body: string): { code?: string, url?: string, headers?: Record<string, string> } => JSON.parse(body)

t.test('the link sets a host-only HttpOnly cookie and sends the browser to the same URL without the credential', async (t) => {
  const backend = await startBackend(t)
  const gw = await startIsolatedGateway(t)
  const { host, token } = await gw.session(backend)
  const first = await rawRequest(gw.port, `/todos?view=all&mcpgw_link=${token}`, { headers: { host } })
  t.equal(first.status, 303)
  t.equal(first.headers.location, '/todos?view=all', 'the same URL, the credential gone')
  t.equal(first.headers['referrer-policy'], 'no-referrer')
  t.equal(first.headers['cache-control'], 'no-store')
  const cookie = first.headers['set-cookie']![0]!
  t.match(cookie, new RegExp(`^mcpgw_session=${token.replaceAll('.', '\\.')}; Max-Age=\\d+; Path=/; HttpOnly; SameSite=Lax$`), 'HttpOnly, SameSite=Lax, no Domain')
  t.equal(backend.seen.length, 0, 'the backend saw nothing of it')

  const page = await rawRequest(gw.port, '/static/app.css?v=1', { headers: { host, cookie: `theme=dark; mcpgw_session=${token}` } })
  t.equal(page.status, 200)
  const seen = json(page.body)
  t.equal(seen.url, '/static/app.css?v=1', "`/` is the backend's `/`: absolute paths need no trick")
  t.equal(seen.headers!.cookie, 'theme=dark', "the gateway's cookie never reaches the backend")
  t.equal(seen.headers!['x-forwarded-host'], host)
  t.equal(seen.headers!['x-forwarded-prefix'], undefined)
  t.equal(seen.headers!['x-mcpgw-user-id'], 'alice')
})

t.test("on a session host a backend's headers are its own, except what reaches other hosts", async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(302, {
      location: `http://127.0.0.1:${backend.port}/login`,
      'set-cookie': ['sid=1; Path=/app; HttpOnly', 'wide=2; Domain=localhost; Path=/', 'mcpgw_session=forged; Path=/'],
      'clear-site-data': '"cookies"'
    })
    res.end()
  })
  const gw = await startIsolatedGateway(t)
  const { host, token } = await gw.session(backend)
  const res = await rawRequest(gw.port, '/', { headers: { host, cookie: `mcpgw_session=${token}` } })
  t.equal(res.headers.location, '/login', "a Location naming the backend's address becomes a path")
  t.same(res.headers['set-cookie'], ['sid=1; Path=/app; HttpOnly', 'wide=2; Path=/'], "Path kept, Domain dropped, the gateway's cookie name refused")
  t.equal(res.headers['clear-site-data'], undefined, 'Clear-Site-Data would clear every session host\'s cookies')
})

t.test('wrong hosts, cookies and links: a coded 4xx, and nothing reaches a backend', async (t) => {
  const backend = await startBackend(t)
  const other = await startBackend(t)
  const gw = await startIsolatedGateway(t)
  const mine = await gw.session(backend)
  const theirs = await gw.session(other, { userId: 'bob', serverName: 'elsewhere' })
  const revoked = await gw.session(backend, { userId: 'carol' })
  await gw.registry.revoke({ sessionId: revoked.sessionId })
  const cases: Array<[string, string, Record<string, string>, number, string]> = [
    ['an unknown label', '/', { host: `${'a'.repeat(26)}.localhost:${gw.port}`, cookie: `mcpgw_session=${mine.token}` }, 403, 'MCPGW_PROXY_WRONG_SESSION_HOST'],
    ['a label that is not ours', '/', { host: `evil.localhost:${gw.port}`, cookie: `mcpgw_session=${mine.token}` }, 404, 'MCPGW_PROXY_UNKNOWN_SESSION_HOST'],
    ['a nested name', '/', { host: `x.${mine.host}`, cookie: `mcpgw_session=${mine.token}` }, 404, 'MCPGW_PROXY_UNKNOWN_SESSION_HOST'],
    ['a port that does not match', '/', { host: mine.host.replace(`:${gw.port}`, ':1'), cookie: `mcpgw_session=${mine.token}` }, 404, 'MCPGW_PROXY_UNKNOWN_SESSION_HOST'],
    ['no cookie', '/', { host: mine.host }, 401, 'MCPGW_PROXY_TOKEN_MISSING'],
    ["another session's cookie", '/', { host: mine.host, cookie: `mcpgw_session=${theirs.token}` }, 403, 'MCPGW_PROXY_WRONG_SESSION_HOST'],
    ["another session's link", `/?mcpgw_link=${theirs.token}`, { host: mine.host }, 403, 'MCPGW_PROXY_WRONG_SESSION_HOST'],
    ['a revoked session', '/', { host: revoked.host, cookie: `mcpgw_session=${revoked.token}` }, 401, 'MCPGW_PROXY_TOKEN_REVOKED'],
    ['a malformed cookie (passed over: no credential)', '/', { host: mine.host, cookie: 'mcpgw_session=%00%01' }, 401, 'MCPGW_PROXY_TOKEN_MISSING'],
    ['dot segments', '/a/%2e%2e/%2e%2e/x', { host: mine.host, cookie: `mcpgw_session=${mine.token}` }, 400, 'MCPGW_PROXY_BAD_PATH'],
    ['a path-mode token on a session host', `/mcp/${mine.token}/`, { host: mine.host }, 401, 'MCPGW_PROXY_TOKEN_MISSING']
  ]
  for (const [label, path, headers, status, code] of cases) {
    const res = await rawRequest(gw.port, path, { headers })
    t.same([res.status, json(res.body).code], [status, code], label)
  }
  t.same([backend.seen, other.seen], [[], []], 'no backend saw any of them')
  t.equal(await rawExchange(gw.port, `GET / HTTP/1.1\r\nHost: ${mine.host}\r\nHost: ${theirs.host}\r\nCookie: mcpgw_session=${mine.token}\r\nConnection: close\r\n\r\n`), 400, 'two Host headers')

  const redirect = await rawRequest(gw.port, `//evil.example/?mcpgw_link=${mine.token}`, { headers: { host: mine.host } })
  t.same([redirect.status, redirect.headers.location], [303, '/evil.example/'], 'the swap never redirects off the host (no //host Location)')

  const browser = await rawRequest(gw.port, '/', { headers: { host: mine.host, accept: 'text/html' } })
  t.equal(browser.status, 401)
  t.match(browser.headers['content-type'], /^text\/html/, 'a browser gets a page')
  t.match(browser.body, /ask the MCP server for a new link/i)
})

t.test('a cookie planted from another session host neither blocks the link nor shadows the real cookie', async (t) => {
  const backend = await startBackend(t)
  const gw = await startIsolatedGateway(t)
  const mine = await gw.session(backend)
  const theirs = await gw.session(backend, { userId: 'bob' })
  // What a page on another session host can plant with `document.cookie = '...; Domain=<parent>'`.
  const junk = ['x!', '%zz', '"abc"', '', 'a', 'b', 'c', 'd', 'e', theirs.token, theirs.token, theirs.token, theirs.token]
  const many = await rawRequest(gw.port, '/page', { headers: { host: mine.host, cookie: [...junk.map((v) => `mcpgw_session=${v}`), `mcpgw_session=${mine.token}`].join('; ') } })
  t.equal(json(many.body).url, '/page', 'malformed, empty, repeated and foreign values before the real one are passed over')
  for (const planted of ['tossed', theirs.token, 'x!', '%zz']) {
    const swap = await rawRequest(gw.port, `/?mcpgw_link=${mine.token}`, { headers: { host: mine.host, cookie: `mcpgw_session=${planted}` } })
    t.equal(swap.status, 303, 'the link wins over a planted cookie')
    for (const cookie of [`mcpgw_session=${planted}; mcpgw_session=${mine.token}`, `mcpgw_session=${mine.token}; mcpgw_session=${planted}`]) {
      const page = await rawRequest(gw.port, '/page', { headers: { host: mine.host, cookie } })
      t.equal(json(page.body).url, '/page', 'the cookie that opens this host is the one used, in either order')
    }
  }
})

t.test('a session issued for one registrant is never served by the next holder of the server name', async (t) => {
  const first = await startBackend(t)
  const next = await startBackend(t)
  const gw = await startIsolatedGateway(t)
  const ownerA = 'registrant-a-secret-0123456789abcdef0123'
  const ownerB = 'registrant-b-secret-0123456789abcdef0123'
  await gw.registry.registerServer({ serverName: 'a', host: '127.0.0.1', port: first.port, secret: ownerA })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'a', serverSecret: ownerA })
  t.equal((await rawRequest(gw.port, `/mcp/${token}/x`)).status, 200)
  await gw.registry.deregisterServer('a', ownerA)
  await gw.registry.registerServer({ serverName: 'a', host: '127.0.0.1', port: next.port, secret: ownerB })
  const res = await rawRequest(gw.port, `/mcp/${token}/x`)
  t.same([res.status, json(res.body).code], [503, 'MCPGW_PROXY_NO_BACKEND'], "A's session is not B's")
  t.equal(next.seen.length, 0, "B's backend never saw alice")
  const reissued = await gw.registry.createSession({ userId: 'alice', serverName: 'a', serverSecret: ownerB })
  t.not(reissued.token, token, "B asking for alice's session gets a new one, never A's token")
  const still = await rawRequest(gw.port, `/mcp/${token}/x`)
  t.same([still.status, json(still.body).code], [503, 'MCPGW_PROXY_NO_BACKEND'], "A's token still opens nothing of B's after B minted alice a session")
  t.equal(next.seen.filter((r) => r.headers['x-mcpgw-session-id'] !== reissued.session.sessionId).length, 0, "B's backend only ever sees B's own sessions")
  t.equal((await rawRequest(gw.port, `/mcp/${reissued.token}/x`)).status, 200)
})

t.test('nothing but the session answers on a session host: not the host app, not the path-mode proxy', async (t) => {
  const backend = await startBackend(t)
  const gw = await startIsolatedGateway(t)
  const { host, token } = await gw.session(backend)
  const res = await rawRequest(gw.port, '/create-session', { headers: { host } })
  t.same([res.status, json(res.body).code], [401, 'MCPGW_PROXY_TOKEN_MISSING'], "the host app's /create-session is not served there")
  const proxied = await rawRequest(gw.port, '/create-session', { headers: { host, cookie: `mcpgw_session=${token}` } })
  t.equal(json(proxied.body).url, '/create-session', "with the cookie, it is the backend's own path")
  t.equal((await rawRequest(gw.port, '/create-session', { headers: { host: `127.0.0.1:${gw.port}` } })).body, 'the host app\'s own route', 'elsewhere the host app keeps its routes')
  const direct = await rawRequest(gw.port, '/.mcpgw-session-host/x', { headers: { host: `127.0.0.1:${gw.port}`, cookie: `mcpgw_session=${token}` } })
  t.same([direct.status, json(direct.body).code], [404, 'MCPGW_PROXY_UNKNOWN_SESSION_HOST'], 'the session-host routes answer on session hosts only')
})

t.test('WebSockets on a session host: the cookie, the host\'s own Origin, and revocation within the bound', async (t) => {
  const backend = await startBackend(t)
  const gw = await startIsolatedGateway(t, { revalidateMs: 500 })
  const mine = await gw.session(backend)
  const theirs = await gw.session(backend, { userId: 'bob' })
  const origin = `http://${mine.host}`
  const refused = await upgradeRequest(gw.port, '/ws', { headers: { host: mine.host, origin } })
  t.same([refused.status, json(refused.body).code], [401, 'MCPGW_PROXY_TOKEN_MISSING'], 'no cookie, no upgrade')
  const foreign = await upgradeRequest(gw.port, '/ws', { headers: { host: mine.host, origin: `http://${theirs.host}`, cookie: `mcpgw_session=${mine.token}` } })
  t.same([foreign.status, json(foreign.body).code], [403, 'MCPGW_PROXY_ORIGIN_DENIED'], "another session host's page may not open it")

  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/ws`, { headers: { host: mine.host, cookie: `mcpgw_session=${mine.token}` }, origin })
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const echoed = new Promise<string>((resolve) => ws.once('message', (data) => resolve(data.toString())))
  ws.send('hello')
  t.equal(await echoed, 'hello')
  const upgrade = backend.seen.find((r) => r.method === 'UPGRADE')!
  t.equal(upgrade.url, '/ws')
  t.equal(upgrade.headers.cookie, undefined, "the gateway's cookie stays with the gateway")

  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  const revokedAt = Date.now()
  await gw.registry.revoke({ userId: 'alice' })
  t.equal(await closed, 1008)
  t.ok(Date.now() - revokedAt < 2500, `closed ${Date.now() - revokedAt} ms after the revocation`)
  await eventually(() => gw.app.mcpGateway.tunnels.size === 0, { what: 'no tunnel left' })
})

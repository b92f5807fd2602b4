import t from 'tap'
import { rawRequest, startBackend, startGateway, startIsolatedGateway, upgradeRequest } from './helpers.js'

/**
 * Fetch Metadata, read before anything reaches a backend: no Service Worker
 * script is ever served (a worker would answer after its session is revoked),
 * and on a session host, where a cookie is the credential, nothing another site
 * or another session host started gets in, but a navigation.
 */
const WS_HEADERS = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }

t.test('a Service Worker script is refused in path mode and on a session host, and the backend never sees the request', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const res = await rawRequest(gw.port, `/mcp/${token}/sw.js`, { headers: { 'service-worker': 'script', 'sec-fetch-dest': 'serviceworker' } })
  t.same([res.status, JSON.parse(res.body).code], [403, 'MCPGW_PROXY_SERVICE_WORKER_REFUSED'])
  for (const spelling of ['Script', 'script, script', ' SCRIPT ']) {
    t.equal((await rawRequest(gw.port, `/mcp/${token}/sw.js`, { headers: { 'service-worker': spelling } })).status, 403, `Service-Worker: ${JSON.stringify(spelling)}`)
  }
  const upgrade = await upgradeRequest(gw.port, `/mcp/${token}/ws`, { headers: { ...WS_HEADERS, 'service-worker': 'script' } })
  t.equal(upgrade.status, 403, 'an upgrade carrying it too')
  t.equal((await rawRequest(gw.port, `/mcp/${token}/sw.js`)).status, 200, 'the same file as a script is fine')

  const isolated = await startIsolatedGateway(t)
  const { host, token: hostToken } = await isolated.session(backend)
  const onHost = await rawRequest(isolated.port, '/sw.js', { headers: { host, cookie: `mcpgw_session=${hostToken}`, 'service-worker': 'script' } })
  t.same([onHost.status, JSON.parse(onHost.body).code], [403, 'MCPGW_PROXY_SERVICE_WORKER_REFUSED'])
  t.same(backend.seen.map((r) => r.url), ['/sw.js'], 'only the plain request reached the backend')
})

t.test('on a session host, requests other sites or other session hosts start are refused; navigations and its own requests pass', async (t) => {
  const backend = await startBackend(t)
  const gw = await startIsolatedGateway(t)
  const { host, token } = await gw.session(backend)
  const cookie = `mcpgw_session=${token}`
  const cases: Array<[string, string, Record<string, string>, number]> = [
    ['GET', '/', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }, 200],
    ['GET', '/', { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }, 200],
    ['GET', '/api', { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' }, 200],
    ['GET', '/api', {}, 200],
    ['GET', '/api', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' }, 403],
    ['POST', '/api', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'empty' }, 403],
    ['POST', '/form', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }, 403],
    ['GET', '/img', { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' }, 403],
    // Spellings no browser sends, read at their strictest.
    ['POST', '/api', { 'sec-fetch-site': 'Cross-Site', 'sec-fetch-mode': 'cors' }, 403],
    ['POST', '/api', { 'sec-fetch-site': 'cross-site, cross-site', 'sec-fetch-mode': 'cors' }, 403],
    ['GET', '/api', { 'sec-fetch-site': 'same-origin, cross-site', 'sec-fetch-mode': 'cors' }, 403],
    ['GET', '/', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate, cors' }, 403]
  ]
  for (const [method, path, headers, status] of cases) {
    const before = backend.seen.length
    const res = await rawRequest(gw.port, path, { method, headers: { host, cookie, ...headers } })
    t.equal(res.status, status, `${method} ${path} ${JSON.stringify(headers)}`)
    if (status === 403) {
      t.equal(JSON.parse(res.body).code, 'MCPGW_PROXY_CROSS_SITE')
      t.equal(backend.seen.length, before, 'nothing reached the backend')
    }
  }
  // Plain http: no Fetch Metadata, only the Origin of an unsafe request says whose page sent it.
  for (const [method, origin, status] of [['POST', 'http://other.localhost', 403], ['POST', 'null', 403], ['POST', `http://${host}`, 200], ['PUT', `http://${host.toUpperCase()}`, 200], ['GET', 'http://other.localhost', 200]] as const) {
    const res = await rawRequest(gw.port, '/api', { method, headers: { host, cookie, origin } })
    t.equal(res.status, status, `${method} with Origin ${origin} and no Fetch Metadata`)
  }
  const ws = await upgradeRequest(gw.port, '/ws', { headers: { ...WS_HEADERS, host, cookie, origin: `http://${host}`, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'websocket' } })
  t.equal(ws.status, 403, 'a WebSocket another session host opens')
  const own = await upgradeRequest(gw.port, '/ws', { headers: { ...WS_HEADERS, host, cookie, origin: `http://${host}`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'websocket' } })
  own.socket?.destroy()
  t.equal(own.status, 101, "and its own page's WebSocket opens")
  for (const extra of [{ 'sec-fetch-site': 'Cross-Site', 'sec-fetch-mode': 'websocket' }, { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' }]) {
    const odd = await upgradeRequest(gw.port, '/ws', { headers: { ...WS_HEADERS, host, cookie, ...extra } })
    odd.socket?.destroy()
    t.equal(odd.status, 403, `an upgrade with ${JSON.stringify(extra)} and no Origin: never a navigation`)
  }
})

t.test("mcp-gw's own cookies never reach a backend, in path mode either", async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  await rawRequest(gw.port, `/mcp/${token}/`, { headers: { cookie: 'theme=dark; mcpgw_direct_12366=directtoken; mcpgw_session=x; __Host-mcpgw=y; other=1' } })
  t.equal(backend.seen[0]!.headers.cookie, 'theme=dark; other=1', "a direct link's cookie (sent to every port of the host) and the session cookies are dropped")
})

t.test('identity headers spelled with underscores (read as dashes by CGI, WSGI, PHP) never reach a backend, on requests and upgrades', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const forged = { x_mcpgw_user_id: 'mallory', 'x-mcpgw_registrant': '1.forged', x_forwarded_for: '1.2.3.4' }
  await rawRequest(gw.port, `/mcp/${token}/`, { headers: forged })
  const upgrade = await upgradeRequest(gw.port, `/mcp/${token}/ws`, { headers: { ...WS_HEADERS, ...forged } })
  upgrade.socket?.destroy()
  t.equal(backend.seen.length, 2)
  for (const seen of backend.seen) {
    t.same(Object.keys(seen.headers).filter((name) => name.includes('_')), [], `${seen.url}: no underscore spelling passed`)
    t.equal(seen.headers['x-mcpgw-user-id'], 'alice')
  }
})

import { createServer, request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eventually, freePort, SPOOFED_REQUEST_HEADERS, startFerretDb, within } from '@mcp-gw/testkit'
import { sessionHostLabel } from '@mcp-gw/registry'
import t from 'tap'
import type { Test } from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import type { EdgeLoginConfig, GatewayConfig } from '../src/config.js'
import { API_KEY, startGateway } from './helpers.js'
import { behindEdge, cookieScope, EDGE_KEY, forgedWebSocketStatus, frameAncestorsThroughEdge, frontProxyPolicyThroughEdge, isolatedModeThroughEdge, nginxEdge, pathLinkSwapThroughEdge, REGISTRANT_SECRET, ROTATION_SECRETS, rotationProofsThroughEdge, send, startEdgeBackend, tokenQueryThroughEdge } from './edge-helpers.js'
import type { BehindEdge } from './edge-helpers.js'

/** An event stream through the edge: how many events came, and when it ended (resolves then). */
function openStream (port: number, path: string, headers: Record<string, string> = {}): { events: () => number, ended: Promise<number> } {
  let events = 0
  const ended = new Promise<number>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      res.on('data', (c: Buffer) => { events += c.toString().split('\n\n').length - 1 })
      res.on('close', () => resolve(Date.now()))
    })
    req.on('error', () => resolve(Date.now()))
    req.end()
  })
  return { events: () => events, ended }
}

/**
 * Through a pooled edge: an event stream and a long-poll nginx carries on a session (under
 * `base`, authenticated by `headers`) end when it is revoked; a stream on a live session does not.
 */
async function streamsEndOnRevocation (t: Test, port: number, gw: BehindEdge['gw'], backend: BehindEdge['backend'], base: string, headers: Record<string, string>, sessionId: string): Promise<void> {
  const carried = gw.app.mcpGateway.metrics.responses['2xx']
  const ws = new WebSocket(`ws://127.0.0.1:${port}${base}/ws`, { headers })
  await within(5000, 'the WebSocket open through nginx', new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) }))
  const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())))
  ws.send('ping')
  t.equal(await within(5000, 'the echo', echoed), 'ping', 'a WebSocket on the session works')
  t.equal(gw.app.mcpGateway.tunnels.size, 0, 'carried by nginx, not the gateway\'s tunnel')
  const wsClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  const stream = openStream(port, `${base}/forever`, headers)
  await eventually(() => stream.events() >= 3, { what: 'events through nginx', within: 5000 })
  const poll = send(port, `${base}/poll?ms=4000`, headers)
  await eventually(() => backend.openStreams() === 1 && backend.seen.some((s) => s.url.startsWith('/poll')), { what: 'the long-poll at the backend', within: 5000 })
  // Several of the edge's questions about open sessions (every 0.5 s) go by: a live session's stream flows on.
  const flowing = stream.events()
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.ok(stream.events() >= flowing + 5, `a live session's stream flows on (${stream.events() - flowing} events in 1.5 s)`)
  t.equal(gw.app.mcpGateway.metrics.responses['2xx'], carried, 'both carried by nginx, not the gateway')

  await gw.app.mcpRegistry.revoke({ sessionId })
  const revokedAt = Date.now()
  const eventsAtRevocation = stream.events()
  const ended = await within(6000, 'the stream ended by nginx', stream.ended)
  const endedAfter = ended - revokedAt
  // The gateway's bound (2.25 s), the edge's question every 0.5 s, the stream's next event (0.1 s).
  t.ok(endedAfter <= 3000, `the event stream ended ${endedAfter} ms after the revocation (${stream.events() - eventsAtRevocation} events in between)`)
  t.equal(await within(1000, 'the WebSocket closed', wsClosed), 1008, `the WebSocket closed as the gateway closes it (1008), ${Date.now() - revokedAt} ms after the revocation`)
  const polled = await poll
  t.same([polled.status, JSON.parse(polled.body).code], [401, 'MCPGW_PROXY_TOKEN_REVOKED'], 'the long-poll\'s answer, come after the revocation, is the gateway\'s refusal')
  t.notMatch(polled.body, 'polled', 'and nothing of the backend\'s')
  await eventually(() => backend.openStreams() === 0, { what: 'the backend\'s stream closed too', within: 3000 })
  const again = await send(port, `${base}/api`, headers)
  t.same([again.status, JSON.parse(again.body).code], [401, 'MCPGW_PROXY_TOKEN_REVOKED'], 'and a new request is refused')
}

const PATH_MODE_FILES = ['nginx/path-mode.conf', 'nginx/path-mode-pooled.conf']

// Every path-mode test runs against both shipped path-mode configurations: the plain one and
// the one that pools backend connections with the Lua module.
for (const file of PATH_MODE_FILES) {
  t.test(file, async (t) => {
    async function pathMode (t: Test, overrides: Partial<GatewayConfig> = {}): Promise<BehindEdge> {
      return await behindEdge(t, overrides, async (gatewayPort) => await nginxEdge(t, file, gatewayPort, await freePort()))
    }

    t.test('nginx + forward-auth, path mode: nginx carries the bytes, the gateway only answers who may go where', async (t) => {
      const { port, gw, backend } = await pathMode(t)
      const { token, session } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
      const metrics = gw.app.mcpGateway.metrics

      const res = await send(port, `/mcp/${token}/api/items?x=1`, { cookie: 'theirs=1; mcpgw_direct_9=x', 'x-mcpgw-registrant-rotation': 'spoofed', 'x-mcpgw-user-id': 'mallory', 'x-mcpgw-scopes': 'admin' })
      t.equal(res.status, 200)
      const seen = JSON.parse(res.body) as { url: string, headers: Record<string, string> }
      t.equal(seen.url, '/api/items?x=1', 'the backend gets its own path')
      t.equal(seen.headers.host, `127.0.0.1:${backend.port}`)
      t.equal(seen.headers['x-mcpgw-user-id'], 'alice', 'the gateway\'s identity, never the client\'s')
      t.equal(seen.headers['x-mcpgw-scopes'], 'view,interact')
      t.equal(seen.headers['x-mcpgw-session-id'], session.sessionId)
      t.equal(seen.headers['x-mcpgw-instance-id'], session.instanceId, 'and the instance the session belongs to')
      t.match(seen.headers['x-mcpgw-registrant'], /^\d+\.[0-9a-f]{64}$/, 'with the registrant proof')
      t.equal(seen.headers['x-mcpgw-registrant-rotation'], undefined, 'no rotation proofs from a gateway with one secret, nor a client\'s own')
      t.equal(seen.headers['x-forwarded-prefix'], `/mcp/${token}`)
      t.equal(seen.headers.cookie, 'theirs=1', 'the gateway\'s cookies stay with the gateway')
      t.equal(metrics.responses['2xx'], 0, 'not one byte through Node: no response proxied by the gateway')
      if (file.includes('pooled')) {
        // The gateway's rule goes by prefix; nginx's proxy_set_header only name by name: Lua drops the rest.
        const claims = { 'x-mcpgw-anything': 'x', 'x-forwarded-ssl': 'on', 'x-forwarded-server': 'evil', 'x-original-host': 'admin', 'x-auth-request-access-token': 'forged' }
        const claimed = JSON.parse((await send(port, `/mcp/${token}/api`, claims)).body) as { headers: Record<string, string> }
        t.same(Object.keys(claims).filter((name) => claimed.headers[name] !== undefined), [], 'no header a client may not claim reaches the backend, whatever its name after the prefix')
      }
      t.ok(metrics.forwardAuthAnswers.allowed >= 1, 'it answered the edge\'s question')

      await tokenQueryThroughEdge(t, port, token, {})

      // Event streams pass event by event.
      const events = await send(port, `/mcp/${token}/events`, { accept: 'text/event-stream' })
      t.equal(events.body, 'data: 1\n\ndata: 2\n\ndata: 3\n\n')
    })

    t.test('nginx + forward-auth, path mode: auth before any backend byte, for HTTP and WebSocket; refusals are the gateway\'s coded answers', async (t) => {
      const { port, gw, backend } = await pathMode(t)
      const viewer = (await gw.app.mcpRegistry.createSession({ userId: 'bob', serverName: 'todo', scopes: ['view'], serverSecret: REGISTRANT_SECRET })).token
      const cases: Array<[string, string, Record<string, string>, string, number, string]> = [
        ['no token', '/mcp/', {}, 'GET', 401, 'MCPGW_PROXY_TOKEN_MISSING'],
        ['a forged token', '/mcp/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl/api', {}, 'GET', 401, 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
        ['a POST on a view-only session', `/mcp/${viewer}/api`, { 'content-type': 'application/json' }, 'POST', 403, 'MCPGW_PROXY_SCOPE_DENIED'],
        ['a Service Worker script', `/mcp/${viewer}/sw.js`, { 'service-worker': 'script' }, 'GET', 403, 'MCPGW_PROXY_SERVICE_WORKER_REFUSED']
      ]
      for (const [what, path, headers, method, status, code] of cases) {
        const res = await send(port, path, headers, method, method === 'POST' ? '{"a":1}' : undefined)
        t.equal(res.status, status, what)
        t.match(res.body, `"code":"${code}"`, `${what}: the gateway's code`)
      }
      // A WebSocket with a forged token is refused before the backend hears of it.
      const refused = await forgedWebSocketStatus(port)
      t.equal(refused, 401, 'a WebSocket with a forged token: 401')
      t.equal(backend.seen.length, 0, 'the backend saw nothing of any of it')
    })

    t.test('nginx + forward-auth, path mode: what a hostile backend sends a browser is policed by nginx as by the gateway', async (t) => {
      const { port, gw } = await pathMode(t)
      const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
      const res = await send(port, `/mcp/${token}/hostile`)
      t.equal(res.body, 'hostile')
      t.equal(res.headers['service-worker-allowed'], undefined, 'no Service-Worker-Allowed')
      t.equal(res.headers['clear-site-data'], undefined, 'no Clear-Site-Data')
      t.equal(res.headers['referrer-policy'], 'same-origin', 'the token never leaves in a Referer')
      const csp = [res.headers['content-security-policy']].flat().join(', ')
      t.match(csp, "frame-ancestors 'self'")
      t.match(csp, "frame-ancestors 'none'", 'the backend\'s X-Frame-Options: DENY kept as frame-ancestors')
      const cookies = [res.headers['set-cookie']].flat() as string[]
      const paths = cookies.map((c) => cookieScope(c).path?.replace(token, '<token>'))
      const widened = cookies.filter((c) => cookieScope(c).domain !== null).map((c) => c.split('=')[0])
      if (file.includes('pooled')) {
        t.same(paths, ['/mcp/<token>/', '/mcp/<token>/settings', '/mcp/<token>/', '/mcp/<token>/'], 'cookies live under the session\'s prefix, in any spelling')
        t.same(widened, [], 'and no Domain widens them')
      } else {
        // The known gap docs/edge/README.md states: proxy_cookie_path and proxy_cookie_domain do
        // not read an attribute name followed by a tab, which browsers trim.
        t.same(paths, ['/mcp/<token>/', '/mcp/<token>/settings', '/mcp/<token>/', '/'], 'cookies live under the session\'s prefix, but for `Path<TAB>=/`, which plain nginx cannot read')
        t.same(widened, ['tabbed'], 'and only `Domain<TAB>=` widens one')
      }
      const own = ([(await send(port, `/mcp/${token}/own-cookies`)).headers['set-cookie']].flat().filter((c) => c !== undefined) as string[]).map((c) => c.split('=')[0]!.trim() || c.split('=')[1]!)
      if (file.includes('pooled')) {
        t.same(own, ['fine'], 'a backend\'s cookie under the gateway\'s own names (mcpgw_s, in any case or spacing) never reaches the browser')
      } else {
        // Plain nginx cannot drop one cookie of several; under the session's path, none reaches the label's (docs/edge).
        t.ok(own.includes('mcpgw_session'), 'plain nginx passes a backend\'s cookie under the gateway\'s own name, scoped under the session\'s path (the gap docs/edge states)')
      }
      const redirect = await send(port, `/mcp/${token}/redirect`)
      t.equal(new URL(String(redirect.headers.location), `http://127.0.0.1:${port}`).href, `http://127.0.0.1:${port}/mcp/${token}/next`, 'a redirect stays inside the session')
    })

    t.test('nginx + forward-auth, path mode: a page load swaps the link for a label and a cookie, which nginx then carries', async (t) => {
      const { port, gw, backend } = await pathMode(t)
      const { token, session } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
      const { base, cookie } = await pathLinkSwapThroughEdge(t, port, {}, token, gw.app.mcpGateway)
      if (file.includes('pooled')) await streamsEndOnRevocation(t, port, gw, backend, base, { cookie }, session.sessionId)
    })

    t.test('nginx + forward-auth, path mode: the gateway\'s frame-ancestors, not a copy in the snippet', async (t) => {
      await frameAncestorsThroughEdge(t, pathMode, true)
    })

    t.test('nginx + forward-auth, path mode: the policy corpus gets the gateway\'s verdicts (X-Accel-Redirect, spoofed identity headers)', async (t) => {
      const { port, gw, backend } = await pathMode(t)
      const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
      await frontProxyPolicyThroughEdge(t, port, `/mcp/${token}`, {}, backend)
    })

    t.test('nginx + forward-auth: the answer cache cannot be primed into a yes for a request the gateway refuses', async (t) => {
      const { port, gw, backend } = await pathMode(t)
      const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
      // Two requests whose key fields, joined with `|`, read the same: a Service Worker script
      // (refused) and a request whose last field merely ends in "script" (a yes, kept 1 s).
      const primed = await send(port, `/mcp/${token}/sw.js`, { 'service-worker': '|script' })
      t.equal(primed.status, 200, 'the priming request is a yes')
      const before = backend.seen.length
      const worker = await send(port, `/mcp/${token}/sw.js`, { cookie: '|', 'service-worker': 'script' })
      t.same([worker.status, JSON.parse(worker.body).code], [403, 'MCPGW_PROXY_SERVICE_WORKER_REFUSED'], 'the worker script is still refused')
      t.equal(backend.seen.length, before, 'and never reached the backend')

      // A view session's GET is a yes; the same GET with a method override is refused, and a
      // kept yes must not answer it (frameworks would take it for the method it names).
      const viewer = (await gw.app.mcpRegistry.createSession({ userId: 'bob', serverName: 'todo', scopes: ['view'], serverSecret: REGISTRANT_SECRET })).token
      t.equal((await send(port, `/mcp/${viewer}/api/items`)).status, 200, 'a view session\'s GET is a yes (kept)')
      const seenBefore = backend.seen.length
      for (const name of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override']) {
        const overridden = await send(port, `/mcp/${viewer}/api/items`, { [name]: 'DELETE' })
        t.same([overridden.status, JSON.parse(overridden.body).code], [403, 'MCPGW_PROXY_SCOPE_DENIED'], `the same GET with ${name}: DELETE is refused, not answered from the cache`)
      }
      t.equal(backend.seen.length, seenBefore, 'and never reached the backend')

      // A header sent twice: nginx 1.22's $http_ variables see the first value, the gateway every
      // one. The pooled configuration keys on every value; the plain ones cannot (no browser
      // repeats these headers; docs/edge/README.md says so).
      if (!file.includes('pooled')) return
      const harmless = await send(port, `/mcp/${token}/worker.js`, { 'service-worker': 'x' })
      t.equal(harmless.status, 200, 'a request with a harmless Service-Worker value is a yes')
      const twice = await send(port, `/mcp/${token}/worker.js`, { 'service-worker': ['x', 'script'] })
      t.same([twice.status, JSON.parse(twice.body).code], [403, 'MCPGW_PROXY_SERVICE_WORKER_REFUSED'], 'the same with `Service-Worker: script` beside it is refused, not answered from the cache')
      t.equal(backend.seen.length, seenBefore + 1, 'and never reached the backend')
      // More headers than the key reads (100): the one that decides comes after them.
      t.equal((await send(port, `/mcp/${token}/worker.js`)).status, 200, 'a plain request for it is a yes (kept)')
      const padding = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-pad-${i}`, '1']))
      // (Host first: Node would add it last, where a truncated read would miss it and change the key.)
      const padded = await send(port, `/mcp/${token}/worker.js`, { host: `127.0.0.1:${port}`, ...padding, 'service-worker': 'script' })
      t.same([padded.status, JSON.parse(padded.body).code], [403, 'MCPGW_PROXY_SERVICE_WORKER_REFUSED'], '`Service-Worker: script` after 100 other headers is refused too')
      t.equal(backend.seen.length, seenBefore + 2, 'and never reached the backend')
    })

    t.test('nginx + forward-auth: revocation bites within 2.5 s for new requests and for an open WebSocket, whatever nginx keeps', async (t) => {
      const { port, gw } = await pathMode(t)
      const { token, session } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
      // Warm the edge's cache with a yes.
      t.equal((await send(port, `/mcp/${token}/api`)).status, 200)
      t.equal((await send(port, `/mcp/${token}/api`)).status, 200)
      const ws = new WebSocket(`ws://127.0.0.1:${port}/mcp/${token}/ws`)
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
      const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())))
      ws.send('ping')
      t.equal(await echoed, 'ping', 'the WebSocket works through nginx')
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))

      await gw.app.mcpRegistry.revoke({ sessionId: session.sessionId })
      const revokedAt = Date.now()
      await eventually(async () => (await send(port, `/mcp/${token}/api`)).status === 401, { what: 'the revoked session refused through nginx', within: 2500, everyMs: 50 })
      const refusedAfter = Date.now() - revokedAt
      t.ok(refusedAfter <= 2500, `refused ${refusedAfter} ms after the revocation`)
      const code = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 2500 - (Date.now() - revokedAt) + 200).unref())])
      t.equal(code, 1008, `the open WebSocket was closed (1008) ${Date.now() - revokedAt} ms after the revocation`)
    })

    t.test('nginx + forward-auth: a yes for a person is never kept (the login header is not in the key)', async (t) => {
      // Logins from an identity-aware proxy in front, by a header nginx's key does not hold.
      const edgeLogin: EdgeLoginConfig = { header: 'x-auth-request-email', jwtHeader: undefined, jwksUrl: undefined, jwtIssuer: undefined, jwtAudience: undefined, jwtUserClaim: 'email', jwtGroupsClaim: 'groups', groupsHeader: undefined, emailVerified: false }
      const { port, gw, backend } = await pathMode(t, { edgeLogin })
      const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice@example.test', serverName: 'todo', shareLevel: 'owner', serverSecret: REGISTRANT_SECRET })
      const as = async (who?: string): Promise<[number, string]> => {
        const res = await send(port, `/mcp/${token}/api`, who === undefined ? {} : { 'x-auth-request-email': who })
        return [res.status, res.status === 200 ? (JSON.parse(res.body) as { headers: Record<string, string> }).headers['x-mcpgw-login-user']! : JSON.parse(res.body).code]
      }
      t.same(await as('alice@example.test'), [200, 'alice%40example.test'], 'its person: in')
      const before = backend.seen.length
      t.same(await as('bob@example.test'), [403, 'MCPGW_PROXY_NOT_YOUR_SESSION'], 'someone else right after: refused, not answered with her kept yes')
      t.same(await as(), [401, 'MCPGW_PROXY_LOGIN_REQUIRED'], 'no one right after: refused too')
      t.equal(backend.seen.length, before, 'and the backend heard of neither')
    })

    t.test('nginx + forward-auth: a backend that re-registers on a new port is reached at once', async (t) => {
      const { port, gw, backend } = await pathMode(t)
      const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
      t.equal((JSON.parse((await send(port, `/mcp/${token}/api`)).body) as { port: number }).port, backend.port)
      await backend.stop()
      const moved = await startEdgeBackend(t)
      await gw.app.mcpRegistry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: moved.port, secret: REGISTRANT_SECRET })
      const res = await send(port, `/mcp/${token}/api`)
      t.equal(res.status, 200, 'no error while nginx still holds the old answer: the gateway carries that request')
      t.equal((JSON.parse(res.body) as { port: number }).port, moved.port, 'answered by the backend on its new port')
    })

    t.test('nginx + forward-auth: connections to the backend, and a backend registered by host name', async (t) => {
      const { port, gw, backend } = await pathMode(t)
      const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
      const requests = 40
      const before = backend.connections()
      for (let i = 0; i < requests; i++) t.equal((await send(port, `/mcp/${token}/api?n=${i}`)).status, 200)
      const opened = backend.connections() - before
      if (file.includes('pooled')) {
        t.ok(opened <= 2, `${requests} requests, each from a new client connection, over ${opened} backend connection(s): the pool is used`)
      } else {
        // Why the pooled configuration exists: an upstream named in a variable has no pool.
        t.equal(opened, requests, `the plain configuration opens a backend connection per request (${opened} for ${requests})`)
      }
      t.equal(gw.app.mcpGateway.metrics.responses['2xx'], 0, 'all of them carried by nginx')

      // The pool takes IP addresses; a backend registered by name is reached through the gateway.
      await gw.app.mcpRegistry.registerServer({ serverName: 'named', host: 'localhost', port: backend.port, secret: REGISTRANT_SECRET })
      const named = (await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'named', serverSecret: REGISTRANT_SECRET })).token
      const res = await send(port, `/mcp/${named}/api?named=1`)
      t.equal(res.status, 200, 'a backend registered as localhost answers')
      t.equal((JSON.parse(res.body) as { url: string }).url, '/api?named=1')
      t.equal(gw.app.mcpGateway.metrics.responses['2xx'], 1, 'carried by the gateway')
    })

    if (file.includes('pooled')) {
      t.test('nginx + Lua: an IPv6 backend is pooled; requests handed to the gateway are counted out', async (t) => {
        // What each worker counts open (the sessions it asks the gateway about), read through a
        // server of the test's own beside the shipped snippet.
        const countPort = await freePort()
        const counter = `\nserver { listen 127.0.0.1:${countPort}; location / { content_by_lua_block { local n = 0; for _, v in pairs(package.loaded.mcpgw_edge.open) do n = n + v end; ngx.say(n) } } }\n`
        const { port, gw } = await behindEdge(t, {}, async (gatewayPort) => await nginxEdge(t, file, gatewayPort, await freePort(), '', counter))
        const counted = async (): Promise<number> => Number((await send(countPort, '/')).body)

        const v6 = createServer((_req, res) => res.end('v6'))
        let v6Connections = 0
        v6.on('connection', () => { v6Connections++ })
        await new Promise<void>((resolve) => v6.listen(0, '::1', resolve))
        t.teardown(() => new Promise<void>((resolve) => { v6.closeAllConnections(); v6.close(() => resolve()) }))
        await gw.app.mcpRegistry.registerServer({ serverName: 'six', host: '::1', port: (v6.address() as AddressInfo).port, secret: REGISTRANT_SECRET })
        const six = (await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'six', serverSecret: REGISTRANT_SECRET })).token
        for (let i = 0; i < 5; i++) t.equal((await send(port, `/mcp/${six}/api?i=${i}`)).body, 'v6')
        t.equal(v6Connections, 1, 'five requests to a backend on ::1 over one pooled connection')
        const v6Sockets = new WebSocketServer({ server: v6 })
        v6Sockets.on('connection', (ws) => ws.on('message', (d) => ws.send(`v6 ${d.toString()}`)))
        const ws = new WebSocket(`ws://127.0.0.1:${port}/mcp/${six}/ws`)
        const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())))
        ws.once('open', () => ws.send('ping'))
        t.equal(await within(5000, 'the echo from ::1', echoed), 'v6 ping', 'a WebSocket to a backend on ::1, carried by nginx')
        t.equal(gw.app.mcpGateway.tunnels.size, 0, 'not by the gateway')
        ws.terminate()
        t.equal(gw.app.mcpGateway.metrics.responses['2xx'], 0, 'carried by nginx')

        // A backend that resets every connection: nginx hands the request to the gateway.
        const reset = createServer()
        reset.on('connection', (socket) => socket.destroy())
        await new Promise<void>((resolve) => reset.listen(0, '127.0.0.1', resolve))
        t.teardown(() => new Promise<void>((resolve) => reset.close(() => resolve())))
        await gw.app.mcpRegistry.registerServer({ serverName: 'reset', host: '127.0.0.1', port: (reset.address() as AddressInfo).port, secret: REGISTRANT_SECRET })
        const broken = (await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'reset', serverSecret: REGISTRANT_SECRET })).token
        const res = await send(port, `/mcp/${broken}/api`)
        t.same([res.status, JSON.parse(res.body).code], [502, 'MCPGW_PROXY_BAD_GATEWAY'], 'the gateway\'s coded 502')
        t.equal(await counted(), 0, 'nothing stays counted open: the ended-sessions poll has nothing left to ask')
      })

      t.test('nginx + Lua: nginx carries WebSockets with the gateway\'s handshake policy', async (t) => {
        const { port, gw, backend } = await pathMode(t)
        const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
        const origin = `http://127.0.0.1:${port}`
        const ws = new WebSocket(`ws://127.0.0.1:${port}/mcp/${token}/cookies?x=1`, { origin, headers: { ...SPOOFED_REQUEST_HEADERS, 'x-mcpgw-user-id': 'mallory', 'x-forwarded-prefix': '/elsewhere', cookie: 'theirs=1; mcpgw_direct_9=x' } })
        const opened = new Promise((resolve) => ws.once('open', resolve))
        const upgraded = await within(5000, 'the handshake', new Promise<IncomingMessage>((resolve, reject) => { ws.once('upgrade', resolve); ws.once('error', reject) }))
        await within(5000, 'open', opened)
        t.equal(gw.app.mcpGateway.tunnels.size, 0, 'carried by nginx, not the gateway\'s tunnel')
        const seen = backend.seen.filter((s) => s.method === 'UPGRADE').at(-1)!
        t.equal(seen.url, '/cookies?x=1', 'the backend gets its own path')
        t.same([seen.headers.host, seen.headers['x-mcpgw-user-id'], seen.headers['x-forwarded-prefix'], seen.headers.cookie, seen.headers.origin], [`127.0.0.1:${backend.port}`, 'alice', `/mcp/${token}`, 'theirs=1', origin], 'the gateway\'s identity and cookies, the browser\'s Origin')
        t.match(seen.headers['x-mcpgw-registrant'], /^\d+\.[0-9a-f]{64}$/, 'with the registrant proof')
        t.same(Object.keys(SPOOFED_REQUEST_HEADERS).filter((name) => seen.headers[name] !== undefined), [], 'a client\'s identity and original-URL claims never reach the backend')
        const cookies = [upgraded.headers['set-cookie']].flat().filter((c) => c !== undefined) as string[]
        t.same(cookies.map((c) => [c.split('=')[0], cookieScope(c).path?.replace(token, '<token>'), cookieScope(c).domain]), [['pref', '/mcp/<token>/', null]], 'the 101\'s cookies: the gateway\'s own names dropped, the rest under the session\'s prefix')
        t.same([upgraded.headers['x-accel-redirect'], upgraded.headers['service-worker-allowed']], [undefined, undefined], 'nothing else of the backend\'s 101 beside the handshake')

        // Frames of every size pass whole, however TCP cuts them (the close is kept between frames).
        for (const size of [10, 125, 126, 65_535, 65_536, 300_000]) {
          const echoed = new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)))
          const sent = Buffer.alloc(size, size % 251)
          ws.send(sent)
          t.ok((await within(5000, `the echo of ${size} bytes`, echoed)).equals(sent), `${size} bytes echoed whole`)
        }
        ws.close()

        const other = await new Promise<number>((resolve) => {
          const evil = new WebSocket(`ws://127.0.0.1:${port}/mcp/${token}/ws`, { origin: 'http://evil.example' })
          evil.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); evil.terminate() })
          evil.on('open', () => { resolve(101); evil.close() })
          evil.on('error', () => {})
        })
        t.equal(other, 403, 'another site\'s handshake is refused (the gateway\'s Origin check, never answered from a kept yes)')
        const refused = await new Promise<number>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/mcp/${token}/refuse`, { origin })
          ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
          ws.on('open', () => { resolve(101); ws.close() })
          ws.on('error', () => {})
        })
        t.equal(refused, 401, 'a backend that refuses the upgrade: its answer reaches the client (through the gateway)')
        // What the gateway alone would not take for a handshake is not one through nginx either.
        const handshake = { upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', origin }
        const notAsked = await send(port, `/mcp/${token}/api`, handshake)
        t.equal(notAsked.status, 200, 'Upgrade without Connection: upgrade: a plain request, as the gateway reads it')
        const withBody = await send(port, `/mcp/${token}/api`, { ...handshake, connection: 'Upgrade', 'content-length': '5' }, 'GET', 'hello')
        t.same([withBody.status, JSON.parse(withBody.body).code], [400, 'MCPGW_PROXY_BAD_UPGRADE'], 'a handshake with a body: the gateway\'s 400')
      })

      t.test('nginx + Lua: with the gateway named rather than given by address, WebSockets stay with it (nothing would end them)', async (t) => {
        const { port, gw } = await behindEdge(t, {}, async (gatewayPort) => await nginxEdge(t, file, gatewayPort, await freePort(), '', '', 'localhost'))
        const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
        t.equal((await send(port, `/mcp/${token}/api`)).status, 200, 'HTTP is carried as before')
        const ws = new WebSocket(`ws://127.0.0.1:${port}/mcp/${token}/ws`)
        const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())))
        ws.once('open', () => ws.send('ping'))
        t.equal(await within(5000, 'the echo', echoed), 'ping')
        t.equal(gw.app.mcpGateway.tunnels.size, 1, 'the WebSocket goes through the gateway, which ends it on revocation')
        ws.terminate()
      })

      t.test('nginx + Lua: an identity-aware proxy\'s login header never reaches the backend (HTTP and WebSocket)', async (t) => {
        // A name outside the prefixes every edge drops: only the gateway's answer can name it.
        const edgeLogin: EdgeLoginConfig = { header: 'x-webauth-user', jwtHeader: undefined, jwksUrl: undefined, jwtIssuer: undefined, jwtAudience: undefined, jwtUserClaim: 'email', jwtGroupsClaim: 'groups', groupsHeader: undefined, emailVerified: false }
        const { port, gw, backend } = await pathMode(t, { edgeLogin })
        const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
        const headers = { 'x-webauth-user': 'alice@example.test' }
        for (let i = 0; i < 2; i++) {
          const res = await send(port, `/mcp/${token}/api`, headers)
          t.equal((JSON.parse(res.body) as { headers: Record<string, string> }).headers['x-webauth-user'], undefined, `the login header is dropped (${i === 0 ? 'asked' : 'a kept yes'})`)
        }
        const ws = new WebSocket(`ws://127.0.0.1:${port}/mcp/${token}/ws`, { headers })
        await within(5000, 'open', new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) }))
        t.equal(backend.seen.filter((s) => s.method === 'UPGRADE').at(-1)!.headers['x-webauth-user'], undefined, 'nor on the WebSocket handshake')
        t.equal(gw.app.mcpGateway.tunnels.size, 0, 'carried by nginx')
        ws.terminate()
      })

      t.test('nginx + Lua: an event stream and a long-poll nginx carries end when their session is revoked', async (t) => {
        const { port, gw, backend } = await pathMode(t)
        const { token, session } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
        await streamsEndOnRevocation(t, port, gw, backend, `/mcp/${token}`, {}, session.sessionId)
      })
    }

    t.test('nginx + forward-auth: with the store down, sessions checked lately keep working and others get the gateway\'s 503', {
      skip: process.env.MONGO_URL !== undefined && process.env.MONGO_URL !== '' ? 'the server behind MONGO_URL is not ours to stop' : false
    }, async (t) => {
      const ferret = await startFerretDb()
      t.teardown(() => ferret.stop())
      const backend = await startEdgeBackend(t)
      const gw = await startGateway(t, { trustProxy: ['127.0.0.1'], apiKey: API_KEY, forwardAuthKey: EDGE_KEY, mongoUrl: ferret.url, jwtSecret: 'edge-store-down-secret-0123456789abcdef' })
      await gw.app.mcpRegistry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: backend.port, secret: REGISTRANT_SECRET })
      const port = await nginxEdge(t, file, gw.port, await freePort())
      const used = (await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })).token
      const unused = (await gw.app.mcpRegistry.createSession({ userId: 'bob', serverName: 'todo', serverSecret: REGISTRANT_SECRET })).token
      t.equal((await send(port, `/mcp/${used}/api`)).status, 200)

      await ferret.pause()
      const known = await send(port, `/mcp/${used}/api?down=1`)
      t.equal(known.status, 200, 'a session checked within the grace period keeps working')
      const unknown = await send(port, `/mcp/${unused}/api`)
      t.equal(unknown.status, 503, 'one never checked cannot be')
      t.match(unknown.body, '"code":"MCPGW_PROXY_STORE_UNAVAILABLE"')
      await ferret.start()
      await eventually(async () => (await send(port, `/mcp/${unused}/api`)).status === 200, { what: 'the store back', within: 10_000 })
      t.pass('and it works once the store is back')
    })

    t.test('nginx + forward-auth while the gateway\'s secret rotates: the backend gets the rotation proofs too', async (t) => {
      const { port, gw } = await pathMode(t, { jwtSecret: ROTATION_SECRETS.current, jwtPreviousSecrets: [ROTATION_SECRETS.previous] })
      await rotationProofsThroughEdge(t, port, gw.app.mcpRegistry, REGISTRANT_SECRET)
    })
  })
}

const ISOLATED_MODE_FILES = ['nginx/isolated-mode.conf', 'nginx/isolated-mode-pooled.conf']

for (const file of ISOLATED_MODE_FILES) {
  t.test(file, async (t) => {
    const pooled = file.includes('pooled')
    async function isolatedMode (t: Test): Promise<BehindEdge & { host: string, token: string, sessionId: string }> {
      const backend = await startEdgeBackend(t)
      const port = await freePort()
      const gw = await startGateway(t, { trustProxy: ['127.0.0.1'], apiKey: API_KEY, forwardAuthKey: EDGE_KEY, wildcardUrl: `http://*.localhost:${port}` })
      await gw.app.mcpRegistry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: backend.port })
      await nginxEdge(t, file, gw.port, port, '*.localhost')
      const { token, session } = await gw.app.mcpRegistry.createSession({ userId: 'carol', serverName: 'todo' })
      return { port, gw, backend, host: `${sessionHostLabel(session)}.localhost:${port}`, token, sessionId: session.sessionId }
    }

    t.test('nginx + forward-auth, isolated mode: the link is swapped for a cookie, the cookie authenticates, other sites are refused', async (t) => {
      const { port, gw, backend, host, token } = await isolatedMode(t)
      await isolatedModeThroughEdge(t, { name: pooled ? 'nginx + Lua' : 'nginx', port, host, token }, gw.app.mcpGateway, backend)
    })

    if (!pooled) return
    t.test('nginx + Lua, isolated mode: the pool is used, and streams end when their session is revoked', async (t) => {
      const { port, gw, backend, host, token, sessionId } = await isolatedMode(t)
      const swap = await send(port, `/?mcpgw_link=${token}`, { host })
      const cookie = String(swap.headers['set-cookie']).split(';')[0]!
      const before = backend.connections()
      for (let i = 0; i < 20; i++) t.equal((await send(port, `/api?n=${i}`, { host, cookie })).status, 200)
      t.ok(backend.connections() - before <= 2, `20 requests, each from a new client connection, over ${backend.connections() - before} backend connection(s)`)
      // Two different session cookies: which one let the request in is not guessed at; the gateway carries it.
      const twice = await send(port, '/api?twice=1', { host, cookie: `${cookie}; mcpgw_session=another` })
      t.equal(twice.status, 200, 'a request with two session cookies still gets through')
      t.equal(gw.app.mcpGateway.metrics.responses['2xx'], 1, 'carried by the gateway, the rest by nginx')
      await streamsEndOnRevocation(t, port, gw, backend, '', { host, cookie }, sessionId)
    })
  })
}

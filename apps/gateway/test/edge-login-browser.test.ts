import { createServer, request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { eventually, freePort, launchChromium } from '@mcp-gw/testkit'
import type { Page } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { WebSocketServer } from 'ws'
import { buildGateway } from '../src/app.js'
import { AUDIENCE, createSessionUrl, ISSUER, startJwks, testConfig } from './helpers.js'

/**
 * The identity-aware-edge variant of links bound to a person, as a browser lives it: Chromium
 * reaches the gateway through a proxy in front that logs people in and sends a signed assertion
 * (X-Pomerium-Jwt-Assertion), in path mode and isolated mode. The proxy here is a stand-in
 * (Pomerium, Cloudflare Access and oauth2-proxy cannot be installed on the test machine): a
 * Node proxy on 127.0.0.1 that knows its person from a cookie of its own and signs for them,
 * or, told to, forges (another key under the real kid) or sends an unsigned assertion.
 */
type Mode = 'signed' | 'forged' | 'unsigned'
const ASSERTION = 'x-pomerium-jwt-assertion'

const PAGE = `<!doctype html><meta charset="utf-8"><title>todo</title><p id="echo"></p><p id="event"></p>
<script>
const ws = new WebSocket(new URL('ws', location.href).href.replace(/^http/, 'ws'))
ws.onopen = () => ws.send('round trip')
ws.onmessage = (e) => { document.getElementById('echo').textContent = e.data }
new EventSource('events').onmessage = (e) => { document.getElementById('event').textContent = e.data }
</script>`

/** A backend whose page opens a WebSocket and an event stream, and says who the gateway named. */
async function startApp (t: Test): Promise<{ port: number, seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = []
  const server = createServer((req, res) => {
    seen.push(req.headers)
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' }).write(`data: hello ${decodeURIComponent(String(req.headers['x-mcpgw-login-user']))}\n\n`)
      return
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE)
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    seen.push(req.headers)
    ws.on('message', (data) => ws.send(data.toString()))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { wss.close(); server.closeAllConnections(); server.close(() => resolve()) }))
  return { port: (server.address() as AddressInfo).port, seen }
}

/** The stand-in proxy in front: its person from its own cookie (`idp_user`), an assertion for them per `mode`; the client's own assertion never passes. */
async function startIdentityProxy (t: Test, port: number, gatewayPort: number, jwks: Awaited<ReturnType<typeof startJwks>>): Promise<{ mode: Mode }> {
  const state = { mode: 'signed' as Mode }
  const headersFor = async (headers: IncomingHttpHeaders): Promise<IncomingHttpHeaders> => {
    const out: IncomingHttpHeaders = { ...headers }
    delete out[ASSERTION]
    const person = /(?:^|;\s*)idp_user=(\w+)/.exec(headers.cookie ?? '')?.[1]
    if (person === undefined) return out
    const claims = { email: `${person}@example.test`, email_verified: true }
    const signed = await jwks.sign(claims, state.mode === 'forged' ? { key: jwks.otherKey } : {})
    out[ASSERTION] = state.mode === 'unsigned' ? `${Buffer.from('{"alg":"none","kid":"edge-1"}').toString('base64url')}.${signed.split('.')[1]!}.` : signed
    return out
  }
  const server = createServer((req, res) => {
    headersFor(req.headers).then((headers) => {
      const upstream = request({ host: '127.0.0.1', port: gatewayPort, method: req.method, path: req.url, headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    }, () => res.destroy())
  })
  server.on('upgrade', (req, socket, head) => {
    headersFor(req.headers).then((headers) => {
      const upstream = connect(gatewayPort, '127.0.0.1', () => {
        const lines = Object.entries(headers).flatMap(([name, value]) => [value].flat().map((v) => `${name}: ${String(v)}`))
        upstream.write(`${req.method!} ${req.url!} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`)
        upstream.write(head)
        socket.pipe(upstream).pipe(socket)
      })
      upstream.on('error', () => socket.destroy())
      socket.on('error', () => upstream.destroy())
    }, () => socket.destroy())
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return state
}

for (const isolated of [false, true]) {
  t.test(`behind an identity-aware proxy, ${isolated ? 'isolated' : 'path'} mode: its person's link opens in a browser; another person, a forged or unsigned assertion, or none opens nothing`, async (t) => {
    const jwks = await startJwks(t)
    const todo = await startApp(t)
    const proxyPort = await freePort()
    const app = await buildGateway(testConfig({
      dashboardPort: 'off',
      ...(isolated && { wildcardUrl: `http://*.localhost:${proxyPort}` }),
      edgeLogin: { header: undefined, jwtHeader: ASSERTION, jwksUrl: jwks.url, jwtIssuer: ISSUER, jwtAudience: AUDIENCE, jwtUserClaim: 'email', jwtGroupsClaim: 'groups', groupsHeader: undefined, emailVerified: false }
    }), { logLevel: 'silent' })
    t.teardown(() => app.close())
    await app.listen({ port: 0, host: '127.0.0.1' })
    const gatewayPort = (app.server.address() as AddressInfo).port
    const proxy = await startIdentityProxy(t, proxyPort, gatewayPort, jwks)
    const secret = 'todo-registrant-secret-0123456789abcdef'
    await app.mcpRegistry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: todo.port, secret })
    const link = async (userId: string, shareLevel: string): Promise<string> => {
      const { url } = await createSessionUrl(gatewayPort, secret, { userId, serverName: 'todo', shareLevel, serverType: `ui-${shareLevel}` })
      // Path mode: the gateway names its own address; people reach it through the proxy.
      return isolated ? url : url.replace(`http://127.0.0.1:${gatewayPort}`, `http://127.0.0.1:${proxyPort}`)
    }
    const alicesLink = await link('alice@example.test', 'owner')
    const teamLink = await link('carol@example.test', 'authenticated')

    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const as = async (person: string | null): Promise<Page> => {
      const context = await browser.newContext()
      // The proxy's own login cookie, on every host it serves (each session host in isolated mode).
      if (person !== null) await context.addCookies([alicesLink, teamLink].map((url) => ({ name: 'idp_user', value: person, url: new URL(url).origin })))
      return await context.newPage()
    }

    const alice = await as('alice')
    await alice.goto(alicesLink)
    const shown = async (page: Page): Promise<string> => await page.evaluate(() => `${document.getElementById('echo')?.textContent ?? '-'} / ${document.getElementById('event')?.textContent ?? '-'}`)
    await eventually(async () => (await shown(alice)) === 'round trip / hello alice@example.test', { what: 'alice\'s page, its WebSocket and its event stream', within: 10_000 })
      .catch(async (err: Error) => { throw new Error(`${err.message}: ${alice.url()} ${(await alice.content()).slice(0, 300)}`) })
    t.pass('its person: the page, its WebSocket and its event stream, the backend told who')
    t.notOk(alice.url().includes(new URL(alicesLink).searchParams.get('mcpgw_link') ?? new URL(alicesLink).pathname.split('/')[2]!), 'no credential in the address bar')

    // (Alice's page stays open: her event stream may reconnect meanwhile. Only others count.)
    const others = (): number => todo.seen.filter((h) => h['x-mcpgw-login-user'] !== 'alice%40example.test').length
    const seenBefore = others()
    const bob = await as('bob')
    const bobs = await bob.goto(alicesLink)
    t.equal(bobs?.status(), 403, 'another person: 403')
    t.match(await bob.content(), /MCPGW_PROXY_NOT_YOUR_SESSION/)
    const nobody = await (await as(null)).goto(alicesLink)
    t.equal(nobody?.status(), 401, 'no assertion: 401 (an edge cannot be sent to log in by the gateway)')
    t.equal(others(), seenBefore, 'neither reached the backend')

    const bobOnTeam = await as('bob')
    await bobOnTeam.goto(teamLink)
    await eventually(async () => (await shown(bobOnTeam)) === 'round trip / hello bob@example.test', { what: 'bob on an authenticated link', within: 10_000 })
    t.pass('authenticated: anyone the proxy vouches for')

    for (const mode of ['forged', 'unsigned'] as const) {
      proxy.mode = mode
      const before = todo.seen.length
      const again = await (await as('alice')).goto(alicesLink)
      t.equal(again?.status(), 401, `a ${mode} assertion for alice: 401`)
      t.equal(todo.seen.filter((h) => h.accept?.includes('text/html') === true).length, todo.seen.slice(0, before).filter((h) => h.accept?.includes('text/html') === true).length, `a ${mode} assertion loads no page from the backend`)
      const reload = await alice.reload()
      t.equal(reload?.status(), 401, `alice's open page, reloaded with a ${mode} assertion: 401`)
    }
    t.notOk(todo.seen.some((h) => h[ASSERTION] !== undefined), 'no backend request carried the assertion')
  })
}

import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { within } from '@mcp-gw/testkit'
import { generateKeyPair, SignJWT } from 'jose'
import t from 'tap'
import type { Test } from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { buildGateway } from '../src/app.js'
import type { EdgeLoginConfig, GatewayConfig } from '../src/config.js'
import { API_KEY, AUDIENCE, ISSUER, startJwks, testConfig } from './helpers.js'

/**
 * An identity-aware proxy in front (Pomerium, Cloudflare Access, oauth2-proxy) says who is
 * logged in: a signed assertion the gateway verifies against the proxy's JWKS, or a plain
 * header it believes from the proxies MCP_WEB_UI_TRUST_PROXY lists only. Links bound to a
 * person open for the person the proxy vouches for, over HTTP, event streams and WebSockets.
 */
/** A backend that answers with who the gateway said is logged in; an event stream; a WebSocket echo. */
async function startBackend (t: Test): Promise<number> {
  const server = createServer((req, res) => {
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(`data: ${String(req.headers['x-mcpgw-login-user'])}\n\n`)
      return
    }
    if (req.url === '/headers') res.end(JSON.stringify(req.headers))
    else res.end(`login user: ${String(req.headers['x-mcpgw-login-user'])}`)
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data.toString())))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { wss.close(); server.closeAllConnections(); server.close(() => resolve()) }))
  return (server.address() as AddressInfo).port
}

async function startEdgeGateway (t: Test, edgeLogin: EdgeLoginConfig, trustProxy: GatewayConfig['trustProxy'], backendPort: number): Promise<{ port: number, link: (userId: string, shareLevel: 'owner' | 'authenticated') => Promise<string>, limited: (audience: { groups?: string[], emailDomains?: string[] }) => Promise<string> }> {
  const app = await buildGateway(testConfig({ apiKey: API_KEY, trustProxy, edgeLogin, dashboardPort: 'off' }), { logLevel: 'silent' })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.mcpRegistry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: backendPort })
  return {
    port: (app.server.address() as AddressInfo).port,
    link: async (userId, shareLevel) => (await app.mcpRegistry.createSession({ userId, serverName: 'todo', shareLevel, serverType: shareLevel })).token,
    limited: async (audience) => (await app.mcpRegistry.createSession({ userId: 'dave', serverName: 'todo', shareLevel: 'authenticated', serverType: `limited-${Object.values(audience).join('-')}`, ...audience })).token
  }
}

async function wsOpens (url: string, headers: Record<string, string>): Promise<string> {
  const ws = new WebSocket(url, { headers })
  return await within(5000, 'the WebSocket handshake', new Promise<string>((resolve) => {
    ws.on('open', () => {
      ws.send('hi')
      ws.once('message', (data) => { resolve(`open: ${data.toString()}`); ws.close() })
    })
    ws.on('unexpected-response', (_req, res) => { resolve(`refused ${String(res.statusCode)}`); ws.terminate() })
    ws.on('error', () => resolve('error'))
  }))
}

t.test('a signed assertion from the proxy in front opens links bound to its person; a forged or unsigned one opens nothing', async (t) => {
  const jwks = await startJwks(t)
  const backend = await startBackend(t)
  const gw = await startEdgeGateway(t, { header: undefined, jwtHeader: 'x-pomerium-jwt-assertion', jwksUrl: jwks.url, jwtIssuer: ISSUER, jwtAudience: AUDIENCE, jwtUserClaim: 'email', jwtGroupsClaim: 'groups', groupsHeader: undefined, emailVerified: false }, false, backend)
  const owner = await gw.link('alice@example.test', 'owner')
  const team = await gw.link('carol@example.test', 'authenticated')
  const get = async (token: string, assertion?: string): Promise<[number, string]> => {
    const res = await fetch(`http://127.0.0.1:${gw.port}/mcp/${token}/`, { headers: { accept: 'application/json', ...(assertion !== undefined && { 'x-pomerium-jwt-assertion': assertion }) } })
    const text = await res.text()
    return [res.status, res.status === 200 ? text : (JSON.parse(text) as { code: string }).code]
  }
  const alice = await jwks.sign({ email: 'alice@example.test', sub: 'u-1' })
  const bob = await jwks.sign({ email: 'bob@example.test', sub: 'u-2' })
  t.same(await get(owner, alice), [200, 'login user: alice%40example.test'], 'its person: in, and the backend told who')
  t.same(await get(owner, bob), [403, 'MCPGW_PROXY_NOT_YOUR_SESSION'], 'another person: 403')
  t.same(await get(team, bob), [200, 'login user: bob%40example.test'], 'authenticated: anyone the proxy vouches for')
  t.same(await get(owner), [401, 'MCPGW_PROXY_LOGIN_REQUIRED'], 'no assertion: 401')
  // A backend never sees the assertion (it is good from any peer: it would open its person's other sessions).
  const seen = await (await fetch(`http://127.0.0.1:${gw.port}/mcp/${team}/headers`, { headers: { 'x-pomerium-jwt-assertion': bob } })).json() as Record<string, string>
  t.equal(seen['x-mcpgw-login-user'], 'bob%40example.test')
  t.notOk(Object.keys(seen).some((name) => name.includes('assertion')) || JSON.stringify(seen).includes(bob), 'the assertion is not passed on')

  const [header, payload] = alice.split('.')
  const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'edge-1' })).toString('base64url')}.${payload!}.`
  const refusals: Array<[string, string]> = [
    ['unsigned (alg none)', unsigned],
    ['signed by another key under the real kid', await jwks.sign({ email: 'alice@example.test' }, { key: jwks.otherKey })],
    ['a changed payload', `${header!}.${Buffer.from(JSON.stringify({ email: 'alice@example.test', aud: AUDIENCE, iss: ISSUER, exp: 9_999_999_999 })).toString('base64url')}.${alice.split('.')[2]!}`],
    ['expired', await jwks.sign({ email: 'alice@example.test' }, { expiresIn: '-1m' })],
    ['for another audience', await new SignJWT({ email: 'alice@example.test' }).setProtectedHeader({ alg: 'ES256', kid: 'edge-1' }).setIssuer(ISSUER).setAudience('other.example.test').setExpirationTime('5m').sign((await generateKeyPair('ES256')).privateKey)],
    ['not a JWT', 'alice@example.test']
  ]
  for (const [what, assertion] of refusals) t.same(await get(owner, assertion), [401, 'MCPGW_PROXY_LOGIN_REQUIRED'], what)

  // Event streams and WebSockets: the same check.
  const ws = `ws://127.0.0.1:${gw.port}/mcp/${owner}/ws`
  t.equal(await wsOpens(ws, { 'x-pomerium-jwt-assertion': alice }), 'open: hi')
  t.equal(await wsOpens(ws, { 'x-pomerium-jwt-assertion': bob }), 'refused 403')
  t.equal(await wsOpens(ws, { 'x-pomerium-jwt-assertion': unsigned }), 'refused 401')
  // (node:http, destroyed after the first event: a fetch() aborted mid-stream keeps its socket.)
  const firstEvent = await within(5000, 'the first event', new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.port, path: `/mcp/${owner}/events`, headers: { 'x-pomerium-jwt-assertion': alice } }, (res) => {
      res.once('data', (chunk: Buffer) => { resolve(chunk.toString()); req.destroy() })
    })
    req.on('error', reject)
    req.end()
  }))
  t.match(firstEvent, /data: alice%40example\.test/)
  t.equal((await fetch(`http://127.0.0.1:${gw.port}/mcp/${owner}/events`, { headers: { 'x-pomerium-jwt-assertion': bob } })).status, 403)
})

t.test('a plain header naming the person is believed from the listed proxies only', async (t) => {
  const backend = await startBackend(t)
  const login: EdgeLoginConfig = { header: 'x-auth-request-email', jwtHeader: undefined, jwksUrl: undefined, jwtIssuer: undefined, jwtAudience: undefined, jwtUserClaim: 'email', jwtGroupsClaim: 'groups', groupsHeader: undefined, emailVerified: false }
  const trusting = await startEdgeGateway(t, login, ['127.0.0.1'], backend)
  const elsewhere = await startEdgeGateway(t, login, ['10.0.0.0/8'], backend)
  const ask = async (gw: typeof trusting, headers: Record<string, string>): Promise<number> => {
    const token = await gw.link('alice@example.test', 'owner')
    return (await fetch(`http://127.0.0.1:${gw.port}/mcp/${token}/`, { headers: { accept: 'application/json', ...headers } })).status
  }
  t.equal(await ask(trusting, { 'x-auth-request-email': 'alice@example.test' }), 200, 'from a listed proxy (127.0.0.1): believed')
  const headersSeen = await (await fetch(`http://127.0.0.1:${trusting.port}/mcp/${await trusting.link('alice@example.test', 'owner')}/headers`, { headers: { 'x-auth-request-email': 'alice@example.test' } })).json() as Record<string, string>
  t.same([headersSeen['x-auth-request-email'], headersSeen['x-mcpgw-login-user']], [undefined, 'alice%40example.test'], 'the backend is told by the gateway, never by the proxy\'s header')
  t.equal(await ask(trusting, { 'x-auth-request-email': 'bob@example.test' }), 403)
  t.equal(await ask(elsewhere, { 'x-auth-request-email': 'alice@example.test' }), 401, 'from a peer not listed: no one')
  // The proxy sets the header; a client's own value beside it would be joined with a comma.
  const token = await trusting.link('alice@example.test', 'owner')
  const res = await within(5000, 'the answer', new Promise<[number, string]>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: trusting.port, path: `/mcp/${token}/`, headers: ['host', `127.0.0.1:${trusting.port}`, 'accept', 'application/json', 'x-auth-request-email', 'mallory@example.test', 'x-auth-request-email', 'alice@example.test'] }, (r) => {
      let body = ''
      r.on('data', (c: Buffer) => { body += c.toString() })
      r.on('end', () => resolve([r.statusCode ?? 0, (JSON.parse(body) as { code: string }).code]))
    })
    req.on('error', reject)
    req.end()
  }))
  t.same(res, [401, 'MCPGW_PROXY_LOGIN_REQUIRED'], 'two values: no one')
})

t.test('groups and a verified email from the proxy in front: in its signed assertion, or in a groups header beside the user header', async (t) => {
  const jwks = await startJwks(t)
  const backend = await startBackend(t)
  const assertion: EdgeLoginConfig = { header: undefined, jwtHeader: 'cf-access-jwt-assertion', jwksUrl: jwks.url, jwtIssuer: ISSUER, jwtAudience: AUDIENCE, jwtUserClaim: 'sub', jwtGroupsClaim: 'groups', groupsHeader: undefined, emailVerified: true }
  const signed = await startEdgeGateway(t, assertion, false, backend)
  const ops = await signed.limited({ groups: ['ops'] })
  const corp = await signed.limited({ emailDomains: ['corp.example'] })
  const ask = async (gw: typeof signed, token: string, headers: Record<string, string>): Promise<number> =>
    (await fetch(`http://127.0.0.1:${gw.port}/mcp/${token}/`, { headers: { accept: 'application/json', ...headers } })).status
  const bob = await jwks.sign({ sub: 'bob', email: 'bob@corp.example', groups: ['staff', 'ops'] })
  const eve = await jwks.sign({ sub: 'eve', email: 'eve@corp.example', email_verified: false, groups: 'guests' })
  t.same([await ask(signed, ops, { 'cf-access-jwt-assertion': bob }), await ask(signed, ops, { 'cf-access-jwt-assertion': eve })], [200, 403], 'a group the assertion lists')
  t.same([await ask(signed, corp, { 'cf-access-jwt-assertion': bob }), await ask(signed, corp, { 'cf-access-jwt-assertion': eve })], [200, 403], 'an email domain (the operator says the proxy\'s addresses are verified), unless the assertion says otherwise')
  // Without MCP_WEB_UI_LOGIN_EMAIL_VERIFIED, only an assertion that says so (an address some providers let people change is no proof).
  const strict = await startEdgeGateway(t, { ...assertion, emailVerified: false }, false, backend)
  const strictCorp = await strict.limited({ emailDomains: ['corp.example'] })
  const verified = await jwks.sign({ sub: 'carol', email: 'carol@corp.example', email_verified: true })
  t.same([await ask(strict, strictCorp, { 'cf-access-jwt-assertion': bob }), await ask(strict, strictCorp, { 'cf-access-jwt-assertion': verified })], [403, 200], 'then an address counts only with email_verified: true')

  const login: EdgeLoginConfig = { header: 'x-auth-request-email', jwtHeader: undefined, jwksUrl: undefined, jwtIssuer: undefined, jwtAudience: undefined, jwtUserClaim: 'email', jwtGroupsClaim: 'groups', groupsHeader: 'x-auth-request-groups', emailVerified: true }
  const plain = await startEdgeGateway(t, login, ['127.0.0.1'], backend)
  const plainOps = await plain.limited({ groups: ['ops'] })
  const plainCorp = await plain.limited({ emailDomains: ['corp.example'] })
  t.equal(await ask(plain, plainOps, { 'x-auth-request-email': 'bob@example.test', 'x-auth-request-groups': 'staff, ops' }), 200, 'a group in the comma-separated header')
  t.equal(await ask(plain, plainOps, { 'x-auth-request-email': 'bob@example.test', 'x-auth-request-groups': 'staff' }), 403)
  t.equal(await ask(plain, plainOps, { 'x-auth-request-groups': 'ops' }), 401, 'groups without a person: no one')
  t.equal(await ask(plain, plainCorp, { 'x-auth-request-email': 'carol@corp.example' }), 200, 'the user header\'s address, at the domain')
  // A client's own groups line beside the proxy's: Node would join them with a comma. No one.
  const joined = await within(5000, 'the answer', new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: plain.port, path: `/mcp/${plainOps}/`, headers: ['host', `127.0.0.1:${plain.port}`, 'accept', 'application/json', 'x-auth-request-email', 'eve@example.test', 'x-auth-request-groups', 'ops', 'x-auth-request-groups', 'guests'] }, (r) => { r.resume(); resolve(r.statusCode ?? 0) })
    req.on('error', reject)
    req.end()
  }))
  t.equal(joined, 401, 'two groups lines: no one')
  const seen = await (await fetch(`http://127.0.0.1:${plain.port}/mcp/${plainOps}/headers`, { headers: { 'x-auth-request-email': 'bob@example.test', 'x-auth-request-groups': 'ops' } })).json() as Record<string, string>
  t.equal(seen['x-auth-request-groups'], undefined, 'the groups header never reaches a backend')
})

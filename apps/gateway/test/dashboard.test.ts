import { mkdir } from 'node:fs/promises'
import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { fileURLToPath } from 'node:url'
import { eventually, freePort, launchChromium } from '@mcp-gw/testkit'
import t from 'tap'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { WebSocket } from 'ws'
import { buildGateway } from '../src/app.js'
import { API_KEY, REGISTRANT, startBackend, startGateway, testConfig } from './helpers.js'

/**
 * The operator's page, in Chromium: signed in with the operator key, every view (servers and
 * instances with their health, sessions with what is open on them, live figures), revoking
 * from the page (the link stops working, its WebSocket ends), and nothing for anyone else:
 * no key, a wrong or registrant key, another site's form, a session host.
 */
const SCREENSHOTS = fileURLToPath(new URL('../../../docs/screenshots/', import.meta.url))

async function registerAndLink (origin: string, backendPort: number, userId: string): Promise<string> {
  const headers = { ...REGISTRANT, 'content-type': 'application/json' }
  const reg = await fetch(`${origin}/register-server`, { method: 'POST', headers, body: JSON.stringify({ serverName: 'todoodles', host: '127.0.0.1', port: backendPort }) })
  if (reg.status !== 200) throw new Error(`register-server answered ${reg.status}`)
  const made = await fetch(`${origin}/create-session`, { method: 'POST', headers, body: JSON.stringify({ userId, serverName: 'todoodles' }) })
  return (await made.json() as { url: string }).url
}

/** The dashboard on a port of its own, as `mcp-gw start` listens it: its origin. */
async function listenDashboard (gw: { app: FastifyInstance }): Promise<string> {
  await gw.app.mcpDashboard.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(gw.app.mcpDashboard.server.address() as AddressInfo).port}`
}

t.test('signed in with the operator key: servers, sessions, what is open, live figures; revoke from the page', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { apiKey: API_KEY })
  const board = await listenDashboard(gw)
  const aliceLink = await registerAndLink(gw.origin, backend.port, 'alice')
  const bobLink = await registerAndLink(gw.origin, backend.port, 'bob')
  // Bob shared his (a bearer share: this gateway has no login).
  const bobs = (await gw.app.mcpRegistry.listSessions({ userId: 'bob' }))[0]!
  await gw.app.mcpRegistry.shareSession({ sessionId: bobs.sessionId, shareLevel: 'link' })
  // Something open on alice's session: a WebSocket through the gateway.
  const ws = new WebSocket(aliceLink.replace(/^http/, 'ws') + 'ws')
  t.teardown(() => ws.terminate())
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } })
  const first = await page.goto(`${board}/dashboard`)
  t.equal(first?.status(), 401, 'no cookie: the sign-in form')
  t.notMatch(await page.content(), /alice|todoodles/, 'and nothing of the gateway\'s state')
  await page.fill('input[name=key]', 'not-the-operator-key-000')
  await page.click('button')
  t.match(await page.textContent('body'), /not an operator key/, 'a wrong key: refused')
  await page.fill('input[name=key]', API_KEY)
  await page.click('button')
  await page.waitForSelector('#sessions', { timeout: 10_000 })
  const cookie = (await page.context().cookies()).find((c) => c.name === 'mcpgw_operator')!
  t.same([cookie.httpOnly, cookie.sameSite, cookie.path], [true, 'Strict', '/dashboard'], 'an HttpOnly, SameSite=Strict cookie for this page only')
  t.notMatch(cookie.value, API_KEY, 'naming the key, never holding it')

  const servers = await page.textContent('#servers')
  t.match(servers, /todoodles/)
  t.match(servers, new RegExp(`http://127\\.0\\.0\\.1:${backend.port}`), 'each instance, its backend')
  t.match(servers, /healthy: last \d+ s ago, lapses in \d+ s/, 'and its registration\'s health')
  const aliceRow = page.locator('#sessions tr', { hasText: 'alice' })
  t.match(await aliceRow.textContent(), /alice\s*todoodles/)
  t.equal((await aliceRow.locator('td').nth(5).textContent())?.trim(), '1', 'what is open on the session: its WebSocket')
  t.match(await aliceRow.textContent(), /view, interact/)
  t.match(await page.locator('#sessions tr', { hasText: 'shared with' }).textContent(), /bob\s*todoodles\s*view \(shared with anyone with the link\)/, 'a share, and whom it is for')

  // Live figures: traffic through the gateway shows up on the page's charts.
  for (let i = 0; i < 20; i++) await fetch(`${aliceLink}page-${i}`)
  await eventually(async () => Number(await page.getAttribute('#c-rps', 'data-points') ?? '0') >= 2, { within: 10_000, what: 'two points on the requests/s chart' })
  t.match(await page.textContent('#f-open'), /^1 · 0$/, 'open WebSockets and streams')
  // Refusals show up by their code.
  for (let i = 0; i < 3; i++) await fetch(`${gw.origin}/mcp/not-a-token/`)
  await eventually(async () => /MCPGW_PROXY_TOKEN_MALFORMED\s*3/.test(await page.textContent('#errors') ?? ''), { within: 10_000, what: 'the refusals counted by code on the page' })
  t.pass('coded answers by code')
  if (process.env.MCPGW_UPDATE_SCREENSHOTS === '1') {
    // The README's picture of the page: MCPGW_UPDATE_SCREENSHOTS=1 refreshes it.
    await mkdir(SCREENSHOTS, { recursive: true })
    await page.screenshot({ path: `${SCREENSHOTS}dashboard.png`, fullPage: true })
  }

  await aliceRow.locator('button').click()
  await page.waitForSelector('.flash', { timeout: 10_000 })
  t.match(await page.textContent('.flash'), /Revoked 1 session/)
  t.equal(await page.locator('#sessions tr', { hasText: 'alice' }).count(), 0, 'alice\'s session is gone from the page')
  t.equal(await page.locator('#sessions tr', { hasText: 'bob' }).count(), 2, 'bob\'s and his share are not')
  await eventually(async () => (await fetch(aliceLink)).status === 401, { within: 3000, what: 'her link refused within the revocation bound' })
  t.pass('her link stops working')
  t.equal(await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5000))]), 1008, 'and her WebSocket ends within the revocation bound')
  t.equal((await fetch(bobLink)).status, 200)

  await page.selectOption('#revoke-user select', 'bob')
  await page.click('#revoke-user button')
  await page.waitForSelector('.flash', { timeout: 10_000 })
  await eventually(async () => (await fetch(bobLink)).status === 401, { within: 3000, what: 'bob\'s link refused within the revocation bound (revoke per user)' })
  t.pass('revoke per user')
  const left = await fetch(`${gw.origin}/sessions`, { headers: { authorization: `Bearer ${API_KEY}` } })
  t.same((await left.json() as { sessions: unknown[] }).sessions, [], 'no live session left')

  await page.click('text=Sign out')
  await page.waitForSelector('input[name=key]', { timeout: 10_000 })
  t.equal((await page.context().cookies()).some((c) => c.name === 'mcpgw_operator' && c.value !== ''), false, 'signed out')
})

t.test('refused: another site\'s form, a registrant key, a forged or stale cookie, the figures without a cookie', async (t) => {
  const gw = await startGateway(t, { apiKey: API_KEY, registrantKeys: [{ key: 'registrant-key-for-todoodles-0123', role: 'registrant', servers: ['todoodles'] }] })
  const board = await listenDashboard(gw)
  const post = async (path: string, body: string, headers: Record<string, string> = {}): Promise<Response> =>
    await fetch(`${board}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin', ...headers }, body })
  t.equal((await post('/dashboard/login', `key=${API_KEY}`, { 'sec-fetch-site': 'cross-site' })).status, 403, 'a sign-in another site started')
  t.equal((await post('/dashboard/login', `key=${API_KEY}`, { 'sec-fetch-site': '', origin: 'http://evil.localhost' })).status, 403, 'or one whose Origin is another')
  t.equal((await post('/dashboard/login', 'key=registrant-key-for-todoodles-0123')).status, 401, 'a registrant key is no operator')
  const signedIn = await post('/dashboard/login', `key=${API_KEY}`)
  t.equal(signedIn.status, 303)
  const cookie = signedIn.headers.get('set-cookie')!.split(';')[0]!
  t.equal((await fetch(`${board}/dashboard`, { headers: { cookie } })).status, 200)
  t.equal((await fetch(`${board}/dashboard`, { headers: { cookie: `mcpgw_operator=planted.x.y; ${cookie}` } })).status, 200, 'a cookie planted before the real one locks nobody out')
  const [name, value] = cookie.split('=') as [string, string]
  const [exp, keyId, nonce, mac] = value.split('.')
  for (const [what, forged] of [
    ['another expiry', `${Number(exp) + 3600}.${keyId}.${nonce}.${mac}`],
    ['another key', `${exp}.static:000000000000.${nonce}.${mac}`],
    ['another sign-in', `${exp}.${keyId}.AAAAAAAAAAAAAAAA.${mac}`],
    ['expired', `1000.${keyId}.${nonce}.${mac}`],
    ['garbage', 'x.y.z.w']
  ] as const) {
    t.equal((await fetch(`${board}/dashboard`, { headers: { cookie: `${name}=${forged}` } })).status, 401, `a forged cookie: ${what}`)
  }
  t.equal((await post('/dashboard/revoke', 'userId=alice', { cookie, 'sec-fetch-site': 'cross-site' })).status, 403, 'a revoke another site started, even with the cookie')
  t.equal((await fetch(`${board}/dashboard/figures`)).status, 401)
  t.equal((await fetch(`${board}/dashboard/figures`, { headers: { cookie } })).status, 200)
  for (let i = 0; i < 5; i++) await post('/dashboard/login', 'key=a-wrong-key-guessed-0000')
  const throttled = await post('/dashboard/login', `key=${API_KEY}`)
  t.equal(throttled.status, 429, 'after five wrong keys in a minute, that address waits (even with the right one)')
  // Signing out ends the sign-in itself: a copy of its cookie (another tab, a leaked header) opens nothing more.
  t.equal((await post('/dashboard/logout', '', { cookie })).status, 303)
  t.equal((await fetch(`${board}/dashboard/figures`, { headers: { cookie } })).status, 401, 'a copy of a signed-out cookie is refused')
  t.equal((await fetch(`${board}/dashboard`, { headers: { cookie } })).status, 401)
})

t.test('on an origin of its own: a path-mode session page, same-origin with the gateway, cannot reach it', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { apiKey: API_KEY })
  const board = await listenDashboard(gw)
  const link = await registerAndLink(gw.origin, backend.port, 'mallory')
  t.not(new URL(board).origin, new URL(link).origin, 'the dashboard\'s origin is not the session pages\'')
  for (const path of ['/dashboard', '/dashboard/figures']) {
    const res = await fetch(`${gw.origin}${path}`)
    t.equal(res.status, 404, `${path}: nothing on the gateway's origin`)
  }
  const revoke = await fetch(`${gw.origin}/dashboard/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' }, body: 'userId=mallory' })
  t.equal(revoke.status, 404)
  t.equal((await fetch(link)).status, 200, 'nothing was revoked')
  const onBoard = await fetch(`${board}${new URL(link).pathname}`)
  t.equal(onBoard.status, 404, 'and no session page is served on the dashboard\'s origin')
  const root = await fetch(`${board}/`, { redirect: 'manual' })
  t.equal(root.headers.get('location'), '/dashboard', 'its root leads to the page')
})

t.test('what a registrant controls is shown as text: markup escaped, direction overrides written out', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const board = await listenDashboard(gw)
  await registerAndLink(gw.origin, backend.port, '<img src=x onerror=alert(1)>')
  await registerAndLink(gw.origin, backend.port, 'alice\u202Eevil')
  const html = await (await fetch(`${board}/dashboard`)).text()
  t.notMatch(html, '<img src=x', 'no markup of theirs')
  t.match(html, '&#60;img src=x onerror=alert(1)&#62;')
  t.match(html, '<bdi>alice&#60;U+202E&#62;evil</bdi>', 'the override written out, in its own direction')
  t.notMatch(html.replace(/value="[^"]*"/g, ''), '\u202E', 'never the raw override where it is displayed (a form value keeps the exact id)')
})

t.test('never on a session host or under the prefix: there every path is the session\'s backend', async (t) => {
  const backend = await startBackend(t)
  const port = await freePort()
  const app = await buildGateway(testConfig({ apiKey: API_KEY, wildcardUrl: `http://*.localhost:${port}` }), { logLevel: 'silent' })
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
  const link = new URL(await registerAndLink(`http://127.0.0.1:${port}`, backend.port, 'carol'))
  const host = link.host
  const noCookie = await get(port, '/dashboard', { host })
  t.equal(noCookie.status, 401, 'a session host without its cookie: the proxy\'s refusal')
  t.notMatch(noCookie.body, /Sign in|operator/i)
  const swap = await get(port, link.pathname + link.search, { host })
  const cookie = String(swap.headers['set-cookie']).split(';')[0]!
  const withCookie = await get(port, '/dashboard', { host, cookie })
  t.equal(withCookie.body, 'backend saw /dashboard', 'with it: the backend\'s own /dashboard')
  const login = await get(port, '/dashboard/login', { host, cookie }, 'POST')
  t.equal(login.body, 'backend saw /dashboard/login')
})

function get (port: number, path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number, headers: IncomingHttpHeaders, body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} within 10 s`)))
    req.on('error', reject)
    req.end()
  })
}

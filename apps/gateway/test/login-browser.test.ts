import { freePort, launchChromium, logInAtTestIdp as logIn, startTestIdp, within } from '@mcp-gw/testkit'
import type { BrowserContext } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { buildGateway } from '../src/app.js'
import { createSessionUrl, startPageApp, testConfig } from './helpers.js'

/**
 * Links bound to a person, as browsers live them: the gateway logs people in through a real
 * OpenID provider (oidc-provider on 127.0.0.1, its own login and consent pages), and a link
 * made with share level owner opens for its person only, authenticated for anyone logged in.
 */
interface LoginGateway {
  port: number
  publicUrl: string
  idp: Awaited<ReturnType<typeof startTestIdp>>
  todo: Awaited<ReturnType<typeof startPageApp>>
  /** A link for userId at this share level (a server type each, so each is its own session). */
  link: (userId: string, shareLevel: string) => Promise<string>
}

/**
 * The gateway with its OIDC login against the test provider, a todo server registered, links by
 * the API. Path mode on gw.localhost; isolated mode with the API on 127.0.0.1 and sessions on
 * <label>.localhost.
 */
async function startLoginGateway (t: Test, userClaim: string, isolated = false): Promise<LoginGateway> {
  const port = await freePort()
  const publicUrl = isolated ? `http://127.0.0.1:${port}` : `http://gw.localhost:${port}`
  const idp = await startTestIdp({ redirectUris: [`${publicUrl}/_mcpgw/login/callback`] })
  t.teardown(() => idp.close())
  const app = await buildGateway(testConfig({
    port,
    publicUrl,
    ...(isolated && { wildcardUrl: `http://*.localhost:${port}` }),
    oidc: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, scopes: 'openid email profile', userClaim, groupsClaim: 'groups', loginSeconds: 3600 }
  }), { logLevel: 'silent' })
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
  const todo = await startPageApp(t)
  const secret = 'todo-registrant-secret-0123456789abcdef'
  await app.mcpRegistry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: todo.port, secret })
  const link = async (userId: string, shareLevel: string): Promise<string> => {
    const body = await createSessionUrl(port, secret, { userId, serverName: 'todo', shareLevel, serverType: `ui-${shareLevel}` })
    t.equal(body.shareLevel, shareLevel, `the API says the link's share level (${shareLevel})`)
    return isolated ? body.url : body.url.replace('http://127.0.0.1', 'http://gw.localhost')
  }
  return { port, publicUrl, idp, todo, link }
}

t.test('an owner link opens after its person logs in, and for no one else; an authenticated one for anyone logged in', async (t) => {
  const { port, publicUrl, idp, todo, link } = await startLoginGateway(t, 'sub')
  const alicesLink = await link('alice', 'owner')
  const teamLink = await link('carol', 'authenticated')
  const token = new URL(alicesLink).pathname.split('/')[2]!

  const browser = await launchChromium()
  t.teardown(() => browser.close())

  // Alice, not logged in: sent to the provider, with the link in no URL or Referer it sees.
  const aliceContext = await browser.newContext()
  const alice = await aliceContext.newPage()
  const toProvider: string[] = []
  alice.on('request', (request) => {
    if (request.url().startsWith(idp.issuer)) toProvider.push(`${request.url()} ${request.headers().referer ?? ''}`)
  })
  await alice.goto(alicesLink)
  await logIn(alice, idp.issuer, 'alice')
  await alice.waitForFunction(() => document.getElementById('echo')?.textContent !== '' && document.getElementById('event')?.textContent !== '', null, { timeout: 10_000 })
  t.equal(new URL(alice.url()).origin, new URL(alicesLink).origin)
  t.match(new URL(alice.url()).pathname, /^\/mcp\/s\/[\w-]{22}\/$/, 'back at the page the link named, under its label')
  t.notOk(alice.url().includes(token), 'no token in the address bar')
  t.equal(await alice.textContent('#echo'), 'echo: round trip', 'its WebSocket opened')
  t.equal(await alice.textContent('#event'), 'event: hello alice', 'its event stream opened, and the backend was told who is logged in')
  t.ok(toProvider.length > 0)
  t.notOk(toProvider.some((line) => line.includes(token)), 'the provider never saw the link')
  const cookies = await aliceContext.cookies(publicUrl)
  const login = cookies.find((c) => c.name === 'mcpgw_login')
  t.ok(login !== undefined && login.httpOnly && login.sameSite === 'Lax', 'an HttpOnly, SameSite=Lax login cookie on the gateway\'s host')
  t.equal(await alice.evaluate(() => document.cookie), '', 'out of the page\'s scripts\' reach')
  t.notOk(todo.seen.some((s) => String(s.headers.cookie ?? '').includes('mcpgw')), 'no backend request carried a gateway cookie')
  t.notMatch(await alice.evaluate(async () => await (await fetch('/_mcpgw/whoami')).text()), /alice@example\.test/, 'no route tells a page\'s scripts who is logged in')

  // Bob, logged in as himself, with Alice's link: the 403 page, and nothing reaches the backend.
  const bobContext = await browser.newContext()
  const bob = await bobContext.newPage()
  const before = todo.seen.length
  const first = await bob.goto(alicesLink)
  t.ok(first?.url().startsWith(idp.issuer), 'a logged-out browser is sent to log in')
  await logIn(bob, idp.issuer, 'bob')
  await bob.waitForSelector('h1', { timeout: 10_000 })
  t.match(await bob.textContent('body'), /You are logged in as someone other than the person this link was made for/)
  t.match(await bob.textContent('body'), /MCPGW_PROXY_NOT_YOUR_SESSION/)
  const fromBob = await bob.evaluate(async (path) => {
    const opened = await new Promise<string>((resolve) => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + path + 'ws')
      ws.onopen = () => resolve('open')
      ws.onerror = () => resolve('refused')
    })
    return [opened, (await fetch(path + 'events')).status]
  }, new URL(alicesLink).pathname)
  t.same(fromBob, ['refused', 403], 'his browser opens neither her WebSocket nor her event stream')
  t.equal(todo.seen.length, before, 'the backend heard nothing from Bob')

  // The same Bob opens the team's link (authenticated): in, as himself.
  await bob.goto(teamLink)
  await bob.waitForFunction(() => document.getElementById('event')?.textContent !== '', null, { timeout: 10_000 })
  t.equal(await bob.textContent('#event'), 'event: hello bob')

  // He logs out from the 403 page: the cookie is gone, and a copy of it opens nothing.
  const copy = (await bobContext.cookies(publicUrl)).find((c) => c.name === 'mcpgw_login')!
  await bob.goto(alicesLink)
  await bob.click('a:has-text("Log out")')
  await bob.click('button[type=submit]')
  await bob.waitForSelector('text=Logged out of mcp-gw', { timeout: 10_000 })
  t.notOk((await bobContext.cookies(publicUrl)).some((c) => c.name === 'mcpgw_login'), 'logged out: no login cookie')
  const replayed = await within(5000, 'the replayed cookie\'s answer', fetch(`http://127.0.0.1:${port}/mcp/${new URL(teamLink).pathname.split('/')[2]!}/`, { headers: { cookie: `mcpgw_login=${copy.value}`, accept: 'application/json' } }))
  t.equal(replayed.status, 401, 'a copy of the logged-out cookie is refused')
  t.equal((await replayed.json() as { code: string }).code, 'MCPGW_PROXY_LOGIN_REQUIRED')
})

t.test('a hostile page cannot log a visitor in as someone else, two logins are none, and an unverified email names no one', async (t) => {
  const { port, publicUrl, idp, link } = await startLoginGateway(t, 'email')
  const alicesLink = await link('alice@example.test', 'owner')
  const malloryPage = await link('mallory', 'link')
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const loginCookie = async (context: BrowserContext): Promise<string | undefined> => (await context.cookies(publicUrl)).find((c) => c.name === 'mcpgw_login')?.value

  // Mallory (bob at the provider) gets a callback URL of his own and the state cookie it needs:
  // he keeps the cookie's value and takes it out of his browser, so the gateway refuses his
  // callback before it redeems the code (both stay good for one use).
  const mallory = await browser.newContext()
  const stopped = await mallory.newPage()
  await stopped.goto(alicesLink)
  await stopped.waitForURL((url) => url.href.startsWith(idp.issuer), { timeout: 10_000 })
  const state = (await mallory.cookies(publicUrl)).find((c) => c.name === 'mcpgw_login_state')!.value
  await mallory.clearCookies({ name: 'mcpgw_login_state' })
  await logIn(stopped, idp.issuer, 'bob')
  const callback = stopped.url()
  t.match(callback, /\/_mcpgw\/login\/callback\?code=/)

  // Vera, logged out, opens Mallory's (bearer) page; it plants his state and sends her to his callback.
  const vera = await browser.newContext()
  const page = await vera.newPage()
  await page.goto(malloryPage)
  await page.evaluate(({ value, url }) => {
    document.cookie = `mcpgw_login_state=${value}; path=/`
    location.href = url
  }, { value: state, url: callback })
  await page.waitForSelector('text=MCPGW_LOGIN_FAILED', { timeout: 10_000 })
  t.match(await page.textContent('body'), /a login comes back from the identity provider, not from a page of this gateway/)
  t.equal(await loginCookie(vera), undefined, 'she is not logged in as Mallory')

  // A callback is answered once: his own, replayed with the same state, is refused by the gateway itself.
  await mallory.addCookies([{ name: 'mcpgw_login_state', value: state, url: publicUrl }])
  await stopped.goto(callback)
  const bobs = (await loginCookie(mallory))!
  t.ok(bobs, 'the first use logs him in')
  await mallory.clearCookies()
  await mallory.addCookies([{ name: 'mcpgw_login_state', value: state, url: publicUrl }])
  await stopped.goto(callback)
  t.match(await stopped.textContent('body'), /this login started too long ago, or in another browser/)
  t.equal(await loginCookie(mallory), undefined)

  // Alice logs in; a second login cookie (bob's, as a page could plant at a longer path) makes her no one.
  const aliceContext = await browser.newContext()
  const alice = await aliceContext.newPage()
  await alice.goto(alicesLink)
  await logIn(alice, idp.issuer, 'alice')
  await alice.waitForFunction(() => document.getElementById('event')?.textContent !== '', null, { timeout: 10_000 })
  const alices = (await loginCookie(aliceContext))!
  const token = new URL(alicesLink).pathname.split('/')[2]!
  const ask = async (cookie: string): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${port}/mcp/${token}/`, { headers: { cookie, accept: 'application/json' } })
    return res.status === 200 ? 'open' : ((await res.json()) as { code: string }).code
  }
  t.equal(await ask(`mcpgw_login=${bobs}; mcpgw_login=${alices}`), 'MCPGW_PROXY_LOGIN_REQUIRED', 'two people\'s logins: no one (never the first one sent)')
  t.equal(await ask(`mcpgw_login=${alices}; mcpgw_login=${alices}`), 'open', 'the same login twice: her')
  const flood = Array.from({ length: 8 }, (_, i) => `mcpgw_login=junk${i}`).join('; ')
  t.equal(await ask(`mcpgw_login=${bobs}; ${flood}; mcpgw_login=${alices}`), 'MCPGW_PROXY_LOGIN_REQUIRED', 'a flood of login cookies hiding a second login: no one (never the first one sent)')

  // Eve signed up at the provider with alice's address, never verified: no login as alice.
  const eve = await (await browser.newContext()).newPage()
  await eve.goto(alicesLink)
  await logIn(eve, idp.issuer, 'eve')
  await eve.waitForSelector('text=MCPGW_LOGIN_FAILED', { timeout: 10_000 })
  t.match(await eve.textContent('body'), /has not verified this person's email address/)
})

t.test('isolated mode: the login happens on the gateway\'s host and reaches the session host through a one-time ticket', async (t) => {
  const { publicUrl, idp, link: linkFor } = await startLoginGateway(t, 'sub', true)
  const link = await linkFor('alice', 'owner')
  const origin = new URL(link).origin
  const token = new URL(link).searchParams.get('mcpgw_link')!
  t.match(origin, new RegExp(`^http://[a-z2-7]{26}\\.localhost:${new URL(publicUrl).port}$`), 'a link on a host of its own')

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const aliceContext = await browser.newContext()
  const alice = await aliceContext.newPage()
  const seen: string[] = []
  alice.on('request', (request) => { seen.push(`${request.url()} ${request.headers().referer ?? ''}`) })
  await alice.goto(link)
  await logIn(alice, idp.issuer, 'alice')
  await alice.waitForFunction(() => document.getElementById('echo')?.textContent !== '' && document.getElementById('event')?.textContent !== '', null, { timeout: 10_000 })
  t.equal(alice.url(), `${origin}/`, 'back on the session host, the address bar holding neither link nor ticket')
  t.equal(await alice.textContent('#echo'), 'echo: round trip')
  t.equal(await alice.textContent('#event'), 'event: hello alice', 'the backend was told who is logged in')
  t.notOk(seen.some((line) => line.startsWith(idp.issuer) && line.includes(token)), 'the provider never saw the link')
  t.same((await aliceContext.cookies(origin)).map((c) => [c.name, c.httpOnly]).sort(), [['mcpgw_person', true], ['mcpgw_session', true]], 'the session host keeps the session and the person, each in an HttpOnly cookie of its own')
  const ticketUrl = seen.map((line) => line.split(' ')[0]!).find((url) => url.startsWith(origin) && url.includes('mcpgw_login='))!
  t.ok(ticketUrl, 'the way back carried a ticket')

  // Eve, without the link, gets a ticket for Alice's host as herself and sends Alice's browser to it:
  // a ticket is taken only by the browser whose round trip it is.
  const eve = await (await browser.newContext()).newPage()
  await eve.goto(`${publicUrl}/_mcpgw/login/host?to=${encodeURIComponent(`${origin}/`)}&bind=${'e'.repeat(43)}`)
  await logIn(eve, idp.issuer, 'eve')
  const evesTicket = eve.url()
  t.match(evesTicket, new RegExp(`^${origin}/\\?mcpgw_login=`), 'she got a ticket for Alice\'s host')
  t.equal((await alice.goto(evesTicket))?.status(), 401, 'Alice\'s browser does not take it')
  await alice.goto(`${origin}/`)
  await alice.waitForFunction(() => document.getElementById('event')?.textContent !== '', null, { timeout: 10_000 })
  t.equal(await alice.textContent('#event'), 'event: hello alice', 'she is still herself')

  // Bob with Alice's link: logged in as himself, refused on her host; her ticket, replayed, opens nothing.
  const bobContext = await browser.newContext()
  const bob = await bobContext.newPage()
  await bob.goto(link)
  await logIn(bob, idp.issuer, 'bob')
  await bob.waitForSelector('text=MCPGW_PROXY_NOT_YOUR_SESSION', { timeout: 10_000 })
  t.equal(new URL(bob.url()).origin, origin)
  t.same(await bob.evaluate(async () => [(await fetch('/events')).status, (await fetch('/anything')).status]), [403, 403], 'his browser opens neither her stream nor her pages')
  await bobContext.clearCookies({ name: 'mcpgw_person' })
  const replay = await bob.goto(ticketUrl)
  t.equal(replay?.status(), 401, 'a ticket is good once')
  t.notOk((await bobContext.cookies(origin)).some((c) => c.name === 'mcpgw_person'), 'and gave him no login on her host')
})

t.test('behind a proxy that serves the gateway under a path, the login\'s addresses keep the path', async (t) => {
  const publicUrl = 'https://example.test/gw'
  const idp = await startTestIdp({ redirectUris: [`${publicUrl}/_mcpgw/login/callback`] })
  t.teardown(() => idp.close())
  const app = await buildGateway(testConfig({
    publicUrl,
    oidc: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, scopes: 'openid email profile', userClaim: 'sub', groupsClaim: 'groups', loginSeconds: 3600 }
  }), { logLevel: 'silent' })
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/_mcpgw/login?return=/mcp/abc/', headers: { 'sec-fetch-site': 'none' } })
  t.equal(res.statusCode, 302)
  const toProvider = new URL(res.headers.location as string)
  t.equal(toProvider.searchParams.get('redirect_uri'), `${publicUrl}/_mcpgw/login/callback`)
  t.match(String(res.headers['set-cookie']), /^__Host-mcpgw_login_state=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=600; Secure$/, 'https: a __Host- state cookie')
  t.equal(res.headers['referrer-policy'], 'no-referrer')
})

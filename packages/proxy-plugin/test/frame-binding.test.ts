import t from 'tap'
import { rawRequest, startBackend, startIsolatedGateway } from './helpers.js'

/**
 * Isolated mode framed by another site (an MCP Apps host): the session cookie is
 * partitioned by the top-level site, so every page of that host shares it, including
 * another app's view. There the cookie alone opens nothing: a framed session page
 * opens only for the embed its link made, which the link's swap marks with a frame
 * ticket bound to the session. Its own in-frame requests (same-origin) and top-level
 * tabs are as before; the ticket never reaches the backend.
 */
const FRAME = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }
const FRAMED_BY_SIBLING = { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }

t.test('a link opened in another site\'s frame: swapped for the cookie and sent to the page with its frame ticket, which opens it there', async (t) => {
  const backend = await startBackend(t)
  const gw = await startIsolatedGateway(t, { frameAncestors: ["'self'", 'https://host.example'] })
  const { host, token, link } = await gw.session(backend)
  const url = new URL(link)
  const swap = await rawRequest(gw.port, `${url.pathname}?page=2&${url.search.slice(1)}`, { headers: { host, ...FRAME } })
  t.equal(swap.status, 303)
  const location = String(swap.headers.location)
  t.match(location, /^\/\?page=2&mcpgw_frame=[\w-]{43}$/, 'the clean URL, with the frame ticket')
  t.notMatch(location, token, 'never the credential')
  const cookie = String(swap.headers['set-cookie']).split(';')[0]!

  const page = await rawRequest(gw.port, location, { headers: { host, cookie, ...FRAME } })
  t.equal(page.status, 200, 'the embed the link made opens')
  t.equal(backend.seen.at(-1)!.url, '/?page=2', 'the backend never sees the ticket')

  // The page's own requests and navigations inside the frame are same-origin.
  const own = await rawRequest(gw.port, '/api', { headers: { host, cookie, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty', referer: `http://${host}${location}` } })
  t.equal(own.status, 200)
  t.equal(backend.seen.at(-1)!.headers.referer, `http://${host}/?page=2`, 'the ticket is taken out of the Referer too')
  const inFrame = await rawRequest(gw.port, '/next', { headers: { host, cookie, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' } })
  t.equal(inFrame.status, 200, 'a navigation the page itself starts inside the frame')
  const reloaded = await rawRequest(gw.port, location, { headers: { host, cookie, ...FRAME } })
  t.equal(reloaded.status, 200, 'the frame reloaded or restored later still opens: the ticket lives as long as the session')
})

t.test('in another site\'s frame the cookie alone opens nothing: no ticket, a wrong one, or another session\'s', async (t) => {
  const backend = await startBackend(t)
  const gw = await startIsolatedGateway(t, { frameAncestors: ["'self'", 'https://host.example'] })
  const alice = await gw.session(backend)
  const bob = await gw.session(backend, { userId: 'bob' })
  const cookie = `mcpgw_session=${alice.token}`
  const bobUrl = new URL(bob.link)
  const bobSwap = await rawRequest(gw.port, bobUrl.pathname + bobUrl.search, { headers: { host: bob.host, ...FRAME } })
  const bobTicket = new URL(String(bobSwap.headers.location), 'http://x').searchParams.get('mcpgw_frame')!
  const before = backend.seen.length
  for (const [what, path, headers] of [
    ['no ticket', '/', FRAME],
    ['framed by another session host', '/', FRAMED_BY_SIBLING],
    ['no destination, read at its strictest', '/', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' }],
    ['an odd destination spelling', '/', { ...FRAME, 'sec-fetch-dest': 'document, iframe' }],
    ['a made-up ticket', `/?mcpgw_frame=${'A'.repeat(43)}`, FRAME],
    ['a truncated ticket', `/?mcpgw_frame=${bobTicket.slice(0, 20)}`, FRAME],
    ['another session\'s ticket', `/?mcpgw_frame=${bobTicket}`, FRAME]
  ] as const) {
    const res = await rawRequest(gw.port, path, { headers: { host: alice.host, cookie, ...headers } })
    t.same([res.status, JSON.parse(res.body).code], [403, 'MCPGW_PROXY_FRAME_UNBOUND'], what)
  }
  t.equal(backend.seen.length, before, 'nothing reached the backend')

  const noCookie = await rawRequest(gw.port, `/?mcpgw_frame=${bobTicket}`, { headers: { host: bob.host, ...FRAME } })
  t.equal(noCookie.status, 401, 'a ticket without the cookie is no credential')
  const tab = await rawRequest(gw.port, '/', { headers: { host: alice.host, cookie, ...FRAME, 'sec-fetch-dest': 'document' } })
  t.equal(tab.status, 200, 'a top-level tab another site opened: as before')
  const plain = await rawRequest(gw.port, '/', { headers: { host: alice.host, cookie } })
  t.equal(plain.status, 200, 'a client without Fetch Metadata: as before')
})

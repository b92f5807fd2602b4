import t from 'tap'
import { rawRequest, startBackend, startIsolatedGateway } from './helpers.js'
import { frameTicket } from '../src/isolation.js'

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

t.test('a ticket of any shape is refused with a code, never a crash, on a session the gateway has not cached yet', async (t) => {
  const backend = await startBackend(t)
  const gw = await startIsolatedGateway(t, { frameAncestors: ["'self'", 'https://host.example'] })
  const { host, token } = await gw.session(backend)
  const cookie = `mcpgw_session=${token}`
  for (const ticket of [`${'A'.repeat(42)}%C3%A9`, '%FF'.repeat(43), `${'A'.repeat(43)}%00`, 'A'.repeat(44)]) {
    const res = await rawRequest(gw.port, `/?mcpgw_frame=${ticket}`, { headers: { host, cookie, ...FRAME } })
    t.same([res.status, JSON.parse(res.body).code], [403, 'MCPGW_PROXY_FRAME_UNBOUND'], `ticket ${ticket.slice(-9)}`)
  }
  const after = await rawRequest(gw.port, '/', { headers: { host, cookie } })
  t.equal(after.status, 200, 'the gateway still answers')
})

t.test('the link and the ticket are read and removed by one parser, in every spelling a browser decodes', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'referrer-policy': 'unsafe-url' })
    res.end(JSON.stringify({ url: req.url }))
  })
  const gw = await startIsolatedGateway(t, { frameAncestors: ["'self'", 'https://host.example'] })
  const { host, token, link } = await gw.session(backend)
  const label = host.split('.')[0]!
  const cookie = `mcpgw_session=${token}`
  const encodedLink = await rawRequest(gw.port, `/?a=1&mcpgw%5Flink=${token}`, { headers: { host } })
  t.equal(encodedLink.status, 303, 'a percent-encoded link name is the link')
  t.equal(encodedLink.headers.location, '/?a=1', 'and it is taken out of the URL the browser is sent to')
  const twice = await rawRequest(gw.port, `/${new URL(link).search}&mcpgw_link=${token}`, { headers: { host } })
  t.same([twice.status, JSON.parse(twice.body).code], [401, 'MCPGW_PROXY_TOKEN_MALFORMED'], 'a link given twice is no link')

  const ticket = frameTicket(token, label)
  const framed = await rawRequest(gw.port, `/p?mcpgw%5Fframe=${ticket}&b=2`, { headers: { host, cookie, ...FRAME } })
  t.equal(framed.status, 200, 'a percent-encoded ticket name is the ticket')
  t.equal(JSON.parse(framed.body).url, '/p?b=2', 'and the backend never sees it')
  t.equal(framed.headers['referrer-policy'], 'same-origin', 'the page whose URL holds the ticket never sends it elsewhere in a Referer')
  t.match(String(framed.headers.vary), /Sec-Fetch-Site, Sec-Fetch-Dest/, 'a browser keeps a framed answer apart from the page\'s own')
  const doubled = await rawRequest(gw.port, `/p?mcpgw_frame=${ticket}&mcpgw_frame=${ticket}`, { headers: { host, cookie, ...FRAME } })
  t.equal(doubled.status, 403, 'a ticket given twice is no ticket')
  const own = await rawRequest(gw.port, '/p', { headers: { host, cookie } })
  t.equal(own.headers['referrer-policy'], 'unsafe-url', 'a page without a ticket in its URL keeps the backend\'s policy (its own origin)')
})

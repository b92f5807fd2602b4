import { eventually } from '@mcp-gw/testkit'
import t from 'tap'
import { rawRequest, startBackend, startGateway } from './helpers.js'

// Path mode: a browser that loads a session's link as a page is sent to a URL without the
// credential (`/mcp/s/<label>/`), the credential kept in an HttpOnly cookie on that path.
// These requests carry the Fetch Metadata a browser sends; browser-path-link.test.ts has Chromium.

const PAGE_LOAD = { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-site': 'none' }
const SAME_ORIGIN_FETCH = { 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty', 'sec-fetch-site': 'same-origin' }
const LABEL_URL = /^\/mcp\/s\/([A-Za-z0-9_-]{22})(\/.*)$/

function cookieOf (setCookie: string[] | undefined): { pair: string, attributes: string } {
  const own = (setCookie ?? []).find((c) => c.startsWith('mcpgw_s='))
  if (own === undefined) throw new Error(`no mcpgw_s cookie in ${JSON.stringify(setCookie)}`)
  const semi = own.indexOf(';')
  return { pair: own.slice(0, semi), attributes: own.slice(semi) }
}

t.test('a page load swaps the link for a cookie under the label; the backend sees neither the token nor the cookie', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend, { ttlSeconds: 600 })

  const swap = await rawRequest(gw.port, `/mcp/${token}/page?x=1&t=${token}`, { headers: PAGE_LOAD })
  t.equal(swap.status, 303)
  const location = String(swap.headers.location)
  const [, label, rest] = LABEL_URL.exec(location) ?? []
  t.ok(label, `sent under a label: ${location}`)
  t.equal(rest, '/page?x=1', 'same page and query, the token taken out of the query too')
  t.notOk(location.includes(token), 'no token in the new URL')
  const { pair, attributes } = cookieOf(swap.headers['set-cookie'])
  t.equal(pair, `mcpgw_s=${token}`)
  t.match(attributes, new RegExp(`Path=/mcp/s/${label!}(;|$)`), 'scoped to the label\'s path')
  t.match(attributes, /HttpOnly/)
  t.match(attributes, /SameSite=Lax/)
  const maxAge = Number(/Max-Age=(\d+)/.exec(attributes)?.[1])
  t.ok(maxAge > 590 && maxAge <= 600, `lives as long as the session (${maxAge} s)`)
  t.equal(swap.headers['referrer-policy'], 'no-referrer')
  t.equal(swap.headers['cache-control'], 'no-store')
  t.equal(backend.seen.length, 0, 'the swap reaches no backend')

  const page = await rawRequest(gw.port, location, { headers: { ...PAGE_LOAD, cookie: `theirs=1; ${pair}` } })
  t.equal(page.status, 200)
  const seen = backend.seen.at(-1)!
  t.equal(seen.url, '/page?x=1')
  t.equal(seen.headers['x-forwarded-prefix'], `/mcp/s/${label!}`, 'the backend builds its URLs under the label')
  t.equal(seen.headers.cookie, 'theirs=1', 'the gateway\'s cookie is not the backend\'s')
  t.notOk(JSON.stringify(seen.headers).includes(token), 'no header the backend gets holds the token')

  // The page's own requests: the same cookie, sent by the browser on the label's path.
  const api = await rawRequest(gw.port, `/mcp/s/${label!}/api/items`, { headers: { ...SAME_ORIGIN_FETCH, cookie: pair, referer: `${gw.origin}${location}` } })
  t.equal(api.status, 200)
  t.equal(backend.seen.at(-1)!.headers.referer, `${backend.origin}/page?x=1`, 'its Referer is the page on the backend\'s own origin')
  const bare = await rawRequest(gw.port, `/mcp/s/${label!}`, { headers: { ...PAGE_LOAD, cookie: pair } })
  t.same([bare.status, bare.headers.location], [308, `/mcp/s/${label!}/`], 'the label alone gets its slash, as the link does')
})

t.test('only a browser loading a page swaps: scripts, POSTs, and other sites\' frames keep the link', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const cases: Array<[string, { method?: string, headers: Record<string, string> }]> = [
    ['a client that sends no Fetch Metadata (curl, a script)', { headers: {} }],
    ['a fetch from a page', { headers: SAME_ORIGIN_FETCH }],
    ['a form POST', { method: 'POST', headers: { ...PAGE_LOAD, 'sec-fetch-site': 'same-origin' } }],
    ['another site\'s frame (an MCP Apps host)', { headers: { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe', 'sec-fetch-site': 'cross-site' } }]
  ]
  for (const [what, options] of cases) {
    const res = await rawRequest(gw.port, `/mcp/${token}/`, options)
    t.equal(res.status, 200, `${what}: proxied as before`)
    t.equal(res.headers['set-cookie'], undefined, `${what}: no cookie`)
    t.equal(backend.seen.at(-1)!.headers['x-forwarded-prefix'], `/mcp/${token}`, `${what}: the backend's URLs stay under the link`)
  }
  // Over plain http on a name other than localhost a browser sends no Fetch Metadata: its page
  // loads are known by asking for HTML with Upgrade-Insecure-Requests (Chromium's navigation headers).
  const insecure = await rawRequest(gw.port, `/mcp/${token}/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8', 'upgrade-insecure-requests': '1' } })
  t.equal(insecure.status, 303, 'a browser\'s page load over plain http swaps too')
  const htmlScript = await rawRequest(gw.port, `/mcp/${token}/`, { headers: { accept: 'text/html' } })
  t.equal(htmlScript.status, 200, 'a script asking for HTML keeps the link')
  const sameOriginFrame = await rawRequest(gw.port, `/mcp/${token}/`, { headers: { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe', 'sec-fetch-site': 'same-origin' } })
  t.equal(sameOriginFrame.status, 303, 'a frame of the gateway\'s own origin swaps like a tab')

  const off = await startGateway(t, { pathLinkSwap: false })
  const offToken = await off.session(backend)
  t.equal((await rawRequest(off.port, `/mcp/${offToken}/`, { headers: PAGE_LOAD })).status, 200, 'pathLinkSwap: false keeps links as they were')
})

t.test('a label opens nothing without its own cookie, and a revoked session\'s cookie opens nothing either', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const tokenA = await gw.session(backend, { userId: 'alice' })
  const tokenB = await gw.session(backend, { userId: 'bob' })
  const swapA = await rawRequest(gw.port, `/mcp/${tokenA}/`, { headers: PAGE_LOAD })
  const swapB = await rawRequest(gw.port, `/mcp/${tokenB}/`, { headers: PAGE_LOAD })
  const atA = String(swapA.headers.location)
  const cookieA = cookieOf(swapA.headers['set-cookie']).pair
  const cookieB = cookieOf(swapB.headers['set-cookie']).pair
  const before = backend.seen.length

  const none = await rawRequest(gw.port, atA, { headers: PAGE_LOAD })
  t.equal(none.status, 401)
  t.match(JSON.parse(none.body), { code: 'MCPGW_PROXY_LINK_NOT_OPENED_HERE' }, 'the label alone (a forwarded address, a screenshot): open the link again')
  const page = await rawRequest(gw.port, atA, { headers: { ...PAGE_LOAD, accept: 'text/html' } })
  t.match(page.body, /opens a session only in the browser that opened its link: open the link again/)
  t.notMatch(page.body, /no longer valid/, 'the link still works: the page does not say otherwise')
  const other = await rawRequest(gw.port, atA, { headers: { ...PAGE_LOAD, cookie: cookieB } })
  t.equal(other.status, 401, 'another session\'s cookie does not open this label')
  t.match(JSON.parse(other.body), { code: 'MCPGW_PROXY_LINK_NOT_OPENED_HERE' })
  const planted = await rawRequest(gw.port, atA, { headers: { ...PAGE_LOAD, cookie: `mcpgw_s=junk; ${cookieB}; mcpgw_s=a.b.c; ${cookieA}` } })
  t.equal(planted.status, 200, 'cookies planted beside the real one do not lock its session out')
  const crossSite = await rawRequest(gw.port, `${atA}api`, { method: 'POST', headers: { 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty', 'sec-fetch-site': 'cross-site', cookie: cookieA } })
  t.equal(crossSite.status, 403, 'another site\'s fetch, cookie or not, is refused as on a session host')
  t.match(JSON.parse(crossSite.body), { code: 'MCPGW_PROXY_CROSS_SITE' })
  t.equal(backend.seen.length, before + 1, 'only the real cookie reached the backend')

  t.equal(await gw.registry.revoke({ userId: 'alice' }), 1)
  // Within the revocation bound (revalidateMs, 2 s by default), as for the link.
  await eventually(async () => (await rawRequest(gw.port, atA, { headers: { ...PAGE_LOAD, cookie: cookieA } })).status === 401, { what: 'the label refused after the revocation', within: 5_000 })
  const revoked = await rawRequest(gw.port, atA, { headers: { ...PAGE_LOAD, cookie: cookieA } })
  t.match(JSON.parse(revoked.body), { code: 'MCPGW_PROXY_TOKEN_REVOKED' }, 'the cookie is the same credential: revocation bites')
  const revokedPage = await rawRequest(gw.port, atA, { headers: { ...PAGE_LOAD, accept: 'text/html', cookie: cookieA } })
  t.match(revokedPage.body, /This link is no longer valid: ask the MCP server for a new link/, 'a revoked link\'s page says to ask for a new one')
})

t.test('what a backend answers under a label stays under it: Location, cookies, absolute-path assets', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/go') {
      res.writeHead(302, { location: '/there', 'set-cookie': ['pref=dark; Path=/', 'mcpgw_s=planted; Path=/'] })
      res.end()
      return
    }
    res.end('ok')
  })
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const swap = await rawRequest(gw.port, `/mcp/${token}/`, { headers: PAGE_LOAD })
  const at = String(swap.headers.location).slice(0, -1)
  const cookie = cookieOf(swap.headers['set-cookie']).pair
  const go = await rawRequest(gw.port, `${at}/go`, { headers: { ...PAGE_LOAD, cookie } })
  t.equal(go.headers.location, `${at}/there`)
  t.same(go.headers['set-cookie'], [`pref=dark; Path=${at}/`], 'the backend\'s cookie scoped to the label; one named like the gateway\'s is dropped')
  const asset = await rawRequest(gw.port, '/static/app.css', { headers: { referer: `${gw.origin}${at}/`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'style' } })
  t.same([asset.status, asset.headers.location], [307, `${at}/static/app.css`], 'an absolute-path asset of a page under a label is sent under it')
})

import t from 'tap'
import { SPOOFED_REQUEST_HEADERS } from '@mcp-gw/testkit'
import { frameworkErrors } from '../src/error-reply.js'
import { rawExchange, rawRequest, startBackend, startGateway, upgradeRequest } from './helpers.js'

/**
 * What a backend is told, on the HTTP path and in the WebSocket handshake alike:
 * never another session's URL in a Referer, never a client's own Forwarded or
 * X-Forwarded-* taken as the gateway's word.
 */
t.test("a Referer naming this session becomes the backend's own URL; one naming another session is dropped", async (t) => {
  const a = await startBackend(t)
  const b = await startBackend(t)
  const gw = await startGateway(t)
  const tokenA = await gw.session(a, { serverName: 'a' })
  const tokenB = await gw.session(b, { serverName: 'b' })

  const cases: Array<[string, string | undefined]> = [
    [`${gw.origin}/mcp/${tokenA}/page?x=1`, undefined],
    [`http://other.example/mcp/${tokenA}/`, undefined],
    [`${gw.origin}/mcp/${tokenB}/page?x=1`, `http://127.0.0.1:${b.port}/page?x=1`],
    [`${gw.origin}/mcp/${tokenB}/list?t=${tokenB}`, `http://127.0.0.1:${b.port}/list`],
    ['https://docs.example/help', 'https://docs.example/help'],
    [`https://docs.example/p?jwt=${tokenA}`, undefined],
    // Not a URL and naming no session: passed on, as a direct connection would.
    ['not a url', 'not a url']
  ]
  for (const [referer, expected] of cases) {
    const label = referer.replace(tokenA, '<A>').replaceAll(tokenB, '<B>')
    const http = await rawRequest(gw.port, `/mcp/${tokenB}/echo`, { headers: { referer } })
    t.equal(JSON.parse(http.body).headers.referer, expected, `HTTP, ${label}`)
    const upgrade = await upgradeRequest(gw.port, `/mcp/${tokenB}/ws`, { headers: { referer } })
    upgrade.socket?.destroy()
    t.equal(upgrade.status, 101)
    t.equal(b.seen.at(-1)?.method, 'UPGRADE')
    t.equal(b.seen.at(-1)?.headers.referer, expected, `upgrade, ${label}`)
  }
  t.equal(a.seen.length, 0)
})

t.test("a client's Forwarded and X-Forwarded-* never reach the backend as the gateway's", async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const spoofed = {
    forwarded: 'for=203.0.113.9;host=admin.example;proto=https',
    'x-forwarded-for': '203.0.113.9',
    'x-forwarded-host': 'admin.example',
    'x-forwarded-proto': 'https',
    'x-forwarded-port': '443',
    'x-forwarded-prefix': '/admin',
    'x-real-ip': '203.0.113.9',
    'x-mcpgw-user-id': 'root'
  }
  const http = JSON.parse((await rawRequest(gw.port, `/mcp/${token}/echo`, { headers: spoofed })).body).headers
  const upgrade = await upgradeRequest(gw.port, `/mcp/${token}/ws`, { headers: spoofed })
  upgrade.socket?.destroy()
  const ws = backend.seen.at(-1)!.headers
  for (const [label, seen] of [['HTTP', http], ['upgrade', ws]] as const) {
    t.same({
      forwarded: seen.forwarded,
      for: seen['x-forwarded-for'],
      host: seen['x-forwarded-host'],
      proto: seen['x-forwarded-proto'],
      port: seen['x-forwarded-port'],
      prefix: seen['x-forwarded-prefix'],
      realIp: seen['x-real-ip'],
      user: seen['x-mcpgw-user-id']
    }, {
      forwarded: undefined,
      for: '127.0.0.1',
      host: `127.0.0.1:${gw.port}`,
      proto: 'http',
      port: undefined,
      prefix: `/mcp/${token}`,
      realIp: undefined,
      user: 'alice'
    }, label)
  }
})

t.test("a client's claims of identity or of the original URL, as front proxies send them, never reach the backend", async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const token = await gw.session(backend)
  const underscored = Object.fromEntries(Object.entries(SPOOFED_REQUEST_HEADERS).map(([name, value]) => [name.replaceAll('-', '_'), value]))
  for (const [spelling, headers] of [['as sent by proxies', SPOOFED_REQUEST_HEADERS], ['with underscores (CGI reads them as dashes)', underscored]] as const) {
    const http = JSON.parse((await rawRequest(gw.port, `/mcp/${token}/echo`, { headers })).body).headers
    const upgrade = await upgradeRequest(gw.port, `/mcp/${token}/ws`, { headers })
    upgrade.socket?.destroy()
    const ws = backend.seen.at(-1)!.headers
    for (const [label, seen] of [['HTTP', http], ['upgrade', ws]] as const) {
      t.same(Object.keys(headers).filter((name) => seen[name] !== undefined), [], `${label}, ${spelling}`)
    }
  }
})

t.test('the URL is read in one canonical form: what the router routes under the prefix is authenticated or refused with a code', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { fastify: { frameworkErrors } })
  const token = await gw.session(backend)

  const encoded = await rawRequest(gw.port, `/%6dcp/${token}/echo`)
  t.equal(encoded.status, 200, 'a percent-encoded prefix letter is the prefix')
  t.equal(JSON.parse(encoded.body).url, '/echo')
  const encodedWs = await upgradeRequest(gw.port, `/%6D%63%70/${token}/ws`)
  encodedWs.socket?.destroy()
  t.equal(encodedWs.status, 101, 'and the same for an upgrade')

  const refusals: Array<[string, number, string]> = [
    ['/%6dcp/x/echo', 401, 'MCPGW_PROXY_TOKEN_MALFORMED'],
    ['/%6dcp/x', 401, 'MCPGW_PROXY_TOKEN_MALFORMED'],
    ['/mcp//x/echo', 401, 'MCPGW_PROXY_TOKEN_MISSING'],
    [`/mcp/${token}/x\\..\\..\\echo`, 400, 'MCPGW_PROXY_BAD_PATH'],
    [`/mcp/${token}/x%5c..%5c..%5cecho`, 400, 'MCPGW_PROXY_BAD_PATH'],
    [`/mcp/${token}/..\\echo`, 400, 'MCPGW_PROXY_BAD_PATH']
  ]
  for (const [path, status, code] of refusals) {
    const res = await rawRequest(gw.port, path)
    t.same([res.status, JSON.parse(res.body).code], [status, code], path.replace(token, '<token>'))
  }
  const seen = backend.seen.map((r) => r.url)
  t.same(seen.filter((u) => u !== '/echo' && u !== '/ws'), [], 'nothing else reached the backend')
  // A request line with a raw backslash, as no HTTP library sends it.
  t.equal(await rawExchange(gw.port, `GET /mcp/${token}/a\\..\\..\\b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), 400)
})

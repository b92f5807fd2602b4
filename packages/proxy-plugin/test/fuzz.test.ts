import fc from 'fast-check'
import t from 'tap'
import { clientErrorHandler, expectationFailed, frameworkErrors, sendError } from '../src/error-reply.js'
import { rawExchange, rawRoundTrip, startBackend, startGateway } from './helpers.js'

// The default run is quick enough for every `pnpm test`; the chaos suite raises it.
const RUNS = Number(process.env.MCPGW_FUZZ_RUNS ?? 300)

const tchar = fc.constantFrom(...'abcxyz019!#$%&\'*+-.^_`|~'.split(''))
const headerName = fc.oneof(
  fc.constantFrom('authorization', 'cookie', 'host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-prefix', 'x-mcpgw-user-id',
    'x-real-ip', 'origin', 'referer', 'upgrade', 'connection', 'content-type', 'accept', 'expect', 'te', 'forwarded'),
  fc.array(tchar, { minLength: 1, maxLength: 20 }).map((c) => c.join(''))
)
const headerValue = fc.oneof(
  fc.string({ maxLength: 80 }).map((s) => s.replace(/[\r\n\0]/g, '')),
  fc.constantFrom('', ' ', 'close', 'keep-alive', 'websocket', 'Upgrade', '../../', 'http://127.0.0.1:1/', 'chunked', '100-continue', 'Bearer x')
)
const segment = fc.oneof(
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.constantFrom('..', '.', '%2e%2e', '%2E.', '%zz', '%', '%00', '', '%2f', '%5c', ';', '~', '%ff%fe', '*', '@', ':80')
)

t.test('fuzzed paths, tokens and headers: never a 5xx from the gateway, never a crash', async (t) => {
  const backend = await startBackend(t)
  // The host settings the proxy's README recommends, as the gateway app has them.
  const gw = await startGateway(t, {
    fastify: { frameworkErrors, clientErrorHandler },
    beforeGateway: (app) => {
      app.setErrorHandler((err, _request, reply) => sendError(reply, err))
      app.server.on('checkExpectation', expectationFailed)
    }
  })
  const good = await gw.session(backend)
  const failures: unknown[] = []
  const onFailure = (err: unknown): void => { failures.push(err) }
  process.on('unhandledRejection', onFailure)
  process.on('uncaughtException', onFailure)
  t.teardown(() => {
    process.off('unhandledRejection', onFailure)
    process.off('uncaughtException', onFailure)
  })

  // Weighted towards the good token, so that most requests reach the backend path.
  const token = fc.oneof(
    { arbitrary: fc.constant(good), weight: 6 },
    fc.nat(good.length - 1).chain((i) => fc.constantFrom('A', '.', '-', '_', '%2e').map((c) => good.slice(0, i) + c + good.slice(i + 1))),
    fc.string({ maxLength: 40 }).map(encodeURIComponent),
    fc.constantFrom('', '.', '..', 'a.b.c', '%2e%2e', good + '.x', good.split('.').slice(0, 2).join('.'))
  )
  const request = fc.record({
    method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PROPFIND', 'get'),
    prefix: fc.oneof({ arbitrary: fc.constant('/mcp/'), weight: 6 }, fc.constantFrom(
      '/mcp//', '//mcp/', '/MCP/', '/mcp/%2e%2e/', '/%6dcp/', '/%6Dcp/', '/m%43P/', '/%6d%63%70/', '/mcp%2f', '/mcp%2F/', '/mcp\\',
      `http://127.0.0.1:${gw.port}/mcp/`, 'http://evil.example/mcp/', 'HTTP://x/%6dcp/'
    )),
    token,
    path: fc.array(segment, { maxLength: 5 }).map((s) => s.join('/')),
    query: fc.oneof(fc.constant(''), fc.string({ maxLength: 20 }).map((s) => '?' + encodeURIComponent(s)), fc.constant('?token=' + good)),
    headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }),
    body: fc.oneof(fc.constant(''), fc.string({ maxLength: 64 }))
  })

  const statuses = new Map<number, number>()
  // fast-check prints its counterexample: with the token masked, as every output must be.
  const masked = (err: Error): Error => new Error(err.message.split(good).join('<token>'))
  await fc.assert(fc.asyncProperty(request, async (r) => {
    const lines = [`${r.method} ${r.prefix}${r.token}/${r.path}${r.query} HTTP/1.1`, `Host: 127.0.0.1:${gw.port}`]
    for (const [name, value] of r.headers) if (name !== 'host' && name !== 'content-length' && name !== 'transfer-encoding') lines.push(`${name}: ${value}`)
    lines.push(`Content-Length: ${Buffer.byteLength(r.body)}`, 'Connection: close')
    const { status, text } = await rawRoundTrip(gw.port, lines.join('\r\n') + '\r\n\r\n' + r.body)
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
    if (status >= 500) return false
    // The echo backend only ever answers 200: every 4xx is the gateway's, and says why with a code.
    // (A HEAD answer has no body to carry one.)
    if (status >= 400 && r.method !== 'HEAD') return /"code":"MCPGW_|<code>MCPGW_/.test(text)
    return true
  }), { numRuns: RUNS, seed: Number(process.env.MCPGW_FUZZ_SEED ?? Date.now() % 2 ** 31) }).catch((err: Error) => { throw masked(err) })

  t.comment(`figure: ${RUNS} requests; statuses ${JSON.stringify(Object.fromEntries(statuses))} (0: closed by Node's parser)`)
  t.same(failures, [], 'no unhandled rejection or exception')
  t.equal((await rawExchange(gw.port, `GET /mcp/${good}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)), 200, 'still serving')
})

// Found by the chaos suite's fuzzer (seed 1101421564): an upgrade outside the prefix, which no
// listener claims, got Node's bare 404 with no body. It is now an ordinary request (what Node
// does with no 'upgrade' listener), answered by the app's routes or its coded not-found.
t.test('an upgrade the gateway does not claim gets the app\'s own, coded answer', async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t, {
    fastify: { frameworkErrors, clientErrorHandler },
    beforeGateway: (app) => { app.get('/health', async () => ({ ok: true })) }
  })
  const good = await gw.session(backend)
  const ask = async (line: string, extra = ''): Promise<{ status: number, text: string }> =>
    await rawRoundTrip(gw.port, `${line}\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: Upgrade\r\nConnection: Upgrade\r\n${extra}\r\n`)
  const notFound = await ask(`GET /MCP/${good}?token=${good} HTTP/1.1`, 'Content-Length: 0\r\n')
  t.equal(notFound.status, 404)
  t.match(notFound.text, /"code":"MCPGW_NOT_FOUND"/, 'the coded not-found body')
  t.notMatch(notFound.text, good, 'which never quotes the token')
  const health = await ask('GET /health HTTP/1.1')
  t.equal(health.status, 200, 'a route of the app answers as it would without the Upgrade header')
  t.match(health.text, /"ok":true/)
  const withBody = await ask('POST /health HTTP/1.1', 'Content-Length: 3\r\n\r\nabc')
  t.equal(withBody.status, 400)
  t.match(withBody.text, /"code":"MCPGW_PROXY_BAD_UPGRADE"/, 'one with a body is refused, coded')
})

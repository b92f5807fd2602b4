import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { verifyRegistrantProof, verifyRegistrantProofs } from '@mcp-gw/protocol'
import { TokenService } from '@mcp-gw/registry'
import { validateOptions } from '../src/options.js'
import { rawRequest, startBackend, startGateway, startIsolatedGateway, upgradeRequest } from './helpers.js'

/**
 * Who may frame a session's pages is the gateway's to say (CSP frame-ancestors,
 * MCP Apps hosts embed them): a backend's own policy may narrow it and never
 * widen it, on an answer and on a refused upgrade, in path and isolated mode.
 */
const WIDE = 'frame-ancestors *'

/** Answers every request, and refuses every upgrade, with a policy that lets anyone frame it. */
async function startFramableBackend (t: Test): Promise<number> {
  // `/deny` and `/sameorigin` also send X-Frame-Options, which any frame-ancestors policy overrides.
  const xfo = (url: string | undefined): string => url === '/deny' ? 'DENY' : url === '/sameorigin' ? 'SAMEORIGIN' : ''
  const server = createServer((req, res) => {
    if (req.url === '/deny-twice' || req.url === '/mixed') {
      // Repeated lines: Node joins them with commas, as any proxy may.
      res.setHeader('content-security-policy', WIDE)
      res.setHeader('x-frame-options', req.url === '/mixed' ? ['SAMEORIGIN', 'DENY'] : ['DENY', 'DENY'])
      res.writeHead(200)
      res.end('<p>page</p>')
      return
    }
    res.writeHead(200, { 'content-security-policy': WIDE, 'content-type': 'text/html', ...(xfo(req.url) !== '' && { 'x-frame-options': xfo(req.url) }) })
    res.end('<p>page</p>')
  })
  server.on('upgrade', (req, socket: Socket) => {
    const line = xfo(req.url) === '' ? '' : `X-Frame-Options: ${xfo(req.url)}\r\n`
    socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Security-Policy: ${WIDE}\r\n${line}Content-Type: text/html\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return (server.address() as AddressInfo).port
}

/** The policies of a Content-Security-Policy field: Node joins repeated lines with commas, as RFC 9110 allows and CSP reads. */
function policies (value: string | string[] | undefined): string[] {
  return value === undefined ? [] : (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(/,\s*/))
}

const WS_HEADERS = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }

t.test('path mode: every answer and refused upgrade carries the gateway\'s frame-ancestors beside the backend\'s', async (t) => {
  const backendPort = await startFramableBackend(t)
  for (const [frameAncestors, expected] of [
    [undefined, "frame-ancestors 'self'"],
    [["'self'", 'https://claude.ai', 'https://*.claudemcpcontent.com'], "frame-ancestors 'self' https://claude.ai https://*.claudemcpcontent.com"]
  ] as const) {
    const gw = await startGateway(t, frameAncestors === undefined ? {} : { frameAncestors: [...frameAncestors] })
    await gw.registry.registerServer({ serverName: 'framed', host: '127.0.0.1', port: backendPort })
    const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'framed' })
    const page = await rawRequest(gw.port, `/mcp/${token}/`)
    t.same(policies(page.headers['content-security-policy']), [WIDE, expected], `HTTP: both policies, so the narrower wins (${expected})`)
    const refused = await upgradeRequest(gw.port, `/mcp/${token}/ws`, { headers: WS_HEADERS })
    t.equal(refused.status, 403)
    t.same(policies(refused.headers['content-security-policy']), [WIDE, expected], 'refused upgrade: the same')
  }
})

t.test("a backend's X-Frame-Options, which the gateway's policy would make browsers ignore, is carried into it", async (t) => {
  const backendPort = await startFramableBackend(t)
  const gw = await startGateway(t, { frameAncestors: ["'self'", 'https://claude.ai'] })
  await gw.registry.registerServer({ serverName: 'framed', host: '127.0.0.1', port: backendPort })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'framed' })
  const ours = "frame-ancestors 'self' https://claude.ai"
  for (const [path, extra] of [['/deny', "frame-ancestors 'none'"], ['/sameorigin', "frame-ancestors 'self'"]] as const) {
    const page = await rawRequest(gw.port, `/mcp/${token}${path}`)
    t.same(policies(page.headers['content-security-policy']), [WIDE, ours, extra], `HTTP ${path}`)
    const refused = await upgradeRequest(gw.port, `/mcp/${token}${path}`, { headers: WS_HEADERS })
    t.same(policies(refused.headers['content-security-policy']), [WIDE, ours, extra], `refused upgrade ${path}`)
  }
  for (const path of ['/deny-twice', '/mixed']) {
    const page = await rawRequest(gw.port, `/mcp/${token}${path}`)
    t.same(policies(page.headers['content-security-policy']), [WIDE, ours, "frame-ancestors 'none'"], `HTTP ${path}: repeated values count as the strictest`)
  }
  const isolated = await startIsolatedGateway(t, { frameAncestors: ["'self'", 'https://claude.ai'] })
  const { host, token: hostToken } = await isolated.session({ port: backendPort } as never)
  const page = await rawRequest(isolated.port, '/deny', { headers: { host, cookie: `mcpgw_session=${hostToken}` } })
  t.same(policies(page.headers['content-security-policy']), [WIDE, ours, "frame-ancestors 'none'"], 'isolated mode too')
})

t.test('isolated mode: the same on a session host', async (t) => {
  const backendPort = await startFramableBackend(t)
  const gw = await startIsolatedGateway(t)
  const { host, token } = await gw.session({ port: backendPort } as never)
  const cookie = `mcpgw_session=${token}`
  const page = await rawRequest(gw.port, '/', { headers: { host, cookie } })
  t.equal(page.status, 200)
  t.same(policies(page.headers['content-security-policy']), [WIDE, "frame-ancestors 'self'"])
  const refused = await upgradeRequest(gw.port, '/ws', { headers: { ...WS_HEADERS, host, cookie } })
  t.equal(refused.status, 403)
  t.same(policies(refused.headers['content-security-policy']), [WIDE, "frame-ancestors 'self'"])
})

t.test('isolated mode framed by other sites: the session cookie is SameSite=None, Secure and Partitioned, so it works in their frame and nowhere else', async (t) => {
  const backend = await startBackend(t)
  for (const [frameAncestors, attributes] of [
    [undefined, 'HttpOnly; SameSite=Lax'],
    [["'self'"], 'HttpOnly; SameSite=Lax'],
    [["'self'", 'https://claude.ai'], 'HttpOnly; Secure; Partitioned; SameSite=None']
  ] as const) {
    const gw = await startIsolatedGateway(t, frameAncestors === undefined ? {} : { frameAncestors: [...frameAncestors] })
    const { host, token } = await gw.session(backend)
    const swap = await rawRequest(gw.port, `/?mcpgw_link=${token}`, { headers: { host } })
    t.equal(swap.status, 303)
    t.match(swap.headers['set-cookie']![0], new RegExp(`^mcpgw_session=[^;]+; Max-Age=\\d+; Path=/; ${attributes}$`), `${JSON.stringify(frameAncestors)}: ${attributes}`)
  }
})

t.test('frameAncestors * (any page holding the link): no policy of ours, a backend\'s own refusal still holds, the isolated cookie is partitioned', async (t) => {
  const backendPort = await startFramableBackend(t)
  const gw = await startGateway(t, { frameAncestors: ['*'] })
  await gw.registry.registerServer({ serverName: 'framed', host: '127.0.0.1', port: backendPort })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'framed' })
  const page = await rawRequest(gw.port, `/mcp/${token}/`)
  t.same(policies(page.headers['content-security-policy']), [WIDE], 'only the backend\'s policy')
  const deny = await rawRequest(gw.port, `/mcp/${token}/deny`)
  t.same(policies(deny.headers['content-security-policy']), [WIDE, "frame-ancestors 'none'"], 'X-Frame-Options: DENY still refuses every frame')
  const refused = await upgradeRequest(gw.port, `/mcp/${token}/ws`, { headers: WS_HEADERS })
  t.same(policies(refused.headers['content-security-policy']), [WIDE], 'refused upgrade: the same')
  const plain = await startBackend(t)
  await gw.registry.registerServer({ serverName: 'plain', host: '127.0.0.1', port: plain.port })
  const second = await gw.registry.createSession({ userId: 'alice', serverName: 'plain' })
  const bare = await rawRequest(gw.port, `/mcp/${second.token}/`)
  t.equal(bare.headers['content-security-policy'], undefined, 'a backend without a policy: none at all')

  const isolated = await startIsolatedGateway(t, { frameAncestors: ['*'] })
  const session = await isolated.session(plain)
  const swap = await rawRequest(isolated.port, `/?mcpgw_link=${session.token}`, { headers: { host: session.host } })
  t.match(swap.headers['set-cookie']![0], /; HttpOnly; Secure; Partitioned; SameSite=None$/, 'isolated mode: the cookie works in other sites\' frames')
})

t.test('frameAncestors takes sources, never anything that could break out of the header', async (t) => {
  t.equal(validateOptions({}).frameAncestors, "frame-ancestors 'self'")
  t.equal(validateOptions({ frameAncestors: ["'none'"] }).frameAncestors, "frame-ancestors 'none'")
  t.equal(validateOptions({ frameAncestors: ['http://host.localhost:8080', 'HTTPS://A.example/'] }).frameAncestors, 'frame-ancestors http://host.localhost:8080 https://a.example')
  t.equal(validateOptions({ frameAncestors: ['*'] }).frameAncestors, '', '* alone: no policy (any page holding the link)')
  for (const bad of [[], ['*', "'self'"], ["'self'", '*'], ['*', 'https://a.example'], ['*.example'], ['https:'], ["'none'", "'self'"], ['https://a.example; script-src *'], ['https://a.example/path'], ['https://a.example,https://b.example'], ['javascript:x'], [42], 'https://a.example']) {
    t.throws(() => validateOptions({ frameAncestors: bad as never }), { code: 'MCPGW_PROXY_INVALID_OPTION' }, JSON.stringify(bad))
  }
})

t.test("the backend learns its registrant's proof with every request and upgrade; a client cannot send one", async (t) => {
  const backend = await startBackend(t)
  const gw = await startGateway(t)
  const secret = 'framing-test-registrant-secret-0123456789'
  await gw.registry.registerServer({ serverName: 'owned', host: '127.0.0.1', port: backend.port, secret })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'owned', serverSecret: secret })
  const ownerHash = createHash('sha256').update(secret).digest('hex')
  const proofKey = gw.registry.tokens.proofKey(ownerHash)
  t.not(proofKey, ownerHash, 'the key is not what the store keeps')
  await rawRequest(gw.port, `/mcp/${token}/`, { headers: { 'x-mcpgw-registrant': 'forged' } })
  const upgrade = await upgradeRequest(gw.port, `/mcp/${token}/ws`, { headers: { ...WS_HEADERS, 'x-mcpgw-registrant': 'forged' } })
  upgrade.socket?.destroy()
  t.equal(upgrade.status, 101)
  t.equal(backend.seen.length, 2)
  for (const [i, seen] of backend.seen.entries()) {
    const identity = { sessionId: String(seen.headers['x-mcpgw-session-id']), userId: 'alice', serverType: 'mcp-webui', scopes: String(seen.headers['x-mcpgw-scopes']).split(',') }
    t.equal(verifyRegistrantProof(seen.headers['x-mcpgw-registrant'], proofKey, identity), true, `${i === 0 ? 'HTTP' : 'upgrade'}: a fresh proof for this identity, with this registration's key, never the forged value`)
    t.equal(verifyRegistrantProof(seen.headers['x-mcpgw-registrant'], proofKey, { ...identity, userId: 'bob' }), false)
    t.equal(verifyRegistrantProof(seen.headers['x-mcpgw-registrant'], ownerHash, identity), false, 'the owner hash (what a leaked store holds) makes no proof')
    t.equal(seen.headers['x-mcpgw-registrant-rotation'], undefined, 'one secret: no rotation proofs')
  }

  const unowned = await startBackend(t)
  await gw.registry.registerServer({ serverName: 'legacy', host: '127.0.0.1', port: unowned.port })
  const legacy = await gw.registry.createSession({ userId: 'alice', serverName: 'legacy' })
  await rawRequest(gw.port, `/mcp/${legacy.token}/`, { headers: { 'x-mcpgw-registrant': 'forged' } })
  t.equal(unowned.seen[0]!.headers['x-mcpgw-registrant'], undefined, 'a registration without a secret: no proof at all')
})

t.test('while its secret rotates, the gateway also vouches under the previous secrets\' proof keys; a client cannot send such proofs', async (t) => {
  const PREVIOUS = 'framing-test-previous-gateway-secret-0123456789'
  const backend = await startBackend(t)
  const gw = await startGateway(t, { previousSecrets: [PREVIOUS] })
  const secret = 'framing-test-registrant-secret-0123456789'
  await gw.registry.registerServer({ serverName: 'owned', host: '127.0.0.1', port: backend.port, secret })
  const { token } = await gw.registry.createSession({ userId: 'alice', serverName: 'owned', serverSecret: secret })
  const ownerHash = createHash('sha256').update(secret).digest('hex')
  const current = gw.registry.tokens.proofKey(ownerHash)
  // What a backend that registered before the rotation holds until its next heartbeat.
  const previous = new TokenService({ secret: PREVIOUS }).proofKey(ownerHash)
  const forged = 'x-mcpgw-registrant-rotation'
  await rawRequest(gw.port, `/mcp/${token}/`, { headers: { [forged]: 'forged', x_mcpgw_registrant_rotation: 'forged' } })
  const upgrade = await upgradeRequest(gw.port, `/mcp/${token}/ws`, { headers: { ...WS_HEADERS, [forged]: 'forged' } })
  upgrade.socket?.destroy()
  t.equal(upgrade.status, 101)
  t.equal(backend.seen.length, 2)
  for (const [i, seen] of backend.seen.entries()) {
    const what = i === 0 ? 'HTTP' : 'upgrade'
    const identity = { sessionId: String(seen.headers['x-mcpgw-session-id']), userId: 'alice', serverType: 'mcp-webui', scopes: String(seen.headers['x-mcpgw-scopes']).split(',') }
    t.equal(verifyRegistrantProof(seen.headers['x-mcpgw-registrant'], current, identity), true, `${what}: X-Mcpgw-Registrant as before, under the current key`)
    t.equal(verifyRegistrantProof(seen.headers['x-mcpgw-registrant'], previous, identity), false)
    t.equal(verifyRegistrantProofs(undefined, seen.headers['x-mcpgw-registrant-rotation'], previous, identity), true, `${what}: the rotation header vouches under the previous key`)
    t.equal(verifyRegistrantProofs(undefined, seen.headers['x-mcpgw-registrant-rotation'], previous, { ...identity, userId: 'bob' }), false)
    t.notMatch(JSON.stringify(seen.headers), /forged/, `${what}: never what a client sent`)
  }
})

t.test('frameAncestors *, path mode: a session page at an opaque origin (inside a sandboxed view) reads its own answers and opens its WebSocket; nothing more', async (t) => {
  const backend = await startBackend(t)
  const open = await startGateway(t, { frameAncestors: ['*'] })
  const closed = await startGateway(t)
  for (const gw of [open, closed]) await gw.registry.registerServer({ serverName: 'framed', host: '127.0.0.1', port: backend.port })
  const opaque = { origin: 'null' }
  const { token } = await open.registry.createSession({ userId: 'alice', serverName: 'framed' })
  const preflight = await rawRequest(open.port, `/mcp/${token}/api`, { method: 'OPTIONS', headers: { ...opaque, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-csrf' } })
  t.equal(preflight.status, 204, 'the preflight is the gateway\'s to answer')
  t.equal(preflight.headers['access-control-allow-origin'], 'null')
  t.equal(preflight.headers['access-control-allow-methods'], 'POST')
  t.equal(preflight.headers['access-control-allow-headers'], 'content-type, x-csrf')
  t.equal(preflight.headers['access-control-allow-credentials'], undefined, 'never with credentials: the URL is the credential')
  const odd = await rawRequest(open.port, `/mcp/${token}/api`, { method: 'OPTIONS', headers: { ...opaque, 'access-control-request-method': 'POST\tX', 'access-control-request-headers': 'a b' } })
  t.same([odd.status, odd.headers['access-control-allow-methods'], odd.headers['access-control-allow-headers']], [204, undefined, undefined], 'what does not read as a method or header names is not echoed')
  const before = backend.seen.length
  const get = await rawRequest(open.port, `/mcp/${token}/api`, { headers: opaque })
  t.equal(get.status, 200)
  t.equal(get.headers['access-control-allow-origin'], 'null', 'its answer is readable by the page')
  t.match(String(get.headers.vary), /Origin/)
  t.equal(backend.seen.length, before + 1, 'the preflights never reached the backend')
  const ws = await upgradeRequest(open.port, `/mcp/${token}/ws`, { headers: { ...WS_HEADERS, ...opaque } })
  ws.socket?.destroy()
  t.equal(ws.status, 101, 'its WebSocket opens')

  const wrong = await rawRequest(open.port, `/mcp/${token.slice(0, -4)}AAAA/api`, { headers: opaque })
  t.equal(wrong.status, 401)
  t.equal(wrong.headers['access-control-allow-origin'], undefined, 'a refusal is not readable')
  const tabbed = await rawRequest(open.port, `/mcp/${token}/api`, { headers: { origin: `http://127.0.0.1:${open.port}` } })
  t.equal(tabbed.headers['access-control-allow-origin'], undefined, 'any other Origin: as before')

  const other = await closed.registry.createSession({ userId: 'alice', serverName: 'framed' })
  const plain = await rawRequest(closed.port, `/mcp/${other.token}/api`, { headers: opaque })
  t.equal(plain.headers['access-control-allow-origin'], undefined, 'without frameAncestors *: no answer is readable from an opaque origin')
  const refusedWs = await upgradeRequest(closed.port, `/mcp/${other.token}/ws`, { headers: { ...WS_HEADERS, ...opaque } })
  t.equal(refusedWs.status, 403, 'nor does its WebSocket open')
})

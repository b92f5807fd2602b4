import { eventually, freePort } from '@mcp-gw/testkit'
import { sessionHostLabel } from '@mcp-gw/registry'
import t from 'tap'
import type { Test } from 'tap'
import { WebSocket } from 'ws'
import type { GatewayConfig } from '../src/config.js'
import { API_KEY, startGateway } from './helpers.js'
import { behindEdge, caddyEdge, cookieScope, EDGE_KEY, forgedWebSocketStatus, frameAncestorsThroughEdge, frontProxyPolicyThroughEdge, isolatedModeThroughEdge, pathLinkSwapThroughEdge, REGISTRANT_SECRET, ROTATION_SECRETS, rotationProofsThroughEdge, send, startEdgeBackend, tokenQueryThroughEdge } from './edge-helpers.js'
import type { BehindEdge } from './edge-helpers.js'

async function pathMode (t: Test, overrides: Partial<GatewayConfig> = {}): Promise<BehindEdge> {
  return await behindEdge(t, overrides, async (gatewayPort) => {
    const port = await freePort()
    return await caddyEdge(t, 'caddy/path-mode.Caddyfile', gatewayPort, port, `http://127.0.0.1:${port}`)
  })
}

t.test('Caddy + forward-auth, path mode: Caddy carries the bytes, the gateway only answers who may go where', async (t) => {
  const { port, gw, backend } = await pathMode(t)
  const { token, session } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
  const host = `127.0.0.1:${port}`
  const res = await send(port, `/mcp/${token}/api/items?x=1`, { host, cookie: 'theirs=1; mcpgw_direct_9=x', 'x-mcpgw-registrant-rotation': 'spoofed', 'x-mcpgw-user-id': 'mallory', 'x-forwarded-prefix': '/elsewhere' })
  t.equal(res.status, 200)
  const seen = JSON.parse(res.body) as { url: string, headers: Record<string, string> }
  t.equal(seen.url, '/api/items?x=1', 'the backend gets its own path')
  t.equal(seen.headers.host, `127.0.0.1:${backend.port}`)
  t.equal(seen.headers['x-mcpgw-user-id'], 'alice', 'the gateway\'s identity, never the client\'s')
  t.equal(seen.headers['x-mcpgw-session-id'], session.sessionId)
  t.match(seen.headers['x-mcpgw-registrant'], /^\d+\.[0-9a-f]{64}$/)
  t.equal(seen.headers['x-mcpgw-registrant-rotation'], undefined, 'no rotation proofs from a gateway with one secret, nor a client\'s own')
  t.equal(seen.headers['x-forwarded-prefix'], `/mcp/${token}`)
  t.equal(seen.headers.cookie, 'theirs=1', 'the gateway\'s cookies stay with the gateway')
  t.equal(seen.headers['x-mcpgw-upstream'], undefined, 'the routing headers are Caddy\'s, not the backend\'s')
  t.equal(gw.app.mcpGateway.metrics.responses['2xx'], 0, 'not one byte through Node')
  t.ok(gw.app.mcpGateway.metrics.forwardAuthAnswers.allowed >= 1)
  await tokenQueryThroughEdge(t, port, token, { host })
  const events = await send(port, `/mcp/${token}/events`, { host, accept: 'text/event-stream' })
  t.equal(events.body, 'data: 1\n\ndata: 2\n\ndata: 3\n\n', 'events pass')
})

t.test('Caddy + forward-auth, path mode: a page load swaps the link for a label and a cookie, which Caddy then carries', async (t) => {
  const { port, gw } = await pathMode(t)
  const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
  await pathLinkSwapThroughEdge(t, port, { host: `127.0.0.1:${port}` }, token, gw.app.mcpGateway)
})

t.test('Caddy + forward-auth, path mode: the gateway\'s frame-ancestors, not a copy in the Caddyfile', async (t) => {
  await frameAncestorsThroughEdge(t, pathMode, false)
})

t.test('Caddy + forward-auth, path mode: refusals before any backend byte are the gateway\'s own answers; a hostile backend is policed', async (t) => {
  const { port, gw, backend } = await pathMode(t)
  const host = `127.0.0.1:${port}`
  const viewer = (await gw.app.mcpRegistry.createSession({ userId: 'bob', serverName: 'todo', scopes: ['view'], serverSecret: REGISTRANT_SECRET })).token
  for (const [what, path, headers, method, status, code] of [
    ['a forged token', '/mcp/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl/api', {}, 'GET', 401, 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    ['a POST on a view-only session', `/mcp/${viewer}/api`, { 'content-type': 'application/json' }, 'POST', 403, 'MCPGW_PROXY_SCOPE_DENIED'],
    ['a Service Worker script', `/mcp/${viewer}/sw.js`, { 'service-worker': 'script' }, 'GET', 403, 'MCPGW_PROXY_SERVICE_WORKER_REFUSED']
  ] as const) {
    const res = await send(port, path, { host, ...headers }, method, method === 'POST' ? '{"a":1}' : undefined)
    t.equal(res.status, status, what)
    t.match(res.body, `"code":"${code}"`, `${what}: the gateway's code`)
  }
  const slash = await send(port, `/mcp/${viewer}`, { host })
  t.equal(slash.status, 308, 'the gateway\'s redirect, relayed')
  const refused = await forgedWebSocketStatus(port)
  t.equal(refused, 401, 'a WebSocket with a forged token: 401')
  t.equal(backend.seen.length, 0, 'the backend saw nothing of any of it')

  const res = await send(port, `/mcp/${viewer}/hostile`, { host })
  t.equal(res.body, 'hostile')
  t.equal(res.headers['service-worker-allowed'], undefined)
  t.equal(res.headers['clear-site-data'], undefined)
  t.equal(res.headers['referrer-policy'], 'same-origin')
  t.match([res.headers['content-security-policy']].flat().join(', '), "frame-ancestors 'self'")
  const cookies = [res.headers['set-cookie']].flat() as string[]
  t.same(cookies.map((c) => cookieScope(c).path?.replace(viewer, '<token>')), ['/mcp/<token>/', '/mcp/<token>/settings', '/mcp/<token>/', '/mcp/<token>/'], 'cookies live under the session\'s prefix, in any spelling')
  t.notOk(cookies.some((c) => cookieScope(c).domain !== null), 'and no Domain widens them')
  const redirect = await send(port, `/mcp/${viewer}/redirect`, { host })
  t.equal(redirect.headers.location, `/mcp/${viewer}/next`, 'a redirect stays inside the session')
})

t.test('Caddy + forward-auth, path mode: the policy corpus gets the gateway\'s verdicts (X-Accel-Redirect, spoofed identity headers)', async (t) => {
  const { port, gw, backend } = await pathMode(t)
  const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
  await frontProxyPolicyThroughEdge(t, port, `/mcp/${token}`, { host: `127.0.0.1:${port}` }, backend)
})

t.test('Caddy + forward-auth: revocation within 2.5 s, an open WebSocket included; a re-registered backend is reached at once', async (t) => {
  const { port, gw, backend } = await pathMode(t)
  const host = `127.0.0.1:${port}`
  const { token, session } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET })
  t.equal((JSON.parse((await send(port, `/mcp/${token}/api`, { host })).body) as { port: number }).port, backend.port)
  await backend.stop()
  const moved = await startEdgeBackend(t)
  await gw.app.mcpRegistry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: moved.port, secret: REGISTRANT_SECRET })
  t.equal((JSON.parse((await send(port, `/mcp/${token}/api`, { host })).body) as { port: number }).port, moved.port, 're-registered on a new port: reached at once')

  const ws = new WebSocket(`ws://127.0.0.1:${port}/mcp/${token}/ws`)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  await gw.app.mcpRegistry.revoke({ sessionId: session.sessionId })
  const revokedAt = Date.now()
  await eventually(async () => (await send(port, `/mcp/${token}/api`, { host })).status === 401, { what: 'the revoked session refused through Caddy', within: 2500, everyMs: 50 })
  t.pass(`refused ${Date.now() - revokedAt} ms after the revocation`)
  const code = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 2700 - (Date.now() - revokedAt)).unref())])
  t.equal(code, 1008, `the open WebSocket closed ${Date.now() - revokedAt} ms after the revocation`)
})

t.test('Caddy + forward-auth, isolated mode: link swapped for a cookie, the cookie authenticates and never reaches the backend', async (t) => {
  const backend = await startEdgeBackend(t)
  const port = await freePort()
  const gw = await startGateway(t, { trustProxy: ['127.0.0.1'], apiKey: API_KEY, forwardAuthKey: EDGE_KEY, wildcardUrl: `http://*.localhost:${port}` })
  await gw.app.mcpRegistry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: backend.port })
  await caddyEdge(t, 'caddy/isolated-mode.Caddyfile', gw.port, port, `http://*.localhost:${port}`)
  const { token, session } = await gw.app.mcpRegistry.createSession({ userId: 'carol', serverName: 'todo' })
  const host = `${sessionHostLabel(session)}.localhost:${port}`
  await isolatedModeThroughEdge(t, { name: 'Caddy', port, host, token }, gw.app.mcpGateway, backend)
})

t.test('Caddy + forward-auth while the gateway\'s secret rotates: the backend gets the rotation proofs too', async (t) => {
  const { port, gw } = await pathMode(t, { jwtSecret: ROTATION_SECRETS.current, jwtPreviousSecrets: [ROTATION_SECRETS.previous] })
  await rotationProofsThroughEdge(t, port, gw.app.mcpRegistry, REGISTRANT_SECRET)
})

import { createServer } from 'node:http'
import type { IncomingHttpHeaders, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { WebSocketServer } from 'ws'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { buildGateway } from '../src/app.js'
import type { BuildOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import type { GatewayConfig } from '../src/config.js'

export const API_KEY = 'gateway-test-api-key-0123456789'
/** What a registrant sends with the API key: the secret that makes it the owner of its server names. */
export const REGISTRANT = { authorization: `Bearer ${API_KEY}`, 'x-mcpgw-server-secret': 'gateway-test-registrant-secret-0123456789' }

export function testConfig (overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...loadConfig({}), port: 0, ...overrides }
}

export async function startGateway (t: Test, overrides: Partial<GatewayConfig> = {}, options: BuildOptions = { logLevel: 'silent' }): Promise<{ app: FastifyInstance, origin: string, port: number }> {
  const app = await buildGateway(testConfig(overrides), options)
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return { app, port, origin: `http://127.0.0.1:${port}` }
}

/** A backend: echo over HTTP, a ticking SSE stream at /events, WebSocket echo. */
export async function startBackend (t: Test): Promise<{ server: Server, port: number }> {
  const server = createServer((req, res) => {
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: hello\n\n')
      return
    }
    res.end(`backend saw ${req.url}`)
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => {
    ws.on('error', () => ws.terminate())
    ws.on('message', (data, binary) => ws.send(data, { binary }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { wss.close(); server.closeAllConnections(); server.close(() => resolve()) }))
  return { server, port: (server.address() as AddressInfo).port }
}

/** An identity-aware proxy's issuer and audience, and its JWKS on 127.0.0.1 (edge-login tests). */
export const ISSUER = 'https://auth.example.test'
export const AUDIENCE = 'gw.example.test'

export async function startJwks (t: Test): Promise<{ url: string, sign: (claims: Record<string, unknown>, options?: { key?: CryptoKey, expiresIn?: string }) => Promise<string>, otherKey: CryptoKey }> {
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const other = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'edge-1', alg: 'ES256', use: 'sig' }
  const server = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    otherKey: other.privateKey,
    // The same kid whatever the key: a forger names the real key's id.
    sign: async (claims, options = {}) => await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'edge-1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime(options.expiresIn ?? '5m').sign(options.key ?? privateKey)
  }
}

/** A session link from the gateway's API, as a registrant holding `secret` asks for it. */
export async function createSessionUrl (port: number, secret: string, body: { userId: string, serverName: string, shareLevel: string, serverType: string }): Promise<{ url: string, shareLevel: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/create-session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mcpgw-server-secret': secret },
    body: JSON.stringify(body)
  })
  return await res.json() as { url: string, shareLevel: string }
}

/** A page that opens a WebSocket and an event stream, and shows what came back. */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>todo</title></head>
<body><h1 id="status">loading</h1><p id="echo"></p><p id="event"></p>
<script>
document.getElementById('status').textContent = 'script ran'
const ws = new WebSocket(location.href.replace(/^http/, 'ws') + 'ws')
ws.onopen = () => ws.send('round trip')
ws.onmessage = (e) => { document.getElementById('echo').textContent = 'echo: ' + e.data }
const events = new EventSource('events')
events.onmessage = (e) => { document.getElementById('event').textContent = 'event: ' + e.data; events.close() }
</script></body></html>`

export interface SeenByApp { url: string, headers: IncomingHttpHeaders }

/**
 * A backend with that page (its event stream greets the logged-in person the gateway names);
 * it records what reaches it, WebSocket handshakes included.
 */
export async function startPageApp (t: Test): Promise<{ port: number, seen: SeenByApp[] }> {
  const seen: SeenByApp[] = []
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers })
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(`data: hello ${decodeURIComponent(String(req.headers['x-mcpgw-login-user']))}\n\n`)
      return
    }
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(PAGE)
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    seen.push({ url: req.url ?? '', headers: req.headers })
    ws.on('message', (data) => ws.send(data.toString()))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { wss.close(); server.closeAllConnections(); server.close(() => resolve()) }))
  return { port: (server.address() as AddressInfo).port, seen }
}

import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { MemoryStore, Registry, parseWildcardUrl, sessionHostLabel, sessionLink } from '@mcp-gw/registry'
import { freePort } from '@mcp-gw/testkit'
import type { RegistryOptions, RegistryStore, ShareLevel } from '@mcp-gw/registry'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { mcpGateway } from '../src/plugin.js'
import { gatewayServerOptions } from '../src/server-options.js'
import type { McpGatewayOptions } from '../src/plugin.js'

export const SECRET = 'proxy-test-secret-0123456789abcdef01234'

export interface SeenRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

export interface Backend {
  port: number
  origin: string
  server: Server
  /** Every request that reached this backend, HTTP and upgrade alike. */
  seen: SeenRequest[]
  wss: WebSocketServer
  connections: number
}

export type BackendHandler = (req: IncomingMessage, res: ServerResponse, body: () => Promise<string>) => void | Promise<void>

/** A backend on 127.0.0.1: echoes requests as JSON unless `handler` answers; WebSocket echo on any path. */
export async function startBackend (t: Test, handler?: BackendHandler, wsOptions: { handleProtocols?: (protocols: Set<string>) => string | false } = {}): Promise<Backend> {
  const seen: SeenRequest[] = []
  const backend = { seen, connections: 0 } as Backend
  const server = createServer((req, res) => {
    const record: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' }
    seen.push(record)
    let bodyPromise: Promise<string> | undefined
    const body = (): Promise<string> => {
      bodyPromise ??= new Promise((resolve, reject) => {
        const chunks: Buffer[] = []
        req.on('data', (c: Buffer) => chunks.push(c))
        req.on('end', () => { record.body = Buffer.concat(chunks).toString(); resolve(record.body) })
        req.on('error', reject)
      })
      return bodyPromise
    }
    if (handler !== undefined) {
      Promise.resolve(handler(req, res, body)).catch((err: Error) => { res.destroy(err) })
      return
    }
    body().then((text) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: text }))
    }, () => res.destroy())
  })
  server.on('connection', () => { backend.connections++ })
  const wss = new WebSocketServer({
    server,
    ...(wsOptions.handleProtocols !== undefined && { handleProtocols: wsOptions.handleProtocols })
  })
  wss.on('headers', (_headers, req) => {
    seen.push({ method: 'UPGRADE', url: req.url ?? '', headers: req.headers, body: '' })
  })
  wss.on('connection', (ws: WebSocket) => {
    // Garbage frames from a hostile client end this socket; they must not end the test process.
    ws.on('error', () => ws.terminate())
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : data.toString()
      if (text.startsWith('close:')) {
        const [, code, reason] = text.split(':')
        ws.close(Number(code), reason)
        return
      }
      ws.send(data, { binary: isBinary })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  backend.port = (server.address() as AddressInfo).port
  backend.origin = `http://127.0.0.1:${backend.port}`
  backend.server = server
  backend.wss = wss
  return backend
}

export interface Gateway {
  app: FastifyInstance
  registry: Registry
  store: RegistryStore
  origin: string
  port: number
  /** Registers `serverName` at the backend and returns a session token for `userId`. */
  session: (backend: Backend | null, options?: { userId?: string, serverName?: string, scopes?: string[], ttlSeconds?: number, shareLevel?: ShareLevel }) => Promise<string>
}

export async function startGateway (
  t: Test,
  options: Partial<McpGatewayOptions> & { fastify?: FastifyServerOptions, store?: RegistryStore, now?: () => number, beforeGateway?: (app: FastifyInstance) => void, previousSecrets?: string[], registryOptions?: RegistryOptions } = {}
): Promise<Gateway> {
  const { fastify: fastifyOptions, store: givenStore, beforeGateway, previousSecrets, registryOptions, ...proxyOptions } = options
  const store = givenStore ?? new MemoryStore(options.now !== undefined ? { now: options.now } : {})
  const registry = new Registry({ secret: SECRET, store, ...(options.now !== undefined && { now: options.now }), ...(previousSecrets !== undefined && { previousSecrets }), ...registryOptions })
  await registry.init()
  const app = Fastify({ logger: false, ...fastifyOptions })
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  beforeGateway?.(app)
  // Whatever a test leaves open (a tunnel, a long-poll), the teardown's close ends it within a second.
  await app.register(mcpGateway, { registry, drainTimeoutMs: 1000, ...proxyOptions })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return {
    app,
    registry,
    store,
    port,
    origin: `http://127.0.0.1:${port}`,
    session: async (backend, opts = {}) => {
      const serverName = opts.serverName ?? 'todoodles'
      if (backend !== null) await registry.registerServer({ serverName, host: '127.0.0.1', port: backend.port })
      const { token } = await registry.createSession({
        userId: opts.userId ?? 'alice',
        serverName,
        ...(opts.scopes !== undefined && { scopes: opts.scopes }),
        ...(opts.ttlSeconds !== undefined && { ttlSeconds: opts.ttlSeconds }),
        ...(opts.shareLevel !== undefined && { shareLevel: opts.shareLevel })
      })
      return token
    }
  }
}

export function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export interface RawResponse {
  status: number
  headers: IncomingMessage['headers']
  body: string
}

/** An HTTP request with its target sent exactly as given (fetch would normalise it). */
export async function rawRequest (port: number, path: string, options: { method?: string, headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const { request } = await import('node:http')
  return await new Promise((resolve, reject) => {
    // A fresh connection each time: a socket the server just refused must never be reused.
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.setTimeout(5000, () => req.destroy(new Error(`no answer to ${options.method ?? 'GET'} within 5 s`)))
    req.on('error', reject)
    req.end()
  })
}

/** Opens a WebSocket; rejects with the HTTP status and body when the upgrade is refused. */
export function openWebSocket (url: string, protocols?: string[], options: { origin?: string } = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // A handshake that hangs fails the test in seconds.
    const ws = new WebSocket(url, protocols, { handshakeTimeout: 5000, ...(options.origin !== undefined && { origin: options.origin }) })
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode, body })))
    })
    ws.once('error', reject)
  })
}

/**
 * Writes `bytes` to the server as they are and returns the status of the first
 * response line, or 0 when the server closed without one. For requests no HTTP
 * client would send.
 */
export async function rawExchange (port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<number> {
  const { connect } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let head = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no answer and no close')) }, timeoutMs)
    const done = (status: number): void => { clearTimeout(timer); socket.destroy(); resolve(status) }
    socket.on('data', (c: Buffer) => {
      head += c.toString('latin1')
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head)
      if (match !== null) done(Number(match[1]))
      else if (head.length > 64) done(-1)
    })
    socket.on('error', () => done(0))
    socket.on('close', () => done(0))
    socket.write(bytes)
  })
}

export interface UpgradeAnswer {
  status: number
  headers: IncomingMessage['headers']
  /** The body of a refusal; empty after a 101. */
  body: string
  /** Open when the gateway switched protocols; the caller ends it. */
  socket: import('node:net').Socket | null
}

/**
 * A WebSocket opening handshake with the given headers (a valid one unless
 * overridden), answered with the status and headers as the client saw them,
 * whether the upgrade was refused or accepted.
 */
export async function upgradeRequest (port: number, path: string, options: { method?: string, headers?: Record<string, string> } = {}): Promise<UpgradeAnswer> {
  const { request } = await import('node:http')
  return await new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      method: options.method ?? 'GET',
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '13',
        ...options.headers
      }
    })
    // A hang fails in seconds, and the socket of an answer that never came is not left open.
    req.setTimeout(5000, () => req.destroy(new Error('no answer to the upgrade within 5 s')))
    req.on('upgrade', (res, socket) => { req.setTimeout(0); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '', socket }) })
    req.on('response', (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, socket: null }))
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * Writes `bytes` and reads until the server closes (or `timeoutMs`): the
 * status (0 when it closed without answering) and the whole answer as text.
 */
export async function rawRoundTrip (port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<{ status: number, text: string }> {
  const { connect } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('the server neither answered in full nor closed')) }, timeoutMs)
    const done = (): void => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString('latin1')
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text)
      resolve({ status: match === null ? 0 : Number(match[1]), text })
    }
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', done)
    socket.on('close', done)
    socket.write(bytes)
  })
}

/** A gateway in isolated mode: sessions on `<label>.localhost:<port>` (Chromium and these tests resolve them to 127.0.0.1). */
export interface IsolatedGateway {
  port: number
  registry: Registry
  wildcardUrl: string
  app: Awaited<ReturnType<typeof Fastify>>
  /** A session for userId on a server registered at `backend`: its host and its link. */
  session: (backend: Backend, options?: { userId?: string, serverName?: string, scopes?: string[], shareLevel?: ShareLevel }) => Promise<{ host: string, link: string, token: string, sessionId: string }>
}

export async function startIsolatedGateway (t: Test, options: { revalidateMs?: number, frameAncestors?: string[], logins?: McpGatewayOptions['logins'] } = {}): Promise<IsolatedGateway> {
  const port = await freePort()
  const wildcardUrl = `http://*.localhost:${port}`
  const store = new MemoryStore()
  const registry = new Registry({ secret: SECRET, store, logins: options.logins !== undefined })
  await registry.init()
  const app = Fastify(gatewayServerOptions({ isolation: { wildcardUrl } }, { logger: false }))
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  await app.register(mcpGateway, { registry, isolation: { wildcardUrl }, drainTimeoutMs: 1000, ...options })
  app.get('/create-session', async () => 'the host app\'s own route')
  await app.listen({ port, host: '127.0.0.1' })
  const wildcard = parseWildcardUrl(wildcardUrl)
  return {
    port: (app.server.address() as AddressInfo).port,
    registry,
    wildcardUrl,
    app,
    session: async (backend, opts = {}) => {
      const serverName = opts.serverName ?? 'todoodles'
      await registry.registerServer({ serverName, host: '127.0.0.1', port: backend.port })
      const { session, token } = await registry.createSession({ userId: opts.userId ?? 'alice', serverName, ...(opts.scopes !== undefined && { scopes: opts.scopes }), ...(opts.shareLevel !== undefined && { shareLevel: opts.shareLevel }) })
      return { host: `${sessionHostLabel(session)}.localhost:${port}`, link: sessionLink(wildcard, session, token), token, sessionId: session.sessionId }
    }
  }
}

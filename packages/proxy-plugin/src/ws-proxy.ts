import { createHash } from 'node:crypto'
import { request as httpRequest, ServerResponse } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Authenticator } from './authenticator.js'
import type { SessionWatch } from './session-watch.js'
import { BadGatewayError, BadUpgradeError, GatewayTimeoutError, NoBackendError, OriginDeniedError } from './errors.js'
import { hangUp, writeSocketError } from './error-reply.js'
import { backendHost, forwardContext, rewriteRequestHeaders, rewriteResponseHeaders, servesOpaqueOrigins } from './headers.js'
import type { NormalizedProxyOptions } from './options.js'
import { backendPath, canonicalPath } from './request-target.js'
import { isUnderWildcard } from './isolation.js'
import { StreamAudit } from './audit.js'

export interface Tunnel {
  token: string
  client: Duplex
  backend: Socket
  /** Its audit, when the trail is on. */
  audit?: StreamAudit
  /** Why our side ended it, for the audit: the session's end, or shutdown. */
  endedBy?: string
}

export interface TunnelSet {
  readonly size: number
  /** Ends every tunnel, sending the client a WebSocket close frame with `code`. */
  closeAll (code: number, reason: string): void
  /** Drops every tunnel's sockets, for clients that never answered the close frame. */
  destroyAll (): void
}

/** The socket an upgrade request arrived on, kept on the raw request while Fastify routes it. */
export interface PendingUpgrade {
  socket: Duplex
  head: Buffer
  /**
   * Stops watching the client socket and gives what it sent meanwhile (a client must wait
   * for the 101, but a hasty one may not). Until then the socket is read, so a client that
   * hangs up during the handshake is seen at once and the backend request dropped.
   */
  release: () => Buffer[]
}

const MAX_EARLY_BYTES = 65_536

function watchClient (socket: Duplex): () => Buffer[] {
  const early: Buffer[] = []
  let bytes = 0
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length
    if (bytes > MAX_EARLY_BYTES) socket.destroy()
    else early.push(chunk)
  }
  const onEnd = (): void => { socket.destroy() }
  socket.on('data', onData)
  socket.once('end', onEnd)
  return () => {
    socket.off('data', onData)
    socket.off('end', onEnd)
    socket.pause()
    return early
  }
}

const kUpgrade = Symbol('mcpgw.upgrade')
type UpgradeRequest = IncomingMessage & { [kUpgrade]?: PendingUpgrade }

/** The upgrade this request asks for, when it came through the server's 'upgrade' event. */
export function pendingUpgrade (request: FastifyRequest): PendingUpgrade | undefined {
  return (request.raw as UpgradeRequest)[kUpgrade]
}

type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean

// One 'upgrade' listener per server, whatever number of gateways share it.
interface Dispatcher { handlers: Set<UpgradeHandler>, routing: (req: IncomingMessage, res: ServerResponse) => void }
const dispatchers = new WeakMap<Server, Dispatcher>()

function dispatcherFor (fastify: FastifyInstance): Set<UpgradeHandler> {
  const server = fastify.server
  const found = dispatchers.get(server)
  if (found !== undefined) return found.handlers
  const dispatcher: Dispatcher = { handlers: new Set(), routing: fastify.routing }
  dispatchers.set(server, dispatcher)
  server.on('upgrade', function mcpGatewayUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer) {
    // An error on a socket nobody listens to would crash the process.
    socket.on('error', () => socket.destroy())
    for (const handler of dispatcher.handlers) if (handler(req, socket, head)) return
    // Not ours, and nobody else listens for upgrades: what Node does without an 'upgrade'
    // listener, an ordinary request (the Upgrade header ignored), answered by the app's routes
    // or its coded not-found. A request with a body is refused: its bytes are past the parser.
    if (server.listenerCount('upgrade') !== 1) return
    const h = req.headers
    if ((req.method !== 'GET' && req.method !== 'HEAD') || h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')) {
      writeSocketError(socket, new BadUpgradeError(), h.accept)
      return
    }
    answerAsRequest(req, socket, dispatcher.routing)
  })
  return dispatcher.handlers
}

/** Routes an upgrade request through Fastify as an ordinary request, on a socket no further request is read from. */
function answerAsRequest (req: IncomingMessage, socket: Duplex, routing: Dispatcher['routing']): void {
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket as Socket)
  res.once('finish', () => hangUp(socket))
  routing(req, res)
}

const WS_KEY = /^[A-Za-z0-9+/]{22}==$/
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/**
 * RFC 6455 4.2.1: the only upgrade the proxy carries is a WebSocket opening
 * handshake: GET, `Upgrade: websocket`, a 16-byte key, version 13, no body.
 * Anything else (`POST` with `Upgrade: h2c`, say) would otherwise become a raw
 * tunnel past every method and scope rule.
 */
export function isWebSocketHandshake (req: IncomingMessage): boolean {
  const h = req.headers
  return req.method === 'GET' &&
    typeof h.upgrade === 'string' && h.upgrade.trim().toLowerCase() === 'websocket' &&
    typeof h['sec-websocket-key'] === 'string' && WS_KEY.test(h['sec-websocket-key']) &&
    h['sec-websocket-version'] === '13' &&
    h['transfer-encoding'] === undefined && (h['content-length'] === undefined || h['content-length'] === '0')
}

function acceptFor (key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64')
}

/** A WebSocket close frame, server to client (unmasked). */
function closeFrame (code: number, reason: string): Buffer {
  const text = Buffer.from(reason.slice(0, 120))
  const frame = Buffer.alloc(4 + text.length)
  frame[0] = 0x88
  frame[1] = 2 + text.length
  frame.writeUInt16BE(code, 2)
  text.copy(frame, 4)
  return frame
}

function endWithClose (tunnel: Tunnel, code: number, reason: string, endedBy: string): void {
  tunnel.endedBy ??= endedBy
  tunnel.backend.unpipe(tunnel.client)
  tunnel.backend.destroy()
  if (tunnel.client.writable) tunnel.client.end(closeFrame(code, reason))
  else tunnel.client.destroy()
}

/**
 * Browsers send Origin on every WebSocket handshake; a page of the gateway's own
 * origin matches the Host it connected to (or, behind a trusted proxy, the
 * forwarded host). Clients that send no Origin are not browsers.
 */
export function originAllowed (origin: string | undefined, hosts: Array<string | undefined>, allowed: readonly string[] | '*'): boolean {
  if (origin === undefined || allowed === '*') return true
  let parsed: URL
  try {
    parsed = new URL(origin)
  } catch {
    return false
  }
  return hosts.includes(parsed.host) || allowed.includes(parsed.origin)
}

// Framing headers of a refused handshake's answer: Fastify frames the relayed body itself.
const REFUSAL_DROPPED = new Set(['transfer-encoding', 'content-length'])

export interface WebSocketProxy {
  tunnels: TunnelSet
  /** The route handler's half: runs after token-auth and discovery have admitted the request. */
  tunnel (request: FastifyRequest, reply: FastifyReply, upgrade: PendingUpgrade): Promise<void>
}

/**
 * Upgrades under the prefix are routed through Fastify like any request, so the
 * same onRequest hooks (token-auth, discovery, and whatever the host adds)
 * admit or refuse them, and a refusal is the same coded answer. The proxy's
 * route then opens the backend handshake and, on a 101 whose
 * Sec-WebSocket-Accept is right, joins the two sockets byte for byte, so
 * frames, subprotocols, close codes and ping/pong pass as they are. A backend
 * that refuses the upgrade gets its answer relayed like any response. Both
 * answers pass the one response-header policy. Tunnels whose session is
 * revoked or expires are closed with 1008.
 */
export function attachWebSocketProxy (fastify: FastifyInstance, options: NormalizedProxyOptions, authenticator: Authenticator, sessionCookie: string | null, watch: SessionWatch): WebSocketProxy {
  const { prefix } = options
  // Open tunnels, for shutdown and metrics (revocation finds them by session through SessionWatch).
  const open = new Set<Tunnel>()
  const closing = { value: false }

  const wildcard = options.isolation
  const handler: UpgradeHandler = (req, socket, head) => {
    // Under the wildcard domain, an upgrade is the session-host context's, whatever its path.
    const onSessionDomain = wildcard !== null && isUnderWildcard(wildcard, req)
    if (sessionCookie !== null) {
      if (!onSessionDomain) return false
    } else {
      if (onSessionDomain) return false
      const url = canonicalPath(req.url ?? '/')
      if (url !== prefix && !url.startsWith(`${prefix}/`) && !url.startsWith(`${prefix}?`)) return false
    }
    if (!isWebSocketHandshake(req)) {
      writeSocketError(socket, new BadUpgradeError(), req.headers.accept)
      return true
    }
    ;(req as UpgradeRequest)[kUpgrade] = { socket, head, release: watchClient(socket) }
    // Nothing reads another request from this socket: whatever Fastify answers, it is the last.
    answerAsRequest(req, socket, fastify.routing)
    return true
  }

  async function tunnel (request: FastifyRequest, reply: FastifyReply, { socket, head, release }: PendingUpgrade): Promise<void> {
    const req = request.raw
    // A session page at an opaque origin (path mode, frameAncestors `*`) holds its credential in the URL.
    const opaque = sessionCookie === null && servesOpaqueOrigins(req.headers, options)
    if (!opaque && !originAllowed(req.headers.origin, [req.headers.host, request.host], options.wsAllowedOrigins)) throw new OriginDeniedError()
    const target = request.mcpTarget!
    const backend = request.mcpBackend!
    const ctx = forwardContext(request, options, sessionCookie, authenticator.proofFor)
    const headers = rewriteRequestHeaders(req.headers, ctx, true)
    headers.host = backendHost(backend)
    const path = backendPath(target, options.forwardToken)
    const send = backend.protocol === 'https' ? httpsRequest : httpRequest
    const proxyReq = send({ host: backend.host, port: backend.port, path, method: 'GET', headers, agent: false })

    // The handshake is open on the session too: a revocation while the backend has not answered
    // refuses it (the route's error answer) instead of letting a late 101 through.
    const pending = { cut: (refusal: Error) => { proxyReq.destroy(refusal) } }
    watch.add(target.token, pending)
    await new Promise<void>((resolve, reject) => {
      socket.once('close', () => proxyReq.destroy())
      proxyReq.setTimeout(options.wsHandshakeTimeoutMs, () => {
        proxyReq.destroy(new GatewayTimeoutError())
      })
      proxyReq.on('error', (err) => {
        const { code, statusCode } = err as { code?: string, statusCode?: number }
        // Our own refusals (the handshake timeout, the session's end) as they are.
        if (code === 'MCPGW_PROXY_GATEWAY_TIMEOUT' || code === 'MCPGW_PROXY_SHUTTING_DOWN' || statusCode === 401) reject(err)
        else reject(code === 'ECONNREFUSED' ? new NoBackendError({ cause: err }) : new BadGatewayError({ cause: err }))
      })
      proxyReq.on('response', (res) => {
        // The backend answered without upgrading: relay its answer like any response, then hang up.
        proxyReq.setTimeout(0)
        const status = res.statusCode ?? 0
        if (status < 200 || status > 599) {
          // Not a final HTTP status (a 600, a 000, a 101 without Upgrade): nothing a client can be told.
          res.destroy()
          reject(new BadGatewayError())
          return
        }
        const out: IncomingHttpHeaders = {}
        for (const name of Object.keys(res.headers)) if (!REFUSAL_DROPPED.has(name)) out[name] = res.headers[name]
        reply.code(status).headers(rewriteResponseHeaders(out, ctx)).send(res)
        resolve()
      })
      proxyReq.on('upgrade', (res, backendSocket, backendHead) => {
        proxyReq.setTimeout(0)
        if (socket.destroyed) {
          backendSocket.destroy()
          resolve()
          return
        }
        if (res.headers['sec-websocket-accept'] !== acceptFor(req.headers['sec-websocket-key']!)) {
          // Not a WebSocket server speaking to this handshake: never splice the sockets.
          backendSocket.destroy()
          reject(new BadGatewayError())
          return
        }
        reply.hijack()
        const policed = rewriteResponseHeaders(res.headers, ctx, true)
        const lines = ['HTTP/1.1 101 Switching Protocols']
        for (const name of Object.keys(policed)) {
          const value = policed[name]!
          for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`)
        }
        socket.write(lines.join('\r\n') + '\r\n\r\n')
        if (backendHead.length > 0) socket.write(backendHead)
        if (head.length > 0) backendSocket.write(head)
        for (const chunk of release()) backendSocket.write(chunk)
        const audit = authenticator.registry.audit
        join({ token: target.token, client: socket, backend: backendSocket, ...(audit.enabled && { audit: new StreamAudit(audit, request, 'websocket') }) })
        resolve()
      })
      proxyReq.end()
    }).finally(() => { watch.remove(target.token, pending) })
  }

  function join (tunnel: Tunnel): void {
    const { client, backend } = tunnel
    backend.setNoDelay(true)
    backend.setTimeout(0)
    if ('setNoDelay' in client) (client as Socket).setNoDelay(true)
    if ('setTimeout' in client) (client as Socket).setTimeout(0)
    open.add(tunnel)
    // Revocation and expiry close the tunnel with 1008 (SessionWatch).
    const onSession = { cut: () => endWithClose(tunnel, 1008, 'session ended', 'session') }
    watch.add(tunnel.token, onSession)
    // Bytes the client sent and was sent through the tunnel (the handshake left out).
    const counted = client as Partial<Socket>
    const read0 = counted.bytesRead ?? 0
    const written0 = counted.bytesWritten ?? 0
    let endedBy: string | undefined
    client.once('end', () => { endedBy ??= 'client' })
    backend.once('end', () => { endedBy ??= 'backend' })
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      tunnel.audit?.closed((counted.bytesRead ?? 0) - read0, (counted.bytesWritten ?? 0) - written0, tunnel.endedBy ?? endedBy ?? 'client')
      watch.remove(tunnel.token, onSession)
      open.delete(tunnel)
      client.destroy()
      backend.destroy()
    }
    backend.on('error', close)
    client.on('error', close)
    backend.on('close', close)
    client.on('close', close)
    // A side that half-closes is done: pipe() passes its FIN on, and our own end
    // of that socket is ended too, so neither is left in CLOSE-WAIT (the server's
    // sockets allow half-open connections).
    client.once('end', () => client.end())
    backend.once('end', () => backend.end())
    backend.pipe(client)
    client.pipe(backend)
    // A handshake that completed after the server began closing: told at once, like the others.
    if (closing.value) endWithClose(tunnel, 1001, 'server shutting down', 'shutdown')
  }

  const handlers = dispatcherFor(fastify)
  handlers.add(handler)
  fastify.addHook('onClose', (_instance, done) => {
    handlers.delete(handler)
    done()
  })

  return {
    tunnel,
    tunnels: {
      get size () { return open.size },
      closeAll (code, reason) {
        closing.value = true
        for (const tunnel of open) endWithClose(tunnel, code, reason, 'shutdown')
      },
      destroyAll () {
        for (const tunnel of open) {
          tunnel.client.destroy()
          tunnel.backend.destroy()
        }
      }
    }
  }
}

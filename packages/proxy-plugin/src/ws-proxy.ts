import { request as httpRequest } from 'node:http'
import type { IncomingMessage, Server } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Authenticator } from './authenticator.js'
import { clientFacts } from './client-facts.js'
import type { TrustFunction } from './client-facts.js'
import { BadGatewayError, GatewayTimeoutError, OriginDeniedError } from './errors.js'
import { writeSocketError } from './error-reply.js'
import { forwardContext, rewriteRequestHeaders } from './headers.js'
import type { NormalizedProxyOptions } from './options.js'
import { parseTarget, stripTokenFromQuery } from './request-target.js'

export interface Tunnel {
  token: string
  client: Duplex
  backend: Socket
}

export interface TunnelSet {
  readonly size: number
  /** Ends every tunnel, sending the client a WebSocket close frame with `code`. */
  closeAll (code: number, reason: string): void
}

interface WsProxyContext {
  options: NormalizedProxyOptions
  authenticator: Authenticator
  trust: TrustFunction
}

type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean

// One 'upgrade' listener per server, whatever number of gateways share it.
const dispatchers = new WeakMap<Server, Set<UpgradeHandler>>()

function dispatcherFor (server: Server): Set<UpgradeHandler> {
  let handlers = dispatchers.get(server)
  if (handlers !== undefined) return handlers
  const set = new Set<UpgradeHandler>()
  handlers = set
  dispatchers.set(server, set)
  server.on('upgrade', function mcpGatewayUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer) {
    // An error on a socket nobody listens to would crash the process.
    socket.on('error', () => socket.destroy())
    for (const handler of set) if (handler(req, socket, head)) return
    // Not ours. If nobody else listens for upgrades, answer rather than leave it hanging.
    if (server.listenerCount('upgrade') === 1) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    }
  })
  return set
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

function endWithClose (tunnel: Tunnel, code: number, reason: string): void {
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
function originAllowed (origin: string | undefined, hosts: Array<string | undefined>, allowed: readonly string[] | '*'): boolean {
  if (origin === undefined || allowed === '*') return true
  let parsed: URL
  try {
    parsed = new URL(origin)
  } catch {
    return false
  }
  return hosts.includes(parsed.host) || allowed.includes(parsed.origin)
}

/**
 * Owns WebSocket upgrades under the prefix: authenticates exactly like HTTP,
 * then opens the backend handshake and, on its 101, joins the two sockets
 * byte for byte, so frames, subprotocols, close codes and ping/pong pass as
 * they are. A backend that refuses the upgrade gets its HTTP answer relayed.
 * Tunnels whose session is revoked or expires are closed with 1008.
 */
export function attachWebSocketProxy (fastify: FastifyInstance, ctx: WsProxyContext): TunnelSet {
  const { options, authenticator, trust } = ctx
  const { prefix } = options
  const byToken = new Map<string, Set<Tunnel>>()
  let count = 0

  const handler: UpgradeHandler = (req, socket, head) => {
    let target
    try {
      target = parseTarget(req.url ?? '/', prefix)
    } catch (err) {
      writeSocketError(socket, err, req.headers.accept)
      return true
    }
    if (target === null) return false
    upgrade(req, socket, head, target.token, (target.path || '/') + (options.forwardToken ? target.search : stripTokenFromQuery(target.search, target.token)))
      .catch((err: unknown) => writeSocketError(socket, err, req.headers.accept))
    return true
  }

  async function upgrade (req: IncomingMessage, socket: Duplex, head: Buffer, token: string, path: string): Promise<void> {
    const facts = clientFacts(req, trust)
    if (!originAllowed(req.headers.origin, [req.headers.host, facts.host], options.wsAllowedOrigins)) throw new OriginDeniedError()
    const session = authenticator.sessions.peek(token) ?? await authenticator.sessions.get(token)
    const backend = authenticator.routes.peek(session.serverName) ?? await authenticator.routes.get(session.serverName)
    if (socket.destroyed) return
    authenticator.touch(session)

    const headers = rewriteRequestHeaders(req.headers, forwardContext(facts, session, token, prefix, options.forwardToken), true)
    headers.host = `${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}`
    const send = backend.protocol === 'https' ? httpsRequest : httpRequest
    const proxyReq = send({ host: backend.host, port: backend.port, path, method: 'GET', headers, agent: false })

    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => { reject(err) }
      socket.once('close', () => proxyReq.destroy())
      proxyReq.setTimeout(options.wsHandshakeTimeoutMs, () => {
        proxyReq.destroy(new GatewayTimeoutError())
      })
      proxyReq.on('error', (err) => {
        fail((err as { code?: string }).code === 'MCPGW_PROXY_GATEWAY_TIMEOUT' ? err : new BadGatewayError({ cause: err }))
      })
      proxyReq.on('response', (res) => {
        // The backend answered without upgrading: relay its answer, then hang up.
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size <= 65_536) chunks.push(chunk)
        })
        res.on('error', () => fail(new BadGatewayError()))
        res.on('end', () => {
          const body = Buffer.concat(chunks)
          const lines = [`HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}`]
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            const name = res.rawHeaders[i]!.toLowerCase()
            if (name === 'content-length' || name === 'transfer-encoding' || name === 'connection') continue
            lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`)
          }
          lines.push(`Content-Length: ${body.length}`, 'Connection: close')
          socket.end(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), body]))
          resolve()
        })
      })
      proxyReq.on('upgrade', (res, backendSocket, backendHead) => {
        proxyReq.setTimeout(0)
        if (socket.destroyed) {
          backendSocket.destroy()
          resolve()
          return
        }
        const lines = ['HTTP/1.1 101 Switching Protocols']
        for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`)
        socket.write(lines.join('\r\n') + '\r\n\r\n')
        if (backendHead.length > 0) socket.write(backendHead)
        if (head.length > 0) backendSocket.write(head)
        join({ token, client: socket, backend: backendSocket })
        resolve()
      })
      proxyReq.end()
    })
  }

  function join (tunnel: Tunnel): void {
    const { client, backend } = tunnel
    backend.setNoDelay(true)
    backend.setTimeout(0)
    if ('setNoDelay' in client) (client as Socket).setNoDelay(true)
    if ('setTimeout' in client) (client as Socket).setTimeout(0)
    let set = byToken.get(tunnel.token)
    if (set === undefined) {
      set = new Set()
      byToken.set(tunnel.token, set)
    }
    set.add(tunnel)
    count++
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      count--
      client.destroy()
      backend.destroy()
      const peers = byToken.get(tunnel.token)
      peers?.delete(tunnel)
      if (peers?.size === 0) byToken.delete(tunnel.token)
    }
    backend.on('error', close)
    client.on('error', close)
    backend.on('close', close)
    client.on('close', close)
    backend.pipe(client)
    client.pipe(backend)
  }

  // Revocation and expiry reach open WebSockets too, within the same bound as requests.
  const sweep = setInterval(() => {
    for (const [token, tunnels] of byToken) {
      authenticator.sessions.get(token).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 401) return
        for (const tunnel of tunnels) endWithClose(tunnel, 1008, 'session ended')
      })
    }
  }, Math.max(options.revalidateMs, 250))
  sweep.unref()

  const handlers = dispatcherFor(fastify.server)
  handlers.add(handler)
  fastify.addHook('onClose', (_instance, done) => {
    clearInterval(sweep)
    handlers.delete(handler)
    done()
  })

  return {
    get size () { return count },
    closeAll (code, reason) {
      for (const tunnels of byToken.values()) for (const tunnel of tunnels) endWithClose(tunnel, code, reason)
    }
  }
}

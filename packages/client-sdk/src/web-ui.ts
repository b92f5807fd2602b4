import { DEFAULT_SERVER_TYPE, LOGIN_USER_HEADER } from '@mcp-gw/protocol'
import type { IncomingHttpHeaders, IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { GatewayClient } from './client.js'
import { InvalidOptionError, PortRangeExhaustedError } from './errors.js'
import { answerLinkHelper } from './link-helper.js'

export interface StartWebUIOptions {
  /** Inclusive. Default [12000, 13000]. */
  portRange?: [number, number]
  /** Address to listen on. Default 127.0.0.1. */
  host?: string
  /** Address the gateway should dial (a container's IP when listening on 0.0.0.0). Default: `host`. */
  advertiseHost?: string
  /** Register the bound port with the gateway (in the background; see `client.ready`). */
  client?: GatewayClient
}

export interface WebUIHandle {
  server: Server
  host: string
  port: number
  /** Stops listening and deregisters. */
  close (): Promise<void>
}

function tryListen (server: Server, port: number, host: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false)
      else reject(err)
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve(true)
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, host)
  })
}

/**
 * Binds the UI to a free port in the range (trying each once, starting at a
 * random one, and never connecting to any other server), and starts registering
 * it; returns as soon as the port is bound.
 */
export async function startWebUI (target: Server | RequestListener, options: StartWebUIOptions = {}): Promise<WebUIHandle> {
  const [low, high] = options.portRange ?? [12000, 13000]
  if (!Number.isInteger(low) || !Number.isInteger(high) || low < 1 || high > 65535 || low > high) {
    throw new InvalidOptionError('portRange', 'expected [low, high] within 1-65535')
  }
  const host = options.host ?? '127.0.0.1'
  const server = typeof target === 'function' ? createServer(target) : target
  const client = options.client
  if (client !== undefined) {
    // The gateway's instance probe, and the browser helper that tells a page its link died
    // (`<script src=".well-known/mcp-gw/link.js" defer>`), are answered before the UI's own handlers.
    const handlers = server.listeners('request') as RequestListener[]
    server.removeAllListeners('request')
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (client.answerInstanceProbe(req, res) || answerLinkHelper(client, req, res)) return
      for (const handler of handlers) handler.call(server, req, res)
    })
  }
  const size = high - low + 1
  const start = Math.floor(Math.random() * size)
  let port = 0
  for (let i = 0; i < size; i++) {
    const candidate = low + ((start + i) % size)
    if (await tryListen(server, candidate, host)) {
      port = (server.address() as AddressInfo).port
      break
    }
  }
  if (port === 0) throw new PortRangeExhaustedError(low, high)
  // Registration goes on in the background (client.ready, client.state and its events tell
  // how it goes): an MCP server that starts its UI before answering `initialize` is not held up.
  options.client?.register({ host: options.advertiseHost ?? host, port }).catch(() => {})
  return {
    server,
    host,
    port,
    close: async () => {
      await options.client?.deregister(1500).catch(() => {})
      server.closeAllConnections?.()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/**
 * Where the UI lives as the browser sees it: the gateway's X-Forwarded-Prefix plus a slash
 * (`/mcp/s/<label>/` for a page a browser opened from its link, `/mcp/<token>/` for other
 * clients), or `/` when served directly. Use it for absolute links and WebSocket URLs.
 */
export function publicBasePath (headers: IncomingHttpHeaders): string {
  const prefix = headers['x-forwarded-prefix']
  const value = Array.isArray(prefix) ? prefix[0] : prefix
  if (value === undefined || !/^\/[A-Za-z0-9._~\-/]*$/.test(value)) return '/'
  return value.endsWith('/') ? value : `${value}/`
}

export interface GatewayIdentity {
  userId: string
  sessionId: string
  serverType: string
  scopes: string[]
  /**
   * On a session bound to a person (share level owner or authenticated): who is logged in to
   * the gateway (X-Mcpgw-Login-User), as the gateway maps people to user ids. Absent otherwise.
   */
  loginUser?: string
}

/**
 * Who the gateway authenticated for this request (its X-MCPGW-* headers), or
 * null when the request did not come through a gateway. Trust it only when the
 * UI is reachable through the gateway alone (listen on loopback or a private
 * network): the gateway drops these headers from clients and sets its own.
 */
export function gatewayIdentity (headers: IncomingHttpHeaders): GatewayIdentity | null {
  const one = (name: string): string | undefined => {
    const value = headers[name]
    return Array.isArray(value) ? value[0] : value
  }
  const user = one('x-mcpgw-user-id')
  const sessionId = one('x-mcpgw-session-id')
  if (user === undefined || sessionId === undefined) return null
  let userId: string
  try {
    userId = decodeURIComponent(user)
  } catch {
    return null
  }
  let loginUser: string | undefined
  try {
    const login = one(LOGIN_USER_HEADER)
    loginUser = login === undefined ? undefined : decodeURIComponent(login)
  } catch {
    return null
  }
  return {
    userId,
    sessionId,
    serverType: one('x-mcpgw-server-type') ?? DEFAULT_SERVER_TYPE,
    scopes: (one('x-mcpgw-scopes') ?? '').split(',').filter((s) => s.length > 0),
    ...(loginUser !== undefined && { loginUser })
  }
}

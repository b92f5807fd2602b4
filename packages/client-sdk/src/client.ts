import { randomBytes, timingSafeEqual } from 'node:crypto'
import {
  GatewayRequestError, GatewayUnauthorizedError, GatewayUnreachableError, InvalidOptionError, NotRegisteredError, gatewayCodeOf
} from './errors.js'
import { stderrLogger } from './logger.js'
import type { Logger } from './logger.js'

export interface GatewayClientOptions {
  /** Unique per MCP server: sessions are isolated per `userId:serverName:serverType`. */
  serverName: string
  /** Default `mcp-webui`. */
  serverType?: string
  /** Default: MCP_WEB_UI_GATEWAY_URL. Without it (or with MCP_WEB_UI_USE_GATEWAY=false) the client works in direct mode. */
  gatewayUrl?: string
  /** Default: MCP_WEB_UI_GATEWAY_API_KEY. */
  apiKey?: string
  /** Default: MCP_WEB_UI_USE_GATEWAY (`true` when a gateway URL is set). */
  useGateway?: boolean
  /** Logs go here; default JSON lines on stderr, never stdout. */
  logger?: Logger
  /** How long register() keeps retrying an unreachable gateway before it rejects. Default 10000. */
  registerTimeoutMs?: number
  /** Session lifetime in direct mode. Default 3600. */
  directSessionTtlSeconds?: number
  /**
   * This server's registrant secret (32 to 256 visible ASCII characters). Default:
   * MCP_WEB_UI_SERVER_SECRET, else one made per process. Sessions are bound to the
   * registrant that asked for them: give the same secret across restarts to keep
   * handed-out links working after one (the gateway refuses another secret for the
   * name until the old registration lapses).
   */
  serverSecret?: string
  /** Environment to read defaults from. Default process.env. */
  env?: NodeJS.ProcessEnv
}

export interface RegisterInput {
  host: string
  port: number
  protocol?: 'http' | 'https'
  metadata?: Record<string, unknown>
}

export interface SessionOptions {
  ttlSeconds?: number
  scopes?: string[]
  /** Replace a live session for the same user instead of returning it. */
  rotate?: boolean
}

export interface SessionLink {
  /** Open this in a browser. */
  url: string
  /** The bearer token inside the URL; never log it. */
  token: string
  expiresAt: Date
  sessionId?: string
}

export interface GatewayClient {
  readonly mode: 'gateway' | 'direct'
  readonly serverName: string
  /** True once the gateway has accepted the registration (or always, in direct mode). */
  readonly registered: boolean
  register (input: RegisterInput): Promise<void>
  deregister (): Promise<void>
  createSession (userId: string, options?: SessionOptions): Promise<SessionLink>
  /** Revokes this server's sessions of `userId`, or one session by id. */
  revokeSession (selector: { userId: string } | { sessionId: string }): Promise<number>
  /** Direct mode: checks a token a browser presented to the UI. Gateway mode: always null (the gateway checks). */
  validateDirectToken (token: string): { userId: string } | null
  /** Stops heartbeats and deregisters. */
  close (): Promise<void>
}

/** The gateway's header for a registrant's secret (its HTTP API contract). */
const SERVER_SECRET_HEADER = 'x-mcpgw-server-secret'

const MIN_HEARTBEAT_MS = 1000
const MAX_BACKOFF_MS = 30_000

function envFlag (value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined
  return value === 'true' || value === '1'
}

/**
 * A client for one MCP server's web UI. In gateway mode it registers the UI
 * with the gateway and keeps the registration alive with heartbeats well inside
 * its expiry, re-creating it by itself if the gateway restarts or forgets it;
 * session links point at the gateway. In direct mode (no gateway configured)
 * links point straight at the UI server, as before the gateway existed.
 */
export function createGatewayClient (options: GatewayClientOptions): GatewayClient {
  const env = options.env ?? process.env
  if (typeof options.serverName !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(options.serverName)) {
    throw new InvalidOptionError('serverName', 'expected 1-64 characters of A-Z a-z 0-9 . _ -')
  }
  const gatewayUrl = (options.gatewayUrl ?? env.MCP_WEB_UI_GATEWAY_URL)?.replace(/\/+$/, '')
  const useGateway = options.useGateway ?? envFlag(env.MCP_WEB_UI_USE_GATEWAY) ?? (gatewayUrl !== undefined && gatewayUrl !== '')
  if (useGateway && (gatewayUrl === undefined || gatewayUrl === '')) {
    throw new InvalidOptionError('gatewayUrl', 'gateway mode needs MCP_WEB_UI_GATEWAY_URL or gatewayUrl')
  }
  const apiKey = options.apiKey ?? (env.MCP_WEB_UI_GATEWAY_API_KEY || undefined)
  const logger = options.logger ?? stderrLogger
  const registerTimeoutMs = options.registerTimeoutMs ?? 10_000
  const serverName = options.serverName
  const serverType = options.serverType

  // Proves to the gateway that later calls for serverName come from this process:
  // while its registration is live, nobody else can take the name or its sessions.
  const secret = options.serverSecret ?? (env.MCP_WEB_UI_SERVER_SECRET || randomBytes(32).toString('base64url'))
  if (!/^[\x21-\x7e]{32,256}$/.test(secret)) {
    throw new InvalidOptionError('serverSecret', 'expected 32 to 256 visible ASCII characters')
  }
  let registration: RegisterInput | null = null
  let registered = false
  let timer: NodeJS.Timeout | null = null
  let closed = false

  async function call (method: string, path: string, body?: unknown): Promise<unknown> {
    let res: Response
    try {
      res = await fetch(`${gatewayUrl}${path}`, {
        method,
        headers: {
          ...(apiKey !== undefined && { authorization: `Bearer ${apiKey}` }),
          [SERVER_SECRET_HEADER]: secret,
          ...(body !== undefined && { 'content-type': 'application/json' })
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000)
      })
    } catch (err) {
      throw new GatewayUnreachableError(gatewayUrl!, { cause: err })
    }
    const payload = await res.json().catch(() => null) as { code?: string } | null
    if (res.status === 401 || payload?.code === 'MCPGW_API_LOOPBACK_ONLY') throw new GatewayUnauthorizedError()
    if (!res.ok && !(method === 'DELETE' && res.status === 404)) {
      throw Object.assign(new GatewayRequestError(res.status, payload?.code ?? ''), { gatewayCode: payload?.code })
    }
    return payload
  }

  function schedule (ms: number, attempt: number): void {
    if (closed) return
    timer = setTimeout(() => { heartbeat(attempt).catch(() => {}) }, ms)
    timer.unref()
  }

  /** One registration call; schedules the next one. Never rejects. */
  async function heartbeat (attempt: number): Promise<Error | null> {
    if (registration === null || closed) return null
    try {
      const result = await call('POST', '/register-server', { serverName, ...registration }) as { expiresAt: string }
      if (!registered) logger.info({ serverName, gateway: gatewayUrl }, 'registered with the gateway')
      registered = true
      // A third of the remaining lifetime: two heartbeats may fail before the registration lapses.
      const lifetime = Date.parse(result.expiresAt) - Date.now()
      schedule(Math.max(MIN_HEARTBEAT_MS, Math.floor(lifetime / 3)), 0)
      return null
    } catch (err) {
      registered = false
      const code = (err as { code?: string }).code
      if (code === 'MCPGW_SDK_UNAUTHORIZED') {
        logger.warn({ serverName, code }, 'the gateway refused the API key; registration stopped')
        return err as Error
      }
      const backoff = Math.min(MAX_BACKOFF_MS, 250 * 2 ** attempt) * (0.5 + Math.random() / 2)
      if (gatewayCodeOf(err) === 'MCPGW_REGISTRY_SERVER_OWNED') {
        logger.warn({ serverName, code: gatewayCodeOf(err), retryInMs: Math.round(backoff) }, 'another process holds this server name at the gateway; retrying until its registration lapses')
      } else {
        logger.warn({ serverName, code, retryInMs: Math.round(backoff) }, 'registration with the gateway failed; retrying')
      }
      schedule(backoff, attempt + 1)
      return err as Error
    }
  }

  // Direct mode keeps its own short-lived tokens, as the UI server did before the gateway.
  const directTokens = new Map<string, { userId: string, expiresAt: number }>()

  const client: GatewayClient = {
    mode: useGateway ? 'gateway' : 'direct',
    serverName,
    get registered () { return useGateway ? registered : registration !== null },

    async register (input) {
      if (typeof input?.host !== 'string' || !Number.isInteger(input.port) || input.port < 1 || input.port > 65535) {
        throw new InvalidOptionError('register', 'expected { host, port }')
      }
      registration = { ...input }
      if (!useGateway) return
      if (timer !== null) clearTimeout(timer)
      const deadline = Date.now() + registerTimeoutMs
      let attempt = 0
      for (;;) {
        if (timer !== null) clearTimeout(timer)
        const err = await heartbeat(attempt)
        if (err === null) return
        if ((err as { code?: string }).code === 'MCPGW_SDK_UNAUTHORIZED') throw err
        if (Date.now() >= deadline) {
          // The heartbeat loop keeps trying in the background; `registered` turns true when it lands.
          throw err
        }
        attempt++
        await new Promise((resolve) => setTimeout(resolve, Math.min(MAX_BACKOFF_MS, 250 * 2 ** attempt, Math.max(0, deadline - Date.now()))))
      }
    },

    async deregister () {
      if (timer !== null) clearTimeout(timer)
      timer = null
      const had = registration !== null
      registration = null
      registered = false
      if (useGateway && had) await call('DELETE', `/register-server/${encodeURIComponent(serverName)}`)
    },

    async createSession (userId, sessionOptions = {}) {
      if (useGateway) {
        const request = (): Promise<unknown> => call('POST', '/create-session', {
          userId,
          serverName,
          ...(serverType !== undefined && { serverType }),
          ...(sessionOptions.ttlSeconds !== undefined && { ttlSeconds: sessionOptions.ttlSeconds }),
          ...(sessionOptions.scopes !== undefined && { scopes: sessionOptions.scopes }),
          ...(sessionOptions.rotate !== undefined && { rotate: sessionOptions.rotate })
        })
        let result: { url: string, token: string, expiresAt: string, sessionId: string }
        try {
          result = await request() as typeof result
        } catch (err) {
          // The gateway forgot us (a restart of its embedded store): register now, ask again,
          // rather than hand out a link it would refuse until the next heartbeat.
          if (gatewayCodeOf(err) !== 'MCPGW_REGISTRY_SERVER_NOT_REGISTERED' || registration === null) throw err
          if (timer !== null) clearTimeout(timer)
          const failed = await heartbeat(0)
          if (failed !== null) throw failed
          result = await request() as typeof result
        }
        return { url: result.url, token: result.token, expiresAt: new Date(result.expiresAt), sessionId: result.sessionId }
      }
      if (registration === null) throw new NotRegisteredError()
      if (typeof userId !== 'string' || userId.length === 0) throw new InvalidOptionError('userId', 'expected a non-empty string')
      const token = randomBytes(24).toString('base64url')
      const expiresAt = Date.now() + (sessionOptions.ttlSeconds ?? options.directSessionTtlSeconds ?? 3600) * 1000
      directTokens.set(token, { userId, expiresAt })
      const host = registration.host.includes(':') ? `[${registration.host}]` : registration.host
      return { url: `${registration.protocol ?? 'http'}://${host}:${registration.port}/?token=${token}`, token, expiresAt: new Date(expiresAt) }
    },

    async revokeSession (selector) {
      if (useGateway) {
        const body = 'sessionId' in selector ? { sessionId: selector.sessionId } : { sessionKey: `${selector.userId}:${serverName}:${serverType ?? 'mcp-webui'}` }
        return ((await call('POST', '/revoke-session', body)) as { revoked: number }).revoked
      }
      let revoked = 0
      for (const [token, entry] of directTokens) {
        if ('userId' in selector && entry.userId === selector.userId) {
          directTokens.delete(token)
          revoked++
        }
      }
      return revoked
    },

    validateDirectToken (token) {
      if (useGateway || typeof token !== 'string') return null
      const now = Date.now()
      for (const [known, entry] of directTokens) {
        if (entry.expiresAt <= now) {
          directTokens.delete(known)
          continue
        }
        const a = Buffer.from(known)
        const b = Buffer.from(token)
        if (a.length === b.length && timingSafeEqual(a, b)) return { userId: entry.userId }
      }
      return null
    },

    async close () {
      closed = true
      try {
        await client.deregister()
      } catch (err) {
        logger.warn({ serverName, code: (err as { code?: string }).code }, 'deregistration failed; the registration will lapse by itself')
      }
    }
  }
  return client
}

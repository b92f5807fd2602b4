import { createHmac, randomBytes } from 'node:crypto'
import { INSTANCE_NAME_PATTERN, SERVER_NAME_PATTERN, SERVER_SECRET_PATTERN } from '@mcp-gw/protocol'
import { InvalidOptionError } from './errors.js'
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
  /**
   * `'direct'`: while the gateway cannot be reached, `createSession` hands out
   * direct links to the UI server instead of failing, and goes back to gateway
   * links by itself once the gateway answers. Default: MCP_WEB_UI_FALLBACK
   * (`direct` or `none`), else `'none'`.
   */
  fallback?: 'direct' | 'none'
  /** Logs go here; default JSON lines on stderr, never stdout. */
  logger?: Logger
  /** How long `await register()` waits for the first registration before it rejects (registration goes on in the background). Default 10000. */
  registerTimeoutMs?: number
  /** Per call to the gateway's API (registration, heartbeats, revocation). Default 10000. */
  requestTimeoutMs?: number
  /**
   * The most `createSession` (a tool call) waits on the gateway, all its calls together: past
   * it, a direct link with `fallback: 'direct'`, else MCPGW_SDK_GATEWAY_TIMEOUT. Registration
   * goes on in the background meanwhile. Default: MCP_WEB_UI_SESSION_TIMEOUT_MS, else 500.
   */
  sessionTimeoutMs?: number
  /** Session lifetime of direct links. Default 3600. */
  directSessionTtlSeconds?: number
  /**
   * This server's registrant secret (32 to 256 visible ASCII characters). Default:
   * MCP_WEB_UI_SERVER_SECRET, else one made per process. Sessions are bound to the
   * instance (process) that asked for them: give the same secret (and, for one process per
   * user, the same `instance`) across restarts to keep handed-out links working after
   * one. Processes sharing a secret are still separate instances while they live.
   */
  serverSecret?: string
  /**
   * Which instance of the server this process is, as the platform names it: stable across
   * the process's restarts and unique among the server's processes (1-128 of A-Z a-z 0-9
   * . _ : @ -). With a shared `serverSecret`, a restarted process with the same name takes
   * its earlier links back. Default: MCP_WEB_UI_INSTANCE_ID, else (a process per user) one
   * made from MCP_WEB_UI_LOCAL_USER, else none. Whatever it says, two live processes never
   * share a session: the gateway routes each link to the process that minted it.
   */
  instance?: string
  /** Environment to read defaults from. Default process.env. */
  env?: NodeJS.ProcessEnv
}

/** GatewayClientOptions with the environment read, the defaults filled in and every value checked. */
export interface ResolvedOptions {
  readonly serverName: string
  readonly serverType: string | undefined
  readonly mode: 'gateway' | 'direct'
  /** Direct mode only because nothing names a gateway (not chosen with useGateway / MCP_WEB_UI_USE_GATEWAY=false). */
  readonly gatewayUnset: boolean
  /** Without trailing slashes; empty in direct mode without a gateway URL. */
  readonly gatewayUrl: string
  readonly apiKey: string | undefined
  /** The registrant secret. */
  readonly secret: string
  readonly instance: string | undefined
  /** `fallback: 'direct'`. */
  readonly fallback: boolean
  readonly logger: Logger
  readonly registerTimeoutMs: number
  readonly requestTimeoutMs: number
  readonly sessionTimeoutMs: number
  readonly directTtlSeconds: number
}

/** A boolean environment variable: `true` or `1`, anything else is false; unset or empty is undefined. */
export function envFlag (value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined
  return value === 'true' || value === '1'
}

/**
 * The instance name a process gets by default: MCP_WEB_UI_INSTANCE_ID, else one per local
 * user, keyed by the server's secret (listings show it; nobody can test guesses of user ids
 * against it without the secret).
 */
export function defaultInstance (env: NodeJS.ProcessEnv, secret: string): string | undefined {
  if (env.MCP_WEB_UI_INSTANCE_ID) return env.MCP_WEB_UI_INSTANCE_ID
  const user = env.MCP_WEB_UI_LOCAL_USER
  return user ? `user-${createHmac('sha256', secret).update(`mcp-gw instance of user\0${user}`).digest('hex').slice(0, 24)}` : undefined
}

/** Reads the options and the environment once; throws MCPGW_SDK_INVALID_OPTION for the first value that does not hold. */
export function resolveOptions (options: GatewayClientOptions): ResolvedOptions {
  const env = options.env ?? process.env
  if (typeof options.serverName !== 'string' || !SERVER_NAME_PATTERN.test(options.serverName)) {
    throw new InvalidOptionError('serverName', 'expected 1-64 characters of A-Z a-z 0-9 . _ -')
  }
  const gatewayUrl = (options.gatewayUrl ?? env.MCP_WEB_UI_GATEWAY_URL ?? '').replace(/\/+$/, '')
  const chosen = options.useGateway ?? envFlag(env.MCP_WEB_UI_USE_GATEWAY)
  const useGateway = chosen ?? gatewayUrl !== ''
  if (useGateway && gatewayUrl === '') {
    throw new InvalidOptionError('gatewayUrl', 'gateway mode needs MCP_WEB_UI_GATEWAY_URL or gatewayUrl')
  }
  const fallback = options.fallback ?? (env.MCP_WEB_UI_FALLBACK || 'none')
  if (fallback !== 'direct' && fallback !== 'none') throw new InvalidOptionError('fallback', "expected 'direct' or 'none'")
  // Proves to the gateway that later calls for serverName come from this process:
  // while its registration is live, nobody else can take the name or its sessions.
  const secret = options.serverSecret ?? (env.MCP_WEB_UI_SERVER_SECRET || randomBytes(32).toString('base64url'))
  if (typeof secret !== 'string' || !SERVER_SECRET_PATTERN.test(secret)) {
    throw new InvalidOptionError('serverSecret', 'expected 32 to 256 visible ASCII characters')
  }
  const instance = options.instance ?? defaultInstance(env, secret)
  if (instance !== undefined && (typeof instance !== 'string' || !INSTANCE_NAME_PATTERN.test(instance))) {
    throw new InvalidOptionError('instance', 'expected 1-128 characters of A-Z a-z 0-9 . _ : @ -')
  }
  const sessionTimeoutMs = options.sessionTimeoutMs ?? (env.MCP_WEB_UI_SESSION_TIMEOUT_MS ? Number(env.MCP_WEB_UI_SESSION_TIMEOUT_MS) : 500)
  for (const [name, value] of [
    ['registerTimeoutMs', options.registerTimeoutMs], ['requestTimeoutMs', options.requestTimeoutMs],
    ['sessionTimeoutMs (MCP_WEB_UI_SESSION_TIMEOUT_MS)', sessionTimeoutMs], ['directSessionTtlSeconds', options.directSessionTtlSeconds]
  ] as const) {
    if (value !== undefined && (!Number.isFinite(value) || value <= 0)) throw new InvalidOptionError(name, 'expected a positive number')
  }
  return Object.freeze({
    serverName: options.serverName,
    serverType: options.serverType,
    mode: useGateway ? 'gateway' : 'direct',
    gatewayUnset: chosen === undefined && gatewayUrl === '',
    gatewayUrl,
    apiKey: options.apiKey ?? (env.MCP_WEB_UI_GATEWAY_API_KEY || undefined),
    secret,
    instance,
    fallback: fallback === 'direct',
    logger: options.logger ?? stderrLogger,
    registerTimeoutMs: options.registerTimeoutMs ?? 10_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    sessionTimeoutMs,
    directTtlSeconds: options.directSessionTtlSeconds ?? 3600
  })
}

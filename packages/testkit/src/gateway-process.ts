import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from './ferretdb.js'

/** The gateway's built CLI in this repository (apps/gateway/dist/cli.js): the one place that knows the path. */
export const GATEWAY_CLI = fileURLToPath(new URL('../../../apps/gateway/dist/cli.js', import.meta.url))

/** The gateway's HTTP API, as an MCP server's SDK would use it. */
export class GatewayAdmin {
  /** One registrant secret per server name, as each MCP server keeps its own. */
  readonly #secrets = new Map<string, string>()

  readonly origin: string
  readonly apiKey: string

  constructor (origin: string, apiKey: string) {
    this.origin = origin
    this.apiKey = apiKey
  }

  /** The secret this admin registers `serverName` with (made on first use). */
  secretFor (serverName: string): string {
    let secret = this.#secrets.get(serverName)
    if (secret === undefined) {
      secret = randomBytes(32).toString('base64url')
      this.#secrets.set(serverName, secret)
    }
    return secret
  }

  async call<T>(method: string, path: string, body?: unknown, serverName?: string): Promise<T> {
    const res = await fetch(this.origin + path, {
      method,
      headers: {
        authorization: `Bearer ${this.apiKey}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
        ...(serverName !== undefined && { 'x-mcpgw-server-secret': this.secretFor(serverName) })
      },
      ...(body !== undefined && { body: JSON.stringify(body) })
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`)
    return JSON.parse(text) as T
  }

  async register (serverName: string, port: number, host = '127.0.0.1'): Promise<void> {
    await this.call('POST', '/register-server', { serverName, host, port }, serverName)
  }

  async session (userId: string, serverName: string, ttlSeconds = 6 * 3600): Promise<{ token: string, url: string, sessionId: string }> {
    return await this.call('POST', '/create-session', { userId, serverName, ttlSeconds }, serverName)
  }

  async metrics (): Promise<string> {
    const res = await fetch(this.origin + '/metrics', { headers: { authorization: `Bearer ${this.apiKey}` } })
    return await res.text()
  }
}

export interface GatewayProcess {
  child: ChildProcess
  pid: number
  port: number
  origin: string
  admin: GatewayAdmin
  /** Milliseconds from spawn to the first 200 from /ready. */
  startupMs: number
  /** The tail of its stderr, for failure messages. */
  stderr (): string
  /** Everything it logged (stdout and stderr), with `captureLog`. */
  log (): string
  /** SIGTERM (or `signal`), SIGKILL after 10 s; resolves on exit. */
  stop (signal?: NodeJS.Signals): Promise<void>
}

export interface SpawnGatewayOptions {
  /** Path of the gateway's built CLI. Default GATEWAY_CLI. */
  cli?: string
  apiKey: string
  /** MCP_WEB_UI_JWT_SECRET; without it the gateway makes one per process (embedded store only). */
  secret?: string
  /** Keep its whole log (stdout and stderr) for `log()`, e.g. to check that no token is in it. */
  captureLog?: boolean
  port?: number
  mongoUrl?: string
  dbName?: string
  /** More MCP_WEB_UI_* settings. */
  env?: Record<string, string>
  nodeArgs?: string[]
}

/**
 * Runs the prebuilt gateway as its users do (`mcp-gw start`, configured by the
 * environment, logs to /dev/null) and resolves once /ready answers 200.
 */
export async function spawnGateway (options: SpawnGatewayOptions): Promise<GatewayProcess> {
  // A port that was free may be taken before the gateway binds it (parallel
  // tests open ephemeral ports all the time): pick another, unless one was asked for.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(options, options.port ?? await freePort())
    } catch (err) {
      if (options.port !== undefined || attempt >= 5 || !String((err as Error).message).includes('EADDRINUSE')) throw err
    }
  }
}

async function spawnOnce (options: SpawnGatewayOptions, port: number): Promise<GatewayProcess> {
  const started = performance.now()
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.cli ?? GATEWAY_CLI, 'start'], {
    stdio: ['ignore', options.captureLog === true ? 'pipe' : 'ignore', 'pipe'],
    env: {
      ...process.env,
      MCP_WEB_UI_GATEWAY_PORT: String(port),
      MCP_WEB_UI_GATEWAY_HOST: '127.0.0.1',
      MCP_WEB_UI_GATEWAY_API_KEY: options.apiKey,
      ...(options.secret !== undefined && { MCP_WEB_UI_JWT_SECRET: options.secret }),
      ...(options.mongoUrl !== undefined && { MCP_WEB_UI_MONGO_URL: options.mongoUrl, MCP_WEB_UI_MONGO_DB_NAME: options.dbName ?? 'mcp_webui' }),
      DEBUG: 'false',
      // The dashboard's own port (the gateway's + 1 by default) could be a port another test
      // just picked: off unless a test asks for it.
      MCP_WEB_UI_DASHBOARD_PORT: 'off',
      // The embedded store in memory: a test that wants it kept names its own data directory.
      MCP_WEB_UI_DATA_DIR: 'off',
      ...options.env
    }
  })
  let err = ''
  let log = ''
  child.stderr!.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-4000)
    if (options.captureLog === true) log += c.toString()
  })
  child.stdout?.on('data', (c: Buffer) => { log += c.toString() })
  const origin = `http://127.0.0.1:${port}`
  for (;;) {
    const ok = await fetch(`${origin}/ready`).then(async (res) => { await res.arrayBuffer(); return res.ok }, () => false)
    if (ok) break
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode} before it was ready:\n${err}`)
    if (performance.now() - started > 30_000) {
      child.kill('SIGKILL')
      throw new Error(`the gateway was not ready within 30 s:\n${err}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const startupMs = performance.now() - started
  return {
    child,
    pid: child.pid!,
    port,
    origin,
    admin: new GatewayAdmin(origin, options.apiKey),
    startupMs,
    stderr: () => err,
    log: () => log,
    stop: async (signal = 'SIGTERM') => { await stopChild(child, signal) }
  }
}

/** Sends `signal` (SIGKILL after 10 s if it is ignored) and resolves once the process has exited. */
export async function stopChild (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

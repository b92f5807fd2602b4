import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { launchChromium, spawnGateway } from '@mcp-gw/testkit'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import type { Browser } from 'playwright-core'
import type { Test } from 'tap'

export const API_KEY = 'e2e-api-key-0123456789abcdef'
export const JWT_SECRET = 'e2e-jwt-secret-0123456789abcdef0123456789'
const EXAMPLE = fileURLToPath(new URL('../dist/main.js', import.meta.url))

export interface GatewayProcess {
  origin: string
  port: number
  child: ChildProcess
  /** Everything the gateway logged. */
  log: () => string
  api: (path: string, body?: unknown) => Promise<Response>
  /** SIGTERM, and wait for the exit. */
  stop: () => Promise<void>
}

/** The prebuilt gateway, as a user runs it: `mcp-gw start` with environment variables (testkit's spawnGateway). */
export async function startGatewayProcess (t: Test, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const gw = await spawnGateway({
    apiKey: API_KEY,
    captureLog: true,
    env,
    ...(env.MCP_WEB_UI_GATEWAY_PORT !== undefined && { port: Number(env.MCP_WEB_UI_GATEWAY_PORT) })
  })
  t.teardown(() => gw.stop('SIGKILL'))
  return {
    origin: gw.origin,
    port: gw.port,
    child: gw.child,
    log: gw.log,
    stop: async () => { await gw.stop() },
    api: async (path, body) => await fetch(`${gw.origin}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) })
    })
  }
}

export interface ExampleProcess {
  mcp: Client
  child: ChildProcess
  /** Everything the server wrote to stdout, byte for byte. */
  stdout: () => string
  stderr: () => string
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>
  /** The stdout lines that are not JSON-RPC 2.0 messages: must stay empty. */
  strayStdout: () => string[]
}

/**
 * The MCP client side of a spawned server's stdio, reading stdout itself so a
 * test sees every byte (the SDK's StdioClientTransport would hide a stray line).
 */
class ChildStdioTransport implements Transport {
  onmessage?: (message: JSONRPCMessage) => void
  onclose?: () => void
  onerror?: (error: Error) => void
  readonly #buffer = new ReadBuffer()
  readonly #child: ChildProcess
  readonly #record: (chunk: string) => void
  constructor (child: ChildProcess, record: (chunk: string) => void) {
    this.#child = child
    this.#record = record
  }

  async start (): Promise<void> {
    this.#child.stdout!.on('data', (chunk: Buffer) => {
      this.#record(chunk.toString())
      this.#buffer.append(chunk)
      for (;;) {
        let message: JSONRPCMessage | null
        try {
          message = this.#buffer.readMessage()
        } catch (err) {
          this.onerror?.(err as Error)
          continue
        }
        if (message === null) break
        this.onmessage?.(message)
      }
    })
    this.#child.once('exit', () => this.onclose?.())
  }

  async send (message: JSONRPCMessage): Promise<void> {
    if (this.#child.stdin!.writable) this.#child.stdin!.write(serializeMessage(message))
  }

  async close (): Promise<void> {
    this.#child.stdin!.end()
  }
}

/**
 * The example MCP server, spawned and spoken to over stdio by a real MCP client;
 * gateway null: no gateway (direct mode). The user is `MCP_WEB_UI_LOCAL_USER`
 * (alice unless extraEnv says otherwise), as for a local stdio server.
 */
export async function connectExample (t: Test, gateway: GatewayProcess | null, extraEnv: Record<string, string> = {}, options: { args?: string[], capabilities?: Record<string, unknown> } = {}): Promise<ExampleProcess> {
  const env: Record<string, string> = { MCP_WEB_UI_LOCAL_USER: 'alice' }
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  const child = spawn(process.execPath, [EXAMPLE, ...(options.args ?? [])], {
    env: gateway === null
      ? { ...env, MCP_WEB_UI_GATEWAY_URL: '', MCP_WEB_UI_USE_GATEWAY: 'false', ...extraEnv }
      : { ...env, MCP_WEB_UI_GATEWAY_URL: gateway.origin, MCP_WEB_UI_GATEWAY_API_KEY: API_KEY, ...extraEnv },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const mcp = new Client({ name: 'e2e-test', version: '0.0.0' }, { capabilities: options.capabilities ?? {} })
  const transport = new ChildStdioTransport(child, (chunk) => { stdout += chunk })
  await mcp.connect(transport)
  t.teardown(() => mcp.close())
  return {
    mcp,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    strayStdout: () => stdout.split('\n').filter((line) => {
      if (line === '') return false
      try {
        return (JSON.parse(line) as { jsonrpc?: unknown }).jsonrpc !== '2.0'
      } catch {
        return true
      }
    })
  }
}

/** The link a tool result carries for the MCP Apps view (in `_meta`, never in the text for such hosts). */
export function linkOf (result: { _meta?: Record<string, unknown> }): string {
  const link = result._meta?.['mcp-gw/link'] as { url?: string } | undefined
  if (typeof link?.url !== 'string') throw new Error('no link in the tool result')
  return link.url
}

export async function callText (client: Client, name: string, args: Record<string, unknown> = {}): Promise<{ text: string, content: Array<Record<string, unknown>>, _meta?: Record<string, unknown> }> {
  const result = await client.callTool({ name, arguments: args })
  const content = result.content as Array<Record<string, unknown>>
  return { text: String(content.find((c) => c.type === 'text')?.text ?? ''), content, ...(result._meta !== undefined && { _meta: result._meta }) }
}

export async function launchBrowser (t: Test, extraArgs: string[] = []): Promise<Browser> {
  const browser = await launchChromium(extraArgs)
  t.teardown(() => browser.close())
  return browser
}

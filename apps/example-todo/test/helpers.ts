import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort, launchChromium } from '@mcp-gw/testkit'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { Browser } from 'playwright-core'
import type { Test } from 'tap'

export const API_KEY = 'e2e-api-key-0123456789abcdef'
export const JWT_SECRET = 'e2e-jwt-secret-0123456789abcdef0123456789'
const GATEWAY_CLI = fileURLToPath(new URL('../../gateway/dist/cli.js', import.meta.url))
const EXAMPLE = fileURLToPath(new URL('../dist/main.js', import.meta.url))

export interface GatewayProcess {
  origin: string
  port: number
  child: ChildProcess
  log: () => string
  api: (path: string, body?: unknown) => Promise<Response>
}

/** The prebuilt gateway, as a user runs it: `mcp-gw start` with environment variables. */
export async function startGatewayProcess (t: Test, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, [GATEWAY_CLI, 'start'], {
    env: { ...process.env, MCP_WEB_UI_GATEWAY_PORT: String(port), MCP_WEB_UI_GATEWAY_API_KEY: API_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout?.on('data', (c: Buffer) => { output += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { output += c.toString() })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const origin = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 15_000
  while (await fetch(`${origin}/ready`).then((r) => r.status, () => 0) !== 200) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`gateway did not become ready:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    origin,
    port,
    child,
    log: () => output,
    api: async (path, body) => await fetch(`${origin}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) })
    })
  }
}

/** The example MCP server, spawned and spoken to over stdio by a real MCP client; null: no gateway (direct mode). */
export async function connectExample (t: Test, gateway: GatewayProcess | null, extraEnv: Record<string, string> = {}): Promise<Client> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [EXAMPLE],
    env: gateway === null
      ? { ...env, MCP_WEB_UI_GATEWAY_URL: '', MCP_WEB_UI_USE_GATEWAY: 'false', ...extraEnv }
      : { ...env, MCP_WEB_UI_GATEWAY_URL: gateway.origin, MCP_WEB_UI_GATEWAY_API_KEY: API_KEY, ...extraEnv },
    stderr: 'pipe'
  })
  const client = new Client({ name: 'e2e-test', version: '0.0.0' })
  await client.connect(transport)
  t.teardown(() => client.close())
  return client
}

export async function callText (client: Client, name: string, args: Record<string, unknown>): Promise<{ text: string, content: Array<Record<string, unknown>> }> {
  const result = await client.callTool({ name, arguments: args })
  const content = result.content as Array<Record<string, unknown>>
  return { text: String(content.find((c) => c.type === 'text')?.text ?? ''), content }
}

export async function launchBrowser (t: Test): Promise<Browser> {
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  return browser
}

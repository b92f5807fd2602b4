import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Child } from './proc.js'
import { spawnServer, waitForOk } from './proc.js'
import { freePort, NGINX_LUA_MODULES, NGINX_PATH, spawnGateway as spawnGatewayProcess, startCaddy, startNginx as startTestkitNginx } from '@mcp-gw/testkit'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import type { GatewayAdmin, GatewayProcess } from '@mcp-gw/testkit'

const require = createRequire(import.meta.url)
export const NGINX = NGINX_PATH
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))

export interface Target {
  name: string
  /** Base URL that the backend's paths are appended to. */
  base: string
  /** Processes whose memory counts as the proxy's. */
  pids: number[]
  /** For gateways: their admin client. */
  admin?: GatewayAdmin
  stop: () => Promise<void>
}

export interface Backend { port: number, origin: string, child: Child }

export async function startBackend (): Promise<Backend> {
  const port = await freePort()
  const child = spawnServer(process.execPath, [here('./backend.js'), String(port)])
  await waitForOk(`http://127.0.0.1:${port}/health`, 10_000, child.process)
  return { port, origin: `http://127.0.0.1:${port}`, child }
}

export function direct (backend: Backend): Target {
  return { name: 'direct', base: `${backend.origin}/`, pids: [backend.child.pid], stop: async () => {} }
}

export async function startBareProxy (backend: Backend): Promise<Target> {
  const port = await freePort()
  const child = spawnServer(process.execPath, [here('./bare-proxy.js'), String(port), backend.origin])
  await waitForOk(`http://127.0.0.1:${port}/health`, 10_000, child.process)
  return { name: 'bare @fastify/http-proxy', base: `http://127.0.0.1:${port}/`, pids: [child.pid], stop: async () => await child.stop() }
}

/** Node's own ceiling here: node:http and an undici Pool, no Fastify, no auth. */
export async function startNodeCeiling (backend: Backend): Promise<Target> {
  const port = await freePort()
  const child = spawnServer(process.execPath, [here('./node-ceiling.js'), String(port), backend.origin])
  await waitForOk(`http://127.0.0.1:${port}/health`, 10_000, child.process)
  return { name: NODE_CEILING, base: `http://127.0.0.1:${port}/`, pids: [child.pid], stop: async () => await child.stop() }
}
export const NODE_CEILING = 'Node ceiling (node:http + undici Pool)'

export async function startChp (backend: Backend): Promise<Target> {
  const [port, apiPort] = [await freePort(), await freePort()]
  const bin = join(require.resolve('configurable-http-proxy/package.json'), '../bin/configurable-http-proxy')
  const child = spawnServer(process.execPath, [bin, '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1',
    '--api-port', String(apiPort), '--default-target', backend.origin, '--log-level', 'error'], { CONFIGPROXY_AUTH_TOKEN: randomBytes(16).toString('hex') })
  await waitForOk(`http://127.0.0.1:${port}/health`, 10_000, child.process)
  return { name: 'configurable-http-proxy', base: `http://127.0.0.1:${port}/`, pids: [child.pid], stop: async () => await child.stop() }
}

/** nginx with one worker (the Node proxies are single-threaded too), streaming both ways. */
export async function startNginx (backend: Backend): Promise<Target | null> {
  if (!existsSync(NGINX)) return null
  const nginx = await startTestkitNginx({
    connections: 19990,
    logLevel: 'error',
    http: `
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream backend { server ${backend.origin.slice('http://'.length)}; keepalive 64; }
  server {
    listen 127.0.0.1:{{port}} backlog=4096;
    client_max_body_size 0;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
    }
  }`
  })
  return { name: 'nginx', base: `http://127.0.0.1:${nginx.port}/`, pids: [nginx.pid], stop: nginx.stop }
}

export const API_KEY = 'bench-' + randomBytes(16).toString('hex')

/** Caddy alone: reverse_proxy to the backend, responses flushed as they come. */
export async function startCaddyAlone (backend: Backend): Promise<Target> {
  const caddy = await startCaddy([
    'http://127.0.0.1:{{port}} {',
    `  reverse_proxy ${backend.origin.slice('http://'.length)} {`,
    '    flush_interval -1',
    '  }',
    '}'
  ].join('\n'))
  return { name: 'Caddy', base: `http://127.0.0.1:${caddy.port}/`, pids: [caddy.pid], stop: caddy.stop }
}

const EDGE_KEY = 'bench-edge-' + randomBytes(16).toString('hex')
const edgeSnippet = async (file: string): Promise<string> => await readFile(fileURLToPath(new URL(`../../docs/edge/${file}`, import.meta.url)), 'utf8')

/** An edge in front of a gateway that answers its forward-auth questions: the edge carries the bytes. */
export interface EdgeTarget extends Target {
  edgePid: number
  gateway: GatewayProcess
}

/**
 * nginx or Caddy with the shipped forward-auth snippet (path mode) in front of a prebuilt
 * gateway (embedded store). `cache`: nginx keeps yeses 1 s (the snippet as shipped); off,
 * every request is a question to the gateway.
 */
export async function startEdge (backend: Backend, edge: 'nginx' | 'nginx pooled' | 'Caddy', cache: boolean): Promise<EdgeTarget> {
  const gateway = await spawnGateway({ secret: randomBytes(32).toString('hex'), env: { MCP_WEB_UI_FORWARD_AUTH_KEY: EDGE_KEY, MCP_WEB_UI_TRUST_PROXY: '127.0.0.1' } })
  const session = await withSession(backend, '', gateway, [gateway])
  const token = new URL(session.base).pathname.split('/')[2]!
  let edgeProcess: { port: number, pid: number, stop: () => Promise<void> }
  if (edge !== 'Caddy') {
    // On tmpfs where there is one, as an operator would put a cache of one-second entries.
    const cacheDir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'mcpgw-bench-cache-'))
    let http = (await edgeSnippet(edge === 'nginx' ? 'nginx/path-mode.conf' : 'nginx/path-mode-pooled.conf'))
      .replaceAll('{{listen}}', '127.0.0.1:{{port}} backlog=4096')
      .replaceAll('{{gateway}}', `127.0.0.1:${gateway.port}`)
      .replaceAll('{{key}}', EDGE_KEY)
      .replaceAll('{{cache_dir}}', cacheDir)
      .replaceAll('{{lua_dir}}', fileURLToPath(new URL('../../docs/edge/nginx', import.meta.url)))
    if (!cache) http = http.replace('    proxy_cache mcpgw_auth;\n', '').replace('    proxy_set_header X-Mcpgw-Edge-Cache-Ms 2000;\n', '')
    const nginx = await startTestkitNginx({ http, connections: 19990, logLevel: 'error', modules: edge === 'nginx' ? [] : NGINX_LUA_MODULES })
    edgeProcess = { ...nginx, stop: async () => { await nginx.stop(); await rm(cacheDir, { recursive: true, force: true }) } }
  } else {
    const port = await freePort()
    edgeProcess = await startCaddy(await edgeSnippet('caddy/path-mode.Caddyfile'), {
      port,
      env: { MCPGW_SITE: `http://127.0.0.1:${port}`, MCPGW_GATEWAY: `127.0.0.1:${gateway.port}`, MCPGW_FORWARD_AUTH_KEY: EDGE_KEY }
    })
  }
  return {
    name: `${edge === 'nginx pooled' ? 'nginx + Lua pool' : edge} + forward-auth${edge === 'Caddy' ? '' : (cache ? ' (cache on)' : ' (cache off)')}`,
    base: `http://127.0.0.1:${edgeProcess.port}/mcp/${token}/`,
    pids: [edgeProcess.pid, gateway.pid],
    edgePid: edgeProcess.pid,
    admin: gateway.admin,
    gateway,
    stop: async () => { await edgeProcess.stop(); await session.stop() }
  }
}

/** Spawns the prebuilt gateway as users run it; resolves once /ready answers 200. */
export async function spawnGateway (env: { mongoUrl?: string, dbName?: string, secret: string, nodeArgs?: string[], port?: number, captureLog?: boolean, env?: Record<string, string> }): Promise<GatewayProcess> {
  return await spawnGatewayProcess({ apiKey: API_KEY, ...env })
}

/** A gateway with one registered backend and one session: the target's base is that session's URL. */
export async function startGateway (backend: Backend, name: string, env: { mongoUrl?: string, dbName?: string, env?: Record<string, string> }): Promise<Target & { gateway: GatewayProcess }> {
  const gateway = await spawnGateway({ ...env, secret: randomBytes(32).toString('hex') })
  return await withSession(backend, name, gateway, [gateway])
}

/**
 * Two gateway processes on one port (SO_REUSEPORT) and one Mongo store: the supported way
 * past one core. Both processes' CPU counts as the target's.
 */
export async function startGatewayPair (backend: Backend, name: string, env: { mongoUrl: string, dbName: string }): Promise<Target & { gateway: GatewayProcess }> {
  const shared = { ...env, secret: randomBytes(32).toString('hex'), captureLog: true, env: { MCP_WEB_UI_REUSE_PORT: 'true' } }
  const first = await spawnGateway(shared)
  const second = await spawnGateway({ ...shared, port: first.port })
  // The second's /ready may have been answered by the first: wait for its own word.
  const deadline = Date.now() + 10_000
  while (!second.log().includes('"mcp-gw listening"')) {
    if (Date.now() > deadline) throw new Error(`the second gateway process did not listen:\n${second.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const target = await withSession(backend, name, first, [first, second])
  return { ...target, stop: async () => { await target.stop(); await second.stop() } }
}

async function withSession (backend: Backend, name: string, gateway: GatewayProcess, processes: GatewayProcess[]): Promise<Target & { gateway: GatewayProcess }> {
  await gateway.admin.register('bench', backend.port)
  // Registrations live 90 s; a long run heartbeats like the client SDK does.
  const heartbeat = setInterval(() => { gateway.admin.register('bench', backend.port).catch(() => {}) }, 20_000)
  const { token } = await gateway.admin.session('bench-user', 'bench')
  return {
    name,
    base: `http://127.0.0.1:${gateway.port}/mcp/${token}/`,
    pids: processes.map((p) => p.pid),
    admin: gateway.admin,
    gateway,
    stop: async () => { clearInterval(heartbeat); await gateway.stop() }
  }
}

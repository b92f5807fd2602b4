import { execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { acquireLock, freePort, isExecutable } from './ferretdb.js'
import { untilListening } from './server-process.js'
import type { ServerProcess } from './server-process.js'

const run = promisify(execFile)

export const CADDY_VERSION = 'v2.11.9'

export function caddyBinaryPath (): string {
  const cacheRoot = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache')
  return join(cacheRoot, 'mcp-gw', `caddy-${CADDY_VERSION}`, 'caddy')
}

/**
 * Builds Caddy once into the user's cache directory (about 4 minutes with Go,
 * beside FerretDB) and returns the binary; CADDY_PATH names one instead.
 */
export async function ensureCaddy (log: (line: string) => void = () => {}): Promise<string> {
  if (process.env.CADDY_PATH !== undefined && process.env.CADDY_PATH !== '') return process.env.CADDY_PATH
  const binary = caddyBinaryPath()
  if (await isExecutable(binary)) return binary
  const dir = join(binary, '..')
  await mkdir(dir, { recursive: true })
  const lock = await acquireLock(join(dir, '.build-lock'))
  try {
    if (await isExecutable(binary)) return binary
    log(`building Caddy ${CADDY_VERSION} into ${dir} (once; later runs reuse it)`)
    const gobin = await mkdtemp(join(tmpdir(), 'mcpgw-caddy-build-'))
    try {
      await run('go', ['install', `github.com/caddyserver/caddy/v2/cmd/caddy@${CADDY_VERSION}`], { env: { ...process.env, GOBIN: gobin }, maxBuffer: 16 << 20 })
      await run('mv', [join(gobin, 'caddy'), binary])
    } finally {
      await rm(gobin, { recursive: true, force: true })
    }
    return binary
  } finally {
    await lock.release()
  }
}

/** Caddy in the foreground; `port` is where `{{port}}` in its configuration listens, on 127.0.0.1. */
export type CaddyProcess = ServerProcess

/**
 * The real Caddy in the foreground on loopback, with a Caddyfile whose every
 * `{{port}}` is the free port chosen, `env` in its environment (for `{$NAME}`
 * placeholders), no admin endpoint and no automatic HTTPS (`global` goes into
 * the global options block). Resolves once the port accepts TCP.
 */
export async function startCaddy (caddyfile: string, options: { port?: number, env?: Record<string, string>, global?: string } = {}): Promise<CaddyProcess> {
  const binary = await ensureCaddy((line) => process.stderr.write(`# ${line}\n`))
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-caddy-'))
  const port = options.port ?? await freePort()
  const file = join(dir, 'Caddyfile')
  await writeFile(file, `{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n${options.global ?? ''}\n}\n\n${caddyfile.replaceAll('{{port}}', String(port))}`)
  const child = spawn(binary, ['run', '--config', file, '--adapter', 'caddyfile'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...options.env, HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') }
  })
  return await untilListening(child, { name: 'caddy', port, dir, signal: 'SIGTERM', timeoutMs: 15_000 })
}

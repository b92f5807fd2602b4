import { spawn, execFile } from 'node:child_process'
import { constants } from 'node:fs'
import { access, chmod, cp, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export const FERRETDB_VERSION = 'v1.24.2'
const MODULE = 'github.com/FerretDB/FerretDB'

export function ferretDbBinaryPath (): string {
  const cacheRoot = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache')
  return join(cacheRoot, 'mcp-gw', `ferretdb-${FERRETDB_VERSION}`, 'ferretdb')
}

export async function isExecutable (file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * Builds FerretDB once into the user's cache directory and returns the binary.
 * `go install module@version` is not used: it asks the module proxy for the
 * version list (refused by some mirrors), and the module's embedded
 * build/version/version.txt is generated at release time, so a plain build
 * of the module cache copy panics at start. We build from a writable copy.
 */
export async function ensureFerretDb (log: (line: string) => void = () => {}): Promise<string> {
  const binary = ferretDbBinaryPath()
  if (await isExecutable(binary)) return binary

  const dir = join(binary, '..')
  await mkdir(dir, { recursive: true })
  const lockFile = join(dir, '.build-lock')
  const lock = await acquireLock(lockFile)
  try {
    if (await isExecutable(binary)) return binary
    try {
      await run('go', ['version'])
    } catch (err) {
      throw new Error('FerretDB is not built and Go is not on PATH: install Go, or set MONGO_URL to a MongoDB-wire server', { cause: err })
    }
    log(`building FerretDB ${FERRETDB_VERSION} into ${dir} (once; later runs reuse it)`)
    const work = await mkdtemp(join(tmpdir(), 'mcpgw-ferretdb-build-'))
    try {
      await run('go', ['mod', 'init', 'mcpgw-ferretdb-build'], { cwd: work })
      await run('go', ['get', `${MODULE}/cmd/ferretdb@${FERRETDB_VERSION}`], { cwd: work, maxBuffer: 16 << 20 })
      const { stdout } = await run('go', ['list', '-m', '-f', '{{.Dir}}', `${MODULE}`], { cwd: work })
      const src = join(work, 'src')
      await cp(stdout.trim(), src, { recursive: true })
      await makeWritable(src)
      await writeFile(join(src, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`)
      const partial = `${binary}.partial-${process.pid}`
      await run('go', ['build', '-trimpath', '-o', partial, './cmd/ferretdb'], { cwd: src, maxBuffer: 16 << 20 })
      await run('mv', [partial, binary])
    } finally {
      await rm(work, { recursive: true, force: true })
    }
    return binary
  } finally {
    await lock.release()
  }
}

async function makeWritable (dir: string): Promise<void> {
  await run('chmod', ['-R', 'u+w', dir])
}

export async function acquireLock (file: string): Promise<{ release: () => Promise<void> }> {
  const deadline = Date.now() + 10 * 60_000
  for (;;) {
    try {
      const handle = await open(file, 'wx')
      await handle.close()
      return { release: () => rm(file, { force: true }) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      // A lock older than a build can take is left over from a killed run.
      const info = await stat(file).catch(() => null)
      if (info !== null && Date.now() - info.mtimeMs > 10 * 60_000) {
        await rm(file, { force: true })
        continue
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}`)
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
}

export async function freePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, host, () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

/** Whether `port` on `host` can be listened on now. */
async function canListen (port: number, host: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })
}

/**
 * A free port below the kernel's ephemeral range, for a test that names a port now and listens
 * on it seconds later (a gateway started after its clients): no client socket's local port and
 * no listener on port 0 is given it meanwhile, as happened with freePort's ("port ... is taken").
 */
export async function portToListenOnLater (host = '127.0.0.1'): Promise<number> {
  let ephemeralLow = 32768
  try {
    ephemeralLow = Number((await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/)[0]) || ephemeralLow
  } catch {}
  const top = Math.min(ephemeralLow, 65536) - 1
  const bottom = Math.max(10_000, top - 10_000)
  const tries = top - bottom > 100 ? 50 : 0
  for (let i = 0; i < tries; i++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom))
    if (await canListen(port, host)) return port
  }
  return await freePort(host)
}

export interface FerretDbProcess {
  url: string
  port: number
  /** Stops the server (SIGTERM, then SIGKILL) and deletes its data. */
  stop (): Promise<void>
  /** Stops the server but keeps its data, so `start()` brings the same data back. */
  pause (): Promise<void>
  start (): Promise<void>
}

export async function startFerretDb (): Promise<FerretDbProcess> {
  const binary = await ensureFerretDb((line) => process.stderr.write(`# ${line}\n`))
  const dataDir = await mkdtemp(join(tmpdir(), 'mcpgw-ferretdb-'))
  await chmod(dataDir, 0o700)
  const port = await freePort()
  let child: ReturnType<typeof spawn> | null = null
  let output = ''

  const start = async (): Promise<void> => {
    output = ''
    const proc = spawn(binary, [
      '--handler=sqlite',
      `--sqlite-url=file:${dataDir}/`,
      // Its state.json goes with the data, not into whatever directory the tests run in.
      `--state-dir=${dataDir}`,
      `--listen-addr=127.0.0.1:${port}`,
      '--debug-addr=-',
      '--telemetry=disable',
      '--log-level=warn'
    ], {
      // Telemetry stays off twice over: nothing may call outside this machine.
      env: { ...process.env, DO_NOT_TRACK: '1', FERRETDB_TELEMETRY: 'disable' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    child = proc
    proc.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    proc.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    await waitForPort(port, proc, () => output)
  }

  const pause = async (): Promise<void> => {
    const proc = child
    child = null
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }

  await start()
  return {
    url: `mongodb://127.0.0.1:${port}/`,
    port,
    start,
    pause,
    stop: async () => {
      await pause()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
}

async function waitForPort (port: number, proc: ReturnType<typeof spawn>, output: () => string): Promise<void> {
  const { connect } = await import('node:net')
  const deadline = Date.now() + 20_000
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`FerretDB exited before listening (code ${proc.exitCode}, signal ${proc.signalCode}):\n${output()}`)
    }
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`FerretDB did not listen on 127.0.0.1:${port} within 20 s:\n${output()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

import { spawn } from 'node:child_process'
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { readdirSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { stopChild } from '@mcp-gw/testkit'

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `url` answers 2xx; returns the milliseconds it took. */
export async function waitForOk (url: string, timeoutMs = 20_000, child?: ChildProcess): Promise<number> {
  const started = performance.now()
  for (;;) {
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (res.ok) return performance.now() - started
    } catch {}
    if (child !== undefined && child.exitCode !== null) throw new Error(`${url}: the process exited with ${child.exitCode} before answering`)
    if (performance.now() - started > timeoutMs) throw new Error(`${url} did not answer within ${timeoutMs} ms`)
    await sleep(5)
  }
}

async function status (pid: number, field: string): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)
  if (match === null) throw new Error(`no ${field} for pid ${pid}`)
  return Number(match[1]) * 1024
}

/** Resident set size in bytes. */
export const rss = async (pid: number): Promise<number> => await status(pid, 'VmRSS')
/** Peak resident set size in bytes since start or the last resetPeakRss. */
export const peakRss = async (pid: number): Promise<number> => await status(pid, 'VmHWM')
/** Resets VmHWM to the current RSS (Linux clear_refs). */
export async function resetPeakRss (pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5')
}
export function openFds (pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

export interface Child {
  process: ChildProcess
  pid: number
  /** The next JSON line the child prints on stdout. */
  next<T = Record<string, unknown>>(timeoutMs?: number): Promise<T>
  send (line: string): void
  stop (signal?: NodeJS.Signals): Promise<void>
  stderr (): string
}

/** Spawns a process that speaks JSON lines on stdout. */
export function spawnJson (command: string, args: string[], options: SpawnOptions = {}): Child {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options })
  const lines: string[] = []
  const waiters: Array<(line: string) => void> = []
  let err = ''
  child.stderr!.on('data', (c: Buffer) => { err = (err + c.toString()).slice(-4000) })
  if (child.stdout !== null) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return
      const waiter = waiters.shift()
      if (waiter !== undefined) waiter(line)
      else lines.push(line)
    })
  }
  return {
    process: child,
    pid: child.pid!,
    async next<T>(timeoutMs = 600_000): Promise<T> {
      const line = lines.shift() ?? await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${command} ${args.join(' ')}: no answer in ${timeoutMs} ms\n${err}`)), timeoutMs)
        const onExit = (): void => { clearTimeout(timer); reject(new Error(`${command} ${args.join(' ')} exited with ${child.exitCode}\n${err}`)) }
        child.once('exit', onExit)
        waiters.push((l) => { clearTimeout(timer); child.off('exit', onExit); resolve(l) })
      })
      return JSON.parse(line) as T
    },
    send (line) { child.stdin!.write(line + '\n') },
    stop: async (signal = 'SIGTERM') => { await stopChild(child, signal) },
    stderr: () => err
  }
}

/**
 * Spawns a server whose stdout (its logs) goes to /dev/null, as cheaply as a
 * production log shipper could take it; the tail of stderr is kept for errors.
 */
export function spawnServer (command: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  return spawnJson(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** CPU time (user + system) a process has used, in milliseconds (10 ms resolution). */
export async function cpuMs (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

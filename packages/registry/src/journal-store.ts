import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname, resolve } from 'node:path'
import { StoreFileError, StoreUnavailableError } from './errors.js'
import { MemoryStore } from './memory-store.js'
import type { MemoryStoreOptions, StoreChange } from './memory-store.js'
import type { Logger, SweepResult } from './types.js'

export interface JournalStoreOptions extends MemoryStoreOptions {
  /** The journal file; its directory is made (0700) when missing. Beside it: `<path>.lock`. */
  path: string
  logger?: Logger
  /** Rewrite the journal once it holds this many lines more than live records. Default 20000. */
  compactAfter?: number
}

/** The first line of every journal: what wrote it, so a later format is refused, never misread. */
const HEADER = JSON.stringify({ format: 'mcp-gw store journal', version: 1 })
const DEFAULT_COMPACT_AFTER = 20_000
/** Journals open in this process, by resolved path: a lock file cannot tell two stores of one process apart. */
const openHere = new Set<string>()

/**
 * The embedded store, kept across restarts in one append-only file: every lookup is still
 * a Map hit (0 file reads per request); every change is one line written before it is
 * applied, with one write(2) each, so a process killed at any instant loses at most the
 * change it was writing, and the file never holds more than one incomplete line, at its
 * end, which the next open drops. The file is rewritten (written aside, fsynced, renamed
 * over) at open and when stale lines outgrow the live records. One process at a time:
 * `<path>.lock` holds the owner's pid and host.
 */
export class JournalStore extends MemoryStore {
  override readonly kind: string = 'file'
  readonly path: string
  readonly #lockPath: string
  readonly #logger: Logger | undefined
  readonly #compactAfter: number
  #fd: number | null = null
  /** Lines in the file; compared with the live records to decide a rewrite. */
  #lines = 0
  /**
   * A write failed part-way (a full disk): the file may end in a partial line. Nothing is
   * appended after it until a rewrite from memory succeeds.
   */
  #broken = false

  constructor (options: JournalStoreOptions) {
    super(options)
    this.path = options.path
    this.#lockPath = `${options.path}.lock`
    this.#logger = options.logger
    this.#compactAfter = options.compactAfter ?? DEFAULT_COMPACT_AFTER
  }

  override async init (): Promise<void> {
    if (this.#fd === null) this.#open()
    await super.init()
  }

  protected override record (change: StoreChange): void {
    if (this.#fd === null) throw new StoreUnavailableError({ cause: new Error('the journal store is not open: call init() first') })
    if (this.#broken) this.#recover()
    try {
      // One write(2) for a line of any usual size; a short write continues where it stopped.
      writeAll(this.#fd, `${JSON.stringify(change)}\n`)
    } catch (err) {
      // The change is not applied; the file may hold part of its line. Rewritten from memory
      // now if the disk allows, else before the next write.
      this.#broken = true
      try { this.#recover() } catch {}
      throw new StoreUnavailableError({ cause: err })
    }
    this.#lines++
  }

  #recover (): void {
    try {
      this.#compact()
      this.#broken = false
    } catch (err) {
      throw new StoreUnavailableError({ cause: err })
    }
  }

  override async sweep (now: number): Promise<SweepResult> {
    const swept = await super.sweep(now)
    if (this.#fd !== null && (this.#broken || this.#lines - this.size > this.#compactAfter)) {
      try {
        this.#compact()
        this.#broken = false
      } catch (err) {
        this.#logger?.warn({ path: this.path, err: { code: (err as NodeJS.ErrnoException).code, message: (err as Error).message } }, 'store journal: the rewrite failed; the journal keeps growing until one succeeds')
      }
    }
    return swept
  }

  override async close (): Promise<void> {
    await super.close()
    if (this.#fd === null) return
    try { fsyncSync(this.#fd) } catch {}
    closeSync(this.#fd)
    this.#fd = null
    if (readText(this.#lockPath) === this.#lockText) try { unlinkSync(this.#lockPath) } catch {}
    openHere.delete(resolve(this.path))
  }

  #open (): void {
    const here = resolve(this.path)
    if (openHere.has(here)) throw new StoreFileError(this.path, 'this process has it open already; one store per file')
    ensurePrivateDirectory(dirname(this.path))
    this.#lock()
    try {
      this.#load()
      this.#compact()
    } catch (err) {
      try { unlinkSync(this.#lockPath) } catch {}
      throw err
    }
    openHere.add(here)
  }

  /**
   * Takes `<path>.lock` (`<pid> <host>`, written whole aside and linked into place), or fails
   * naming the process that holds it. A lock of a process that is gone on this host is moved
   * aside (atomically, so of two starters only one takes it over) and taken.
   */
  #lock (): void {
    const tmp = `${this.#lockPath}.${process.pid}.${randomBytes(6).toString('hex')}`
    writeFileSync(tmp, this.#lockText, { mode: 0o600, flag: 'wx' })
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(tmp, this.#lockPath)
          return
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreFileError(this.path, (err as Error).message, { cause: err })
        }
        const held = readText(this.#lockPath)
        this.#refuseIfHeld(held)
        // Gone: moved aside, then checked again (another starter may have taken it meanwhile).
        const aside = `${tmp}.stale`
        try { renameSync(this.#lockPath, aside) } catch { continue }
        const moved = readText(aside)
        if (moved !== held) {
          try { linkSync(aside, this.#lockPath) } catch {}
          rmSync(aside, { force: true })
          this.#refuseIfHeld(moved)
        }
        rmSync(aside, { force: true })
      }
      throw new StoreFileError(this.path, `could not take ${this.#lockPath}`)
    } finally {
      rmSync(tmp, { force: true })
    }
  }

  /** Fails when `lock` names a live process: on this host, any other than ours; on another host, any. */
  #refuseIfHeld (lock: string): void {
    const [pidText, host = ''] = lock.trim().split(' ')
    const pid = Number.parseInt(pidText ?? '', 10)
    if (!Number.isInteger(pid) || pid <= 0) return
    const sameHost = host === hostname()
    // Our own pid on this host: left by an earlier process (pids are reused), since no store
    // of this process has the file open (checked before).
    if (sameHost && (pid === process.pid || !isRunning(pid))) return
    throw new StoreFileError(this.path, `process ${pid}${sameHost ? '' : ` on ${host}`} holds it (${this.#lockPath}); one gateway per file: give this one another data directory or port, or delete the lock file if that process is not a gateway`)
  }

  get #lockText (): string {
    return `${process.pid} ${hostname()}\n`
  }

  #load (): void {
    let text: string
    try {
      text = readFileSync(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw new StoreFileError(this.path, (err as Error).message, { cause: err })
    }
    const complete = text.lastIndexOf('\n') + 1
    const lines = text.slice(0, complete).split('\n')
    lines.pop()
    if ((lines.length > 0 && lines[0] !== HEADER) || (lines.length === 0 && !`${HEADER}\n`.startsWith(text))) {
      throw new StoreFileError(this.path, `it is not a journal this version reads (it begins ${JSON.stringify(text.slice(0, 60))}); move it aside to start afresh`)
    }
    // Only a write cut short can leave a bad line, and only at the end: one anywhere else is
    // damage, and skipping it could bring back what it revoked. Refused; the file is left as it is.
    for (let i = 1; i < lines.length; i++) {
      const change = parseChange(lines[i]!)
      if (change === null) throw new StoreFileError(this.path, `line ${i + 1} is unreadable (damaged on disk?); move the file aside to start afresh, or repair that line`)
      this.restore(change)
    }
    if (complete < text.length) this.#logger?.warn({ path: this.path, bytes: text.length - complete }, 'store journal: dropped an incomplete last line (a write cut short when the process stopped)')
  }

  /** Writes the live records to `<path>.tmp`, fsyncs it and renames it over the journal. */
  #compact (): void {
    const tmp = `${this.path}.tmp`
    // Never one left by someone else (or a link): made afresh, ours alone.
    rmSync(tmp, { force: true })
    const fd = openSync(tmp, 'wx', 0o600)
    let lines = 1
    try {
      const chunk: string[] = [HEADER]
      const now = this.now()
      for (const change of this.snapshot()) {
        // Lapsed sessions and registrations are not written again (memory drops them at the next sweep).
        if ('put' in change && change.put !== 'key' && change.record.expiresAt <= now) continue
        chunk.push(JSON.stringify(change))
        lines++
        if (chunk.length >= 1000) writeAll(fd, `${chunk.splice(0).join('\n')}\n`)
      }
      if (chunk.length > 0) writeAll(fd, `${chunk.join('\n')}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, this.path)
    syncDirectory(dirname(this.path))
    // The new descriptor first: a failed open keeps the old one (on the old file) usable.
    const next = openSync(this.path, 'a', 0o600)
    if (this.#fd !== null) closeSync(this.#fd)
    this.#fd = next
    this.#lines = lines
  }
}

/**
 * Makes `path` (0700) or checks it: a directory of this user that no one else may write, so
 * nobody else can plant or swap the files kept in it (where the platform has uids).
 */
export function ensurePrivateDirectory (path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 })
  const stat = lstatSync(path)
  if (!stat.isDirectory()) throw new StoreFileError(path, 'it is not a directory')
  if (typeof process.getuid === 'function' && (stat.uid !== process.getuid() || (stat.mode & 0o022) !== 0)) {
    throw new StoreFileError(path, `the directory must be owned by this user and writable by no one else (it is mode ${(stat.mode & 0o777).toString(8)}, uid ${stat.uid}); chmod 700 it, or choose another`)
  }
}

function parseChange (line: string): StoreChange | null {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const change = value as Record<string, unknown>
  if ((change.put === 'session' || change.put === 'server' || change.put === 'key') && typeof change.record === 'object' && change.record !== null) return change as unknown as StoreChange
  if ((change.drop === 'session' || change.drop === 'server') && typeof change.id === 'string') return change as unknown as StoreChange
  return null
}

function writeAll (fd: number, text: string): void {
  const bytes = Buffer.from(text)
  for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at)
}

function readText (path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/**
 * True when a process with this pid runs (EPERM: it exists, as another user's). A zombie (a
 * killed gateway its parent has not reaped yet, Linux's /proc says so) does not.
 */
function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  const stat = readText(`/proc/${pid}/stat`)
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
}

/** The rename is durable once the directory entry is: fsync the directory (where the platform allows it). */
function syncDirectory (path: string): void {
  let fd: number | undefined
  try {
    fd = openSync(path, 'r')
    fsyncSync(fd)
  } catch {
    // Windows cannot open a directory; the rename stands there without it.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

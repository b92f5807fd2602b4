import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
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
 * `<path>.lock` holds the owner's pid.
 */
export class JournalStore extends MemoryStore {
  override readonly kind: string = 'file'
  readonly path: string
  readonly #lockPath: string
  readonly #logger: Logger | undefined
  readonly #compactAfter: number
  readonly #clock: () => number
  #fd: number | null = null
  /** Lines in the file; compared with the live records to decide a rewrite. */
  #lines = 0

  constructor (options: JournalStoreOptions) {
    super(options)
    this.path = options.path
    this.#lockPath = `${options.path}.lock`
    this.#logger = options.logger
    this.#compactAfter = options.compactAfter ?? DEFAULT_COMPACT_AFTER
    this.#clock = options.now ?? Date.now
  }

  override async init (): Promise<void> {
    if (this.#fd === null) this.#open()
    await super.init()
  }

  protected override record (change: StoreChange): void {
    if (this.#fd === null) throw new StoreUnavailableError({ cause: new Error('the journal store is not open: call init() first') })
    try {
      // One write(2) for a line of any usual size; a short write continues where it stopped.
      writeAll(this.#fd, `${JSON.stringify(change)}\n`)
    } catch (err) {
      throw new StoreUnavailableError({ cause: err })
    }
    this.#lines++
  }

  override async sweep (now: number): Promise<SweepResult> {
    const swept = await super.sweep(now)
    if (this.#fd !== null && this.#lines - this.size > this.#compactAfter) this.#compact()
    return swept
  }

  override async close (): Promise<void> {
    await super.close()
    if (this.#fd === null) return
    try { fsyncSync(this.#fd) } catch {}
    closeSync(this.#fd)
    this.#fd = null
    try { unlinkSync(this.#lockPath) } catch {}
    openHere.delete(resolve(this.path))
  }

  #open (): void {
    const here = resolve(this.path)
    if (openHere.has(here)) throw new StoreFileError(this.path, 'this process has it open already; one store per file')
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 })
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

  /** Takes `<path>.lock`, or fails naming the live process that holds it. */
  #lock (): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.#lockPath, 'wx', 0o600)
        writeSync(fd, `${process.pid}\n`)
        closeSync(fd)
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreFileError(this.path, (err as Error).message, { cause: err })
      }
      // Our own pid in it: left by an earlier process that had it (pids are reused), since no
      // store of this process has the file open (checked before).
      const holder = Number.parseInt(readText(this.#lockPath), 10)
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
        throw new StoreFileError(this.path, `process ${holder} holds it (${this.#lockPath}); one gateway per file: give this one another data directory or port, or delete the lock file if that process is not a gateway`)
      }
      // Left by a process that is gone: taken over.
      try { unlinkSync(this.#lockPath) } catch {}
    }
    throw new StoreFileError(this.path, `could not take ${this.#lockPath}`)
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
    if (lines.length > 0 && lines[0] !== HEADER) {
      throw new StoreFileError(this.path, `it is not a journal this version reads (first line: ${JSON.stringify(lines[0]!.slice(0, 80))})`)
    }
    let unreadable = 0
    for (let i = 1; i < lines.length; i++) {
      const change = parseChange(lines[i]!)
      if (change === null) unreadable++
      else this.restore(change)
    }
    if (complete < text.length) this.#logger?.warn({ path: this.path, bytes: text.length - complete }, 'store journal: dropped an incomplete last line (a write cut short when the process stopped)')
    if (unreadable > 0) this.#logger?.warn({ path: this.path, lines: unreadable }, 'store journal: skipped unreadable lines')
  }

  /** Writes the live records to `<path>.tmp`, fsyncs it and renames it over the journal. */
  #compact (): void {
    const tmp = `${this.path}.tmp`
    const fd = openSync(tmp, 'w', 0o600)
    let lines = 1
    try {
      const chunk: string[] = [HEADER]
      const now = this.#clock()
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
    if (this.#fd !== null) closeSync(this.#fd)
    this.#fd = openSync(this.path, 'a', 0o600)
    this.#lines = lines
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

/** True when a process with this pid exists (EPERM: it exists, as another user's). */
function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
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

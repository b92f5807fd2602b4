import { stderrLogger } from './logger.js'
import type { Logger } from './logger.js'

export interface Closable {
  close (): Promise<void>
}

export interface CloseOnExitOptions {
  /** How long closing may take before the process exits anyway. Default 1500. */
  timeoutMs?: number
  /** Default ['SIGTERM', 'SIGINT', 'SIGHUP'] (SIGHUP: the terminal or the parent went away). */
  signals?: NodeJS.Signals[]
  /**
   * Exit when stdin ends: a stdio MCP server's client closing the pipe means
   * the server is done. Default true.
   */
  stdin?: boolean
  /**
   * Also close (deregister) before exiting on an uncaught exception or unhandled
   * rejection, e.g. an MCP HTTP port that is taken: the error is logged and the
   * process exits with code 1. Default true.
   */
  uncaught?: boolean
  logger?: Logger
  /** Default process.exit. */
  exit?: (code: number) => void
}

/**
 * One call for a clean end: on SIGTERM, SIGINT, the end of stdin or an uncaught
 * error, closes each of `closables` in order (a `startWebUI` handle, then the
 * client: the registration is removed), within `timeoutMs` in all, then exits.
 * A stdio transport keeps stdin open, so without this the process would outlive
 * its client. Returns the shutdown function itself, for other triggers.
 */
export function closeOnExit (closables: Closable[], options: CloseOnExitOptions = {}): (code?: number) => Promise<void> {
  const timeoutMs = options.timeoutMs ?? 1500
  const logger = options.logger ?? stderrLogger
  const exit = options.exit ?? ((code: number) => process.exit(code))
  let stopping: Promise<void> | null = null

  function shutdown (code = 0): Promise<void> {
    stopping ??= (async () => {
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })
      const closing = (async () => {
        for (const closable of closables) {
          try {
            await closable.close()
          } catch {}
        }
      })()
      await Promise.race([closing, deadline])
      clearTimeout(timer)
      exit(code)
    })()
    return stopping
  }

  // A second signal while closing (Ctrl-C twice): the user insists, exit at once. A signal
  // after the end of stdin started the close is the first signal, not a second one.
  let signalled = false
  const onSignal = (): void => {
    if (signalled) exit(130)
    signalled = true
    shutdown(0).catch(() => {})
  }
  for (const signal of options.signals ?? ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, onSignal)
  if (options.stdin ?? true) {
    process.stdin.once('end', () => { shutdown(0).catch(() => {}) })
    process.stdin.once('close', () => { shutdown(0).catch(() => {}) })
  }
  if (options.uncaught ?? true) {
    process.on('uncaughtException', (err: Error & { code?: string }) => {
      logger.warn({ code: err?.code, err: String(err?.stack ?? err) }, 'uncaught error; deregistering and exiting')
      shutdown(1).catch(() => {})
    })
  }
  return shutdown
}

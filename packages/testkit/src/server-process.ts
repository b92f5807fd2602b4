import type { ChildProcess } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { stopChild } from './gateway-process.js'

/** A server the testkit started: nginx or Caddy in the foreground, its files in a directory of its own. */
export interface ServerProcess {
  port: number
  pid: number
  /** What it wrote to stderr, for failure messages. */
  output (): string
  /** Stops it (`signal`, then SIGKILL) and removes its directory. */
  stop (): Promise<void>
}

/** Whether something on 127.0.0.1 accepts TCP connections on `port`. */
export function acceptsConnections (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/**
 * Keeps the tail of the child's stderr and resolves once its port accepts TCP; if it
 * exits first or does not listen within `timeoutMs`, stops it and throws with its output.
 */
export async function untilListening (child: ChildProcess, options: { name: string, port: number, dir: string, signal: NodeJS.Signals, timeoutMs: number }): Promise<ServerProcess> {
  let output = ''
  child.stderr?.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-20_000) })
  const stop = async (): Promise<void> => {
    await stopChild(child, options.signal)
    await rm(options.dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + options.timeoutMs
  while (!(await acceptsConnections(options.port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop()
      throw new Error(`${options.name} did not start: ${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { port: options.port, pid: child.pid!, output: () => output, stop }
}

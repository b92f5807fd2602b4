import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { spawnGateway } from '@mcp-gw/testkit'
import type { GatewayProcess, SpawnGatewayOptions } from '@mcp-gw/testkit'
import type { Test } from 'tap'

export const API_KEY = 'chaos-' + randomBytes(16).toString('hex')
export const SECRET = randomBytes(32).toString('hex')

/** The prebuilt gateway in its own process, stopped when the test ends. */
export async function startGateway (t: Test, options: Partial<SpawnGatewayOptions> = {}): Promise<GatewayProcess> {
  const gw = await spawnGateway({ apiKey: API_KEY, secret: SECRET, ...options })
  t.teardown(() => gw.stop('SIGKILL'))
  return gw
}

export function openFds (pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

export function rssBytes (pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match?.[1] ?? NaN) * 1024
}

export const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)

/** A figure for the chaos table: a TAP comment the runner collects. */
export function figure (t: Test, text: string): void {
  t.comment(`figure: ${text}`)
}

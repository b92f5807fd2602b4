import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
export const WRK = process.env.WRK_PATH ?? '/usr/bin/wrk'
export const hasWrk = (): boolean => existsSync(WRK)

export interface HttpResult { rps: number, p50: number, p99: number, errors: number, non2xx: number, requests: number }

/**
 * One wrk run (one thread: the second core is the proxy's). Latency figures are
 * milliseconds with microsecond resolution; wrk reports non-2xx/3xx as errors.status.
 */
export async function wrk (spec: { urls: string[], connections: number, seconds: number, method?: string, bodyBytes?: number }): Promise<HttpResult> {
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-wrk-'))
  try {
    const first = new URL(spec.urls[0]!)
    const paths = spec.urls.map((u) => { const url = new URL(u); return url.pathname + url.search })
    const lines = [
      `wrk.method = ${JSON.stringify(spec.method ?? 'GET')}`,
      `wrk.path = ${JSON.stringify(paths[0])}`
    ]
    if (spec.bodyBytes !== undefined) {
      lines.push(`wrk.body = string.rep("z", ${spec.bodyBytes})`, 'wrk.headers["Content-Type"] = "application/octet-stream"')
    }
    if (paths.length > 1) {
      // A request function makes wrk build each request in Lua: only when paths vary.
      await writeFile(join(dir, 'paths.txt'), paths.join('\n') + '\n')
      lines.push(
        'local paths = {}',
        `for line in io.lines(${JSON.stringify(join(dir, 'paths.txt'))}) do paths[#paths + 1] = line end`,
        'local i = 0',
        'request = function() i = i % #paths + 1; return wrk.format(nil, paths[i]) end'
      )
    }
    lines.push(
      'done = function(summary, latency, requests)',
      '  local e = summary.errors',
      '  io.write(string.format(\'\\n{"requests":%d,"seconds":%.6f,"p50":%.3f,"p99":%.3f,"errors":%d,"non2xx":%d}\\n\',',
      '    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,',
      '    e.connect + e.read + e.write + e.timeout, e.status))',
      'end'
    )
    await writeFile(join(dir, 'script.lua'), lines.join('\n') + '\n')
    const { stdout } = await run(WRK, ['-t1', `-c${spec.connections}`, `-d${spec.seconds}s`, '--timeout', '10s', '-s', join(dir, 'script.lua'), first.origin + paths[0]], { maxBuffer: 1 << 20 })
    const json = stdout.split('\n').reverse().find((l) => l.startsWith('{"requests"'))
    if (json === undefined) throw new Error(`wrk printed no summary:\n${stdout}`)
    const r = JSON.parse(json) as { requests: number, seconds: number, p50: number, p99: number, errors: number, non2xx: number }
    return { rps: r.requests / r.seconds, p50: r.p50, p99: r.p99, errors: r.errors, non2xx: r.non2xx, requests: r.requests }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

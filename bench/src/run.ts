// pnpm bench [--quick] [--only=1,2,...] [--profile=small|scale]   (11: audit trail on vs off)
// Starts every target on 127.0.0.1, runs each workload against each, and prints
// Markdown tables: medians of the rounds, gateway ratios to the bare proxy, and
// the targets with their verdicts.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { cpus, tmpdir, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import type { TestMongo } from '@mcp-gw/testkit'
import { startTestMongo } from '@mcp-gw/testkit'
import { cpuMs, openFds, peakRss, resetPeakRss, rss, sleep, spawnJson } from './proc.js'
import { fmt, median, mib, table } from './stats.js'
import type { Backend, Target } from './targets.js'
import type { GatewayProcess } from '@mcp-gw/testkit'
import { NGINX, NODE_CEILING, spawnGateway, startBackend, startBareProxy, startCaddyAlone, startChp, startEdge, startGateway, startGatewayPair, startNginx, startNodeCeiling, direct } from './targets.js'
import type { EdgeTarget } from './targets.js'
import type { HttpResult } from './wrk.js'
import { hasWrk, WRK, wrk } from './wrk.js'
import { summarizeProfile } from './profile.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    /** `small` (`small-mongo`): profile an embedded-store (Mongo-store) gateway under workload 1 alone; `scale`: the embedded-store gateway of workload 6. */
    profile: { type: 'string' }
  }
})
const quick = args.quick === true
const only = args.only === undefined ? null : new Set(args.only.split(',').map(Number))
const wanted = (n: number): boolean => only === null || only.has(n)

const ROUNDS = 3
const SECONDS = quick ? 3 : 10
const BIG_BYTES = quick ? 256 * 1024 * 1024 : 1024 * 1024 * 1024
const SCALE = quick ? { sessions: 10_000, servers: 1_000 } : { sessions: 100_000, servers: 10_000 }
/** Tokens the scale workload spreads its requests over: many, yet within the session cache (10,000). */
const SPREAD_TOKENS = quick ? 1_000 : 5_000
/** The proxy holds two descriptors per proxied socket; the hard limit of this machine bounds the idle-socket count. */
const FD_LIMIT = Number(process.env.MCPGW_BENCH_FD_LIMIT ?? 20_000)
const IDLE_SOCKETS = Math.min(quick ? 2_000 : 10_000, Math.floor((FD_LIMIT - 300) / 2))
const LOADER = fileURLToPath(new URL('./loader.js', import.meta.url))

const out = (text = ''): void => { process.stdout.write(text + '\n') }
const note = (text: string): void => { process.stderr.write(`# ${text}\n`) }

async function load<T> (spec: Record<string, unknown>): Promise<T> {
  const child = spawnJson(process.execPath, [LOADER, JSON.stringify(spec)])
  try {
    return await child.next<T>()
  } finally {
    await child.stop()
  }
}

async function http (spec: { urls: string[], connections: number, seconds: number, method?: string, bodyBytes?: number }): Promise<HttpResult> {
  return hasWrk() ? await wrk(spec) : await load<HttpResult>({ kind: 'http', ...spec })
}

interface Verdict { target: string, figure: string, ok: boolean }
const verdicts: Verdict[] = []
function check (target: string, figure: string, ok: boolean): void { verdicts.push({ target, figure, ok }) }

/** Round-robin rounds over targets, so drift on a shared machine hits them alike. */
async function rounds<R> (targets: Target[], fn: (t: Target) => Promise<R>): Promise<Map<Target, R[]>> {
  const results = new Map<Target, R[]>(targets.map((t) => [t, []]))
  for (let r = 0; r < ROUNDS; r++) {
    for (const t of targets) results.get(t)!.push(await fn(t))
  }
  return results
}

function storeOps (metrics: string): Map<string, number> {
  const ops = new Map<string, number>()
  for (const m of metrics.matchAll(/^mcpgw_store_operations_total\{operation="(\w+)"\} (\d+)$/gm)) {
    // The scrape itself asks for stats: not a cost of proxying.
    if (m[1] !== 'stats') ops.set(m[1]!, Number(m[2]))
  }
  return ops
}
const sum = (ops: Map<string, number>): number => [...ops.values()].reduce((a, b) => a + b, 0)
function diff (after: Map<string, number>, before: Map<string, number>): string {
  return [...after].map(([op, n]) => [op, n - (before.get(op) ?? 0)] as const).filter(([, n]) => n > 0).map(([op, n]) => `${op} ${n}`).join(', ')
}
function proxied (metrics: string): number {
  let n = 0
  for (const m of metrics.matchAll(/^mcpgw_proxy_responses_total\{class="\w+"\} (\d+)$/gm)) n += Number(m[1])
  return n
}

async function main (): Promise<void> {
  const started = Date.now()
  out(`# mcp-gw benchmarks${quick ? ' (quick)' : ''}`)
  out()
  out(`- date: ${new Date().toISOString()}`)
  out(`- machine: ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform} ${process.arch}`)
  out(`- load: ${hasWrk() ? `wrk (${WRK}, 1 thread)` : 'autocannon (wrk not installed: latencies have 1 ms resolution)'} for HTTP; a Node process of ws/http clients for WebSocket, SSE and big bodies`)
  out(`- rounds: median of ${ROUNDS}, targets interleaved round by round; HTTP rounds last ${SECONDS} s`)
  out()

  const backend = await startBackend()
  const mongo: TestMongo = await startTestMongo()
  note(`MongoDB-wire server: ${mongo.source}`)
  const targets: Target[] = [direct(backend)]
  const nginx = await startNginx(backend)
  if (nginx === null) note(`nginx is not installed at ${NGINX}: its column is missing (apt-get install nginx)`)
  else targets.push(nginx)
  const ceiling = await startNodeCeiling(backend)
  const bare = await startBareProxy(backend)
  const chp = await startChp(backend)
  targets.push(ceiling, bare, chp)
  const gwMemory = await startGateway(backend, 'mcp-gw (embedded store)', {})
  const gwMongo = await startGateway(backend, 'mcp-gw (Mongo store)', { mongoUrl: mongo.url, dbName: mongo.uniqueDbName('mcpgw_bench') })
  targets.push(gwMemory, gwMongo)
  const gateways = [gwMemory, gwMongo]
  const ratio = (value: number, t: Target, base: Map<Target, number>): string =>
    gateways.includes(t as typeof gwMemory) ? ` (${fmt(value / base.get(bare)!, 2)}x)` : ''
  // Workload 1 only: two gateway processes on one port and one Mongo store.
  const pair = wanted(1) ? await startGatewayPair(backend, 'mcp-gw x2 (Mongo store, SO_REUSEPORT)', { mongoUrl: mongo.url, dbName: mongo.uniqueDbName('mcpgw_bench_pair') }) : null

  try {
    // Every target warmed (JIT, connection pools, session caches) before any figure is taken.
    for (const t of pair === null ? targets : [...targets, pair]) await http({ urls: [t.base + 'small'], connections: 50, seconds: quick ? 2 : 4 })

    if (wanted(1) || wanted(7)) {
      out('## 1. Small JSON GET, 50 connections')
      out()
      const before = new Map<Target, string>()
      for (const g of gateways) before.set(g, await g.admin!.metrics())
      const smallTargets = pair === null ? targets : [...targets, pair]
      const res = await rounds(smallTargets, async (t) => {
        const cpu = await sumCpu(t.pids)
        const r = await http({ urls: [t.base + 'small'], connections: 50, seconds: SECONDS })
        return { ...r, cpuUsPerRequest: (await sumCpu(t.pids) - cpu) * 1000 / r.requests }
      })
      const rps = new Map([...res].map(([t, r]) => [t, median(r.map((x) => x.rps))]))
      const p99 = new Map([...res].map(([t, r]) => [t, median(r.map((x) => x.p99))]))
      const cpu = new Map([...res].map(([t, r]) => [t, median(r.map((x) => x.cpuUsPerRequest))]))
      const isGateway = (t: Target): boolean => gateways.includes(t as typeof gwMemory) || t === pair
      out(table(['target', 'requests/s', 'to Node ceiling', 'p50 ms', 'p99 ms', 'CPU µs per request', 'errors'], [...res].map(([t, r]) => [
        t.name, fmt(rps.get(t)!), t === targets[0] ? '' : `${fmt(rps.get(t)! / rps.get(ceiling)!, 2)}x`, fmt(median(r.map((x) => x.p50)), 2),
        fmt(p99.get(t)!, 2) + (isGateway(t) ? ` (${p99.get(t)! - p99.get(bare)! >= 0 ? '+' : ''}${fmt(p99.get(t)! - p99.get(bare)!, 2)} to bare)` : ''),
        fmt(cpu.get(t)!) + (t === targets[0] ? ' (the backend)' : ''),
        fmt(r.reduce((n, x) => n + x.errors + x.non2xx, 0))
      ])))
      out()
      out('"To Node ceiling" is requests/s over the Node ceiling target\'s of the same run (node:http + an undici Pool, no Fastify, no auth); the p99 difference to the bare @fastify/http-proxy is in brackets. CPU per request is the proxy process\'s user+system time over the round divided by the requests it served (both processes for the x2 row): what the proxy costs, apart from the loader and backend it shares the two cores with.')
      out()
      const ratioRow = (g: Target): string[] => [g.name, `${fmt(rps.get(g)! / rps.get(ceiling)!, 2)}x`, `${fmt(cpu.get(g)! / cpu.get(ceiling)!, 2)}x`,
        `${fmt(rps.get(g)! / rps.get(bare)!, 2)}x`, `${fmt(rps.get(g)! / rps.get(chp)!, 2)}x`, `${p99.get(g)! - p99.get(bare)! >= 0 ? '+' : ''}${fmt(p99.get(g)! - p99.get(bare)!, 2)} ms`]
      out(table(['gateway', 'req/s to Node ceiling (>= 0.9x)', 'CPU/request to Node ceiling (<= 1.1x)', 'req/s to bare (>= 1.3x)', 'req/s to CHP (>= 1.6x)', 'p99 to bare (<= 0)'],
        [...gateways, ...(pair === null ? [] : [pair])].map(ratioRow)))
      out()
      out(`Mongo store to embedded store: ${fmt(rps.get(gwMongo)! / rps.get(gwMemory)!, 2)}x the requests/s, ${fmt(cpu.get(gwMongo)! / cpu.get(gwMemory)!, 2)}x the CPU per request (targets: >= 0.95x and <= 1/0.95 = 1.05x).`)
      out()
      for (const g of gateways) {
        check(g.name, `small GET ${fmt(rps.get(g)! / rps.get(ceiling)!, 2)}x the Node ceiling's requests/s (target >= 0.9x)`, rps.get(g)! >= 0.9 * rps.get(ceiling)!)
        check(g.name, `small GET ${fmt(cpu.get(g)! / cpu.get(ceiling)!, 2)}x the Node ceiling's CPU per request (target <= 1.1x)`, cpu.get(g)! <= 1.1 * cpu.get(ceiling)!)
        check(g.name, `small GET ${fmt(rps.get(g)! / rps.get(bare)!, 2)}x bare proxy (target >= 1.3x)`, rps.get(g)! >= 1.3 * rps.get(bare)!)
        check(g.name, `small GET ${fmt(rps.get(g)! / rps.get(chp)!, 2)}x configurable-http-proxy (target >= 1.6x)`, rps.get(g)! >= 1.6 * rps.get(chp)!)
        check(g.name, `small GET p99 ${fmt(p99.get(g)! - p99.get(bare)!, 2)} ms over bare proxy (target <= 0)`, p99.get(g)! <= p99.get(bare)!)
      }
      check(gwMongo.name, `small GET ${fmt(rps.get(gwMongo)! / rps.get(gwMemory)!, 2)}x the embedded store's requests/s (target >= 0.95x)`, rps.get(gwMongo)! >= 0.95 * rps.get(gwMemory)!)
      check(gwMongo.name, `small GET CPU per request ${fmt(cpu.get(gwMongo)! / cpu.get(gwMemory)!, 2)}x the embedded store's (target <= 1.05x)`, cpu.get(gwMongo)! * 0.95 <= cpu.get(gwMemory)!)

      out('## 7. Store round trips for a cached session')
      out()
      const rows: string[][] = []
      for (const g of gateways) {
        const after = await g.admin!.metrics()
        const [opsAfter, opsBefore] = [storeOps(after), storeOps(before.get(g)!)]
        const ops = sum(opsAfter) - sum(opsBefore)
        const requests = proxied(after) - proxied(before.get(g)!)
        rows.push([g.name, fmt(requests), fmt(ops), fmt(ops / requests * 1000, 3), diff(opsAfter, opsBefore)])
        check(g.name, `${fmt(ops)} store calls over ${fmt(requests)} cached requests (target: none per request)`, ops / requests * 1000 < 1)
      }
      out(table(['gateway', 'proxied requests', 'store calls', 'per 1,000 requests', 'by operation'], rows))
      out()
      out('Store calls are counted by the registry (`mcpgw_store_operations_total`, all operations but the `stats` of the scrape itself) over the whole workload, including the minutes the gateway sat idle while other targets were measured. None is made per request: what remains is the revalidation of the one session and its route (at most one each per 1.5 s of traffic), the activity write (at most one per 30 s) and the backend\'s heartbeat (one per 20 s), each independent of the request rate.')
      out()
    }

    if (wanted(2)) {
      out('## 2. 1 MiB bodies, 10 connections')
      out()
      const measured = async (t: Target, spec: Parameters<typeof http>[0]): Promise<HttpResult & { cpuUsPerRequest: number }> => {
        const cpu = await sumCpu(t.pids)
        const r = await http(spec)
        return { ...r, cpuUsPerRequest: (await sumCpu(t.pids) - cpu) * 1000 / r.requests }
      }
      const down = await rounds(targets, async (t) => await measured(t, { urls: [t.base + '1mib'], connections: 10, seconds: SECONDS }))
      const up = await rounds(targets, async (t) => await measured(t, { urls: [t.base + 'upload'], connections: 10, seconds: SECONDS, method: 'POST', bodyBytes: 1024 * 1024 }))
      const d = new Map([...down].map(([t, r]) => [t, median(r.map((x) => x.rps))]))
      const u = new Map([...up].map(([t, r]) => [t, median(r.map((x) => x.rps))]))
      const cpuOf = (r: Map<Target, Array<{ cpuUsPerRequest: number }>>, t: Target): string => fmt(median(r.get(t)!.map((x) => x.cpuUsPerRequest)))
      out(table(['target', '1 MiB GET requests/s', 'CPU µs per GET', 'p99 ms', '1 MiB POST requests/s', 'CPU µs per POST', 'p99 ms', 'errors'], targets.map((t) => [
        t.name, fmt(d.get(t)!) + ratio(d.get(t)!, t, d), cpuOf(down, t), fmt(median(down.get(t)!.map((x) => x.p99)), 2),
        fmt(u.get(t)!) + ratio(u.get(t)!, t, u), cpuOf(up, t), fmt(median(up.get(t)!.map((x) => x.p99)), 2),
        fmt([...down.get(t)!, ...up.get(t)!].reduce((n, x) => n + x.errors + x.non2xx, 0))
      ])))
      out()
      out('Gateway ratios are to the bare @fastify/http-proxy; the direct row\'s CPU is the backend\'s.')
      out()
    }

    if (wanted(3)) {
      out('## 3. WebSocket')
      out()
      const echo = await rounds(targets, async (t) => await load<{ messagesPerSecond: number }>({ kind: 'ws-echo', url: t.base.replace(/^http/, 'ws') + 'ws', sockets: 50, seconds: SECONDS, bytes: 64 }))
      const e = new Map([...echo].map(([t, r]) => [t, median(r.map((x) => x.messagesPerSecond))]))
      out(`Echo of 64-byte messages, one in flight per socket, 50 sockets; idle sockets: ${fmt(IDLE_SOCKETS)} opened through a freshly started proxy each round.`)
      out()
      const idleTargets = targets.filter((t) => t !== targets[0])
      const perSocket = new Map<Target, number[]>()
      for (let r = 0; r < ROUNDS; r++) {
        for (const t of idleTargets) {
          const fresh = await restartable(t, backend, mongo)
          try {
            await sleep(500)
            const base = await sumRss(fresh.pids)
            const holder = spawnJson(process.execPath, [LOADER, JSON.stringify({ kind: 'ws-idle', url: fresh.base.replace(/^http/, 'ws') + 'ws', count: IDLE_SOCKETS })])
            const opened = await holder.next<{ opened: number, failed: number }>()
            await sleep(1000)
            const after = await sumRss(fresh.pids)
            if (opened.failed > 0) note(`${t.name}: ${opened.failed} idle sockets failed to open`)
            perSocket.set(t, [...(perSocket.get(t) ?? []), (after - base) / opened.opened])
            holder.send('close')
            await holder.next()
            await holder.stop()
          } finally {
            await fresh.stop()
          }
        }
      }
      out(table(['target', 'echo messages/s', 'RSS per idle socket (KiB)'], targets.map((t) => [
        t.name, fmt(e.get(t)!) + (gateways.includes(t as typeof gwMemory) ? ` (${fmt(e.get(t)! / e.get(targets[0]!)!, 2)}x direct)` : ''),
        perSocket.has(t) ? fmt(median(perSocket.get(t)!) / 1024, 1) : '(the backend)'
      ])))
      out()
      for (const g of gateways) {
        check(g.name, `WebSocket echo ${fmt(e.get(g)! / e.get(targets[0]!)!, 2)}x direct (target >= 0.5x)`, e.get(g)! >= 0.5 * e.get(targets[0]!)!)
        const kib = median(perSocket.get(g)!) / 1024
        check(g.name, `${fmt(kib, 1)} KiB RSS per idle proxied socket (target <= 30 KB = 29.3 KiB)`, kib * 1024 <= 30_000)
      }
    }

    if (wanted(4)) {
      out('## 4. SSE: one-way latency per event, 1,000 events 5 ms apart')
      out()
      const res = await rounds(targets, async (t) => await load<{ events: number, p50: number, p99: number }>({ kind: 'sse', url: t.base + 'sse?count=1000&interval=5' }))
      const p50 = new Map([...res].map(([t, r]) => [t, median(r.map((x) => x.p50))]))
      const p99 = new Map([...res].map(([t, r]) => [t, median(r.map((x) => x.p99))]))
      const d = targets[0]!
      out(table(['target', 'events', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms'], targets.map((t) => [
        t.name, fmt(median(res.get(t)!.map((x) => x.events))), fmt(p50.get(t)!, 3), fmt(p99.get(t)!, 3),
        t === d ? '' : fmt(p50.get(t)! - p50.get(d)!, 3), t === d ? '' : fmt(p99.get(t)! - p99.get(d)!, 3)
      ])))
      out()
      out('Latency is the client\'s receive time minus the backend\'s send time (wall clocks of two processes on one machine); "added" subtracts the direct figure of the same run.')
      out()
      for (const g of gateways) check(g.name, `SSE added p99 ${fmt(p99.get(g)! - p99.get(d)!, 3)} ms (target <= 2 ms)`, p99.get(g)! - p99.get(d)! <= 2)
    }

    if (wanted(5)) {
      out(`## 5. ${BIG_BYTES === 2 ** 30 ? '1 GiB' : `${BIG_BYTES / 2 ** 20} MiB`} upload and download: proxy peak RSS`)
      out()
      const bigTargets = targets.filter((t) => t !== targets[0])
      const rows: string[][] = []
      for (const t of bigTargets) {
        const growth = { up: [] as number[], down: [] as number[] }
        const speed = { up: [] as number[], down: [] as number[] }
        for (let r = 0; r < ROUNDS; r++) {
          for (const dir of ['up', 'down'] as const) {
            const base = await sumRss(t.pids)
            for (const pid of t.pids) await resetPeakRss(pid)
            const result = await load<{ bytes: number, seconds: number }>(dir === 'up'
              ? { kind: 'upload', url: t.base + 'upload', bytes: BIG_BYTES }
              : { kind: 'download', url: t.base + `download?bytes=${BIG_BYTES}`, bytes: BIG_BYTES })
            if (result.bytes !== BIG_BYTES) throw new Error(`${t.name}: ${dir} moved ${result.bytes} of ${BIG_BYTES} bytes`)
            let peak = 0
            for (const pid of t.pids) peak += await peakRss(pid)
            growth[dir].push(peak - base)
            speed[dir].push(BIG_BYTES / result.seconds)
          }
        }
        rows.push([t.name, mib(median(growth.up)), mib(median(growth.down)), mib(median(speed.up)), mib(median(speed.down))])
        if (gateways.includes(t as typeof gwMemory)) {
          const worst = Math.max(median(growth.up), median(growth.down))
          check(t.name, `big bodies: peak RSS growth ${mib(worst)} MiB (target < 64 MB = 61 MiB)`, worst < 64e6)
        }
      }
      out(table(['target', 'upload peak RSS growth MiB', 'download peak RSS growth MiB', 'upload MiB/s', 'download MiB/s'], rows))
      out()
      out('Growth is the peak RSS during the transfer (VmHWM, reset before each) minus the RSS just before it.')
      out()
    }

    if (wanted(10)) {
      await edges(backend, targets, gwMemory)
    }

    if (wanted(11)) {
      await auditCost(backend, mongo)
    }

    if (wanted(6)) {
      await scale(backend, mongo)
    }

    if (wanted(8)) {
      await lifecycle(backend, mongo)
    }

    if (args.profile === 'small' || args.profile === 'small-mongo') {
      await profile(backend, args.profile === 'small-mongo' ? mongo : null)
    }
  } finally {
    for (const t of targets) await t.stop().catch(() => {})
    await pair?.stop().catch(() => {})
    await backend.child.stop()
    await mongo.stop()
  }

  out('## Targets')
  out()
  out(table(['gateway', 'figure (target)', 'met'], verdicts.map((v) => [v.target, v.figure, v.ok ? 'yes' : '**no**']), 3))
  out()
  out(`Run time: ${fmt((Date.now() - started) / 1000)} s.`)
}

async function sumCpu (pids: number[]): Promise<number> {
  let n = 0
  for (const pid of pids) n += await cpuMs(pid)
  return n
}

async function sumRss (pids: number[]): Promise<number> {
  let n = 0
  for (const pid of pids) n += await rss(pid)
  return n
}

/** A fresh copy of a proxy target for memory measurements. */
async function restartable (t: Target, backend: Backend, mongo: TestMongo): Promise<Target> {
  if (t.name === 'nginx') return (await startNginx(backend))!
  if (t.name === 'configurable-http-proxy') return await startChp(backend)
  if (t.name.startsWith('bare')) return await startBareProxy(backend)
  if (t.name === NODE_CEILING) return await startNodeCeiling(backend)
  if (t.name.includes('Mongo')) return await startGateway(backend, t.name, { mongoUrl: mongo.url, dbName: mongo.uniqueDbName('mcpgw_bench') })
  return await startGateway(backend, t.name, {})
}

async function pool<T> (items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

async function scale (backend: Backend, mongo: TestMongo): Promise<void> {
  out(`## 6. Registry scale: ${fmt(SCALE.sessions)} sessions and ${fmt(SCALE.servers)} servers against 10 sessions`)
  out()
  const rows: string[][] = []
  // FerretDB's SQLite backend answers queries other than by _id with a collection
  // scan, so filling it with 100,000 sessions measures FerretDB: the Mongo row
  // needs a real MongoDB behind MONGO_URL.
  const realMongo = process.env.MONGO_URL !== undefined && process.env.MONGO_URL !== ''
  for (const store of realMongo ? ['embedded', 'Mongo'] as const : ['embedded'] as const) {
    // Two gateways side by side, measured in alternating rounds: one holding 10
    // sessions, one holding them all. Drift on a shared machine hits both alike.
    const profileDir = args.profile === 'scale' && store === 'embedded' ? await mkdtemp(join(tmpdir(), 'mcpgw-prof-')) : null
    const spawn = async (nodeArgs?: string[]): Promise<GatewayProcess> => await spawnGateway({
      secret: randomBytes(32).toString('hex'),
      ...(nodeArgs !== undefined && { nodeArgs }),
      ...(store === 'Mongo' && { mongoUrl: mongo.url, dbName: mongo.uniqueDbName('mcpgw_scale') })
    })
    const tenGw = await spawn()
    const fullGw = await spawn(profileDir === null ? undefined : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])
    try {
      const servers = Array.from({ length: SCALE.servers }, (_, i) => `srv-${i}`)
      const few: string[] = []
      for (let i = 0; i < 10; i++) {
        await tenGw.admin.register(servers[i]!, backend.port)
        few.push(`http://127.0.0.1:${tenGw.port}/mcp/${(await tenGw.admin.session(`user-${i}`, servers[i]!)).token}/small`)
      }
      const fill = Date.now()
      await pool(servers, 32, async (s) => { await fullGw.admin.register(s, backend.port) })
      const spread: string[] = []
      // Registrations live 90 s, and filling takes longer than that: heartbeat them all every
      // 30 s meanwhile, as their SDKs would (a session is refused for a server not live).
      const fillingState = { on: true }
      const heartbeats = (async () => {
        while (fillingState.on) {
          for (let waited = 0; fillingState.on && waited < 30_000; waited += 250) await new Promise((resolve) => setTimeout(resolve, 250))
          if (fillingState.on) await pool(servers, 32, async (s) => { await fullGw.admin.register(s, backend.port) })
        }
      })()
      try {
        await pool(Array.from({ length: SCALE.sessions }, (_, i) => i), 32, async (i) => {
          const { token } = await fullGw.admin.session(`user-${i}`, servers[i % servers.length]!)
          if (i < SPREAD_TOKENS) spread[i] = `http://127.0.0.1:${fullGw.port}/mcp/${token}/small`
        })
      } finally {
        fillingState.on = false
        await heartbeats
      }
      note(`${store}: filled ${fmt(SCALE.sessions)} sessions and ${fmt(SCALE.servers)} servers in ${fmt((Date.now() - fill) / 1000)} s`)
      // Registrations live 90 s: heartbeat them all, as their SDKs would, before measuring.
      await pool(servers, 32, async (s) => { await fullGw.admin.register(s, backend.port) })
      await tenGw.admin.register(servers[0]!, backend.port)
      for (let i = 1; i < 10; i++) await tenGw.admin.register(servers[i]!, backend.port)
      await http({ urls: few, connections: 50, seconds: 2 })
      await http({ urls: spread, connections: 50, seconds: 2 })
      const small: HttpResult[] = []
      const large: HttpResult[] = []
      for (let r = 0; r < ROUNDS; r++) {
        small.push(await http({ urls: few, connections: 50, seconds: SECONDS }))
        large.push(await http({ urls: spread, connections: 50, seconds: SECONDS }))
      }
      const [a, b] = [median(small.map((x) => x.rps)), median(large.map((x) => x.rps))]
      const errors = [...small, ...large].reduce((n, x) => n + x.errors + x.non2xx, 0)
      rows.push([`mcp-gw (${store} store)`, fmt(a), fmt(median(small.map((x) => x.p99)), 2), fmt(b), fmt(median(large.map((x) => x.p99)), 2), fmt(b / a, 2), fmt(errors)])
      check(`mcp-gw (${store} store)`, `${fmt(SCALE.sessions)} sessions: ${fmt(b / a, 2)}x the 10-session requests/s (target >= 0.95x)`, b / a >= 0.95)
    } finally {
      await tenGw.stop()
      await fullGw.stop()
    }
    if (profileDir !== null) await printProfile(profileDir, `the registry-scale load, ${fmt(SCALE.sessions)} sessions`)
  }
  out(table(['gateway', '10 sessions req/s', 'p99 ms', `${fmt(SCALE.sessions)} sessions req/s`, 'p99 ms', 'ratio', 'errors'], rows))
  out()
  if (!realMongo) out('The Mongo store is not in this table: it runs here on FerretDB, whose SQLite backend scans a collection for every query not by `_id`, so filling it with these numbers measures FerretDB, not the gateway. Set `MONGO_URL` to a real MongoDB to add the row.\n')
  out(`Two gateways run side by side and are measured in alternating rounds. The 10-session one spreads requests over 10 tokens on 10 servers; the full one over ${fmt(SPREAD_TOKENS)} tokens on ${fmt(Math.min(SPREAD_TOKENS, SCALE.servers))} servers, in a store holding all ${fmt(SCALE.sessions)} sessions (the session cache holds 10,000 entries by default).`)
  out()
}

/**
 * The audit trail's cost on the proxied path: the same small GET load on gateways with the trail
 * off and on (file sink on the embedded store, Mongo sink on the Mongo store), interleaved.
 */
async function auditCost (backend: Backend, mongo: TestMongo): Promise<void> {
  out('## 11. Audit trail on and off: small JSON GET, 50 connections')
  out()
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-bench-audit-'))
  // Four gateways started together and warmed alike: on and off differ in the trail only.
  const offMemory = await startGateway(backend, 'mcp-gw (embedded store, audit off)', {})
  const offMongo = await startGateway(backend, 'mcp-gw (Mongo store, audit off)', { mongoUrl: mongo.url, dbName: mongo.uniqueDbName('mcpgw_bench_audit_off') })
  const onMemory = await startGateway(backend, 'mcp-gw (embedded store, audit to a file)', { env: { MCP_WEB_UI_AUDIT: `file:${join(dir, 'audit.jsonl')}` } })
  const onMongo = await startGateway(backend, 'mcp-gw (Mongo store, audit to Mongo)', { mongoUrl: mongo.url, dbName: mongo.uniqueDbName('mcpgw_bench_audit'), env: { MCP_WEB_UI_AUDIT: 'mongo' } })
  const all: Target[] = [offMemory, onMemory, offMongo, onMongo]
  try {
    for (const t of all) await http({ urls: [t.base + 'small'], connections: 50, seconds: quick ? 2 : 4 })
    const res = await rounds(all, async (t) => {
      const cpu = await sumCpu(t.pids)
      const r = await http({ urls: [t.base + 'small'], connections: 50, seconds: SECONDS })
      return { ...r, cpuUsPerRequest: (await sumCpu(t.pids) - cpu) * 1000 / r.requests }
    })
    const m = (t: Target, f: (x: HttpResult & { cpuUsPerRequest: number }) => number): number => median(res.get(t)!.map(f))
    out(table(['target', 'requests/s', 'p50 ms', 'p99 ms', 'CPU µs per request', 'errors'], all.map((t) => [
      t.name, fmt(m(t, (x) => x.rps)), fmt(m(t, (x) => x.p50), 2), fmt(m(t, (x) => x.p99), 2), fmt(m(t, (x) => x.cpuUsPerRequest)),
      fmt(res.get(t)!.reduce((n, x) => n + x.errors + x.non2xx, 0))
    ])))
    out()
    for (const [off, on] of [[offMemory, onMemory], [offMongo, onMongo]] as const) {
      const ratio = m(on, (x) => x.rps) / m(off, (x) => x.rps)
      const cpuRatio = m(on, (x) => x.cpuUsPerRequest) / m(off, (x) => x.cpuUsPerRequest)
      out(`${on.name}: ${fmt(ratio, 3)}x the requests/s of the trail off, ${fmt(cpuRatio, 3)}x its CPU per request (medians of ${ROUNDS} interleaved rounds; target >= 0.95x).`)
      check(on.name, `small GET ${fmt(ratio, 3)}x the requests/s with the audit trail off (target >= 0.95x)`, ratio >= 0.95)
    }
    out()
  } finally {
    for (const t of all) await t.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

function forwardAuthCalls (metrics: string): number {
  let n = 0
  for (const m of metrics.matchAll(/^mcpgw_forward_auth_answers_total\{result="\w+"\} (\d+)$/gm)) n += Number(m[1])
  return n
}

/**
 * nginx and Caddy carrying the bytes, asking the gateway (forward-auth) who may go where,
 * beside each alone, the gateway proxying itself and configurable-http-proxy.
 */
async function edges (backend: Backend, targets: Target[], gateway: Target): Promise<void> {
  out('## 10. Edge data plane: nginx (plain and with a Lua pool) and Caddy with forward-auth')
  out()
  const nginx = targets.find((t) => t.name === 'nginx')
  const chp = targets.find((t) => t.name === 'configurable-http-proxy')!
  if (nginx === undefined) {
    note('nginx is not installed: the edge workload needs it')
    return
  }
  const caddy = await startCaddyAlone(backend)
  // The pooled nginx (Lua) first: the edge the targets below are for.
  const withEdge: EdgeTarget[] = [await startEdge(backend, 'nginx pooled', true), await startEdge(backend, 'nginx', true), await startEdge(backend, 'nginx', false), await startEdge(backend, 'Caddy', false)]
  const all: Target[] = [nginx, caddy, ...withEdge, gateway, chp]
  try {
    for (const t of all) await http({ urls: [t.base + 'small'], connections: 50, seconds: quick ? 2 : 4 })
    const res = await rounds(all, async (t) => {
      const edge = withEdge.find((e) => e === t)
      const before = edge === undefined ? 0 : forwardAuthCalls(await edge.admin!.metrics())
      const cpuEdge = await cpuMs(t.pids[0]!)
      const cpuGateway = edge === undefined ? 0 : await cpuMs(edge.gateway.pid)
      const r = await http({ urls: [t.base + 'small'], connections: 50, seconds: SECONDS })
      const after = edge === undefined ? 0 : forwardAuthCalls(await edge.admin!.metrics())
      return {
        ...r,
        edgeUs: (await cpuMs(t.pids[0]!) - cpuEdge) * 1000 / r.requests,
        gatewayUs: edge === undefined ? NaN : (await cpuMs(edge.gateway.pid) - cpuGateway) * 1000 / r.requests,
        // The metrics scrapes themselves are not forward-auth answers.
        authPerRequest: edge === undefined ? NaN : (after - before) / r.requests
      }
    })
    const m = (t: Target, f: (x: { rps: number, p99: number, edgeUs: number, gatewayUs: number, authPerRequest: number }) => number): number => median(res.get(t)!.map(f))
    out(table(['target', 'requests/s', 'to nginx alone', 'to CHP', 'p99 ms', 'edge CPU µs/request', 'gateway CPU µs/request', 'auth calls per request', 'errors'], all.map((t) => [
      t.name, fmt(m(t, (x) => x.rps)), `${fmt(m(t, (x) => x.rps) / m(nginx, (x) => x.rps), 2)}x`, `${fmt(m(t, (x) => x.rps) / m(chp, (x) => x.rps), 2)}x`,
      fmt(m(t, (x) => x.p99), 2),
      t === gateway || t === chp ? '' : fmt(m(t, (x) => x.edgeUs), 1),
      t === gateway ? fmt(m(t, (x) => x.edgeUs), 1) : withEdge.includes(t as EdgeTarget) ? fmt(m(t, (x) => x.gatewayUs), 1) : '',
      withEdge.includes(t as EdgeTarget) ? fmt(m(t, (x) => x.authPerRequest), 3) : '',
      fmt(res.get(t)!.reduce((n, x) => n + x.errors + x.non2xx, 0))
    ])))
    out()
    out('Small JSON GETs, 50 connections, through the shipped snippets (`docs/edge/`). The edge\'s CPU and the gateway\'s are measured apart (per request the edge served); "auth calls per request" is forward-auth answers over requests served. For the gateway and configurable-http-proxy rows, CPU is their own, in the gateway column and the edge column respectively.')
    out()
    const caddyEdge = withEdge[3]!
    const wsTargets: Target[] = [nginx, withEdge[0]!, caddy, caddyEdge]
    const echo = await rounds(wsTargets, async (t) => await load<{ messagesPerSecond: number }>({ kind: 'ws-echo', url: t.base.replace(/^http/, 'ws') + 'ws', sockets: 50, seconds: SECONDS, bytes: 64 }))
    const e = (t: Target): number => median(echo.get(t)!.map((x) => x.messagesPerSecond))
    out(table(['target', 'WebSocket echo messages/s', 'to the edge alone'], wsTargets.map((t) => [t.name, fmt(e(t)), `${fmt(e(t) / e(t === withEdge[0] ? nginx : t === caddyEdge ? caddy : t), 2)}x`])))
    out()
    out('With the pooled nginx (Lua), nginx carries the WebSocket\'s frames itself once the gateway let the handshake in, and closes it when the gateway says its session ended; with Caddy forward-auth, WebSockets go from the edge to the gateway, which authenticates them and closes them on revocation (Caddy cannot), and on to the backend.')
    out()
    const fa = withEdge[0]!
    check(fa.name, `small GET ${fmt(m(fa, (x) => x.rps) / m(nginx, (x) => x.rps), 2)}x nginx alone (target >= 0.85x)`, m(fa, (x) => x.rps) >= 0.85 * m(nginx, (x) => x.rps))
    check(fa.name, `small GET ${fmt(m(fa, (x) => x.rps) / m(chp, (x) => x.rps), 2)}x configurable-http-proxy (target >= 3x)`, m(fa, (x) => x.rps) >= 3 * m(chp, (x) => x.rps))
    const share = m(fa, (x) => x.gatewayUs) / m(gateway, (x) => x.edgeUs)
    check(fa.name, `gateway CPU ${fmt(m(fa, (x) => x.gatewayUs), 1)} µs per proxied request, ${fmt(share * 100)}% of proxying it itself (target <= 10%)`, share <= 0.1)
    check(fa.name, `WebSocket echo ${fmt(e(fa) / e(nginx), 2)}x nginx alone (target >= 0.8x)`, e(fa) >= 0.8 * e(nginx))
  } finally {
    await caddy.stop().catch(() => {})
    for (const t of withEdge) await t.stop().catch(() => {})
  }
}

async function lifecycle (backend: Backend, mongo: TestMongo): Promise<void> {
  out('## 8. Start-up and shutdown')
  out()
  const rows: string[][] = []
  for (const store of ['embedded', 'Mongo'] as const) {
    const startup: number[] = []
    const shutdown: number[] = []
    const codes: string[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const t = await startGateway(backend, store, store === 'Mongo' ? { mongoUrl: mongo.url, dbName: mongo.uniqueDbName('mcpgw_life') } : {})
      startup.push(t.gateway.startupMs)
      const holder = spawnJson(process.execPath, [LOADER, JSON.stringify({ kind: 'ws-idle', url: t.base.replace(/^http/, 'ws') + 'ws', count: 1000 })])
      const opened = await holder.next<{ opened: number }>()
      if (opened.opened !== 1000) throw new Error(`only ${opened.opened} of 1,000 WebSockets opened`)
      const fdsBefore = openFds(t.gateway.pid)
      const began = performance.now()
      const exited = new Promise<number | null>((resolve) => t.gateway.child.once('exit', (code) => resolve(code)))
      t.gateway.child.kill('SIGTERM')
      const code = await exited
      shutdown.push(performance.now() - began)
      holder.send('closes')
      const seen = await holder.next<{ closed: number, codes: Record<string, number> }>()
      codes.push(`exit ${code}, ${fdsBefore} fds, closes ${JSON.stringify(seen.codes)}`)
      holder.send('close')
      await holder.stop()
      await t.stop()
    }
    rows.push([`mcp-gw (${store} store)`, fmt(median(startup)), fmt(median(shutdown)), codes[0]!])
    if (store === 'embedded') check(`mcp-gw (${store} store)`, `start-up to /ready ${fmt(median(startup))} ms (target < 1 s)`, median(startup) < 1000)
    check(`mcp-gw (${store} store)`, `SIGTERM to exit with 1,000 WebSockets ${fmt(median(shutdown))} ms (target < 2 s)`, median(shutdown) < 2000)
  }
  out(table(['gateway', 'process start to /ready 200, ms', 'SIGTERM to exit, 1,000 WebSockets open, ms', 'first round'], rows.map((r) => [r[0]!, r[1]!, r[2]!, r[3]!])))
  out()
}

async function profile (backend: Backend, mongo: TestMongo | null): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-prof-'))
  const gw = await spawnGateway({
    secret: randomBytes(32).toString('hex'),
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    ...(mongo !== null && { mongoUrl: mongo.url, dbName: mongo.uniqueDbName('mcpgw_prof') })
  })
  try {
    await gw.admin.register('bench', backend.port)
    const { token } = await gw.admin.session('bench-user', 'bench')
    await http({ urls: [`http://127.0.0.1:${gw.port}/mcp/${token}/small`], connections: 50, seconds: SECONDS })
  } finally {
    await gw.stop()
  }
  await printProfile(dir, `the small GET load (${mongo === null ? 'embedded' : 'Mongo'} store)`)
}

async function printProfile (dir: string, what: string): Promise<void> {
  out(`## CPU profile of the gateway under ${what} (self time)`)
  out()
  out(await summarizeProfile(dir, 40))
  out()
  await rm(dir, { recursive: true, force: true })
}

main().then(() => process.exit(0), (err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`)
  process.exit(1)
})

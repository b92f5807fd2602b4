// Load generators that run in their own process, apart from the proxy being
// measured. usage: node loader.js '<json spec>'; results are JSON lines on stdout.
import { request } from 'node:http'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import WebSocket from 'ws'

type Spec =
  | { kind: 'http', urls: string[], connections: number, seconds: number, method?: string, bodyBytes?: number }
  | { kind: 'ws-echo', url: string, sockets: number, seconds: number, bytes: number }
  | { kind: 'ws-idle', url: string, count: number }
  | { kind: 'sse', url: string }
  | { kind: 'upload', url: string, bytes: number }
  | { kind: 'download', url: string, bytes: number }

const spec = JSON.parse(process.argv[2]!) as Spec
const print = (value: unknown): void => { process.stdout.write(JSON.stringify(value) + '\n') }
const wallMs = (): number => performance.timeOrigin + performance.now()

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

async function http (s: Extract<Spec, { kind: 'http' }>): Promise<void> {
  const first = new URL(s.urls[0]!)
  const paths = s.urls.map((u) => { const url = new URL(u); return url.pathname + url.search })
  let i = 0
  const body = s.bodyBytes === undefined ? undefined : Buffer.alloc(s.bodyBytes, 'z')
  const result = await autocannon({
    url: first.origin,
    connections: s.connections,
    duration: s.seconds,
    requests: [{
      method: (s.method ?? 'GET') as 'GET',
      ...(body !== undefined && { body, headers: { 'content-type': 'application/octet-stream' } }),
      setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length]! })
    }]
  })
  print({ rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts, non2xx: result.non2xx, requests: result.requests.total })
}

async function open (url: string): Promise<WebSocket> {
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
  })
}

async function wsEcho (s: Extract<Spec, { kind: 'ws-echo' }>): Promise<void> {
  const sockets = await Promise.all(Array.from({ length: s.sockets }, async () => await open(s.url)))
  const payload = Buffer.alloc(s.bytes, 'w')
  let messages = 0
  let running = true
  const started = performance.now()
  for (const ws of sockets) {
    ws.on('message', () => {
      messages++
      if (running) ws.send(payload)
    })
    ws.send(payload)
  }
  await new Promise((resolve) => setTimeout(resolve, s.seconds * 1000))
  running = false
  const elapsed = (performance.now() - started) / 1000
  for (const ws of sockets) ws.terminate()
  print({ messagesPerSecond: messages / elapsed })
}

async function wsIdle (s: Extract<Spec, { kind: 'ws-idle' }>): Promise<void> {
  const sockets: WebSocket[] = []
  const closes: number[] = []
  let failed = 0
  // Open in batches: a realistic arrival rate, and no SYN flood against the listen backlog.
  for (let done = 0; done < s.count; done += 200) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(200, s.count - done) }, async () => await open(s.url)))
    for (const r of batch) {
      if (r.status === 'fulfilled') {
        sockets.push(r.value)
        r.value.on('close', (code) => closes.push(code))
        r.value.on('error', () => {})
      } else failed++
    }
  }
  print({ opened: sockets.length, failed })
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'closes') {
      const deadline = Date.now() + 10_000
      while (closes.length < sockets.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      const codes: Record<string, number> = {}
      for (const c of closes) codes[c] = (codes[c] ?? 0) + 1
      print({ closed: closes.length, codes })
    } else if (line === 'close') {
      for (const ws of sockets) ws.terminate()
      print({ closedAll: true })
      break
    }
  }
}

async function sse (s: Extract<Spec, { kind: 'sse' }>): Promise<void> {
  const latencies: number[] = []
  await new Promise<void>((resolve, reject) => {
    request(s.url, { headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`SSE answered ${res.statusCode}`)); return }
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const now = wallMs()
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const event = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = /^data: (.*)$/m.exec(event)
          if (data !== null) latencies.push(now - Number(data[1]))
        }
      })
      res.on('end', resolve)
      res.on('error', reject)
    }).on('error', reject).end()
  })
  latencies.sort((a, b) => a - b)
  print({ events: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99) })
}

async function upload (s: Extract<Spec, { kind: 'upload' }>): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 'u')
  const started = performance.now()
  const answer = await new Promise<string>((resolve, reject) => {
    const req = request(s.url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': s.bytes } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => res.statusCode === 200 ? resolve(text) : reject(new Error(`upload answered ${res.statusCode}: ${text}`)))
    })
    req.on('error', reject)
    let left = s.bytes
    const pump = (): void => {
      while (left > 0) {
        const part = left >= chunk.length ? chunk : chunk.subarray(0, left)
        left -= part.length
        if (!req.write(part)) { req.once('drain', pump); return }
      }
      req.end()
    }
    pump()
  })
  const seconds = (performance.now() - started) / 1000
  print({ bytes: (JSON.parse(answer) as { bytes: number }).bytes, seconds })
}

async function download (s: Extract<Spec, { kind: 'download' }>): Promise<void> {
  const started = performance.now()
  const bytes = await new Promise<number>((resolve, reject) => {
    request(s.url, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`download answered ${res.statusCode}`)); return }
      let n = 0
      res.on('data', (c: Buffer) => { n += c.length })
      res.on('end', () => resolve(n))
      res.on('error', reject)
    }).on('error', reject).end()
  })
  print({ bytes, seconds: (performance.now() - started) / 1000 })
}

const run = { http, 'ws-echo': wsEcho, 'ws-idle': wsIdle, sse, upload, download }[spec.kind] as (s: Spec) => Promise<void>
run(spec).then(() => process.exit(0), (err: Error) => {
  process.stderr.write(`loader ${spec.kind}: ${err.message}\n`)
  process.exit(1)
})

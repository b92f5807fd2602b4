import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { figure, mib, openFds, rssBytes, startGateway } from './helpers.js'

const CYCLES = Number(process.env.CHAOS_CHURN_CYCLES ?? 10_000)
const WARMUP = Math.min(500, Math.floor(CYCLES / 10))

/** A backend that lives for one cycle: HTTP and WebSocket echo on a fresh port. */
async function startBackend (): Promise<{ port: number, stop: () => Promise<void> }> {
  const server = createServer((req, res) => { res.end(`hello ${req.url}`) })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => { ws.on('message', (data) => ws.send(data)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      for (const client of wss.clients) client.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

async function echo (url: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('open', () => ws.send('ping'))
    ws.once('message', (data) => { ws.close(); resolve(data.toString()) })
    ws.once('error', reject)
  })
}

t.test(`churn: ${CYCLES.toLocaleString('en-US')} backends register, serve HTTP and a WebSocket, and die; the gateway's descriptors and memory stay flat`, async (t) => {
  // The gateway's old space is capped, so V8 must collect what it no longer holds: without the
  // cap it defers collection and RSS grows by ~90 MiB over the run with nothing retained (at
  // 100 MiB the same run stays flat at ~166 MiB), which is V8's policy, not a leak. A leak
  // larger than the cap ends the process, and the cycles fail.
  const gw = await startGateway(t, { nodeArgs: ['--max-old-space-size=128'] })
  let token = ''
  let failures = 0
  let start = { fds: 0, rss: 0 }
  let peakFds = 0
  const began = performance.now()
  for (let i = 0; i < CYCLES; i++) {
    const backend = await startBackend()
    await gw.admin.register('churn', backend.port)
    if (token === '') token = (await gw.admin.session('churner', 'churn')).token
    const base = `${gw.origin}/mcp/${token}`
    for (const path of ['/a', '/b']) {
      const res = await fetch(`${base}${path}`)
      if ((await res.text()) !== `hello ${path}`) failures++
    }
    if (await echo(`${base.replace('http', 'ws')}/ws`) !== 'ping') failures++
    await backend.stop()
    if (i === WARMUP) start = { fds: openFds(gw.pid), rss: rssBytes(gw.pid) }
    if (i % 100 === 0) peakFds = Math.max(peakFds, openFds(gw.pid))
  }
  // Let sockets to the last dead backend close, as they would between cycles.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const end = { fds: openFds(gw.pid), rss: rssBytes(gw.pid) }
  const seconds = (performance.now() - began) / 1000
  figure(t, `${CYCLES} cycles in ${seconds.toFixed(0)} s; ${failures} failed exchanges`)
  figure(t, `gateway fds ${start.fds} after ${WARMUP} cycles, ${end.fds} at the end (peak sampled ${peakFds})`)
  figure(t, `gateway RSS ${mib(start.rss)} MiB after ${WARMUP} cycles, ${mib(end.rss)} MiB at the end`)
  t.equal(failures, 0, 'every request and WebSocket of every cycle reached its own backend')
  t.ok(end.fds <= start.fds + 10, `descriptors: ${start.fds} -> ${end.fds}`)
  t.ok(end.rss <= start.rss + 48 * 2 ** 20, `RSS: ${mib(start.rss)} -> ${mib(end.rss)} MiB (bound: +48 MiB)`)
})

import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { eventually } from '@mcp-gw/testkit'
import t from 'tap'
import { startGateway } from './helpers.js'

/** Resolves with what the server wrote and how long until it closed the connection. */
function watch (socket: Socket): Promise<{ ms: number, text: string }> {
  const started = performance.now()
  let text = ''
  socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
  return new Promise((resolve) => socket.on('close', () => resolve({ ms: performance.now() - started, text })))
}

t.test('slowloris headers and silent connections are closed once the headers are overdue; others are served meanwhile', async (t) => {
  const gw = await startGateway(t, { headersTimeoutMs: 600 })
  const silent = connect(gw.port, '127.0.0.1')
  const slow = connect(gw.port, '127.0.0.1')
  t.teardown(() => { silent.destroy(); slow.destroy() })
  const silentClosed = watch(silent)
  const slowClosed = watch(slow)
  slow.write('GET /health HTTP/1.1\r\nHost: x\r\n')
  // One header byte every 50 ms: never complete, always active.
  const drip = setInterval(() => { if (!slow.destroyed) slow.write('x') }, 50)
  t.teardown(() => clearInterval(drip))
  slow.write('X-Slow: ')

  for (let i = 0; i < 5; i++) t.equal((await fetch(`${gw.origin}/health`)).status, 200, 'another client is served')
  const [s, l] = await Promise.all([silentClosed, slowClosed])
  clearInterval(drip)
  t.ok(l.ms < 3000, `the dripping client was cut after ${Math.round(l.ms)} ms`)
  t.match(l.text, /^(HTTP\/1\.1 408|)/, 'with a 408 or a plain close')
  t.ok(s.ms < 3000, `the silent client was cut after ${Math.round(s.ms)} ms`)
})

t.test('MCP_WEB_UI_MAX_CONNECTIONS caps open client connections', async (t) => {
  const gw = await startGateway(t, { maxConnections: 3 })
  const held = Array.from({ length: 3 }, () => connect(gw.port, '127.0.0.1'))
  t.teardown(() => { for (const s of held) s.destroy() })
  await Promise.all(held.map((s) => new Promise((resolve) => s.once('connect', resolve))))
  const open = async (): Promise<number> => await new Promise((resolve, reject) => gw.app.server.getConnections((err, n) => { if (err !== null) reject(err); else resolve(n) }))
  await eventually(async () => (await open()) === 3, { what: 'the gateway holding the three connections' })
  const extra = connect(gw.port, '127.0.0.1')
  extra.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  const cut = await watch(extra)
  t.equal(cut.text, '', 'the fourth connection is closed without an answer')
  for (const s of held) s.destroy()
  await eventually(async () => (await open()) === 0, { what: 'the gateway seeing them go' })
  t.equal((await fetch(`${gw.origin}/health`)).status, 200, 'served again once below the cap')
})

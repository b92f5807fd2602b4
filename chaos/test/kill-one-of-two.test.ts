import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startTestMongo } from '@mcp-gw/testkit'
import t from 'tap'
import { figure, startGateway } from './helpers.js'

const SESSIONS = 20

t.test('two gateways on one MongoDB: one is SIGKILLed under load, the other serves every session; restarted, the first serves them again', async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const dbName = mongo.uniqueDbName('mcpgw_chaos')
  const backend = createServer((req, res) => { res.end(`ok ${req.url}`) })
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { backend.closeAllConnections(); backend.close() })
  const backendPort = (backend.address() as AddressInfo).port

  const a = await startGateway(t, { mongoUrl: mongo.url, dbName })
  const b = await startGateway(t, { mongoUrl: mongo.url, dbName })
  await a.admin.register('todoodles', backendPort)
  const tokens: string[] = []
  for (let i = 0; i < SESSIONS; i++) tokens.push((await a.admin.session(`user-${i}`, 'todoodles')).token)

  const served = { a: 0, b: 0 }
  const failed = { a: 0, b: 0 }
  const state = { killed: false, stop: false }
  const load = async (which: 'a' | 'b'): Promise<void> => {
    const gw = which === 'a' ? a : b
    for (let i = 0; !state.stop; i++) {
      const token = tokens[i % SESSIONS]!
      try {
        const res = await fetch(`${gw.origin}/mcp/${token}/x${i}`)
        if (res.status === 200 && (await res.text()) === `ok /x${i}`) served[which]++
        else failed[which]++
      } catch {
        if (which === 'b' || !state.killed) failed[which]++
        if (which === 'a') await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  }
  const loops = [load('a'), load('a'), load('b'), load('b')]
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const servedByBBeforeKill = served.b
  state.killed = true
  a.child.kill('SIGKILL')
  await new Promise((resolve) => setTimeout(resolve, 3000))
  state.stop = true
  await Promise.all(loops)
  figure(t, `before the kill: ${served.a} served by A; B served ${servedByBBeforeKill} before and ${served.b - servedByBBeforeKill} after, ${failed.b} failed`)
  t.equal(failed.a, 0, 'A served cleanly until it was killed')
  t.equal(failed.b, 0, 'B never failed a request, before or after A died')
  t.ok(served.b - servedByBBeforeKill > 100, 'B kept serving after A died')

  const restarted = await startGateway(t, { mongoUrl: mongo.url, dbName, port: a.port })
  figure(t, `A restarted and ready in ${Math.round(restarted.startupMs)} ms`)
  let ok = 0
  for (const token of tokens) {
    const res = await fetch(`${restarted.origin}/mcp/${token}/back`)
    if (res.status === 200 && (await res.text()) === 'ok /back') ok++
  }
  t.equal(ok, SESSIONS, 'the restarted gateway serves every session, with no re-registration by hand')
})

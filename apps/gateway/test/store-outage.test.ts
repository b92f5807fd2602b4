import { startFerretDb } from '@mcp-gw/testkit'
import t from 'tap'
import { API_KEY, REGISTRANT, startBackend, startGateway } from './helpers.js'

const SECRET = 'gateway-outage-test-secret-0123456789abcdef'
const auth = { ...REGISTRANT, 'content-type': 'application/json' }

/**
 * MongoDB stops under a running gateway: sessions it has seen keep working for
 * the grace period, unseen ones get 503 store-unavailable (never 401: their
 * links are fine), /ready says so, and when MongoDB is back everything works
 * again without a restart and with nothing lost.
 */
t.test('MongoDB stops and comes back: grace for seen sessions, 503 for the rest, recovery without a restart', {
  skip: process.env.MONGO_URL !== undefined && process.env.MONGO_URL !== '' ? 'the server behind MONGO_URL is not ours to stop' : false
}, async (t) => {
  const ferret = await startFerretDb()
  t.teardown(() => ferret.stop())
  const backend = await startBackend(t)
  const gw = await startGateway(t, { apiKey: API_KEY, mongoUrl: ferret.url, jwtSecret: SECRET })
  const api = async (path: string, body: unknown): Promise<Response> => await fetch(gw.origin + path, { method: 'POST', headers: auth, body: JSON.stringify(body) })
  t.equal((await api('/register-server', { serverName: 'todoodles', host: '127.0.0.1', port: backend.port })).status, 200)
  const seen = (await (await api('/create-session', { userId: 'alice', serverName: 'todoodles' })).json()).token as string
  const unseen = (await (await api('/create-session', { userId: 'bob', serverName: 'todoodles' })).json()).token as string
  t.equal((await fetch(`${gw.origin}/mcp/${seen}/page`)).status, 200, 'alice\'s session is validated before the outage')

  await ferret.pause()

  t.equal((await fetch(`${gw.origin}/mcp/${seen}/page`)).status, 200, 'a seen session keeps working in the grace period')
  const started = performance.now()
  const refused = await fetch(`${gw.origin}/mcp/${unseen}/page`)
  const waited = performance.now() - started
  t.equal(refused.status, 503, 'an unseen session is not told its link is bad')
  t.equal((await refused.json()).code, 'MCPGW_PROXY_STORE_UNAVAILABLE')
  t.comment(`the unseen session waited ${Math.round(waited)} ms for its 503`)
  const ready = await fetch(`${gw.origin}/ready`)
  t.equal(ready.status, 503)
  t.equal((await ready.json()).code, 'MCPGW_REGISTRY_STORE_UNAVAILABLE')
  const create = await api('/create-session', { userId: 'carol', serverName: 'todoodles' })
  t.equal(create.status, 503, 'new sessions cannot be made without the store')
  t.equal((await create.json()).code, 'MCPGW_REGISTRY_STORE_UNAVAILABLE')
  t.equal((await fetch(`${gw.origin}/health`)).status, 200, 'alive all along')

  await ferret.start()
  const deadline = Date.now() + 30_000
  while ((await fetch(`${gw.origin}/ready`)).status !== 200) {
    if (Date.now() > deadline) throw new Error('the gateway did not become ready after MongoDB came back')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal((await fetch(`${gw.origin}/mcp/${unseen}/page`)).status, 200, 'the unseen session works now')
  t.equal((await fetch(`${gw.origin}/mcp/${seen}/page`)).status, 200, 'and the seen one still does')
  const again = await (await api('/create-session', { userId: 'alice', serverName: 'todoodles' })).json()
  t.equal(again.token, seen, 'nothing written before the outage was lost: alice gets her session back')
  t.equal((await api('/create-session', { userId: 'carol', serverName: 'todoodles' })).status, 201, 'new sessions again')
})

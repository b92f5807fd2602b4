import { eventually } from '@mcp-gw/testkit'
import t from 'tap'
import { MemoryStore } from '../src/memory-store.js'
import { fakeClock, makeRegistry } from './helpers.js'
import { storeContract } from './store-contract.js'

t.test('MemoryStore passes the store contract', async (t) => {
  storeContract(t, async (t, clock) => {
    const store = new MemoryStore({ now: clock.now })
    t.teardown(() => store.close())
    return store
  })
})

t.test('capacity is bounded, and expired records make room', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now, maxSessions: 2, maxServers: 1 })
  t.teardown(() => store.close())
  const registry = makeRegistry(store, clock)
  await registry.createSession({ userId: 'a', serverName: 'todoodles', ttlSeconds: 10 })
  await registry.createSession({ userId: 'b', serverName: 'todoodles', ttlSeconds: 100 })
  await t.rejects(registry.createSession({ userId: 'c', serverName: 'todoodles' }), { code: 'MCPGW_REGISTRY_CAPACITY_EXCEEDED', statusCode: 503 })
  // Returning the live session of a known key needs no room.
  t.equal((await registry.createSession({ userId: 'b', serverName: 'todoodles' })).created, false)
  clock.advance(10_000)
  t.equal((await registry.createSession({ userId: 'c', serverName: 'todoodles' })).created, true, 'the expired one was swept to make room')

  await registry.registerServer({ serverName: 'one', host: '127.0.0.1', port: 1 })
  await t.rejects(registry.registerServer({ serverName: 'two', host: '127.0.0.1', port: 2 }), { code: 'MCPGW_REGISTRY_CAPACITY_EXCEEDED' })
  t.ok(await registry.registerServer({ serverName: 'one', host: '127.0.0.1', port: 3 }), 'heartbeats still work when full')
})

t.test('the sweeper runs by itself and never holds the process open', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now, sweepIntervalMs: 20 })
  t.teardown(() => store.close())
  await store.init()
  const registry = makeRegistry(store, clock)
  await registry.createSession({ userId: 'a', serverName: 'todoodles', ttlSeconds: 1 })
  await registry.createSession({ userId: 'b', serverName: 'todoodles', ttlSeconds: 100 })
  // The interval calls sweep() on the store: count the calls that find something.
  let swept = 0
  const sweep = store.sweep.bind(store)
  store.sweep = async (now) => {
    const result = await sweep(now)
    swept += result.sessions
    return result
  }
  clock.advance(1000)
  await eventually(() => swept === 1, { within: 2000, what: 'the sweeper removing the expired session by itself' })
  // Nothing expired is left behind for a later sweep to find.
  t.same(await store.sweep(clock.now()), { sessions: 0, servers: 0 })
  t.equal((await registry.listSessions()).length, 1)
})

t.test('returned records cannot be changed by the caller', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  const registry = makeRegistry(store, clock)
  const { session } = await registry.createSession({ userId: 'alice', serverName: 'todoodles', scopes: ['view'] })
  t.throws(() => { (session.scopes as string[]).push('interact') })
  t.throws(() => { (session as { revokedAt: number | null }).revokedAt = 1 })
  const again = await registry.getSession(session.sessionId)
  t.same(again?.scopes, ['view'])
})

import { startFerretDb, startTestMongo } from '@mcp-gw/testkit'
import t from 'tap'
import { buildGateway } from '../src/app.js'
import { testConfig } from './helpers.js'

const SECRET = 'gateway-mongo-test-secret-0123456789abcdef'

t.test('on MongoDB, sessions survive a gateway restart', async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const config = testConfig({ mongoUrl: mongo.url, mongoDbName: mongo.uniqueDbName(), jwtSecret: SECRET })
  const first = await buildGateway(config, { logLevel: 'silent' })
  await first.ready()
  t.equal(first.mcpRegistry.store.kind, 'mongo')
  const { token } = await first.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  await first.close()

  const second = await buildGateway(config, { logLevel: 'silent' })
  t.teardown(() => second.close())
  t.equal((await second.mcpRegistry.validate(token)).valid, true, 'the restarted gateway knows the session')
  t.equal((await second.inject('/ready')).statusCode, 200)
})

t.test('gateways started at the same instant on a fresh database all come up and share it', async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const config = testConfig({ mongoUrl: mongo.url, mongoDbName: mongo.uniqueDbName(), jwtSecret: SECRET })
  // Each its own client and connections, as separate processes have: they race to make the
  // collections and indexes.
  const boots = await Promise.allSettled([1, 2, 3, 4].map(async () => {
    const app = await buildGateway(config, { logLevel: 'silent' })
    t.teardown(() => app.close())
    await app.ready()
    return app
  }))
  t.same(boots.map((b) => b.status === 'rejected' ? String((b.reason as Error).message) : 'up'), ['up', 'up', 'up', 'up'])
  const apps = boots.flatMap((b) => b.status === 'fulfilled' ? [b.value] : [])
  const { token } = await apps[0]!.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  for (const app of apps) t.equal((await app.mcpRegistry.validate(token)).valid, true)
  const indexes = await apps[1]!.mcpRegistry.store.ping().then(async () => await (apps[1]!.mcpRegistry.store as unknown as { sessions: { listIndexes (): { toArray (): Promise<Array<{ name: string }>> } } }).sessions.listIndexes().toArray())
  t.ok(indexes.some((i) => i.name === 'jti_unique'), 'the unique indexes are in place')
})

t.test('/ready turns 503 while MongoDB is down and 200 when it is back', { skip: process.env.MONGO_URL !== undefined && process.env.MONGO_URL !== '' ? 'the server behind MONGO_URL is not ours to stop' : false }, async (t) => {
  const ferret = await startFerretDb()
  t.teardown(() => ferret.stop())
  const app = await buildGateway(testConfig({ mongoUrl: ferret.url, jwtSecret: SECRET }), { logLevel: 'silent' })
  t.teardown(() => app.close())
  t.equal((await app.inject('/ready')).statusCode, 200)
  await ferret.pause()
  const down = await app.inject('/ready')
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'MCPGW_REGISTRY_STORE_UNAVAILABLE')
  t.equal((await app.inject('/health')).statusCode, 200, 'liveness is not readiness')
  await ferret.start()
  t.equal((await app.inject('/ready')).statusCode, 200, 'recovers without a restart')
})

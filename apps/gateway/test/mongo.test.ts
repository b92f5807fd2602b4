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

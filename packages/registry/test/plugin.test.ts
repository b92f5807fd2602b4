import { startTestMongo } from '@mcp-gw/testkit'
import Fastify from 'fastify'
import { MongoClient } from 'mongodb'
import t from 'tap'
import { MemoryStore } from '../src/memory-store.js'
import { MongoStore } from '../src/mongo-store.js'
import { mcpRegistryPlugin } from '../src/plugin.js'
import { SECRET } from './helpers.js'

t.test('without mongo the plugin uses the embedded store', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(mcpRegistryPlugin, { secret: SECRET })
  app.get('/whoami', async (request) => {
    const result = await app.mcpRegistry.validate(String(request.headers['x-token']))
    return result.valid ? { user: result.session.userId } : { reason: result.reason }
  })
  await app.ready()
  t.type(app.mcpRegistry.store, MemoryStore)
  const { token } = await app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  t.same((await app.inject({ url: '/whoami', headers: { 'x-token': token } })).json(), { user: 'alice' })
  t.same((await app.inject({ url: '/whoami', headers: { 'x-token': 'nope' } })).json(), { reason: 'malformed' })
})

t.test('a bad secret fails the boot with a coded error', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(mcpRegistryPlugin, { secret: 'short' })
  await t.rejects(async () => { await app.ready() }, { code: 'MCPGW_REGISTRY_WEAK_SECRET' })
})

t.test('with mongo the plugin opens the client itself, and closes it on close', async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const dbName = mongo.uniqueDbName()
  const app = Fastify()
  await app.register(mcpRegistryPlugin, { secret: SECRET, mongo: { url: mongo.url, dbName } })
  await app.ready()
  t.type(app.mcpRegistry.store, MongoStore)
  t.notOk('mongo' in app, "the plugin's mongo decorator does not leak into the host")
  const { token } = await app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  t.equal((await app.mcpRegistry.validate(token)).valid, true)

  const check = new MongoClient(mongo.url)
  t.teardown(() => check.close())
  t.equal(await check.db(dbName).collection('mcpgw_sessions').countDocuments({ userId: 'alice' }), 1, 'written to the named database')
  await check.db(dbName).dropDatabase()

  await app.close()
  await t.rejects(app.mcpRegistry.ping(), { code: 'MCPGW_REGISTRY_STORE_UNAVAILABLE' }, 'its client is closed')
})

t.test("a host's own client is used and left open", async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const client = new MongoClient(mongo.url)
  await client.connect()
  t.teardown(() => client.close())
  const app = Fastify()
  await app.register(mcpRegistryPlugin, { secret: SECRET, mongo: { client, dbName: mongo.uniqueDbName() } })
  await app.ready()
  await app.close()
  t.same(await client.db('admin').command({ ping: 1 }), { ok: 1 }, 'still connected after the app closed')
})

t.test('bad mongo options fail the boot', async (t) => {
  for (const mongo of [{ url: '' }, { dbName: 'has space', url: 'mongodb://127.0.0.1:1/' }, {}]) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(mcpRegistryPlugin, { secret: SECRET, mongo })
    await t.rejects(async () => { await app.ready() }, { code: 'MCPGW_REGISTRY_INVALID_OPTION' }, JSON.stringify(mongo))
  }
})

import { eventually, startFerretDb, startTestMongo } from '@mcp-gw/testkit'
import { createHash } from 'node:crypto'
import { MongoClient } from 'mongodb'
import t from 'tap'
import { MongoStore } from '../src/mongo-store.js'
import type { Logger } from '../src/types.js'
import { fakeClock, makeRegistry } from './helpers.js'
import { storeContract } from './store-contract.js'

// A real MongoDB-wire server: MONGO_URL, or FerretDB started for this file. Never skipped.
const mongo = await startTestMongo()
t.teardown(() => mongo.stop())
const client = new MongoClient(mongo.url, { serverSelectionTimeoutMS: 3000 })
await client.connect()
t.teardown(() => client.close())
t.comment(`MongoDB-wire server from ${mongo.source}`)

function recordingLogger (): Logger & { warnings: string[] } {
  const warnings: string[] = []
  return { warnings, warn: (_o, msg) => { warnings.push(msg ?? '') }, info () {}, debug () {}, error () {} }
}

t.test('MongoStore passes the store contract', async (t) => {
  storeContract(t, async (t, clock) => {
    const db = client.db(mongo.uniqueDbName())
    t.teardown(() => db.dropDatabase())
    const store = new MongoStore({ db, now: clock.now })
    t.teardown(() => store.close())
    return store
  })
})

t.test('indexes: unique token id and session slot (key and instance), one instance per id', async (t) => {
  const db = client.db(mongo.uniqueDbName())
  t.teardown(() => db.dropDatabase())
  const store = new MongoStore({ db, logger: recordingLogger() })
  t.teardown(() => store.close())
  await store.init()
  await store.init()
  const indexes = await store.sessions.listIndexes().toArray()
  const byName = new Map(indexes.map((i) => [i.name, i]))
  t.equal(byName.get('jti_unique')?.unique, true)
  t.equal(byName.get('slot_unique')?.unique, true)
  t.equal(byName.has('sessionKey_unique'), false, 'several instances may hold a session for one key')
  t.equal(byName.get('sessionId_unique')?.unique, true)
  const serverIndexes = new Map((await store.servers.listIndexes().toArray()).map((i) => [i.name, i]))
  t.equal(serverIndexes.get('instanceId_unique')?.unique, true)
  t.equal(serverIndexes.has('serverName_unique'), false, 'a name has many instances')
  t.ok(byName.has('expiresAt_ttl') || byName.has('expiresAt'), 'expiresAt is indexed either way')
})

t.test('a second store on the same database starts cleanly and keeps the data (regression: restart)', async (t) => {
  const db = client.db(mongo.uniqueDbName())
  t.teardown(() => db.dropDatabase())
  const clock = fakeClock()
  const first = new MongoStore({ db, now: clock.now })
  await first.init()
  const issued = await makeRegistry(first, clock).createSession({ userId: 'alice', serverName: 'todoodles' })
  await first.close()
  const second = new MongoStore({ db, now: clock.now })
  t.teardown(() => second.close())
  await second.init()
  t.equal(second.ttlIndexes, first.ttlIndexes, 'the same TTL verdict as before')
  t.equal((await makeRegistry(second, clock).validate(issued.token)).valid, true)
  const names = (await second.sessions.listIndexes().toArray()).map((i) => i.name).filter((n) => String(n).startsWith('expiresAt'))
  t.equal(names.length, 1, 'one index on expiresAt, not two')
})

t.test('a server without TTL indexes gets one warning and our own sweeper', async (t) => {
  const db = client.db(mongo.uniqueDbName())
  t.teardown(() => db.dropDatabase())
  const logger = recordingLogger()
  const store = new MongoStore({ db, logger, sweepIntervalMs: 50 })
  t.teardown(() => store.close())
  await store.init()
  if (store.ttlIndexes === true) {
    // Real MongoDB keeps TTL indexes: no warning, no sweeper needed.
    t.same(logger.warnings, [])
    return
  }
  t.equal(logger.warnings.length, 1)
  t.match(logger.warnings[0], /TTL/)
  const registry = makeRegistry(store, fakeClock(Date.now()), { now: Date.now })
  await registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 1 })
  await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 3000 })
  t.equal(await store.sessions.countDocuments(), 1)
  await eventually(async () => await store.sessions.countDocuments() === 0, { what: 'the sweeper deleting the expired session', within: 10_000, everyMs: 100 })
  t.equal(await store.sessions.countDocuments(), 0, 'the expired session document was deleted by the sweeper')
  t.equal(await store.servers.countDocuments(), 1, 'the live registration was kept')
})

t.test('an unreachable server is reported as store-unavailable, never as an invalid token', async (t) => {
  // Nothing listens on port 9 of loopback here ("discard" is not run).
  const dead = new MongoClient('mongodb://127.0.0.1:9/', { serverSelectionTimeoutMS: 300 })
  t.teardown(() => dead.close())
  const clock = fakeClock()
  const store = new MongoStore({ db: dead.db('x'), now: clock.now })
  t.teardown(() => store.close())
  const registry = makeRegistry(store, clock)
  const code = 'MCPGW_REGISTRY_STORE_UNAVAILABLE'
  await t.rejects(store.init(), { code, statusCode: 503 })
  await t.rejects(registry.ping(), { code })
  await t.rejects(registry.createSession({ userId: 'alice', serverName: 'todoodles' }), { code })
  const token = registry.tokens.sign({ sub: 'alice', serverName: 'todoodles', serverType: 'mcp-webui', sid: 'sid-00000000', jti: 'jti-00000000', scopes: ['view'], iat: Math.floor(clock.now() / 1000), exp: Math.floor(clock.now() / 1000) + 60 })
  await t.rejects(registry.validate(token), { code })
  await t.rejects(registry.discover('todoodles'), { code })
  t.equal(await registry.touch({ sessionId: 'sid-00000000' }), false, 'touch is best effort and does not reject')
})

t.test('a store survives its server restarting', {
  skip: mongo.source === 'MONGO_URL' ? 'the server behind MONGO_URL is not ours to restart' : false
}, async (t) => {
  const ferret = await startFerretDb()
  t.teardown(() => ferret.stop())
  const own = new MongoClient(ferret.url, { serverSelectionTimeoutMS: 1000 })
  t.teardown(() => own.close())
  const clock = fakeClock()
  const store = new MongoStore({ db: own.db('restart'), now: clock.now })
  t.teardown(() => store.close())
  await store.init()
  const registry = makeRegistry(store, clock)
  const issued = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
  await ferret.pause()
  await t.rejects(registry.validate(issued.token), { code: 'MCPGW_REGISTRY_STORE_UNAVAILABLE' })
  await ferret.start()
  const result = await registry.validate(issued.token)
  t.equal(result.valid, true, 'what was written before the outage is still there')
})

t.test('a store written before instances is upgraded in place: a registrant that comes back with its secret keeps its links', async (t) => {
  const db = client.db(mongo.uniqueDbName())
  t.teardown(() => db.dropDatabase())
  const secret = 'kept-across-the-upgrade-0123456789abcdef'
  const ownerHash = createHash('sha256').update(secret).digest('hex')
  const now = Date.now()
  // What the previous release wrote: one registration per name, one session per key.
  await db.collection('mcpgw_sessions').createIndex({ sessionKey: 1 }, { name: 'sessionKey_unique', unique: true })
  await db.collection('mcpgw_servers').createIndex({ serverName: 1 }, { name: 'serverName_unique', unique: true })
  const registry = makeRegistry(new MongoStore({ db }), { now: () => Date.now(), advance () {} } as never)
  const legacy = { sessionId: 'legacy-session-0001', jti: 'legacy-jti-00000001', userId: 'alice', serverName: 'todoodles', serverType: 'mcp-webui', sessionKey: 'alice:todoodles:mcp-webui', scopes: ['view', 'interact'], metadata: {}, ownerHash }
  await db.collection('mcpgw_sessions').insertOne({ ...legacy, createdAt: new Date(now), expiresAt: new Date(now + 3_600_000), lastActivityAt: new Date(now), revokedAt: null })
  await db.collection('mcpgw_servers').insertOne({ serverName: 'todoodles', ownerHash, host: '127.0.0.1', port: 12861, protocol: 'http', metadata: {}, registeredAt: new Date(now), lastHeartbeatAt: new Date(now), expiresAt: new Date(now + 90_000) })
  await registry.init()
  const indexes = new Set((await db.collection('mcpgw_sessions').listIndexes().toArray()).map((i) => i.name))
  t.equal(indexes.has('sessionKey_unique'), false, 'the one-session-per-key index is gone')
  const [instance] = await registry.instances('todoodles')
  t.equal(instance?.port, 12861, 'the registration is an instance now')
  const token = registry.tokenFor({ ...legacy, createdAt: now, expiresAt: Math.ceil((now + 3_600_000) / 1000) * 1000, lastActivityAt: now, revokedAt: null, instanceId: instance!.instanceId })
  const validated = await registry.validate(token)
  t.equal(validated.valid && validated.session.instanceId, instance!.instanceId, 'the session belongs to that instance')
  const again = await registry.createSession({ userId: 'alice', serverName: 'todoodles', serverSecret: secret })
  t.equal(again.session.sessionId, 'legacy-session-0001', 'the registrant asking with its secret gets the same session back')
  await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 12861, secret })
  t.equal((await registry.instances('todoodles')).length, 1, "and its heartbeat is the upgraded instance's")
})

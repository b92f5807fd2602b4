import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestMongo } from '@mcp-gw/testkit'
import { MongoClient } from 'mongodb'
import t from 'tap'
import { BufferedSink, FileAuditSink, MemoryAuditSink, MongoAuditSink, readAuditFiles } from '../src/audit-sinks.js'
import type { AuditEvent } from '../src/audit.js'
import { Registry } from '../src/registry.js'

const SECRET = 'registry-audit-test-secret-0123456789abcdef'
const REGISTRANT_SECRET = 'registry-audit-registrant-secret-0123456789'

function event (i: number, fields: Record<string, unknown> = {}): AuditEvent {
  return { time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), event: 'session.created', userId: `user-${i % 3}`, serverName: 'todo', i, ...fields }
}

t.test('registry operations emit their events with the actor, and never a secret', async (t) => {
  let now = Date.UTC(2026, 0, 1)
  const sink = new MemoryAuditSink()
  const registry = new Registry({ secret: SECRET, audit: sink, now: () => now })
  t.teardown(() => registry.close())
  const operator = { kind: 'operator' as const, keyId: null }
  const reg = await registry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: 4000, secret: REGISTRANT_SECRET, actor: operator })
  await registry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: 4000, secret: REGISTRANT_SECRET, actor: operator })
  const { token, session } = await registry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET, ttlSeconds: 60, actor: { kind: 'registrant', keyId: 'key-1' } })
  await registry.createSession({ userId: 'alice', serverName: 'todo', serverSecret: REGISTRANT_SECRET, ttlSeconds: 60 })
  const bob = await registry.createSession({ userId: 'bob', serverName: 'todo' })
  t.equal(await registry.revoke({ userId: 'bob' }, { reason: 'left\nthe team' }), 1)
  t.equal(await registry.revoke({ userId: 'bob' }), 0, 'nothing left to revoke: no event')
  now += 61_000
  t.match(await registry.validate(token), { valid: false, reason: 'expired' })
  t.match(await registry.validate(token), { valid: false, reason: 'expired' })
  t.match(await registry.recheck(session), { valid: false, reason: 'expired' })
  t.ok(await registry.deregisterServer('todo', REGISTRANT_SECRET, {}, { actor: operator }))

  t.same(sink.events.map((e) => e.event), ['registration.added', 'session.created', 'session.created', 'session.revoked', 'session.expired', 'registration.removed'],
    'a heartbeat, a returned live session and an empty revocation are not events; an expiry is reported once')
  const [added, created, , revoked, expired, removed] = sink.events
  t.match(added, { actor: 'operator', keyId: null, serverName: 'todo', instanceId: reg.instanceId, host: '127.0.0.1', port: 4000, protocol: 'http' })
  t.match(created, { actor: 'registrant', keyId: 'key-1', sessionId: session.sessionId, userId: 'alice', instanceId: reg.instanceId, scopes: ['view', 'interact'], ttlSeconds: 60 })
  t.match(revoked, { actor: 'internal', sessionId: bob.session.sessionId, userId: 'bob', reason: 'left the team', by: 'userId' }, 'in-process: actor internal; the reason made one line')
  t.match(expired, { sessionId: session.sessionId, userId: 'alice', serverName: 'todo', foundBy: 'validation' })
  t.match(removed, { actor: 'operator', instanceId: reg.instanceId, reason: 'deregistered' })
  t.equal(created!.time, new Date(Date.UTC(2026, 0, 1)).toISOString(), 'time from the registry clock, ISO 8601')
  const raw = JSON.stringify(sink.events)
  for (const secret of [SECRET, REGISTRANT_SECRET, token, reg.ownerHash!, registry.tokens.proofKey(reg.ownerHash!)]) t.notOk(raw.includes(secret), 'no secret, hash or proof key')
})

t.test('revocation by session key names the sessions it ended', async (t) => {
  const sink = new MemoryAuditSink()
  const registry = new Registry({ secret: SECRET, audit: sink })
  t.teardown(() => registry.close())
  const a = await registry.createSession({ userId: 'a:b', serverName: 'todo' })
  t.equal(await registry.revoke({ sessionKey: a.session.sessionKey }, { actor: { kind: 'loopback', keyId: null } }), 1)
  t.match(sink.events.at(-1), { event: 'session.revoked', userId: 'a:b', sessionId: a.session.sessionId, actor: 'loopback', by: 'sessionKey' })
})

t.test('without a sink, auditing is off', async (t) => {
  const registry = new Registry({ secret: SECRET })
  t.teardown(() => registry.close())
  t.equal(registry.audit.enabled, false)
  await registry.createSession({ userId: 'alice', serverName: 'todo' })
  t.equal(registry.audit.dropped, 0)
})

t.test('a sink that throws is counted, logged once, and never fails the operation', async (t) => {
  const warnings: string[] = []
  const logger = { warn: (_o: object, msg?: string) => { warnings.push(msg ?? '') }, info () {}, debug () {}, error () {} }
  const registry = new Registry({ secret: SECRET, logger, audit: { write () { throw new Error('disk on fire') } } })
  t.teardown(() => registry.close())
  await registry.createSession({ userId: 'alice', serverName: 'todo' })
  await registry.createSession({ userId: 'bob', serverName: 'todo' })
  t.equal(registry.audit.dropped, 2)
  t.equal(warnings.filter((w) => w.includes('audit sink threw')).length, 1)
})

t.test('a buffered sink batches, drops and counts failed batches, logs once, and recovers', async (t) => {
  const warnings: string[] = []
  const logger = { warn: (_o: object, msg?: string) => { warnings.push(msg ?? '') }, info () {}, debug () {}, error () {} }
  const batches: number[] = []
  let failing = true
  class Flaky extends BufferedSink {
    protected async writeBatch (events: AuditEvent[]): Promise<void> {
      if (failing) throw new Error('down')
      batches.push(events.length)
    }
  }
  const sink = new Flaky({ batchSize: 10, maxBuffer: 25, flushIntervalMs: 60_000, logger })
  for (let i = 0; i < 30; i++) sink.write(event(i))
  await sink.flush()
  t.equal(sink.dropped, 30, 'failed batches and the events past maxBuffer are counted')
  t.equal(warnings.length, 1, 'logged once')
  failing = false
  for (let i = 0; i < 12; i++) sink.write(event(i))
  await sink.close()
  t.same(batches, [10, 2], 'batches of batchSize, the rest on close')
  sink.write(event(99))
  t.equal(sink.dropped, 31, 'after close, writes are dropped')
})

t.test('the file sink rotates by size, keeps N files, and reads them back in order', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-audit-file-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'audit.jsonl')
  const sink = new FileAuditSink({ path, maxBytes: 1000, keep: 2, batchSize: 7 })
  for (let i = 0; i < 100; i++) sink.write(event(i))
  await sink.flush()
  t.same((await readdir(dir)).sort(), ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2'], 'the current file and two rotated ones')
  for (const f of await readdir(dir)) t.ok((await readFile(join(dir, f))).length <= 1000, `${f} within maxBytes`)
  const all = await sink.query({ limit: 1000 })
  t.ok(all.length > 10 && all.length < 100, 'the oldest files were deleted')
  t.same(all.map((e) => e.i), Array.from({ length: all.length }, (_, k) => 100 - all.length + k), 'oldest first, none lost between the kept files')
  t.same((await sink.query({ limit: 2, userId: 'user-0' })).map((e) => e.i), [96, 99], 'filters, the newest `limit`')
  t.same((await readAuditFiles(path, 2, { limit: 5, since: Date.UTC(2026, 0, 1, 0, 1, 38) })).map((e) => e.i), [98, 99], 'since')
  await sink.close()
})

t.test('the Mongo sink writes, queries, and deletes events past retention itself', async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const client = new MongoClient(mongo.url)
  await client.connect()
  t.teardown(() => client.close())
  const db = client.db(mongo.uniqueDbName())
  let now = Date.UTC(2026, 0, 1, 1)
  const sink = new MongoAuditSink({ db, retentionMs: 3600_000, now: () => now })
  for (let i = 0; i < 20; i++) sink.write(event(i, { event: i % 2 === 0 ? 'session.opened' : 'stream.closed' }))
  t.same((await sink.query({ limit: 3, event: 'session.' })).map((e) => e.i), [14, 16, 18], 'by event prefix, newest `limit`, oldest first')
  t.same((await sink.query({ limit: 100, userId: 'user-1', event: 'stream.closed' })).map((e) => e.i), [1, 7, 13, 19])
  t.equal((await sink.query({ limit: 1 }))[0]!.time, new Date(Date.UTC(2026, 0, 1, 0, 0, 19)).toISOString(), 'ISO times back')
  // Retention is an hour: the events before 00:00:10 are past it.
  now = Date.UTC(2026, 0, 1, 1, 0, 10)
  t.equal(await sink.prune(), 10, 'events older than retention deleted')
  t.equal(await sink.collection.countDocuments(), 10)
  // A second sink on the same collection (a gateway restart) finds its indexes in place.
  const again = new MongoAuditSink({ db, retentionMs: 3600_000 })
  await again.init()
  await sink.close()
  await again.close()
})

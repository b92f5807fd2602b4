import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually, startTestMongo } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { API_KEY, startGateway } from './helpers.js'
import type { GatewayConfig } from '../src/config.js'

// What an operator of a multi-user deployment does with keys: one operator key, and a
// registrant key per MCP server that can act for its own server names and nothing else.
// Over real sockets, on the embedded store and on MongoDB (FerretDB), across two gateways.

const JWT_SECRET = 'scoped-keys-test-jwt-secret-0123456789abcdef'
const TODO_KEY = 'static-registrant-key-for-todoodles-0123'
const operator = { authorization: `Bearer ${API_KEY}` }

interface Answer { status: number, body: any, headers: Headers, text: string }

async function call (origin: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  const res = await fetch(origin + path, {
    method,
    headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5000)
  })
  const text = await res.text()
  let parsed: unknown = null
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.status, body: parsed, headers: res.headers, text }
}

const registrant = (key: string, secret: string): Record<string, string> => ({ authorization: `Bearer ${key}`, 'x-mcpgw-server-secret': secret })

async function register (origin: string, key: string, serverName: string, secret: string, port: number): Promise<Answer> {
  return await call(origin, 'POST', '/register-server', registrant(key, secret), { serverName, host: '127.0.0.1', port })
}

async function stores (t: Test): Promise<Array<{ name: string, config: () => Partial<GatewayConfig> }>> {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const dbName = mongo.uniqueDbName()
  return [
    { name: 'embedded store', config: () => ({}) },
    {
      name: 'MongoDB store',
      config: () => ({ mongoUrl: mongo.url, mongoDbName: dbName, jwtSecret: JWT_SECRET })
    }
  ]
}

t.test('a registrant key acts for its own server names only; the operator makes, lists and revokes keys', async (t) => {
  for (const store of await stores(t)) {
    await t.test(store.name, async (t) => {
      const { app, origin } = await startGateway(t, { apiKey: API_KEY, registrantKeys: [{ key: TODO_KEY, role: 'registrant', servers: ['todoodles'] }], ...store.config() })

      // The operator makes a key for "notes": shown once, never again, never stored as such.
      const made = await call(origin, 'POST', '/keys', operator, { role: 'registrant', servers: ['notes'], label: 'notes server' })
      t.equal(made.status, 201)
      t.equal(made.headers.get('cache-control'), 'no-store')
      const notesKey = made.body.key as string
      t.match(notesKey, /^mcpgw_[\w-]{16}\.[\w-]{43}$/)
      t.match(made.body, { keyId: notesKey.slice(6, 22), role: 'registrant', servers: ['notes'], label: 'notes server', live: true })
      const listed = await call(origin, 'GET', '/keys', operator)
      t.equal(listed.status, 200)
      t.match(listed.body.keys, [{ keyId: made.body.keyId, role: 'registrant', servers: ['notes'], live: true }])
      t.notOk(listed.text.includes(notesKey.split('.')[1]!), 'the list never shows a key')
      t.notOk('hash' in listed.body.keys[0], 'nor its digest')
      const store_ = app.mcpRegistry.store as unknown as { apiKeys?: { find: (q: object) => { toArray: () => Promise<unknown[]> } } }
      if (store_.apiKeys !== undefined) {
        // Everything the database holds of keys, as text: what someone with a copy of it reads.
        const raw = JSON.stringify(await store_.apiKeys.find({}).toArray())
        t.ok(raw.includes(made.body.keyId as string), 'the store keeps the key id')
        t.notOk(raw.includes(notesKey.split('.')[1]!), 'and never the key')
      }

      // Each registrant registers and mints for its own name.
      t.equal((await register(origin, notesKey, 'notes', 'notes-server-secret-0123456789abcdef0123', 12901)).status, 200)
      t.equal((await register(origin, TODO_KEY, 'todoodles', 'todo-server-secret-0123456789abcdef01234', 12902)).status, 200)
      const notesAlice = await call(origin, 'POST', '/create-session', registrant(notesKey, 'notes-server-secret-0123456789abcdef0123'), { userId: 'alice', serverName: 'notes' })
      t.equal(notesAlice.status, 201)
      const todoAlice = await call(origin, 'POST', '/create-session', registrant(TODO_KEY, 'todo-server-secret-0123456789abcdef01234'), { userId: 'alice', serverName: 'todoodles' })
      t.equal(todoAlice.status, 201)

      // ...and nothing else: another name, the operator's routes, the whole registry.
      const refusals: Array<[string, string, unknown?]> = [
        ['POST', '/register-server', { serverName: 'todoodles', host: '127.0.0.1', port: 12903 }],
        ['POST', '/create-session', { userId: 'alice', serverName: 'todoodles' }],
        ['DELETE', '/register-server/todoodles'],
        ['GET', '/discover-server/todoodles'],
        ['GET', '/sessions?serverName=todoodles'],
        ['GET', '/stats'],
        ['GET', '/stats?byUser=true'],
        ['GET', '/metrics'],
        ['GET', '/openapi.json'],
        ['GET', '/keys'],
        ['POST', '/keys', { role: 'operator' }]
      ]
      for (const [method, path, body] of refusals) {
        const res = await call(origin, method, path, registrant(notesKey, 'notes-server-secret-0123456789abcdef0123'), body)
        t.equal(res.status, 403, `the notes key: ${method} ${path}`)
        t.equal(res.body?.code, 'MCPGW_API_KEY_SCOPE')
      }
      const servers = await call(origin, 'GET', '/servers', registrant(notesKey, ''))
      t.same(servers.body.servers.map((s: { serverName: string }) => s.serverName), ['notes'], 'it sees its own servers only')
      const sessions = await call(origin, 'GET', '/sessions', registrant(notesKey, ''))
      t.same(sessions.body.sessions.map((s: { serverName: string }) => s.serverName), ['notes'], 'and their sessions only')

      // Revoking "alice" with the notes key ends her notes session, never her todoodles one.
      const revoked = await call(origin, 'POST', '/revoke-session', registrant(notesKey, ''), { userId: 'alice' })
      t.same(revoked.body, { revoked: 1 })
      t.equal((await fetch(todoAlice.body.url, { redirect: 'manual', signal: AbortSignal.timeout(5000) })).status === 401, false, "the other server's session lives on")
      const todoSessions = await call(origin, 'GET', '/sessions?serverName=todoodles', operator)
      t.equal(todoSessions.body.sessions.length, 1)

      // The operator revokes the key: refused at once, with the code a wrong key gets.
      t.equal((await call(origin, 'DELETE', `/keys/${made.body.keyId as string}`, operator)).status, 204)
      const after = await register(origin, notesKey, 'notes', 'notes-server-secret-0123456789abcdef0123', 12901)
      t.equal(after.status, 401)
      t.equal(after.body.code, 'MCPGW_API_UNAUTHORIZED')
      t.equal((await call(origin, 'DELETE', `/keys/${made.body.keyId as string}`, operator)).body.code, 'MCPGW_API_KEY_NOT_FOUND', 'twice is a 404')
      t.match((await call(origin, 'GET', '/keys', operator)).body.keys, [{ keyId: made.body.keyId, live: false }])
      // A key made up in the stored shape is refused, never mistaken for another.
      t.equal((await call(origin, 'GET', '/servers', { authorization: `Bearer mcpgw_${'A'.repeat(16)}.${'B'.repeat(43)}` })).status, 401)
    })
  }
})

t.test('keys live in the shared store: made on one gateway, accepted and revoked on another', async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const shared = { apiKey: API_KEY, mongoUrl: mongo.url, mongoDbName: mongo.uniqueDbName(), jwtSecret: JWT_SECRET }
  const a = await startGateway(t, shared)
  const b = await startGateway(t, shared)
  const made = await call(a.origin, 'POST', '/keys', operator, { role: 'registrant', servers: ['notes'] })
  const secret = 'notes-server-secret-0123456789abcdef0123'
  t.equal((await register(b.origin, made.body.key, 'notes', secret, 12911)).status, 200, 'gateway B takes a key gateway A made')
  t.equal((await call(b.origin, 'DELETE', `/keys/${made.body.keyId as string}`, operator)).status, 204)
  t.equal((await register(a.origin, made.body.key, 'notes', secret, 12911)).status, 401, 'and gateway A refuses it once B revoked it')
})

t.test('a rotated key keeps working through its grace period, then stops', async (t) => {
  const { origin } = await startGateway(t, { apiKey: API_KEY })
  const old = await call(origin, 'POST', '/keys', operator, { role: 'registrant', servers: ['notes'] })
  const fresh = await call(origin, 'POST', '/keys', operator, { role: 'registrant', servers: ['notes'] })
  t.equal((await call(origin, 'DELETE', `/keys/${old.body.keyId as string}?graceSeconds=1`, operator)).status, 204)
  const secret = 'notes-server-secret-0123456789abcdef0123'
  t.equal((await register(origin, old.body.key, 'notes', secret, 12921)).status, 200, 'the old key still works during the grace period')
  t.equal((await register(origin, fresh.body.key, 'notes', secret, 12921)).status, 200, 'so does the new one, for the same instance')
  await eventually(async () => (await register(origin, old.body.key, 'notes', secret, 12921)).status === 401, { what: 'the old key refused after its grace period', within: 4000, everyMs: 200 })
  t.equal((await register(origin, fresh.body.key, 'notes', secret, 12921)).status, 200, 'the new key goes on')
})

t.test('bad key requests get coded 4xx answers', async (t) => {
  const { origin } = await startGateway(t, { apiKey: API_KEY })
  const cases: Array<[unknown, string]> = [
    [{ role: 'registrant' }, 'MCPGW_REGISTRY_INVALID_ARGUMENT'],
    [{ role: 'registrant', servers: [] }, 'MCPGW_API_INVALID_REQUEST'],
    [{ role: 'registrant', servers: ['no spaces'] }, 'MCPGW_API_INVALID_REQUEST'],
    [{ role: 'operator', servers: ['notes'] }, 'MCPGW_REGISTRY_INVALID_ARGUMENT'],
    [{ role: 'root' }, 'MCPGW_API_INVALID_REQUEST'],
    [{ role: 'registrant', servers: ['notes'], label: 'a\nb' }, 'MCPGW_REGISTRY_INVALID_ARGUMENT']
  ]
  for (const [body, code] of cases) {
    const res = await call(origin, 'POST', '/keys', operator, body)
    t.equal(res.status, 400, JSON.stringify(body))
    t.equal(res.body.code, code)
  }
  t.equal((await call(origin, 'DELETE', '/keys/not-a-key-id', operator)).status, 400)
  t.equal((await call(origin, 'DELETE', `/keys/${'x'.repeat(16)}`, operator)).body.code, 'MCPGW_API_KEY_NOT_FOUND')
})

t.test('quotas: one registrant flooding session creation is slowed and capped; the others go on', async (t) => {
  const { origin } = await startGateway(t, {
    apiKey: API_KEY,
    sessionRatePerSecond: 20,
    sessionBurst: 20,
    maxSessionsPerServer: 30,
    registrantKeys: [
      { key: 'hostile-registrant-key-0123456789ab', role: 'registrant', servers: ['flood'] },
      { key: TODO_KEY, role: 'registrant', servers: ['todoodles'] }
    ]
  })
  const hostile = registrant('hostile-registrant-key-0123456789ab', 'flood-server-secret-0123456789abcdef01234')
  const honest = registrant(TODO_KEY, 'todo-server-secret-0123456789abcdef01234')
  t.equal((await register(origin, 'hostile-registrant-key-0123456789ab', 'flood', 'flood-server-secret-0123456789abcdef01234', 12931)).status, 200)
  t.equal((await register(origin, TODO_KEY, 'todoodles', 'todo-server-secret-0123456789abcdef01234', 12932)).status, 200)

  // Asking with the wrong secret spends nothing of the name's quota: the honest server's burst is whole.
  for (let i = 0; i < 25; i++) {
    const stolen = await call(origin, 'POST', '/create-session', { ...operator, 'x-mcpgw-server-secret': 'not-the-todoodles-secret-0123456789abcd' }, { userId: `x${i}`, serverName: 'todoodles' })
    t.equal(stolen.status, 403)
  }

  // The flood: a burst, then a coded 429 with Retry-After.
  let created = 0
  let limited: Answer | null = null
  for (let i = 0; i < 60 && limited === null; i++) {
    const res = await call(origin, 'POST', '/create-session', hostile, { userId: `u${i}`, serverName: 'flood' })
    if (res.status === 201) created++
    else limited = res
  }
  t.ok(created >= 20 && created < 30, `the burst went through (${created}), then the rate applied`)
  t.equal(limited?.status, 429)
  t.equal(limited?.body.code, 'MCPGW_REGISTRY_RATE_LIMITED')
  t.ok(Number(limited?.headers.get('retry-after')) >= 1, 'with Retry-After')

  // The honest server is not slowed by the flood: its own burst is whole.
  for (let i = 0; i < 20; i++) {
    t.equal((await call(origin, 'POST', '/create-session', honest, { userId: `h${i}`, serverName: 'todoodles' })).status, 201)
  }

  // Kept up, the flood hits its name's cap of live sessions: coded, and only for that name.
  let capped: Answer | null = null
  await eventually(async () => {
    const res = await call(origin, 'POST', '/create-session', hostile, { userId: `v${Date.now()}`, serverName: 'flood' })
    if (res.body?.code === 'MCPGW_REGISTRY_SERVER_QUOTA') capped = res
    return capped !== null
  }, { what: 'the name reaching its cap of live sessions', within: 5000, everyMs: 30 })
  t.equal(capped!.status, 429)
  t.equal((await call(origin, 'GET', '/stats', operator)).body.sessions.byServer.flood, 30, 'exactly the cap is live')
  t.equal((await call(origin, 'POST', '/create-session', honest, { userId: 'late', serverName: 'todoodles' })).status, 201, 'other names still get sessions')
})

t.test('the audit trail names the key behind each act: who made a key, which key minted a session, who revoked it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-keys-audit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'audit.jsonl')
  const { app, origin } = await startGateway(t, { apiKey: API_KEY, audit: { sink: 'file', path, maxBytes: 1024 * 1024, keep: 2 } })
  const made = await call(origin, 'POST', '/keys', operator, { role: 'registrant', servers: ['notes'], label: 'notes' })
  const secret = 'notes-server-secret-0123456789abcdef0123'
  t.equal((await register(origin, made.body.key, 'notes', secret, 12941)).status, 200)
  t.equal((await call(origin, 'POST', '/create-session', registrant(made.body.key, secret), { userId: 'alice', serverName: 'notes' })).status, 201)
  t.equal((await call(origin, 'DELETE', `/keys/${made.body.keyId as string}`, operator)).status, 204)
  await app.mcpRegistry.audit.flush()
  const trail = (await call(origin, 'GET', '/audit?since=1h', operator)).body.events as Array<Record<string, unknown>>
  const operatorKeyId = trail.find((e) => e.event === 'key.created')?.keyId
  t.match(operatorKeyId, /^static:/, 'the operator is named by its key id, never its key')
  t.match(trail.find((e) => e.event === 'key.created'), { actor: 'operator', createdKeyId: made.body.keyId, role: 'registrant', servers: ['notes'] })
  t.match(trail.find((e) => e.event === 'registration.added'), { actor: 'registrant', keyId: made.body.keyId, serverName: 'notes' })
  t.match(trail.find((e) => e.event === 'session.created'), { actor: 'registrant', keyId: made.body.keyId, userId: 'alice', serverName: 'notes' })
  t.match(trail.find((e) => e.event === 'key.revoked'), { actor: 'operator', keyId: operatorKeyId, revokedKeyId: made.body.keyId })
  const raw = await readFile(path, 'utf8')
  for (const secretValue of [made.body.key as string, (made.body.key as string).split('.')[1]!, API_KEY, secret]) {
    t.notOk(raw.includes(secretValue), 'no key or secret in the audit file')
  }
})

import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually, startTestMongo } from '@mcp-gw/testkit'
import type { MongoStore } from '@mcp-gw/registry'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import { WebSocket } from 'ws'
import { API_KEY, REGISTRANT, startBackend, startGateway } from './helpers.js'
import type { GatewayConfig } from '../src/config.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const JWT_SECRET = 'gateway-audit-test-secret-0123456789abcdef'
const OPERATOR = { authorization: `Bearer ${API_KEY}` }

interface Event { time: string, event: string, [k: string]: unknown }

/** Rejects with `what` once `ms` have passed: every wait of this file has a deadline. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

async function runCli (args: string[], env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, MCP_WEB_UI_DATA_DIR: 'off', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const code = await within(new Promise<number | null>((resolve) => child.once('exit', resolve)), 15_000, 'the CLI exit')
  return { code, stdout, stderr }
}

/**
 * What an operator sees: a server registers, mints a session for alice, alice opens it, uses
 * a WebSocket and an event stream, someone tries a bad link, the operator revokes the session.
 * Returns every secret the run handled, for the caller to look for in the sink's raw output.
 */
async function operatorStory (t: Test, overrides: Partial<GatewayConfig>): Promise<{ app: FastifyInstance, secrets: string[] }> {
  const backend = await startBackend(t)
  const gw = await startGateway(t, { apiKey: API_KEY, ...overrides })
  const json = { ...REGISTRANT, 'content-type': 'application/json' }
  const reg = await fetch(`${gw.origin}/register-server`, { method: 'POST', headers: json, body: JSON.stringify({ serverName: 'todo', host: '127.0.0.1', port: backend.port }) })
  t.equal(reg.status, 200)
  const registration = await reg.json() as { instanceId: string, proofKey: string }
  const created = await fetch(`${gw.origin}/create-session`, { method: 'POST', headers: json, body: JSON.stringify({ userId: 'alice', serverName: 'todo', ttlSeconds: 600 }) })
  t.equal(created.status, 201)
  const { token, sessionId } = await created.json() as { token: string, sessionId: string }

  const page = await fetch(`${gw.origin}/mcp/${token}/hello`, { headers: { 'user-agent': 'audit-test-agent/1.0' } })
  t.equal(page.status, 200)
  await page.text()

  const audit = async (query: string): Promise<Event[]> => {
    const res = await fetch(`${gw.origin}/audit?${query}`, { headers: OPERATOR })
    t.equal(res.status, 200, `GET /audit?${query}`)
    return (await res.json() as { events: Event[] }).events
  }

  // A WebSocket: 5 bytes each way, closed by the client.
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  await within(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) }), 5000, 'the WebSocket open')
  ws.send('hello')
  await within(new Promise((resolve) => ws.once('message', resolve)), 5000, 'the echo')
  ws.close()
  await within(new Promise((resolve) => ws.once('close', resolve)), 5000, 'the WebSocket close')
  await eventually(async () => (await audit('event=stream.closed')).length === 1, { what: 'the tunnel\'s stream.closed', within: 5000 })

  // An event stream, read then dropped by the client.
  const controller = new AbortController()
  const sse = await fetch(`${gw.origin}/mcp/${token}/events`, { signal: controller.signal })
  t.equal(sse.headers.get('content-type'), 'text/event-stream')
  const reader = sse.body!.getReader()
  await within(reader.read(), 5000, 'the first event')
  controller.abort()
  await reader.read().catch(() => {})
  await eventually(async () => (await audit('event=stream.closed')).length === 2, { what: 'the event stream\'s stream.closed', within: 5000 })

  const refused = await fetch(`${gw.origin}/mcp/not-a-token/`, { headers: { accept: 'application/json' } })
  t.equal(refused.status, 401)
  t.equal((await refused.json() as { code: string }).code, 'MCPGW_PROXY_TOKEN_MALFORMED')

  const revoked = await fetch(`${gw.origin}/revoke-session`, { method: 'POST', headers: { ...OPERATOR, 'content-type': 'application/json' }, body: JSON.stringify({ sessionId, reason: 'offboarding' }) })
  t.same(await revoked.json(), { revoked: 1 })

  // alice's trail, in order.
  const trail = await audit('user=alice&since=1h')
  t.same(trail.map((e) => e.event), ['session.created', 'session.opened', 'stream.opened', 'stream.closed', 'stream.opened', 'stream.closed', 'session.revoked'])
  for (const e of trail) {
    t.match(e, { userId: 'alice', serverName: 'todo', instanceId: registration.instanceId, sessionId }, `${e.event} names the session`)
    t.ok(!Number.isNaN(Date.parse(e.time)) && e.time.endsWith('Z'), `${e.event} has an ISO time`)
  }
  t.match(trail[0], { actor: 'operator', keyId: /^static:[0-9a-f]{12}$/, scopes: ['view', 'interact'], ttlSeconds: 600 }, 'created: by whom, for whom, what, how long')
  t.match(trail[1], { via: 'link', clientAddress: '127.0.0.1', userAgent: 'audit-test-agent/1.0' }, 'first opened: from where, how')
  t.match(trail[2], { kind: 'websocket' })
  t.match(trail[3], { kind: 'websocket', bytesIn: Number, bytesOut: Number, durationMs: Number, endedBy: /^(client|backend)$/ })
  t.ok((trail[3]!.bytesIn as number) >= 11 && (trail[3]!.bytesOut as number) >= 7, 'the tunnel\'s bytes: a masked 5-byte frame in, its echo out')
  t.match(trail[4], { kind: 'sse' })
  t.match(trail[5], { kind: 'sse', durationMs: Number, endedBy: 'client' })
  t.ok((trail[5]!.bytesOut as number) >= 'data: hello\n\n'.length, 'the stream\'s bytes')
  t.match(trail[6], { actor: 'operator', keyId: /^static:[0-9a-f]{12}$/, reason: 'offboarding', by: 'sessionId' }, 'revoked: by whom, why')

  const refusals = await audit('event=request.refused')
  t.match(refusals, [{ code: 'MCPGW_PROXY_TOKEN_MALFORMED', statusCode: 401, clientAddress: '127.0.0.1' }], 'the refusal carries its code')
  const registrations = await audit('server=todo&event=registration.')
  t.match(registrations, [{ event: 'registration.added', serverName: 'todo', instanceId: registration.instanceId, host: '127.0.0.1', port: backend.port, actor: 'operator' }])
  t.same((await audit('user=bob')), [], 'filters by user')
  t.same((await audit('user=alice&limit=2')).map((e) => e.event), ['stream.closed', 'session.revoked'], 'the newest `limit`, oldest first')

  // Within the revalidation bound the link is refused, and the refusal names the session.
  await eventually(async () => {
    const after = await fetch(`${gw.origin}/mcp/${token}/hello`, { headers: { accept: 'application/json' } })
    await after.text()
    return after.status === 401
  }, { what: 'the revoked link refused', within: 5000, everyMs: 100 })
  await eventually(async () => (await audit('event=request.refused&user=alice')).some((e) => e.code === 'MCPGW_PROXY_TOKEN_REVOKED'), { what: 'the revoked link\'s refusal', within: 5000 })

  const cli = await runCli(['audit', '--user', 'alice', '--event', 'session.', '--since', '1h'], { MCP_WEB_UI_GATEWAY_URL: gw.origin, MCP_WEB_UI_GATEWAY_API_KEY: API_KEY })
  t.equal(cli.code, 0, cli.stderr)
  t.match(cli.stdout, /session\.created\s+operator:static:[0-9a-f]+\s+alice\s+todo/)
  t.match(cli.stdout, /session\.revoked\s+operator:static:[0-9a-f]+\s+alice\s+todo.*reason=offboarding/)

  await gw.app.mcpRegistry.audit.flush()
  return { app: gw.app, secrets: [API_KEY, REGISTRANT['x-mcpgw-server-secret'], registration.proofKey, token, JWT_SECRET] }
}

function assertNoSecret (t: Test, raw: string, secrets: string[]): void {
  t.ok(raw.length > 0, 'the sink wrote something')
  for (const secret of secrets) t.notOk(raw.includes(secret), `no secret in the sink (${secret.slice(0, 4)}…)`)
  t.notOk(/ownerHash|proof|"token"|secret|cookie|authorization/i.test(raw), 'no field that carries or derives from a credential')
}

t.test('embedded store, file sink: the trail an operator reads, and no secret in it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-audit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'audit.jsonl')
  const { secrets } = await operatorStory(t, { jwtSecret: JWT_SECRET, audit: { sink: 'file', path, maxBytes: 10 * 1024 * 1024, keep: 3 } })
  const raw = (await Promise.all((await readdir(dir)).map((f) => readFile(join(dir, f), 'utf8')))).join('')
  assertNoSecret(t, raw, secrets)
  for (const line of raw.trim().split('\n')) t.match(JSON.parse(line), { time: String, event: /^[a-z]+\.[a-z]+$/ })

  const cli = await runCli(['audit', '--file', path, '--user', 'alice', '--event', 'session.', '--json'], {})
  t.equal(cli.code, 0, cli.stderr)
  t.equal((JSON.parse(cli.stdout) as Event[]).at(-1)?.event, 'session.revoked', 'the CLI reads the file sink directly')
})

t.test('Mongo store, Mongo sink: the same trail, and no secret in the collection', async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const dbName = mongo.uniqueDbName()
  const { app, secrets } = await operatorStory(t, { mongoUrl: mongo.url, mongoDbName: dbName, jwtSecret: JWT_SECRET, audit: { sink: 'mongo', retentionDays: 30 } })
  const docs = await (app.mcpRegistry.store as MongoStore).db.collection('mcpgw_audit').find({}, { projection: { _id: 0 } }).toArray()
  t.ok(docs.length >= 10, 'the events are in the collection')
  t.ok(docs.every((d) => d.time instanceof Date), 'times are BSON dates (for the TTL index and range queries)')
  assertNoSecret(t, JSON.stringify(docs), secrets)
})

t.test('a failing sink drops events, logs once, and never fails a request', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-audit-fail-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // A path below a regular file: every write fails with ENOTDIR.
  await writeFile(join(dir, 'not-a-dir'), '')
  const lines: string[] = []
  const logStream = { write: (line: string) => { lines.push(line); return true } } as unknown as NodeJS.WritableStream
  const backend = await startBackend(t)
  const gw = await startGateway(t, { apiKey: API_KEY, audit: { sink: 'file', path: join(dir, 'not-a-dir', 'audit.jsonl'), maxBytes: 1 << 20, keep: 1 } }, { logLevel: 'warn', logStream })
  const json = { ...REGISTRANT, 'content-type': 'application/json' }
  t.equal((await fetch(`${gw.origin}/register-server`, { method: 'POST', headers: json, body: JSON.stringify({ serverName: 'todo', host: '127.0.0.1', port: backend.port }) })).status, 200)
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${gw.origin}/create-session`, { method: 'POST', headers: json, body: JSON.stringify({ userId: `user-${i}`, serverName: 'todo' }) })
    t.equal(res.status, 201)
    const { token } = await res.json() as { token: string }
    const page = await fetch(`${gw.origin}/mcp/${token}/`)
    t.equal(page.status, 200, 'the request is served')
    await page.text()
    await gw.app.mcpRegistry.audit.flush()
  }
  t.ok(gw.app.mcpRegistry.audit.dropped >= 7, `the lost events are counted (${gw.app.mcpRegistry.audit.dropped})`)
  t.equal(lines.filter((l) => l.includes('the audit sink failed')).length, 1, 'logged once')
  const query = await fetch(`${gw.origin}/audit`, { headers: OPERATOR })
  t.equal(query.status, 200, 'the query answers (from the files that could be read: none)')
})

t.test('GET /audit without a readable sink answers a coded 404', async (t) => {
  const off = await startGateway(t, { apiKey: API_KEY })
  const res = await fetch(`${off.origin}/audit`, { headers: OPERATOR })
  t.equal(res.status, 404)
  t.equal((await res.json() as { code: string }).code, 'MCPGW_API_AUDIT_UNAVAILABLE')
  const bad = await fetch(`${off.origin}/audit?since=yesterday`, { headers: OPERATOR })
  t.equal(bad.status, 404, 'the sink is checked first')
  await bad.text()
  const noKey = await fetch(`${off.origin}/audit`)
  t.equal(noKey.status, 401, 'behind the API guard')
  await noKey.text()
})

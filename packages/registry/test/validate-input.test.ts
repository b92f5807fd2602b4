import type { Test } from 'tap'
import t from 'tap'
import { MemoryStore } from '../src/memory-store.js'
import { fakeClock, makeRegistry } from './helpers.js'

const code = 'MCPGW_REGISTRY_INVALID_ARGUMENT'

async function setup (t: Test) {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  return { registry: makeRegistry(store, clock, { maxSessionTtlSeconds: 86_400 }), clock }
}

t.test('serverName and serverType: documented charset and length', async (t) => {
  const { registry } = await setup(t)
  for (const serverName of ['', ' ', 'a b', '-leading', '.hidden', 'x'.repeat(65), 'ünï', 'a/b', 'a:b', '$where', null, 42, ['a']]) {
    await t.rejects(registry.createSession({ userId: 'alice', serverName: serverName as string }), { code, statusCode: 400 }, `serverName ${JSON.stringify(serverName)}`)
    await t.rejects(registry.registerServer({ serverName: serverName as string, host: '127.0.0.1', port: 80 }), { code }, `register ${JSON.stringify(serverName)}`)
  }
  for (const serverType of ['', 'a b', 'x'.repeat(65), 5]) {
    await t.rejects(registry.createSession({ userId: 'alice', serverName: 'ok', serverType: serverType as string }), { code }, `serverType ${JSON.stringify(serverType)}`)
  }
  for (const good of ['a', 'todoodles', 'grocery_list', 'my.server-2', 'X'.repeat(64)]) {
    t.ok(await registry.createSession({ userId: 'alice', serverName: good }), `accepts ${good}`)
  }
})

t.test('userId: non-empty string, bounded, no control characters', async (t) => {
  const { registry } = await setup(t)
  for (const userId of ['', 'x'.repeat(257), 'a\nb', 'a\u0000b', '\ud800', 'a\udc00b', null, undefined, 7, { $ne: null }, ['alice']]) {
    await t.rejects(registry.createSession({ userId: userId as string, serverName: 'todoodles' }), { code }, `userId ${JSON.stringify(userId)}`)
  }
  t.ok(await registry.createSession({ userId: 'alice@example.com', serverName: 'todoodles' }))
  t.ok(await registry.createSession({ userId: 'x'.repeat(256), serverName: 'todoodles' }))
})

t.test('ports: integers from 1 to 65535', async (t) => {
  const { registry } = await setup(t)
  for (const port of [0, -1, 65536, 1.5, NaN, Infinity, '8080', null]) {
    await t.rejects(registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: port as number }), { code }, `port ${String(port)}`)
  }
  t.ok(await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 1 }))
  t.ok(await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 65535 }))
})

t.test('hosts: hostnames or IP addresses only', async (t) => {
  const { registry } = await setup(t)
  for (const host of ['', 'http://x', 'a b', 'host:80', 'a..b', '-a.b', 'a_b.c', 'x'.repeat(254), '127.0.0.1/8', 'user@host', '[::1', null, 5]) {
    await t.rejects(registry.registerServer({ serverName: 'todoodles', host: host as string, port: 80 }), { code }, `host ${JSON.stringify(host)}`)
  }
  const accepted: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'], ['::1', '::1'], ['[::1]', '::1'], ['172.18.0.5', '172.18.0.5'],
    ['todo-ui.internal', 'todo-ui.internal'], ['Localhost', 'localhost'], ['fd00::1', 'fd00::1']
  ]
  for (const [host, stored] of accepted) {
    t.equal((await registry.registerServer({ serverName: 'todoodles', host, port: 80 })).host, stored, `host ${host}`)
  }
})

t.test('protocol: http or https', async (t) => {
  const { registry } = await setup(t)
  await t.rejects(registry.registerServer({ serverName: 'a', host: 'h', port: 1, protocol: 'ftp' as 'http' }), { code })
  t.equal((await registry.registerServer({ serverName: 'a', host: 'h', port: 1 })).protocol, 'http')
  t.equal((await registry.registerServer({ serverName: 'a', host: 'h', port: 1, protocol: 'https' })).protocol, 'https')
})

t.test('TTLs: positive whole seconds up to the configured maximum', async (t) => {
  const { registry } = await setup(t)
  for (const ttlSeconds of [0, -5, 1.5, 86_401, '60', NaN]) {
    await t.rejects(registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: ttlSeconds as number }), { code }, `ttl ${String(ttlSeconds)}`)
  }
  const max = await registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 86_400 })
  t.equal(max.session.expiresAt - max.session.createdAt, 86_400_000)
})

t.test('scopes and metadata', async (t) => {
  const { registry } = await setup(t)
  for (const scopes of [[], 'view', ['View'], ['a b'], [''], Array.from({ length: 17 }, (_, i) => `s${i}`), [1]]) {
    await t.rejects(registry.createSession({ userId: 'alice', serverName: 'todoodles', scopes: scopes as string[] }), { code }, `scopes ${JSON.stringify(scopes)}`)
  }
  const viewOnly = await registry.createSession({ userId: 'alice', serverName: 'todoodles', scopes: ['view', 'view'] })
  t.same(viewOnly.session.scopes, ['view'], 'duplicates collapse')

  const badMetadata = [
    'str', [1], { $gt: 1 }, { 'a.b': 1 }, { nested: { $set: 1 } }, { n: NaN }, { d: new Date() },
    { big: 'x'.repeat(5000) }, { a: { b: { c: { d: { e: 1 } } } } }, { f: () => 1 }
  ]
  for (const metadata of badMetadata) {
    await t.rejects(registry.createSession({ userId: 'bob', serverName: 'todoodles', metadata: metadata as Record<string, unknown> }), { code })
  }
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  await t.rejects(registry.createSession({ userId: 'bob', serverName: 'todoodles', metadata: cyclic }), { code })
  const ok = await registry.createSession({ userId: 'bob', serverName: 'todoodles', metadata: { theme: 'dark', n: 1, tags: ['a'], x: null } })
  t.same(ok.session.metadata, { theme: 'dark', n: 1, tags: ['a'], x: null })
})

t.test('revoke takes exactly one selector', async (t) => {
  const { registry } = await setup(t)
  await t.rejects(registry.revoke({} as { userId: string }), { code })
  await t.rejects(registry.revoke({ userId: 'a', sessionKey: 'a:b:c' } as unknown as { userId: string }), { code })
  await t.rejects(registry.revoke(null as unknown as { userId: string }), { code })
  await t.rejects(registry.revoke({ sessionKey: 'no-colons' }), { code })
  await t.rejects(registry.revoke({ sessionKey: 'alice::mcp-webui' }), { code })
  t.equal(await registry.revoke({ sessionKey: 'alice:todoodles:mcp-webui' }), 0)
})

t.test('error messages never echo the rejected value', async (t) => {
  const { registry } = await setup(t)
  const err = await registry.createSession({ userId: 'secret-looking-value\n', serverName: 'todoodles' }).catch((e: Error) => e)
  t.equal((err as { code?: string }).code, code)
  t.notMatch((err as Error).message, /secret-looking-value/)
})

import type { Test } from 'tap'
import type { ProbeVerdict } from '../src/instances.js'
import { MAX_SHARES_PER_SESSION } from '../src/registry.js'
import type { Registry, RegistryConstructorOptions } from '../src/registry.js'
import type { RegistryStore, SessionRecord } from '../src/types.js'
import { fakeClock, makeRegistry } from './helpers.js'
import type { FakeClock } from './helpers.js'

export type StoreFactory = (t: Test, clock: FakeClock) => Promise<RegistryStore>

/**
 * One suite, run against every store implementation: the behaviour a user of
 * the registry sees must not depend on where the records live.
 */
export function storeContract (t: Test, makeStore: StoreFactory): void {
  async function setup (t: Test, options: RegistryConstructorOptions = {}): Promise<{ registry: Registry, store: RegistryStore, clock: FakeClock }> {
    const clock = fakeClock()
    const store = await makeStore(t, clock)
    await store.init()
    const registry = makeRegistry(store, clock, options)
    return { registry, store, clock }
  }

  t.test('a new session validates and carries its key, scopes and type', async (t) => {
    const { registry } = await setup(t)
    const issued = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    t.equal(issued.created, true)
    t.equal(issued.session.sessionKey, 'alice:todoodles:mcp-webui')
    t.equal(issued.session.serverType, 'mcp-webui')
    t.same(issued.session.scopes, ['view', 'interact'])
    t.equal(issued.session.revokedAt, null)
    const result = await registry.validate(issued.token)
    t.equal(result.valid, true)
    if (result.valid) {
      t.equal(result.session.sessionId, issued.session.sessionId)
      t.equal(result.claims.sub, 'alice')
      t.equal(result.claims.serverName, 'todoodles')
      t.equal(result.claims.sid, issued.session.sessionId)
    }
  })

  t.test('a session keeps its share level, as the store reads it back', async (t) => {
    const { registry } = await setup(t, { logins: true })
    const owner = await registry.createSession({ userId: 'alice', serverName: 'todoodles', shareLevel: 'owner' })
    t.equal(owner.session.shareLevel, 'owner')
    const read = await registry.validate(owner.token)
    t.equal(read.valid && read.session.shareLevel, 'owner', 'validated: the store kept it')
    const link = await registry.createSession({ userId: 'bob', serverName: 'todoodles' })
    const linkRead = await registry.validate(link.token)
    t.equal(linkRead.valid && (linkRead.session.shareLevel ?? 'link'), 'link', 'none asked: a bearer link, as before')
    t.equal((await registry.listSessions({ serverName: 'todoodles' })).find((s) => s.userId === 'alice')?.shareLevel, 'owner', 'listed with it')
  })

  t.test('a share: its own link, kept by the store, listed under its session, ending with it', async (t) => {
    const { registry } = await setup(t, { logins: true })
    const own = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    const toBob = await registry.shareSession({ sessionId: own.session.sessionId, person: 'bob' })
    const anyone = await registry.shareSession({ sessionId: own.session.sessionId, shareLevel: 'authenticated', scopes: ['view', 'interact'] })
    t.not(toBob.token, own.token, 'a credential of its own')
    const read = await registry.validate(toBob.token)
    t.same(read.valid && { level: read.session.shareLevel, share: read.session.share, scopes: read.session.scopes, user: read.session.userId, instance: read.session.instanceId },
      { level: 'owner', share: { from: own.session.sessionId, with: 'bob' }, scopes: ['view'], user: 'alice', instance: own.session.instanceId }, 'the store kept who it is for, and from where')
    t.same((await registry.listShares(own.session.sessionId)).map((s) => s.sessionId).sort(), [toBob.session.sessionId, anyone.session.sessionId].sort(), 'listed under the shared session')
    const ops = await registry.shareSession({ sessionId: own.session.sessionId, groups: ['ops', 'ops'], emailDomains: ['example.com'] })
    const opsRead = await registry.validate(ops.token)
    t.same(opsRead.valid && [opsRead.session.shareLevel, opsRead.session.audience], ['authenticated', { groups: ['ops'], emailDomains: ['example.com'] }], 'a share for a group: its audience kept')
    await registry.revoke({ sessionId: ops.session.sessionId })
    t.equal((await registry.createSession({ userId: 'alice', serverName: 'todoodles' })).token, own.token, 'the owner\'s live session is still the one handed back')
    await registry.revoke({ sessionId: toBob.session.sessionId })
    t.equal((await registry.validate(toBob.token)).valid, false, 'a revoked share opens nothing')
    t.equal((await registry.validate(anyone.token)).valid, true, 'the other share lives on')
    t.equal((await registry.validate(own.token)).valid, true, 'and so does the session')
    const session = await registry.validate(anyone.token)
    await registry.revoke({ sessionId: own.session.sessionId })
    t.same(await registry.validate(anyone.token), { valid: false, reason: 'revoked' }, 'the session ended: every share with it')
    t.same(await registry.listSessions({ userId: 'alice' }), [], 'revoked in the store too: no share of it is listed')
    const again = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    const later = await registry.shareSession({ sessionId: again.session.sessionId, shareLevel: 'link' })
    t.equal(await registry.revoke({ sessionKey: again.session.sessionKey }), 1, 'by key: the session (its shares go with it, uncounted)')
    t.equal((await registry.validate(later.token)).valid, false)
    t.same(await registry.listShares(again.session.sessionId), [])
    const third = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    const before = await registry.shareSession({ sessionId: third.session.sessionId, shareLevel: 'link' })
    const rotated = await registry.createSession({ userId: 'alice', serverName: 'todoodles', rotate: true })
    t.not(rotated.session.sessionId, third.session.sessionId)
    t.equal((await registry.validate(before.token)).valid, false, 'replaced (rotate): its shares end')
    t.same(await registry.listShares(third.session.sessionId), [], 'and are revoked in the store')
    t.same(session.valid && await registry.recheck(session.session), { valid: false, reason: 'revoked' }, 'a cached share rechecked: ended too')
  })

  t.test('shares asked for all at once stop at the cap', async (t) => {
    const { registry } = await setup(t)
    const own = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    const answers = await Promise.allSettled(Array.from({ length: MAX_SHARES_PER_SESSION + 30 }, async () => await registry.shareSession({ sessionId: own.session.sessionId, shareLevel: 'link' })))
    const made = answers.filter((a) => a.status === 'fulfilled').length
    const live = (await registry.listSessions({ sharedFrom: own.session.sessionId, limit: 1000 })).length
    t.equal(made, MAX_SHARES_PER_SESSION, `${made} made of ${answers.length} asked at once`)
    t.equal(live, made, 'every one answered is live, no other')
    t.ok(answers.every((a) => a.status === 'fulfilled' || (a.reason as { code?: string }).code === 'MCPGW_REGISTRY_TOO_MANY_SHARES'), 'the rest: 409 TOO_MANY_SHARES')
  })

  t.test('the same key returns the live session and the same token', async (t) => {
    const { registry } = await setup(t)
    const first = await registry.createSession({ userId: 'alice', serverName: 'todoodles', metadata: { theme: 'dark' } })
    const second = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    t.equal(second.created, false)
    t.equal(second.session.sessionId, first.session.sessionId)
    t.equal(second.token, first.token)
    t.same(second.session.metadata, { theme: 'dark' })
  })

  t.test('sessions are isolated per userId:serverName:serverType', async (t) => {
    const { registry } = await setup(t)
    const a = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    const b = await registry.createSession({ userId: 'alice', serverName: 'grocery-list' })
    const c = await registry.createSession({ userId: 'alice', serverName: 'todoodles', serverType: 'admin-ui' })
    const d = await registry.createSession({ userId: 'bob', serverName: 'todoodles' })
    const ids = new Set([a, b, c, d].map((s) => s.session.sessionId))
    t.equal(ids.size, 4)
    t.equal(c.session.sessionKey, 'alice:todoodles:admin-ui')
    // A userId may contain colons; the key still ends with serverName:serverType.
    const e = await registry.createSession({ userId: 'org:alice', serverName: 'todoodles' })
    t.equal(e.session.sessionKey, 'org:alice:todoodles:mcp-webui')
    t.equal((await registry.revoke({ sessionKey: 'org:alice:todoodles:mcp-webui' })), 1)
    t.equal((await registry.validate(a.token)).valid, true)
  })

  t.test('rotate replaces the live session; the old token stops working', async (t) => {
    const { registry } = await setup(t)
    const old = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    const rotated = await registry.createSession({ userId: 'alice', serverName: 'todoodles', rotate: true })
    t.equal(rotated.created, true)
    t.not(rotated.session.sessionId, old.session.sessionId)
    t.not(rotated.token, old.token)
    t.same(await registry.validate(old.token), { valid: false, reason: 'unknown' })
    t.equal((await registry.validate(rotated.token)).valid, true)
    const live = await registry.listSessions({ userId: 'alice' })
    t.equal(live.length, 1)
  })

  t.test('expiry is exact at the boundary, for every read', async (t) => {
    const { registry, clock } = await setup(t)
    const issued = await registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 10 })
    t.equal(issued.session.expiresAt, clock.now() + 10_000)
    clock.advance(9_999)
    t.equal((await registry.validate(issued.token)).valid, true)
    t.ok(await registry.getSession(issued.session.sessionId))
    t.equal((await registry.listSessions()).length, 1)
    t.equal((await registry.stats()).sessions.live, 1)
    clock.advance(1)
    t.same(await registry.validate(issued.token), { valid: false, reason: 'expired' })
    t.equal(await registry.getSession(issued.session.sessionId), null)
    t.equal((await registry.listSessions()).length, 0)
    t.equal((await registry.stats()).sessions.live, 0)
    // A new session replaces the expired one without waiting for any sweep.
    const next = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    t.equal(next.created, true)
    t.not(next.session.sessionId, issued.session.sessionId)
  })

  t.test('revocation by session, by key and by user', async (t) => {
    const { registry } = await setup(t)
    const a = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    const b = await registry.createSession({ userId: 'alice', serverName: 'grocery-list' })
    const c = await registry.createSession({ userId: 'alice', serverName: 'movies' })
    const bob = await registry.createSession({ userId: 'bob', serverName: 'todoodles' })

    t.equal(await registry.revoke({ sessionId: a.session.sessionId }), 1)
    t.same(await registry.validate(a.token), { valid: false, reason: 'revoked' })
    t.equal(await registry.revoke({ sessionId: a.session.sessionId }), 0, 'revoking twice changes nothing')

    t.equal(await registry.revoke({ sessionKey: b.session.sessionKey }), 1)
    t.same(await registry.validate(b.token), { valid: false, reason: 'revoked' })

    t.equal(await registry.revoke({ userId: 'alice' }), 1, 'only the one still live')
    t.same(await registry.validate(c.token), { valid: false, reason: 'revoked' })
    t.equal((await registry.validate(bob.token)).valid, true, "bob's session is untouched")

    const revoked = await registry.getSession(a.session.sessionId)
    t.type(revoked?.revokedAt, 'number')
    const again = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    t.equal(again.created, true, 'a revoked key gets a fresh session')
    t.equal((await registry.validate(again.token)).valid, true)
  })

  t.test('50 concurrent creations for one key end with exactly one live session', async (t) => {
    const { registry } = await setup(t)
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => registry.createSession({ userId: 'alice', serverName: 'todoodles' }))
    )
    const rejected = results.filter((r) => r.status === 'rejected')
    t.same(rejected, [], 'no call failed')
    const ids = new Set(results.map((r) => r.status === 'fulfilled' ? r.value.session.sessionId : ''))
    t.equal(ids.size, 1, 'every caller got the same session')
    t.equal(results.filter((r) => r.status === 'fulfilled' && r.value.created).length, 1, 'exactly one created it')
    t.equal((await registry.listSessions({ userId: 'alice' })).length, 1)
    for (const r of results) {
      if (r.status === 'fulfilled') t.equal((await registry.validate(r.value.token)).valid, true)
    }
  })

  t.test('activity writes are throttled per session', async (t) => {
    const { registry, clock } = await setup(t)
    const issued = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    clock.advance(1000)
    t.equal(await registry.touch(issued.session), true)
    const touchedAt = clock.now()
    t.equal((await registry.getSession(issued.session.sessionId))?.lastActivityAt, touchedAt)
    clock.advance(29_999)
    t.equal(await registry.touch(issued.session), false, 'within 30 s: no write')
    t.equal((await registry.getSession(issued.session.sessionId))?.lastActivityAt, touchedAt)
    clock.advance(1)
    t.equal(await registry.touch(issued.session), true)
    t.equal((await registry.getSession(issued.session.sessionId))?.lastActivityAt, clock.now())
  })

  t.test('servers register, heartbeat, expire and deregister', async (t) => {
    const { registry, clock } = await setup(t)
    t.equal(await registry.discover('todoodles'), null)
    const incarnation = 'incarnation-of-this-process-1'
    const first = await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 12861, metadata: { version: '1.2.0' }, incarnation })
    t.match(first, { serverName: 'todoodles', host: '127.0.0.1', port: 12861, protocol: 'http', metadata: { version: '1.2.0' } })
    t.equal(first.expiresAt, clock.now() + 90_000)
    const registeredAt = first.registeredAt

    clock.advance(60_000)
    const beat = await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 12862, protocol: 'https', incarnation })
    t.equal(beat.registeredAt, registeredAt, 'a heartbeat keeps registeredAt')
    t.equal(beat.lastHeartbeatAt, clock.now())
    t.equal(beat.expiresAt, clock.now() + 90_000, 'a heartbeat extends the expiry')
    t.match(await registry.discover('todoodles'), { port: 12862, protocol: 'https', metadata: {} })

    clock.advance(89_999)
    t.ok(await registry.discover('todoodles'))
    clock.advance(1)
    t.equal(await registry.discover('todoodles'), null, 'absent from the instant it expires')
    t.same(await registry.listServers(), [])

    const revived = await registry.registerServer({ serverName: 'todoodles', host: 'todo.internal', port: 8080 })
    t.equal(revived.registeredAt, clock.now(), 'an expired registration starts afresh')
    t.equal(revived.host, 'todo.internal')

    t.equal(await registry.deregisterServer('todoodles'), true)
    t.equal(await registry.discover('todoodles'), null)
    t.equal(await registry.deregisterServer('todoodles'), false)
  })

  t.test('a server name has many instances; each registrant acts on its own instance only', async (t) => {
    const { registry, clock } = await setup(t)
    const alice = 'a'.repeat(40)
    const mallory = 'm'.repeat(40)
    const mine = await registry.registerServer({ serverName: 'b', host: '127.0.0.1', port: 3000, secret: alice })
    clock.advance(1)
    const theirs = await registry.registerServer({ serverName: 'b', host: '127.0.0.1', port: 6666, secret: mallory })
    t.not(theirs.instanceId, mine.instanceId, 'another registrant adds an instance of its own')
    t.same((await registry.instances('b')).map((i) => i.port), [3000, 6666], 'both live, oldest first')
    t.equal((await registry.assertServerOwner('b', alice)).instanceId, mine.instanceId)
    t.equal((await registry.assertServerOwner('b', mallory)).instanceId, theirs.instanceId)
    await t.rejects(registry.assertServerOwner('b', 'x'.repeat(40)), { code: 'MCPGW_REGISTRY_NOT_SERVER_OWNER', statusCode: 403 })
    await t.rejects(registry.assertServerOwner('b', mallory, { instanceId: mine.instanceId }), { code: 'MCPGW_REGISTRY_NOT_SERVER_OWNER' }, "naming another's instance")
    await t.rejects(registry.deregisterServer('b', mallory, { instanceId: mine.instanceId }), { code: 'MCPGW_REGISTRY_NOT_SERVER_OWNER' })
    await t.rejects(registry.assertServerOwner('nobody', alice), { code: 'MCPGW_REGISTRY_SERVER_NOT_REGISTERED', statusCode: 404 })
    const aliceSession = await registry.createSession({ userId: 'alice', serverName: 'b', serverSecret: alice })
    const malloryAsks = await registry.createSession({ userId: 'alice', serverName: 'b', serverSecret: mallory })
    t.equal(aliceSession.session.instanceId, mine.instanceId)
    t.equal(malloryAsks.session.instanceId, theirs.instanceId, "a session for alice asked by the other instance is that instance's")
    t.not(malloryAsks.token, aliceSession.token)
    t.equal((await registry.validate(aliceSession.token)).valid, true, "and the first instance's session lives on")
    t.equal(await registry.revoke({ userId: 'alice', instanceId: theirs.instanceId }), 1, 'a revocation scoped to one instance')
    t.equal((await registry.validate(aliceSession.token)).valid, true, "reaches that instance's sessions only")
    t.equal(await registry.deregisterServer('b', mallory), true)
    t.same((await registry.instances('b')).map((i) => i.port), [3000], 'a deregistration removes its own instance only')
    await t.rejects(registry.registerServer({ serverName: 'c', host: '127.0.0.1', port: 1, secret: 'short' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT' })
    await t.rejects(registry.registerServer({ serverName: 'c', host: '127.0.0.1', port: 1, incarnation: 'no spaces allowed here' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT' })
    await t.rejects(registry.registerServer({ serverName: 'c', host: '127.0.0.1', port: 1, instance: 'a/b' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT' })
  })

  t.test('a process with the identity a live process holds is an instance of its own, unless the holder is gone', async (t) => {
    const verdicts: ProbeVerdict[] = []
    const probed: number[] = []
    const { registry, clock } = await setup(t, {
      probeInstance: async (holder) => { probed.push(holder.port); return verdicts.shift() ?? 'alive' }
    })
    const secret = 's'.repeat(40)
    const first = { serverName: 'b', host: '127.0.0.1', secret, instance: 'user-carol' }
    const held = await registry.registerServer({ ...first, port: 3000, incarnation: 'carol-process-one-0001' })
    const session = await registry.createSession({ userId: 'carol', serverName: 'b', serverSecret: secret })
    t.equal(session.session.instanceId, held.instanceId)

    verdicts.push('alive')
    const second = await registry.registerServer({ ...first, port: 4000, incarnation: 'carol-process-two-0002' })
    t.same(probed, [3000], 'the holder was asked')
    t.not(second.instanceId, held.instanceId, 'a live holder keeps its instance: the newcomer gets one of its own')
    const beat = await registry.registerServer({ ...first, port: 4000, incarnation: 'carol-process-two-0002' })
    t.equal(beat.instanceId, second.instanceId, "the newcomer's heartbeat stays with its own instance")
    t.same(probed, [3000], 'and asks nobody')
    verdicts.push('unknown')
    const third = await registry.registerServer({ ...first, port: 5000, incarnation: 'carol-process-three-03' })
    t.not(third.instanceId, held.instanceId, 'an unclear answer keeps the holder too')
    t.equal((await registry.discoverInstance(held.instanceId))?.port, 3000, "the holder's route is untouched")

    clock.advance(1000)
    verdicts.push('gone')
    const restarted = await registry.registerServer({ ...first, port: 6000, incarnation: 'carol-process-four-004' })
    t.equal(restarted.instanceId, held.instanceId, 'a holder found gone is superseded: the restart takes its instance back')
    t.equal(restarted.registeredAt, clock.now())
    t.equal((await registry.discoverInstance(held.instanceId))?.port, 6000, "and the instance's sessions go to it")
    const again = await registry.createSession({ userId: 'carol', serverName: 'b', serverSecret: secret, instance: { incarnation: 'carol-process-four-004' } })
    t.equal(again.token, session.token, 'the link handed out before the restart is the same live session')
    await t.rejects(registry.createSession({ userId: 'carol', serverName: 'b', serverSecret: secret, instance: { instanceId: held.instanceId, incarnation: 'carol-process-one-0001' } }),
      { code: 'MCPGW_REGISTRY_INSTANCE_SUPERSEDED', statusCode: 409 }, 'the superseded process is told so')
    await t.rejects(registry.deregisterServer('b', secret, { instanceId: held.instanceId, incarnation: 'carol-process-one-0001' }), { code: 'MCPGW_REGISTRY_INSTANCE_SUPERSEDED' })
    t.equal((await registry.discoverInstance(held.instanceId))?.port, 6000, 'and cannot remove its successor')

    const moved = await registry.registerServer({ ...first, port: 6000, incarnation: 'carol-process-five-005' })
    t.equal(moved.instanceId, held.instanceId, "a newcomer at the holder's own address takes it over without a probe")
    t.equal(probed.length, 3)
    const other = await registry.registerServer({ ...first, instance: 'user-dave', port: 7000, incarnation: 'dave-process-one-00001' })
    t.not(other.instanceId, held.instanceId, 'another instance name is another instance')
    const daveSession = await registry.createSession({ userId: 'dave', serverName: 'b', serverSecret: secret, instance: { instanceId: other.instanceId } })
    t.equal(daveSession.session.instanceId, other.instanceId)
    const sibling = await registry.registerServer({ ...first, instance: 'user-erin', port: 7000, incarnation: 'erin-process-one-00001' })
    t.not(sibling.instanceId, other.instanceId)
    t.equal(await registry.discoverInstance(other.instanceId), null, "a sibling now serving at dave's address retires dave's instance: his links stop rather than reach erin's process")
    t.equal((await registry.discoverInstance(sibling.instanceId))?.port, 7000)
  })

  t.test("a session is bound to the instance it was issued for, and never handed to the name's next holder", async (t) => {
    const { registry, clock } = await setup(t)
    const first = 'f'.repeat(40)
    const next = 'n'.repeat(40)
    const registration = await registry.registerServer({ serverName: 'b', host: '127.0.0.1', port: 3000, secret: first })
    const issued = await registry.createSession({ userId: 'alice', serverName: 'b', serverSecret: first })
    t.equal(issued.session.ownerHash, registration.ownerHash)
    t.equal(issued.session.instanceId, registration.instanceId)
    t.same(pick(await registry.getSession(issued.session.sessionId)), { ownerHash: registration.ownerHash, instanceId: registration.instanceId }, 'the store keeps the binding')
    t.equal((await registry.createSession({ userId: 'bob', serverName: 'b' })).session.ownerHash, null, 'an in-process session is bound to nobody')
    clock.advance(90_000)
    t.equal(await registry.discoverInstance(registration.instanceId), null, 'the instance lapsed')
    const taken = await registry.registerServer({ serverName: 'b', host: '127.0.0.1', port: 4000, secret: next })
    t.not(taken.instanceId, registration.instanceId, 'whoever registers the name next is another instance')
    const reissued = await registry.createSession({ userId: 'alice', serverName: 'b', serverSecret: next })
    t.equal(reissued.created, true, 'the live session of the earlier holder is not returned')
    t.not(reissued.token, issued.token)
    t.equal(await registry.discoverInstance(issued.session.instanceId), null, 'and the earlier session routes nowhere')
  })

  t.test('concurrent registrations of one identity by many processes: one holds it, each other is an instance of its own', async (t) => {
    const { registry } = await setup(t, { probeInstance: async () => 'alive' })
    const secret = 'r'.repeat(40)
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      registry.registerServer({ serverName: 'race', host: '127.0.0.1', port: 4000 + i, secret, incarnation: `process-${i}-incarnation` })))
    const live = await registry.instances('race')
    t.equal(live.length, 10, 'ten processes, ten instances')
    t.equal(new Set(live.map((i) => i.instanceId)).size, 10)
    t.same(live.map((i) => i.port).sort((a, b) => a - b), results.map((r) => r.port).sort((a, b) => a - b), 'each process got its own')
    const beats = await Promise.all(Array.from({ length: 5 }, () =>
      registry.registerServer({ serverName: 'race', host: '127.0.0.1', port: 4000, secret, incarnation: 'process-0-incarnation' })))
    t.equal(new Set(beats.map((b) => b.instanceId)).size, 1, "one process's concurrent heartbeats stay one instance")
    t.equal((await registry.instances('race')).length, 10)
  })

  t.test('stats are counted by the store, and name users only when asked', async (t) => {
    const { registry, clock } = await setup(t)
    await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    await registry.createSession({ userId: 'alice', serverName: 'movies' })
    await registry.createSession({ userId: 'bob', serverName: 'todoodles' })
    const gone = await registry.createSession({ userId: 'carol', serverName: 'todoodles' })
    await registry.revoke({ sessionId: gone.session.sessionId })
    await registry.createSession({ userId: 'dave', serverName: 'movies', ttlSeconds: 5 })
    await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 3000 })
    await registry.registerServer({ serverName: 'movies', host: '127.0.0.1', port: 3001 })
    clock.advance(5000)

    const plain = await registry.stats()
    t.equal(plain.sessions.live, 3)
    t.same({ ...plain.sessions.byServer }, { todoodles: 2, movies: 1 })
    t.equal(Object.values(plain.sessions.byInstance).reduce((a, b) => a + b, 0), 3, 'and by instance')
    t.equal(plain.sessions.byUser, undefined)
    t.equal(plain.servers.live, 2)
    const detailed = await registry.stats({ byUser: true })
    t.same({ ...detailed.sessions.byUser }, { alice: 2, bob: 1 })
  })

  t.test('cleanup deletes expired sessions and stale registrations', async (t) => {
    const { registry, clock } = await setup(t)
    await registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 10 })
    await registry.createSession({ userId: 'bob', serverName: 'todoodles', ttlSeconds: 100 })
    await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 3000 })
    clock.advance(10_000)
    t.same(await registry.cleanup(), { sessions: 1, servers: 0 })
    clock.advance(80_000)
    t.same(await registry.cleanup(), { sessions: 0, servers: 1 })
    t.equal((await registry.listSessions()).length, 1)
  })

  t.test('listSessions is newest first, filtered and limited', async (t) => {
    const { registry, clock } = await setup(t)
    for (const user of ['u1', 'u2', 'u3']) {
      await registry.createSession({ userId: user, serverName: 'todoodles' })
      clock.advance(1000)
    }
    await registry.createSession({ userId: 'u1', serverName: 'movies' })
    t.same((await registry.listSessions()).map((s) => s.sessionKey),
      ['u1:movies:mcp-webui', 'u3:todoodles:mcp-webui', 'u2:todoodles:mcp-webui', 'u1:todoodles:mcp-webui'])
    t.same((await registry.listSessions({ serverName: 'todoodles', limit: 2 })).map((s) => s.userId), ['u3', 'u2'])
    t.same((await registry.listSessions({ userId: 'u1' })).map((s) => s.serverName), ['movies', 'todoodles'])
  })

  t.test('operator-shaped input is refused before it reaches the store', async (t) => {
    const { registry } = await setup(t)
    await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
    const operator = { $ne: null } as unknown as string
    const code = 'MCPGW_REGISTRY_INVALID_ARGUMENT'
    await t.rejects(registry.createSession({ userId: operator, serverName: 'todoodles' }), { code })
    await t.rejects(registry.createSession({ userId: 'alice', serverName: operator }), { code })
    await t.rejects(registry.revoke({ userId: operator }), { code })
    await t.rejects(registry.revoke({ sessionId: operator }), { code })
    await t.rejects(registry.revoke({ sessionKey: operator }), { code })
    await t.rejects(registry.listSessions({ userId: operator }), { code })
    await t.rejects(registry.getSession(operator), { code })
    await t.rejects(registry.discover(operator), { code })
    await t.rejects(registry.registerServer({ serverName: 'x', host: operator, port: 80 }), { code })
    await t.rejects(registry.createSession({ userId: 'alice', serverName: 'todoodles', metadata: { $where: 'sleep(1000)' } }), { code })
    t.equal((await registry.listSessions({ userId: 'alice' })).length, 1, 'nothing was changed')
  })
}

function pick (session: SessionRecord | null): Record<string, unknown> {
  return { ownerHash: session?.ownerHash, instanceId: session?.instanceId }
}

import t from 'tap'
import { MemoryStore } from '../src/memory-store.js'
import { MAX_SHARES_PER_SESSION, Registry } from '../src/registry.js'
import { craftToken, fakeClock, makeRegistry, OTHER_SECRET, SECRET } from './helpers.js'
import type { AuditEvent } from '../src/audit.js'

t.test('every refusal reason a token can have, through the registry', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  const registry = makeRegistry(store, clock)
  const { token, session } = await registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 60 })

  t.same(await registry.validate('not-a-jwt'), { valid: false, reason: 'malformed' })
  const [h, p] = token.split('.')
  t.same(await registry.validate(`${h}.${p}.AAAA`), { valid: false, reason: 'bad_signature' })
  t.same(await registry.validate(craftToken({ alg: 'none', typ: 'JWT' }, JSON.parse(Buffer.from(p!, 'base64url').toString()))), { valid: false, reason: 'bad_signature' })

  const stranger = new Registry({ secret: OTHER_SECRET, now: clock.now })
  t.teardown(() => stranger.close())
  const foreign = await stranger.createSession({ userId: 'alice', serverName: 'todoodles' })
  t.same(await registry.validate(foreign.token), { valid: false, reason: 'bad_signature' }, 'signed by another gateway')

  // Well signed, but its jti was never issued here.
  const forged = registry.tokens.sign({ sub: 'alice', serverName: 'todoodles', serverType: 'mcp-webui', sid: session.sessionId, jti: 'never-issued-jti', scopes: ['view'], iat: 1, exp: Math.floor(clock.now() / 1000) + 60 })
  t.same(await registry.validate(forged), { valid: false, reason: 'unknown' })
  // Well signed, real jti, but claims another user: the record disagrees.
  const swapped = registry.tokens.sign({ sub: 'mallory', serverName: 'todoodles', serverType: 'mcp-webui', sid: session.sessionId, jti: session.jti, scopes: ['view'], iat: 1, exp: Math.floor(clock.now() / 1000) + 60 })
  t.same(await registry.validate(swapped), { valid: false, reason: 'unknown' })

  await registry.revoke({ sessionId: session.sessionId })
  t.same(await registry.validate(token), { valid: false, reason: 'revoked' })
  clock.advance(60_000)
  t.same(await registry.validate(token), { valid: false, reason: 'expired' })
})

t.test('recheck re-reads a validated session: live, revoked, deleted, expired', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  const registry = makeRegistry(store, clock)
  const { session } = await registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 60 })
  const before = registry.storeOperations.findSessionByJti
  t.match(await registry.recheck(session), { valid: true, session: { sessionId: session.sessionId } })
  t.equal(registry.storeOperations.findSessionByJti, before + 1, 'one store round trip')
  await registry.revoke({ sessionId: session.sessionId })
  t.same(await registry.recheck(session), { valid: false, reason: 'revoked' })

  const other = (await registry.createSession({ userId: 'bob', serverName: 'todoodles', ttlSeconds: 60 })).session
  t.same(await registry.recheck({ ...other, jti: 'a-jti-the-store-never-had' }), { valid: false, reason: 'unknown' }, 'gone from the store')
  t.same(await registry.recheck({ ...other, sessionId: 'another-session' }), { valid: false, reason: 'unknown' }, 'the jti now names another session')
  clock.advance(60_000)
  t.same(await registry.recheck(other), { valid: false, reason: 'expired' })
})

t.test('sessions survive a key rotation: old kid verifies, new sessions use the new kid', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  const before = makeRegistry(store, clock, { secret: undefined, keys: [{ kid: 'k1', secret: SECRET }] })
  const old = await before.createSession({ userId: 'alice', serverName: 'todoodles' })

  const rotated = makeRegistry(store, clock, { secret: undefined, keys: [{ kid: 'k2', secret: OTHER_SECRET }, { kid: 'k1', secret: SECRET }] })
  t.equal((await rotated.validate(old.token)).valid, true, 'a token signed with k1 still validates')
  const fresh = await rotated.createSession({ userId: 'bob', serverName: 'todoodles' })
  t.match(JSON.parse(Buffer.from(fresh.token.split('.')[0]!, 'base64url').toString()), { kid: 'k2' })
  // Asking again for alice's live session re-issues her token under the current key.
  const reissued = await rotated.createSession({ userId: 'alice', serverName: 'todoodles' })
  t.equal(reissued.created, false)
  t.equal(reissued.session.sessionId, old.session.sessionId)
  t.equal((await rotated.validate(reissued.token)).valid, true)

  const retired = makeRegistry(store, clock, { secret: undefined, keys: [{ kid: 'k2', secret: OTHER_SECRET }] })
  t.same(await retired.validate(old.token), { valid: false, reason: 'bad_signature' }, 'k1 retired')
  t.equal((await retired.validate(reissued.token)).valid, true)
})

t.test('a secret rotation through previousSecrets: old links verify, the probe accepts an old proof key', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  const before = makeRegistry(store, clock, { secret: SECRET })
  const old = await before.createSession({ userId: 'alice', serverName: 'todoodles' })
  const owner = 'o'.repeat(40)
  const held = await before.registerServer({ serverName: 'b', host: '127.0.0.1', port: 3000, secret: owner, instance: 'carol', incarnation: 'carol-process-one-0001' })

  const probes: Array<{ key: string, others: readonly string[] | undefined }> = []
  const rotated = makeRegistry(store, clock, {
    secret: OTHER_SECRET,
    previousSecrets: [SECRET],
    probeInstance: async (_holder, key, others) => { probes.push({ key, others }); return 'alive' }
  })
  t.equal((await rotated.validate(old.token)).valid, true, 'a link of the previous secret (kid `default`) validates')
  const fresh = await rotated.createSession({ userId: 'bob', serverName: 'todoodles' })
  t.equal((await before.validate(fresh.token)).valid, false, 'new links are signed with the new secret')
  await rotated.registerServer({ serverName: 'b', host: '127.0.0.1', port: 4000, secret: owner, instance: 'carol', incarnation: 'carol-process-two-0002' })
  t.same(probes, [{ key: rotated.tokens.proofKey(held.ownerHash!), others: [before.tokens.proofKey(held.ownerHash!)] }], "the holder may answer under the previous secret's proof key")
  t.not(rotated.tokens.proofKey(held.ownerHash!), before.tokens.proofKey(held.ownerHash!), 'registrants get the new proof key')
  t.same(before.tokens.otherProofKeys(held.ownerHash!), [], 'one secret: no other proof key')
})

t.test('the registry closes the store it made, and only that', async (t) => {
  const own = new Registry({ secret: SECRET })
  await own.init()
  await own.close()

  const store = new MemoryStore()
  let closed = 0
  const original = store.close.bind(store)
  store.close = async () => { closed++; await original() }
  const borrowing = new Registry({ secret: SECRET, store })
  await borrowing.close()
  t.equal(closed, 0, 'a given store is left open')
  const owning = new Registry({ secret: SECRET, store, ownsStore: true })
  await owning.close()
  t.equal(closed, 1)
})

t.test('no secret, short secret: the registry refuses to start', async (t) => {
  t.throws(() => new Registry({}), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
  t.throws(() => new Registry({ secret: 'too-short' }), { code: 'MCPGW_REGISTRY_WEAK_SECRET' })
})

t.test('asking for fewer scopes or a shorter life than the live session has gets a new session, never the broader one', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  await store.init()
  const registry = makeRegistry(store, clock)
  const broad = await registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 3600 })
  t.same(broad.session.scopes, ['view', 'interact'])
  const same = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
  t.equal(same.token, broad.token, 'nothing asked for: the live session, as before')
  const viewOnly = await registry.createSession({ userId: 'alice', serverName: 'todoodles', scopes: ['view'] })
  t.equal(viewOnly.created, true)
  t.same(viewOnly.session.scopes, ['view'], 'a view-only link is view-only')
  t.equal((await registry.validate(broad.token)).valid, false, 'the broader session it replaced is revoked')
  t.equal((await registry.createSession({ userId: 'alice', serverName: 'todoodles', scopes: ['view'] })).token, viewOnly.token, 'asked the same again: the same session')
  const short = await registry.createSession({ userId: 'alice', serverName: 'todoodles', scopes: ['view'], ttlSeconds: 60 })
  t.equal(short.created, true)
  t.ok(short.session.expiresAt <= clock.now() + 60_000 + 1000, 'a 60-s link lives 60 s')
  t.equal((await registry.createSession({ userId: 'alice', serverName: 'todoodles', scopes: ['view'], ttlSeconds: 3600 })).token, short.token, 'a longer life asked of a live session: the live one (it grants less)')
})

t.test('share levels: capped by the operator, only where someone can log in, never widened on reuse', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  await store.init()
  // No login in front: a link bound to a person would open for no one.
  const plain = makeRegistry(store, clock)
  await t.rejects(plain.createSession({ userId: 'alice', serverName: 'todoodles', shareLevel: 'owner' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /owner needs a login at the gateway/ })
  await t.rejects(plain.createSession({ userId: 'alice', serverName: 'todoodles', shareLevel: 'everyone' as 'link' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /expected one of owner, authenticated, link/ })
  t.throws(() => makeRegistry(store, clock, { maxShareLevel: 'owner' }), { code: 'MCPGW_REGISTRY_INVALID_OPTION', message: /owner needs logins/ })

  // A cap of owner: sessions made without a level are bound to their user; wider ones are refused.
  const capped = makeRegistry(store, clock, { logins: true, maxShareLevel: 'owner' })
  const dflt = await capped.createSession({ userId: 'alice', serverName: 'todoodles' })
  t.equal(dflt.session.shareLevel, 'owner', 'the cap is the default')
  await t.rejects(capped.createSession({ userId: 'alice', serverName: 'todoodles', shareLevel: 'link' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /link is wider than this gateway allows \(at most owner\)/ })
  await t.rejects(capped.createSession({ userId: 'alice', serverName: 'todoodles', shareLevel: 'authenticated' }), { message: /wider than this gateway allows/ })

  // Under a wider cap, the live session is handed back only at the level asked.
  const open = makeRegistry(store, clock, { logins: true })
  const link = await open.createSession({ userId: 'carol', serverName: 'todoodles', shareLevel: 'link' })
  const bound = await open.createSession({ userId: 'carol', serverName: 'todoodles', shareLevel: 'owner' })
  t.equal(bound.created, true, 'asked for owner: a new session, never the bearer link')
  t.equal((await open.validate(link.token)).valid, false, 'the bearer link it replaced is revoked')
  const again = await open.createSession({ userId: 'carol', serverName: 'todoodles' })
  t.equal(again.created, true, 'asked for the default (link) while an owner session lives: a new one at the level asked')
  t.equal(again.session.shareLevel, undefined)
  // The cap lowered since (a restart with MCP_WEB_UI_MAX_SHARE_LEVEL=owner): the live bearer link is not handed back.
  const lowered = makeRegistry(store, clock, { logins: true, maxShareLevel: 'owner' })
  const afterCap = await lowered.createSession({ userId: 'carol', serverName: 'todoodles' })
  t.equal(afterCap.created, true)
  t.equal(afterCap.session.shareLevel, 'owner')
})

t.test('shares: never wider than the cap or the session, never of a share, bounded in number and life', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  await store.init()
  const plain = makeRegistry(store, clock)
  const bare = await plain.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 600 })
  await t.rejects(plain.shareSession({ sessionId: bare.session.sessionId, person: 'bob' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /owner needs a login/ }, 'with a person, without a login: refused')
  const link = await plain.shareSession({ sessionId: bare.session.sessionId, shareLevel: 'link' })
  t.equal(link.session.shareLevel, undefined, 'without a login, a bearer share (the cap allows it)')
  t.same(link.session.scopes, ['view'], 'view-only unless asked')
  t.equal(link.session.expiresAt, bare.session.expiresAt, 'as long as the session, no longer')

  const reg = makeRegistry(store, clock, { logins: true, maxShareLevel: 'authenticated' })
  const own = await reg.createSession({ userId: 'carol', serverName: 'todoodles', scopes: ['view'], shareLevel: 'owner', ttlSeconds: 600 })
  const id = own.session.sessionId
  await t.rejects(reg.shareSession({ sessionId: id, shareLevel: 'link' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /link is wider than this gateway allows/ }, 'the cap holds for shares')
  await t.rejects(reg.shareSession({ sessionId: id, person: 'dan', scopes: ['view', 'interact'] }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /has no interact to share/ }, 'never more than the session has')
  await t.rejects(reg.shareSession({ sessionId: id }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /name a person/ })
  await t.rejects(reg.shareSession({ sessionId: id, shareLevel: 'owner' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /give person/ })
  await t.rejects(reg.shareSession({ sessionId: id, person: 'dan', shareLevel: 'authenticated' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /that person only/ })
  await t.rejects(reg.shareSession({ sessionId: 'AAAAAAAAAAAAAAAAAAAAAA', person: 'dan' }), { code: 'MCPGW_API_NOT_FOUND', statusCode: 404 })
  const toDan = await reg.shareSession({ sessionId: id, person: 'dan', ttlSeconds: 60 })
  t.equal(toDan.session.expiresAt, clock.now() + 60_000, 'a shorter life when asked')
  const long = await reg.shareSession({ sessionId: id, person: 'erin', ttlSeconds: 7200 })
  t.equal(long.session.expiresAt, own.session.expiresAt, 'a longer life asked: the session\'s, no more')
  await t.rejects(reg.shareSession({ sessionId: toDan.session.sessionId, person: 'fay' }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /cannot be shared again/ })
  for (let i = (await reg.listShares(id)).length; i < MAX_SHARES_PER_SESSION; i++) await reg.shareSession({ sessionId: id, person: `p${i}` })
  await t.rejects(reg.shareSession({ sessionId: id, person: 'one-too-many' }), { code: 'MCPGW_REGISTRY_TOO_MANY_SHARES', statusCode: 409 })
  await reg.revoke({ sessionId: toDan.session.sessionId })
  t.ok(await reg.shareSession({ sessionId: id, person: 'dan' }), 'one revoked: room for another')
  clock.advance(600_000)
  t.same(await reg.validate(long.token), { valid: false, reason: 'expired' }, 'the session expired: so did its shares')
  await t.rejects(reg.shareSession({ sessionId: id, person: 'dan' }), { code: 'MCPGW_API_NOT_FOUND' }, 'an ended session is not shared')
})

t.test('a share is shared by the registrant that holds its session\'s instance, and audited', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  await store.init()
  const events: AuditEvent[] = []
  const reg = makeRegistry(store, clock, { logins: true, audit: { write: (e) => { events.push(e) } } })
  await reg.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 4100, secret: 'a'.repeat(40) })
  const own = await reg.createSession({ userId: 'alice', serverName: 'todoodles', serverSecret: 'a'.repeat(40) })
  await t.rejects(reg.shareSession({ sessionId: own.session.sessionId, person: 'bob', serverSecret: 'b'.repeat(40) }), { code: 'MCPGW_API_NOT_FOUND' }, 'another registrant: as if there were no such session')
  await t.rejects(reg.shareSession({ sessionId: own.session.sessionId, person: 'bob', serverSecret: 'a'.repeat(40), admit: () => { throw new Error('over quota') } }), { message: 'over quota' }, 'its quotas are asked, as for a session')
  const share = await reg.shareSession({ sessionId: own.session.sessionId, person: 'bob', serverSecret: 'a'.repeat(40) })
  const shared = events.find((e) => e.event === 'session.shared')
  t.match(shared, { sessionId: share.session.sessionId, sharedFrom: own.session.sessionId, person: 'bob', userId: 'alice', shareLevel: 'owner', scopes: ['view'] })
  t.notOk(JSON.stringify(events).includes(share.token), 'no token in the trail')
  await reg.revoke({ sessionId: own.session.sessionId }, { reason: 'done' })
  t.same(events.filter((e) => e.event === 'session.revoked').map((e) => [e.sessionId, e.by]), [[own.session.sessionId, 'sessionId'], [share.session.sessionId, 'sharedFrom']], 'its share revoked with it, and said so')
  t.same(await reg.listShares(own.session.sessionId), [], 'and no longer listed')
})

t.test('an authenticated session or share limited to groups and email domains: checked, kept, never widened on reuse', async (t) => {
  const clock = fakeClock()
  const store = new MemoryStore({ now: clock.now })
  t.teardown(() => store.close())
  await store.init()
  const reg = makeRegistry(store, clock, { logins: true })
  const team = await reg.createSession({ userId: 'alice', serverName: 'todoodles', shareLevel: 'authenticated', groups: ['ops'], emailDomains: ['example.com'] })
  t.same(team.session.audience, { groups: ['ops'], emailDomains: ['example.com'] })
  t.equal((await reg.createSession({ userId: 'alice', serverName: 'todoodles', shareLevel: 'authenticated', groups: ['ops'], emailDomains: ['example.com'] })).created, false, 'the same audience: the live session')
  const wider = await reg.createSession({ userId: 'alice', serverName: 'todoodles', shareLevel: 'authenticated' })
  t.equal(wider.created, true, 'anyone logged in asked while a narrower one lives: a new session, never the narrower one widened')
  t.equal((await reg.validate(team.token)).valid, false, 'and the narrower one is replaced')
  await t.rejects(reg.createSession({ userId: 'bob', serverName: 'todoodles', shareLevel: 'owner', groups: ['ops'] }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /narrow shareLevel authenticated only/ })
  await t.rejects(reg.createSession({ userId: 'bob', serverName: 'todoodles', shareLevel: 'authenticated', groups: [] }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /at least one group or email domain/ })
  await t.rejects(reg.createSession({ userId: 'bob', serverName: 'todoodles', shareLevel: 'authenticated', groups: ['a,b'] }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /no control characters or commas/ })
  await t.rejects(reg.createSession({ userId: 'bob', serverName: 'todoodles', shareLevel: 'authenticated', emailDomains: ['Example.COM'] }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /lower-case domains/ })
  await t.rejects(reg.createSession({ userId: 'bob', serverName: 'todoodles', shareLevel: 'authenticated', groups: Array.from({ length: 33 }, (_, i) => `g${i}`) }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /up to 32/ })
  const own = await reg.createSession({ userId: 'carol', serverName: 'todoodles' })
  const share = await reg.shareSession({ sessionId: own.session.sessionId, groups: ['ops'] })
  t.same([share.session.shareLevel, share.session.audience], ['authenticated', { groups: ['ops'], emailDomains: [] }], 'groups alone: a share for anyone logged in among them')
  await t.rejects(reg.shareSession({ sessionId: own.session.sessionId, person: 'dan', groups: ['ops'] }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /not both/ })
  await t.rejects(reg.shareSession({ sessionId: own.session.sessionId, shareLevel: 'link', groups: ['ops'] }), { code: 'MCPGW_REGISTRY_INVALID_ARGUMENT', message: /authenticated only/ })
})

import t from 'tap'
import type { Test } from 'tap'
import { DirectLinks, MAX_DIRECT_TOKENS, MAX_DIRECT_TTL_SECONDS, directOrigin } from '../src/direct-links.js'

/** Moves Date.now forward by `ms` for the rest of the test: expiry without waiting. */
function advanceClock (t: Test, ms: number): void {
  const original = Date.now
  const at = original() + ms
  Date.now = () => at
  t.teardown(() => { Date.now = original })
}

t.test('a direct link lives its ttl, is found by its token only, and is revoked by user', async (t) => {
  const links = new DirectLinks()
  const alice = links.issue('alice', 60)
  links.issue('alice', 60)
  const bob = links.issue('bob', 60)
  t.equal(alice.token.length, 32)
  t.match(links.find(alice.token), { userId: 'alice', expiresAt: alice.expiresAt })
  t.equal(links.find('x'.repeat(32)), null)
  t.equal(links.find(alice.token.slice(1)), null)
  t.equal(links.revokeUser('alice'), 2)
  t.equal(links.find(alice.token), null)
  t.equal(links.size, 1)
  advanceClock(t, 61_000)
  t.equal(links.find(bob.token), null, 'expired')
  t.equal(links.size, 0, 'and dropped')
})

t.test('a ttl from 1 s to 30 days, in whole seconds', async (t) => {
  const links = new DirectLinks()
  for (const ttl of [0, 1.5, -1, MAX_DIRECT_TTL_SECONDS + 1, Infinity, Number.NaN]) {
    t.throws(() => links.issue('alice', ttl), { code: 'MCPGW_SDK_INVALID_OPTION' }, String(ttl))
  }
  t.ok(links.issue('alice', MAX_DIRECT_TTL_SECONDS))
})

t.test('the store is capped: expired links go first, then the oldest live ones', async (t) => {
  const links = new DirectLinks()
  const early = [links.issue('early', 1), links.issue('early', 1)]
  const oldest = links.issue('oldest', 3600)
  while (links.size < MAX_DIRECT_TOKENS) links.issue('filler', 3600)
  advanceClock(t, 2000)
  links.issue('new', 3600)
  t.equal(links.size, MAX_DIRECT_TOKENS - 1, 'the two expired ones made room')
  t.equal(links.find(early[0]!.token), null)
  t.not(links.find(oldest.token), null, 'no live link went while expired ones could')
  links.issue('new', 3600)
  links.issue('new', 3600)
  t.equal(links.size, MAX_DIRECT_TOKENS)
  t.equal(links.find(oldest.token), null, 'full of live links: the oldest went')
})

t.test('a direct link points at the UI server itself', async (t) => {
  t.equal(directOrigin({ host: '127.0.0.1', port: 12000 }), 'http://127.0.0.1:12000')
  t.equal(directOrigin({ host: '::1', port: 443, protocol: 'https' }), 'https://[::1]:443')
})

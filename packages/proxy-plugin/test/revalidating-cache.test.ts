import t from 'tap'
import { RevalidatingCache } from '../src/revalidating-cache.js'

function setup (load: (key: string, previous?: { v: string, expiresAt: number }) => Promise<{ v: string, expiresAt: number }>) {
  let now = 1_000_000
  const cache = new RevalidatingCache<string, { v: string, expiresAt: number }>({
    load,
    expiresAt: (value) => value.expiresAt,
    revalidateMs: 2000,
    maxEntries: 3,
    outageGraceMs: 60_000,
    now: () => now,
    unavailable: (cause) => Object.assign(new Error('down'), { code: 'OUTAGE', cause })
  })
  return { cache, advance: (ms: number) => { now += ms }, now: () => now }
}

const down = (): Promise<never> => Promise.reject(Object.assign(new Error('store down'), { code: 'MCPGW_REGISTRY_STORE_UNAVAILABLE' }))

t.test('concurrent first requests for one key share one load', async (t) => {
  let loads = 0
  const { cache } = setup(async (key) => { loads++; return { v: key, expiresAt: Infinity } })
  const values = await Promise.all(Array.from({ length: 20 }, () => cache.get('a')))
  t.equal(loads, 1)
  t.ok(values.every((v) => v.v === 'a'))
})

t.test('during a store outage, checked values are served for the grace period, unseen ones are refused', async (t) => {
  let healthy = true
  const { cache, advance } = setup(async (key) => healthy ? { v: key, expiresAt: Infinity } : await down())
  await cache.get('seen')
  healthy = false
  advance(30_000)
  t.same(await cache.get('seen'), { v: 'seen', expiresAt: Infinity }, 'served within the grace period')
  await t.rejects(cache.get('unseen'), { code: 'OUTAGE' }, 'never a refusal: the caller maps this to 503')
  advance(30_000)
  await t.rejects(cache.get('seen'), { code: 'OUTAGE' }, 'after the grace period, refused too')
  healthy = true
  t.same(await cache.get('seen'), { v: 'seen', expiresAt: Infinity }, 'recovers by itself')
})

t.test('a refusal forgets the key at once; expiry is honoured without a load', async (t) => {
  let refuse = false
  const { cache, advance, now } = setup(async (key) => {
    if (refuse) throw Object.assign(new Error('revoked'), { code: 'REVOKED' })
    return { v: key, expiresAt: now() + 500 }
  })
  await cache.get('a')
  advance(499)
  t.ok(cache.peek('a'))
  advance(1)
  t.equal(cache.peek('a'), undefined, 'past expiresAt it is not served, even inside the revalidation window')
  refuse = true
  await t.rejects(cache.get('a'), { code: 'REVOKED' })
  t.equal(cache.size, 0)
})

t.test('the cache holds at most maxEntries', async (t) => {
  const { cache } = setup(async (key) => ({ v: key, expiresAt: Infinity }))
  for (const key of ['a', 'b', 'c', 'd', 'e']) await cache.get(key)
  t.equal(cache.size, 3)
  t.equal(cache.peek('a'), undefined, 'the oldest went first')
  t.ok(cache.peek('e'))
})

t.test('a hot key is reloaded in the background in the last quarter of the bound, given its previous value', async (t) => {
  const calls: Array<string | undefined> = []
  let version = 0
  const { cache, advance } = setup(async (key, previous?: { v: string }) => {
    calls.push(previous?.v)
    return { v: `${key}${++version}`, expiresAt: Infinity }
  })
  t.equal((await cache.get('a')).v, 'a1')
  advance(1499)
  t.equal(cache.peek('a')?.v, 'a1', 'fresh: no load')
  t.same(calls, [undefined], 'the first load had nothing before it')
  advance(1)
  t.equal(cache.peek('a')?.v, 'a1', 'served at once while the reload runs')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(calls, [undefined, 'a1'], 'the reload was handed the value it replaces')
  t.equal(cache.peek('a')?.v, 'a2')
})

t.test('a delete during a load: the late answer is not kept, and its waiters get a fresh load', async (t) => {
  let version = 0
  const releases: Array<() => void> = []
  const { cache } = setup(async (key) => {
    const v = `${key}${++version}`
    await new Promise<void>((resolve) => releases.push(resolve))
    return { v, expiresAt: Infinity }
  })
  const waiting = cache.get('a')
  await new Promise((resolve) => setImmediate(resolve))
  cache.delete('a')
  releases.shift()!()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(cache.size, 0, 'the answer that predates the delete is not kept')
  releases.shift()!()
  t.equal((await waiting).v, 'a2', 'the waiter got the load that started after the delete')
  t.equal(cache.peek('a')?.v, 'a2')
})

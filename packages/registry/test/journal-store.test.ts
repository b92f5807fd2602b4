import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { eventually, within } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { JournalStore } from '../src/journal-store.js'
import type { JournalStoreOptions } from '../src/journal-store.js'
import type { Registry } from '../src/registry.js'
import type { RegistryStore } from '../src/types.js'
import { fakeClock, makeRegistry } from './helpers.js'
import type { FakeClock } from './helpers.js'
import { storeContract } from './store-contract.js'

const lines = (path: string): string[] => readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0)

/** A journal in a fresh directory of its own, a registry on it, and todoodles registered. */
async function journalWithServer (t: Test, options: Partial<JournalStoreOptions> = {}): Promise<{ clock: FakeClock, path: string, store: JournalStore, registry: Registry }> {
  const clock = fakeClock()
  const path = join(t.testdir(), 'state', 'store.journal')
  const store = new JournalStore({ path, now: clock.now, ...options })
  await store.init()
  const registry = makeRegistry(store, clock)
  await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 4100 })
  return { clock, path, store, registry }
}

t.test('JournalStore passes the store contract', async (t) => {
  storeContract(t, async (t) => {
    const store = new JournalStore({ path: join(t.testdir(), 'state', 'store.journal'), now: fakeClock().now })
    t.teardown(() => store.close())
    return store
  })
})

/**
 * The contract again, with the store closed and opened from its file after every call: each
 * answer the contract checks comes from what the file kept, never from the process's memory.
 */
t.test('everything the contract checks survives a reopen after every call', async (t) => {
  storeContract(t, async (t, clock) => {
    const path = join(t.testdir(), 'state', 'store.journal')
    const store = reopening(path, clock)
    t.teardown(() => store.close())
    return store
  })
})

function reopening (path: string, clock: FakeClock): RegistryStore {
  let current = new JournalStore({ path, now: clock.now })
  // One call at a time (concurrent callers queue): each call, then a close and an open from the file.
  let queue: Promise<unknown> = Promise.resolve()
  return new Proxy({} as RegistryStore, {
    get (_target, name) {
      if (name === 'kind') return current.kind
      if (typeof (current as unknown as Record<string | symbol, unknown>)[name] !== 'function') return (current as unknown as Record<string | symbol, unknown>)[name]
      return async (...args: unknown[]) => {
        const call = queue.then(async () => {
          const result = await ((current as unknown as Record<string | symbol, (...a: unknown[]) => Promise<unknown>>)[name]!).apply(current, args)
          if (name !== 'close' && name !== 'init') {
            await current.close()
            current = new JournalStore({ path, now: clock.now })
            await current.init()
          }
          return result
        })
        queue = call.catch(() => {})
        return await call
      }
    }
  })
}

t.test('a restart keeps sessions, revocations, rotations, deregistrations and keys', async (t) => {
  const clock = fakeClock()
  const path = join(t.testdir(), 'state', 'store.journal')
  const first = new JournalStore({ path, now: clock.now })
  await first.init()
  const registry = makeRegistry(first, clock)
  const { instanceId } = await registry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: 4100 })
  const gone = await registry.registerServer({ serverName: 'scheduler', host: '127.0.0.1', port: 4101 })
  const alice = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
  const bob = await registry.createSession({ userId: 'bob', serverName: 'todoodles' })
  const carolOld = await registry.createSession({ userId: 'carol', serverName: 'todoodles' })
  const carol = await registry.createSession({ userId: 'carol', serverName: 'todoodles', rotate: true })
  await registry.revoke({ userId: 'bob' })
  t.ok(await registry.deregisterServer('scheduler', undefined, { instanceId: gone.instanceId }))
  const { record: key } = await registry.createApiKey({ role: 'registrant', servers: ['todoodles'], label: 'ci' })
  await first.close()

  const second = new JournalStore({ path, now: clock.now })
  await second.init()
  t.teardown(() => second.close())
  const after = makeRegistry(second, clock)
  t.equal((await after.validate(alice.token)).valid, true, 'a link handed out before the restart still validates')
  t.same(await after.validate(bob.token), { valid: false, reason: 'revoked' }, 'a revocation holds')
  t.same(await after.validate(carolOld.token), { valid: false, reason: 'unknown' }, 'a rotated-away link stays dead')
  t.equal((await after.validate(carol.token)).valid, true)
  t.same((await second.listServers(clock.now())).map((r) => r.instanceId), [instanceId], 'the live instance is back; the deregistered one is not')
  t.same(await second.findApiKey(key.keyId), key, 'an API key made through the API is kept')
  t.ok(Object.isFrozen(await second.findSessionById(alice.session.sessionId, clock.now())), 'records read back are frozen like new ones')
})

t.test('expired records are not brought back, and the file is rewritten to the live ones', async (t) => {
  const { clock, path, store, registry } = await journalWithServer(t)
  const short = await registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 10 })
  const long = await registry.createSession({ userId: 'bob', serverName: 'todoodles', ttlSeconds: 3600 })
  await store.close()
  clock.advance(11_000)
  const again = new JournalStore({ path, now: clock.now })
  await again.init()
  t.teardown(() => again.close())
  t.equal(await again.findSessionById(short.session.sessionId, clock.now()), null)
  t.ok(await again.findSessionById(long.session.sessionId, clock.now()))
  t.equal(lines(path).filter((l) => l.includes(short.session.sessionId)).length, 0, 'the expired session is gone from the file')
})

t.test('a cut-short last line is dropped with a warning; the rest loads and appends continue cleanly', async (t) => {
  const { clock, path, store, registry } = await journalWithServer(t)
  const alice = await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
  await store.close()
  appendFileSync(path, '{"put":"session","record":{"sessionId":"half-writ')
  const warnings: string[] = []
  const logger = { warn: (_o: object, msg?: string) => { warnings.push(msg ?? '') }, info () {}, error () {}, debug () {} }
  const again = new JournalStore({ path, now: clock.now, logger: logger as never })
  await again.init()
  t.match(warnings.join('\n'), /dropped an incomplete last line/)
  const after = makeRegistry(again, clock)
  t.equal((await after.validate(alice.token)).valid, true)
  const bob = await after.createSession({ userId: 'bob', serverName: 'todoodles' })
  await again.close()
  const third = new JournalStore({ path, now: clock.now })
  await third.init()
  t.teardown(() => third.close())
  t.ok(await third.findSessionById(bob.session.sessionId, clock.now()), 'what was written after the cut is read back')
  t.notOk(readFileSync(path, 'utf8').includes('half-writ'))
})

t.test('a file that is not a journal is refused, never overwritten', async (t) => {
  const dir = join(t.testdir(), 'state')
  mkdirSync(dir, { mode: 0o700 })
  const path = join(dir, 'store.journal')
  for (const notes of ['no newline at all', 'my notes\n']) {
    writeFileSync(path, notes)
    await t.rejects(new JournalStore({ path }).init(), { code: 'MCPGW_REGISTRY_STORE_FILE', message: /not a journal this version reads/ })
    t.equal(readFileSync(path, 'utf8'), notes)
  }
  t.notOk(existsSync(`${path}.lock`), 'no lock is left behind')
})

t.test('a damaged line before the end is refused (skipping it could undo a revocation); the file is left as it was', async (t) => {
  const { clock, path, store, registry } = await journalWithServer(t)
  await registry.createSession({ userId: 'alice', serverName: 'todoodles' })
  await registry.revoke({ userId: 'alice' })
  await store.close()
  const damaged = readFileSync(path, 'utf8').split('\n')
  damaged[damaged.length - 2] = damaged[damaged.length - 2]!.replace('"put"', '"p\u0000t"')
  damaged.push('{"drop":"server","id":"x"}', '')
  writeFileSync(path, damaged.join('\n'))
  const before = readFileSync(path, 'utf8')
  await t.rejects(new JournalStore({ path, now: clock.now }).init(), { code: 'MCPGW_REGISTRY_STORE_FILE', message: /line \d+ is unreadable/ })
  t.equal(readFileSync(path, 'utf8'), before)
})

t.test('a directory others may write is refused: they could plant or swap the files', { skip: typeof process.getuid !== 'function' && 'no uids' }, async (t) => {
  const dir = join(t.testdir(), 'shared')
  mkdirSync(dir)
  chmodSync(dir, 0o777)
  await t.rejects(new JournalStore({ path: join(dir, 'store.journal') }).init(), { code: 'MCPGW_REGISTRY_STORE_FILE', message: /writable by no one else \(it is mode 777/ })
  t.notOk(existsSync(join(dir, 'store.journal.lock')))
})

/** A process's state letter from /proc ('Z' for a zombie), or 'gone' when /proc has no such pid. */
function procState (pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  } catch {
    return 'gone'
  }
}

t.test('one process per file: a live holder refuses the next, a dead one\'s lock is taken over', async (t) => {
  const path = join(t.testdir(), 'state', 'store.journal')
  const first = new JournalStore({ path })
  await first.init()
  await t.rejects(new JournalStore({ path }).init(), { code: 'MCPGW_REGISTRY_STORE_FILE', message: /this process has it open already/ })
  await first.close()
  // Another process holds it.
  const holder = spawn(process.execPath, ['--input-type=module', '-e', `
    const { JournalStore } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)})
    await new JournalStore({ path: ${JSON.stringify(path)} }).init()
    process.stdout.write('open\\n')
    setInterval(() => {}, 1000)
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { holder.kill('SIGKILL') })
  await within(10_000, 'the other process opening the store', new Promise((resolve) => holder.stdout.once('data', resolve)))
  await t.rejects(new JournalStore({ path }).init(), { code: 'MCPGW_REGISTRY_STORE_FILE', message: new RegExp(`process ${holder.pid!} holds it`) })
  holder.kill('SIGKILL')
  await within(5000, 'the holder dying', new Promise((resolve) => holder.once('exit', resolve)))
  // A gateway killed with SIGKILL leaves its lock: the pid of a process that is gone.
  const dead = spawn(process.execPath, ['-e', ''])
  await within(5000, 'a short-lived process exiting', new Promise((resolve) => dead.once('exit', resolve)))
  writeFileSync(`${path}.lock`, `${dead.pid!} ${hostname()}\n`)
  const next = new JournalStore({ path })
  await next.init()
  t.equal(readFileSync(`${path}.lock`, 'utf8').trim(), `${process.pid} ${hostname()}`)
  await next.close()
  t.notOk(existsSync(`${path}.lock`), 'closed: the lock goes')
  // Killed and not reaped yet (a zombie, as right after a SIGKILL): gone, its lock taken over.
  await t.test('a zombie\'s lock is taken over', async (t) => {
    if (process.platform !== 'linux') return t.plan(0, 'zombies are read from Linux\'s /proc')
    const parent = spawn('sh', ['-c', 'sleep 30 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] })
    t.teardown(() => { parent.kill('SIGKILL') })
    const [chunk] = await within(5000, 'the child\'s pid', once(parent.stdout, 'data')) as [Buffer]
    const zombie = Number(chunk.toString().trim())
    process.kill(zombie, 'SIGKILL')
    // Some sandboxes reap orphans at once or show another pid namespace in /proc: no zombie to test there.
    let state = ''
    await eventually(() => { state = procState(zombie); return state === 'Z' || state === 'gone' }, { within: 5000, what: 'the killed child turning zombie' })
    if (state === 'gone') return t.plan(0, `this machine's /proc shows no zombie for pid ${zombie}`)
    writeFileSync(`${path}.lock`, `${zombie} ${hostname()}\n`)
    const after = new JournalStore({ path })
    await after.init()
    t.equal(readFileSync(`${path}.lock`, 'utf8').trim(), `${process.pid} ${hostname()}`)
    await after.close()
  })
  // A holder on another host (a shared volume) cannot be checked: refused.
  writeFileSync(`${path}.lock`, '4242 another-host\n')
  await t.rejects(new JournalStore({ path }).init(), { code: 'MCPGW_REGISTRY_STORE_FILE', message: /process 4242 on another-host holds it/ })
})

t.test('the file and its directory are the owner\'s alone', { skip: process.platform === 'win32' && 'POSIX modes' }, async (t) => {
  const dir = join(t.testdir(), 'state', 'mcp-gw')
  const store = new JournalStore({ path: join(dir, 'store.journal') })
  await store.init()
  t.teardown(() => store.close())
  t.equal(statSync(dir).mode & 0o777, 0o700)
  t.equal(statSync(join(dir, 'store.journal')).mode & 0o777, 0o600)
})

t.test('reads write nothing; activity writes are the registry\'s throttled ones; stale lines are compacted', async (t) => {
  const { clock, path, store, registry } = await journalWithServer(t, { compactAfter: 50 })
  t.teardown(() => store.close())
  const alice = await registry.createSession({ userId: 'alice', serverName: 'todoodles', ttlSeconds: 7 * 86_400 })
  const before = statSync(path).size
  for (let i = 0; i < 100; i++) await registry.validate(alice.token)
  t.equal(statSync(path).size, before, '100 validations append nothing')
  for (let i = 0; i < 200; i++) {
    clock.advance(61_000)
    await store.touchSession(alice.session.sessionId, clock.now())
  }
  t.ok(lines(path).length > 200, 'each touch is a line')
  await store.sweep(clock.now())
  t.ok(lines(path).length < 10, `the sweep rewrote the file to its live records (${lines(path).length} lines)`)
  t.equal((await store.findSessionById(alice.session.sessionId, clock.now()))?.lastActivityAt, clock.now())
})

/**
 * kill -9 at a random instant while a process writes as fast as it can: every change it
 * acknowledged (after the store's promise resolved) is read back, and the file opens.
 */
t.test('SIGKILL mid-write loses nothing acknowledged and never leaves a file that does not open', async (t) => {
  const registryDist = new URL('../dist/index.js', import.meta.url).href
  for (let round = 0; round < 4; round++) {
    const path = join(t.testdir(), `crash-${round}`, 'store.journal')
    const writer = spawn(process.execPath, ['--input-type=module', '-e', `
      const { JournalStore } = await import(${JSON.stringify(registryDist)})
      const store = new JournalStore({ path: ${JSON.stringify(path)} })
      await store.init()
      const record = (i) => ({ sessionId: 's' + i, jti: 'j' + i, sessionKey: 'u' + i + ':todoodles:mcp-webui', userId: 'u' + i, serverName: 'todoodles', serverType: 'mcp-webui', instanceId: 'i1', scopes: ['view'], metadata: { pad: 'x'.repeat(i % 700) }, createdAt: Date.now(), lastActivityAt: Date.now(), expiresAt: Date.now() + 3600000, revokedAt: null })
      for (let i = 0; ; i++) {
        await store.createSession(record(i), { rotate: false, now: Date.now() })
        process.stdout.write(i + '\\n')
        // As a gateway does between requests: the event loop turns (and the ack goes out).
        await new Promise((resolve) => setImmediate(resolve))
      }
    `], { stdio: ['ignore', 'pipe', 'inherit'] })
    let acked = -1
    let out = ''
    writer.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      const done = out.lastIndexOf('\n')
      if (done > 0) acked = Number(out.slice(out.lastIndexOf('\n', done - 1) + 1, done))
    })
    const target = 200 + Math.floor(Math.random() * 2000)
    await eventually(() => acked >= target, { within: 15_000, everyMs: 1, what: `the writer acknowledging ${target} sessions` })
    writer.kill('SIGKILL')
    await within(5000, 'the writer dying', new Promise((resolve) => writer.once('exit', resolve)))
    const reader = new JournalStore({ path })
    await reader.init()
    const now = Date.now()
    let missing = 0
    for (let i = 0; i <= acked; i++) if (await reader.findSessionById(`s${i}`, now) === null) missing++
    await reader.close()
    t.equal(missing, 0, `round ${round}: all ${acked + 1} acknowledged sessions are back`)
  }
})

/**
 * A full disk, made with a file-size limit (RLIMIT_FSIZE, which Node meets as EFBIG after a
 * short write): the write that does not fit fails with 503 and leaves no part of its line,
 * so the next write is a whole line of its own and every acknowledged change reads back.
 */
t.test('a write cut short by a full disk fails whole: nothing of it stays for the next write to join', { skip: process.platform === 'win32' && 'ulimit' }, async (t) => {
  const path = join(t.testdir(), 'state', 'store.journal')
  const registryDist = new URL('../dist/index.js', import.meta.url).href
  const script = `
    const { readFileSync, statSync } = await import('node:fs')
    const { JournalStore } = await import(${JSON.stringify(registryDist)})
    const store = new JournalStore({ path: ${JSON.stringify(path)} })
    await store.init()
    const now = Date.now()
    const record = (i, pad) => ({ sessionId: 's' + i, jti: 'j' + i, sessionKey: 'u' + i + ':todoodles:mcp-webui', userId: 'u' + i, serverName: 'todoodles', serverType: 'mcp-webui', instanceId: 'i1', ownerHash: null, scopes: ['view'], metadata: { pad: 'x'.repeat(pad) }, createdAt: now, lastActivityAt: now, expiresAt: now + 3600000, revokedAt: null })
    let i = 0
    while (statSync(${JSON.stringify(path)}).size < 56000) await store.createSession(record(i++, 100), { rotate: false, now })
    let failed = null
    try { await store.createSession(record(i, 20000), { rotate: false, now }) } catch (err) { failed = err.code }
    const whole = readFileSync(${JSON.stringify(path)}, 'utf8').endsWith('\\n')
    await store.createSession(record(i + 1, 10), { rotate: false, now })
    await store.close()
    process.stdout.write(JSON.stringify({ acked: i, failed, whole }))
  `
  const child = spawn('bash', ['-c', `ulimit -f 64 && exec "${process.execPath}" --input-type=module -e "$0"`, script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const [code] = await within(20_000, 'the writer under a 64 KiB file-size limit', once(child, 'exit')) as [number | null]
  t.equal(code, 0, `the writer ran to its end (${err.slice(-500)})`)
  const { acked, failed, whole } = JSON.parse(out) as { acked: number, failed: string | null, whole: boolean }
  t.equal(failed, 'MCPGW_REGISTRY_STORE_UNAVAILABLE', 'the write that did not fit failed')
  t.ok(whole, 'the journal ends with a whole line right after the failure')
  const reader = new JournalStore({ path })
  await reader.init()
  t.teardown(() => reader.close())
  const now = Date.now()
  let missing = 0
  for (let i = 0; i < acked; i++) if (await reader.findSessionById(`s${i}`, now) === null) missing++
  t.equal(missing, 0, `all ${acked} sessions written before are back`)
  t.equal(await reader.findSessionById(`s${acked}`, now), null, 'the failed one is not')
  t.ok(await reader.findSessionById(`s${acked + 1}`, now), 'the write after the failure is read back')
})

/**
 * The embedded store's ways to outlive a restart, side by side in one run (docs/decisions.md):
 * the in-memory store alone, JournalStore (an append-only file, what ships), and node:sqlite
 * holding the same records (one row per record, WAL, synchronous=NORMAL: the usual durable
 * SQLite set-up), for the two costs that matter: a write (a session minted) and a start
 * (reading back 100,000 sessions). Reads stay in memory in every variant (0 store calls per
 * cached request), so they are not compared. Run: `node bench/dist/embedded-store.js`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { JournalStore, MemoryStore } from '@mcp-gw/registry'
import type { SessionRecord } from '@mcp-gw/registry'
import { fmt, median, table } from './stats.js'

const WRITES = 20_000
const ROUNDS = 5
const SESSIONS_AT_START = 100_000

function session (i: number, now: number): SessionRecord {
  return {
    sessionId: `sess-${i}-0123456789abcdef`,
    jti: `jti-${i}-0123456789abcdef`,
    sessionKey: `user-${i}:todoodles:mcp-webui`,
    userId: `user-${i}`,
    serverName: 'todoodles',
    serverType: 'mcp-webui',
    instanceId: 'instance-0123456789abcdefghij',
    ownerHash: null,
    scopes: ['view', 'interact'],
    metadata: { theme: 'dark' },
    createdAt: now,
    lastActivityAt: now,
    expiresAt: now + 3_600_000,
    revokedAt: null
  }
}

interface Sqlite { exec (sql: string): void, prepare (sql: string): { run (...args: unknown[]): unknown, all (): Array<Record<string, unknown>> }, close (): void }

async function openSqlite (path: string): Promise<Sqlite> {
  const sqliteModule = 'node:sqlite'
  // By name: @types/node 20 (the workspace's types) does not declare it.
  const { DatabaseSync } = await import(sqliteModule) as unknown as { DatabaseSync: new (path: string) => Sqlite }
  const db = new DatabaseSync(path)
  db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, record TEXT NOT NULL)')
  return db
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mcpgw-bench-store-'))
  const now = Date.now()
  const writeUs: Record<string, number[]> = { memory: [], journal: [], sqlite: [] }
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const memory = new MemoryStore({ maxSessions: WRITES + 1 })
      let t0 = performance.now()
      for (let i = 0; i < WRITES; i++) await memory.createSession(session(i, now), { rotate: false, now })
      writeUs.memory!.push((performance.now() - t0) * 1000 / WRITES)
      await memory.close()

      const journal = new JournalStore({ path: join(dir, `round-${round}.journal`), maxSessions: WRITES + 1 })
      await journal.init()
      t0 = performance.now()
      for (let i = 0; i < WRITES; i++) await journal.createSession(session(i, now), { rotate: false, now })
      writeUs.journal!.push((performance.now() - t0) * 1000 / WRITES)
      await journal.close()

      // The same record kept in memory for reads, and written through to SQLite as one row.
      const sqlite = await openSqlite(join(dir, `round-${round}.sqlite`))
      const upsert = sqlite.prepare('INSERT INTO sessions (id, record) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record')
      const held = new MemoryStore({ maxSessions: WRITES + 1 })
      t0 = performance.now()
      for (let i = 0; i < WRITES; i++) {
        const record = session(i, now)
        upsert.run(record.sessionId, JSON.stringify(record))
        await held.createSession(record, { rotate: false, now })
      }
      writeUs.sqlite!.push((performance.now() - t0) * 1000 / WRITES)
      sqlite.close()
      await held.close()
    }

    // A start: 100,000 live sessions read back into memory.
    const startMs: Record<string, number[]> = { journal: [], sqlite: [] }
    const big = join(dir, 'big.journal')
    const seed = new JournalStore({ path: big, maxSessions: SESSIONS_AT_START + 1 })
    await seed.init()
    for (let i = 0; i < SESSIONS_AT_START; i++) await seed.createSession(session(i, now), { rotate: false, now })
    await seed.close()
    const bigSqlite = await openSqlite(join(dir, 'big.sqlite'))
    const insert = bigSqlite.prepare('INSERT INTO sessions (id, record) VALUES (?, ?)')
    bigSqlite.exec('BEGIN')
    for (let i = 0; i < SESSIONS_AT_START; i++) { const r = session(i, now); insert.run(r.sessionId, JSON.stringify(r)) }
    bigSqlite.exec('COMMIT')
    bigSqlite.close()
    for (let round = 0; round < ROUNDS; round++) {
      let t0 = performance.now()
      const store = new JournalStore({ path: big, maxSessions: SESSIONS_AT_START + 1 })
      await store.init()
      startMs.journal!.push(performance.now() - t0)
      await store.close()
      t0 = performance.now()
      const db = await openSqlite(join(dir, 'big.sqlite'))
      const held = new MemoryStore({ maxSessions: SESSIONS_AT_START + 1 })
      for (const row of db.prepare('SELECT record FROM sessions').all()) await held.createSession(JSON.parse(row.record as string) as SessionRecord, { rotate: false, now })
      startMs.sqlite!.push(performance.now() - t0)
      db.close()
      await held.close()
    }

    console.log(`Embedded store, ${WRITES} session writes and a start with ${SESSIONS_AT_START} sessions, median of ${ROUNDS} rounds (Node ${process.version})`)
    console.log(table(['store', 'µs per write', 'x memory', 'start, ms'], [
      ['memory only (forgets on restart)', fmt(median(writeUs.memory!), 2), '1.00', '-'],
      ['JournalStore (append-only file)', fmt(median(writeUs.journal!), 2), fmt(median(writeUs.journal!) / median(writeUs.memory!), 2), fmt(median(startMs.journal!))],
      ['node:sqlite (WAL, synchronous=NORMAL) + memory', fmt(median(writeUs.sqlite!), 2), fmt(median(writeUs.sqlite!) / median(writeUs.memory!), 2), fmt(median(startMs.sqlite!))]
    ]))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()

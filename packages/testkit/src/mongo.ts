import { randomBytes } from 'node:crypto'
import { startFerretDb } from './ferretdb.js'

export interface TestMongo {
  /** A connection string without a database name. */
  url: string
  /** Where the server came from: `MONGO_URL` or a FerretDB started for this test file. */
  source: 'MONGO_URL' | 'ferretdb'
  /** A database name no other test uses. */
  uniqueDbName (prefix?: string): string
  stop (): Promise<void>
}

/**
 * A real MongoDB-wire server for tests: `MONGO_URL` when set, otherwise FerretDB
 * (SQLite backend, temporary directory, 127.0.0.1, stopped by `stop()`).
 * Never skips: if no server can be had, this rejects and says why.
 */
export async function startTestMongo (): Promise<TestMongo> {
  const uniqueDbName = (prefix = 'mcpgw_test'): string => `${prefix}_${randomBytes(6).toString('hex')}`
  const fromEnv = process.env.MONGO_URL
  if (fromEnv !== undefined && fromEnv !== '') {
    return { url: fromEnv, source: 'MONGO_URL', uniqueDbName, stop: async () => {} }
  }
  let ferret
  try {
    ferret = await startFerretDb()
  } catch (err) {
    throw new Error(`No MongoDB-wire server for the Mongo suites: set MONGO_URL, or let the tests build FerretDB (needs Go): ${(err as Error).message}`, { cause: err })
  }
  return { url: ferret.url, source: 'ferretdb', uniqueDbName, stop: ferret.stop }
}

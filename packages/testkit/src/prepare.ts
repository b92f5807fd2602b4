// Builds FerretDB and Caddy ahead of a test run (side by side), so no test's timeout pays for a build.
import { ensureCaddy } from './caddy.js'
import { ensureFerretDb } from './ferretdb.js'

const say = (line: string): void => { process.stderr.write(`${line}\n`) }

async function ferret (): Promise<void> {
  if (process.env.MONGO_URL !== undefined && process.env.MONGO_URL !== '') {
    say('MONGO_URL is set: the Mongo suites will use it')
    return
  }
  try {
    say(`FerretDB ready: ${await ensureFerretDb(say)}`)
  } catch (err) {
    say(`cannot provide a MongoDB-wire server for the tests: ${(err as Error).message}`)
    process.exitCode = 1
  }
}

async function caddy (): Promise<void> {
  try {
    say(`Caddy ready: ${await ensureCaddy(say)}`)
  } catch (err) {
    say(`cannot provide Caddy for the edge tests (Go is needed to build it, or set CADDY_PATH): ${(err as Error).message}`)
    process.exitCode = 1
  }
}

await Promise.all([ferret(), caddy()])

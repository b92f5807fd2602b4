// Builds FerretDB ahead of a test run, so no test's timeout pays for a build.
import { ensureFerretDb } from './ferretdb.js'

if (process.env.MONGO_URL !== undefined && process.env.MONGO_URL !== '') {
  process.stderr.write('MONGO_URL is set: the Mongo suites will use it\n')
} else {
  try {
    const binary = await ensureFerretDb((line) => process.stderr.write(`${line}\n`))
    process.stderr.write(`FerretDB ready: ${binary}\n`)
  } catch (err) {
    process.stderr.write(`cannot provide a MongoDB-wire server for the tests: ${(err as Error).message}\n`)
    process.exitCode = 1
  }
}

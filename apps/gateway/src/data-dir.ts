import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ensurePrivateDirectory, MIN_SECRET_BYTES } from '@mcp-gw/registry'
import { ConfigError } from './errors.js'

/** The embedded store's journal for a gateway on `port`: one file per port, so two local gateways never share one. */
export function journalPath (dataDir: string, port: number): string {
  return join(dataDir, `store-${port}.journal`)
}

/**
 * The signing secret kept in `<dataDir>/secret` (0600), made on first use: links handed out
 * before a restart still verify after it. Never logged; only its key id is.
 */
export function keptSecret (dataDir: string): Buffer {
  const path = join(dataDir, 'secret')
  ensurePrivateDirectory(dataDir)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const secret = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url')
      if (secret.length < MIN_SECRET_BYTES) throw new ConfigError(`invalid data directory: ${path} holds fewer than ${MIN_SECRET_BYTES} bytes of secret; delete it to have a new one made (links handed out before stop working)`)
      return secret
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        if (err instanceof ConfigError) throw err
        throw new ConfigError(`invalid data directory: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
    }
    // Written whole aside, then linked into place: a crash never leaves a half-written secret,
    // and of two gateways starting at once, the second reads the first's.
    const tmp = `${path}.${process.pid}.tmp`
    try {
      const fd = openSync(tmp, 'w', 0o600)
      try {
        writeSync(fd, `${randomBytes(32).toString('base64url')}\n`)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      linkSync(tmp, path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ConfigError(`invalid data directory: cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    } finally {
      rmSync(tmp, { force: true })
    }
  }
  throw new ConfigError(`invalid data directory: cannot make ${path}`)
}

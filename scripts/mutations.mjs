#!/usr/bin/env node
// Breaks each of the gateway's central guarantees on purpose, runs the test that
// guards it, and checks that the test fails; the source is restored after each.
// `node scripts/mutations.mjs [name ...]` (after `pnpm build`); exits 1 if a
// mutation survives. Not part of `pnpm test`: it rewrites source files while it runs.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const MUTATIONS = [
  {
    name: 'auth before any backend byte',
    file: 'packages/proxy-plugin/src/token-auth.ts',
    from: '    }, done)\n  })\n}',
    to: "    }, () => { request.mcpSession = { scopes: ['view', 'interact'], serverName: 'todoodles', ownerHash: null } as never; done() })\n  })\n}",
    tests: ['packages/proxy-plugin/test/hostile-tokens.test.ts']
  },
  {
    name: 'revocation bound',
    file: 'packages/proxy-plugin/src/options.ts',
    from: 'export const DEFAULT_REVALIDATE_MS = 2000',
    to: 'export const DEFAULT_REVALIDATE_MS = 20000',
    tests: ['packages/proxy-plugin/test/auth.test.ts']
  },
  {
    name: 'token never logged',
    file: 'packages/proxy-plugin/src/request-target.ts',
    from: 'export function redactUrl (rawUrl: string, prefix: string): string {\n',
    to: 'export function redactUrl (rawUrl: string, prefix: string): string {\n  if (prefix.length > 0) return rawUrl\n',
    tests: ['packages/proxy-plugin/test/logs-never-contain-tokens.test.ts']
  },
  {
    name: 'body cap',
    file: 'packages/proxy-plugin/src/streaming-proxy.ts',
    from: '  const maxBody = options.maxBodyBytes\n',
    to: '  const maxBody = 0 * options.maxBodyBytes\n',
    tests: ['packages/proxy-plugin/test/body-limit.test.ts']
  },
  {
    name: 'backpressure',
    file: 'packages/proxy-plugin/src/streaming-proxy.ts',
    from: '    else reply.send(res.stream)\n',
    to: "    else {\n      const { PassThrough } = process.getBuiltinModule('node:stream') as typeof import('node:stream')\n      const eager = new PassThrough({ highWaterMark: 1 << 30 })\n      res.stream.on('data', (c: Buffer) => { eager.write(c) })\n      res.stream.on('end', () => eager.end())\n      reply.send(eager)\n    }\n",
    tests: ['packages/proxy-plugin/test/streaming.test.ts']
  }
]

const wanted = process.argv.slice(2)
let survived = 0
for (const m of MUTATIONS.filter((m) => wanted.length === 0 || wanted.includes(m.name))) {
  const path = ROOT + m.file
  const original = readFileSync(path, 'utf8')
  if (!original.includes(m.from)) throw new Error(`${m.name}: the code to break is not in ${m.file} any more; update this script`)
  try {
    writeFileSync(path, original.replace(m.from, m.to))
    const run = spawnSync('npx', ['tap', '--disable-coverage', '-R', 'tap', ...m.tests], { cwd: ROOT, encoding: 'utf8', timeout: 900_000 })
    const failed = run.stdout.split('\n').filter((l) => /^\s+not ok/.test(l)).map((l) => l.trim())
    const caught = run.status !== 0 && failed.length > 0
    if (!caught) survived++
    console.log(`${caught ? 'caught  ' : 'SURVIVED'} ${m.name} (${m.file}) by ${m.tests.join(', ')}`)
    for (const line of failed.slice(0, 3)) console.log(`    ${line.slice(0, 160)}`)
  } finally {
    writeFileSync(path, original)
  }
}
console.log(survived === 0 ? 'every mutation was caught' : `${survived} mutation(s) survived`)
process.exit(survived === 0 ? 0 : 1)

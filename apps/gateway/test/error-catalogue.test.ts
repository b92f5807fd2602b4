import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

/**
 * One catalogue of error codes: each is defined once, with createError, in a
 * package's errors.ts; every code the code base names is one of those; and
 * docs/errors.md lists every one of them, with its status.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const SOURCE_DIRS = ['packages/protocol/src', 'packages/registry/src', 'packages/proxy-plugin/src', 'packages/client-sdk/src', 'apps/gateway/src', 'apps/example-todo/src']

function sources (dir: string): Array<{ path: string, text: string }> {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ path: join(dir, f), text: readFileSync(join(ROOT, dir, f), 'utf8') }))
}

t.test('every MCPGW_ code is defined once, in an errors.ts, and documented with its status', async (t) => {
  const files = SOURCE_DIRS.flatMap(sources)
  const defined = new Map<string, { status: number, path: string }>()
  for (const file of files) {
    for (const match of file.text.matchAll(/createError<[^(]*\(\s*'(MCPGW_[A-Z_]+)',\s*(?:"[^"]*"|'(?:[^'\\]|\\.)*'|`[^`]*`),\s*(\d{3})/g)) {
      t.ok(file.path.endsWith('errors.ts'), `${match[1]} is defined in an errors.ts (${file.path})`)
      t.notOk(defined.has(match[1]!), `${match[1]} is defined once`)
      defined.set(match[1]!, { status: Number(match[2]), path: file.path })
    }
  }
  t.ok(defined.size > 40, `found the catalogue (${defined.size} codes)`)
  const named = new Set(files.flatMap((f) => [...f.text.matchAll(/'(MCPGW_[A-Z_]+)'/g)].map((m) => m[1]!)))
  for (const code of named) t.ok(defined.has(code), `${code}, named in the code, is defined in the catalogue`)

  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8')
  const documented = new Map([...doc.matchAll(/^\| `(MCPGW_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]))
  for (const [code, { status }] of defined) t.equal(documented.get(code), status, `${code} is in docs/errors.md with status ${status}`)
  for (const code of documented.keys()) t.ok(defined.has(code), `${code} in docs/errors.md still exists`)
})

#!/usr/bin/env node
// pnpm test:chaos: the long fault, churn and hostile-input runs, bounded in time,
// then a table of what was tried, what held, and the figures each case printed.
// One file at a time: the cases measure descriptors and memory of their own gateways.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Parser } from 'tap-parser'

const files = [
  'chaos/test/*.test.ts',
  // The fast suites' fuzzers, run much longer.
  'packages/proxy-plugin/test/fuzz.test.ts',
  'apps/gateway/test/fuzz-api.test.ts'
]
const dir = mkdtempSync(join(tmpdir(), 'mcpgw-chaos-'))
const report = join(dir, 'chaos.tap')
const started = Date.now()
process.stdout.write(`chaos: ${files.join(' ')} (TAP in ${report})\n`)
const run = spawnSync('npx', ['tap', '--jobs', '1', '--timeout', '900', '--disable-coverage', ...files], {
  stdio: 'inherit',
  env: { MCPGW_FUZZ_RUNS: '20000', ...process.env, TAP_REPORTER: 'tap', TAP_REPORTER_FILE: report }
})

const rows = []
function watch (parser, depth, file, row) {
  parser.on('comment', (line) => {
    const match = /^# figure: (.*)$/.exec(line.trim())
    if (match !== null && row !== null) row.figures.push(match[1].trim())
  })
  parser.on('child', (child) => {
    if (depth === 0) watch(child, 1, child.name, null)
    else if (depth === 1) {
      const next = { file, name: child.name, ok: false, figures: [] }
      rows.push(next)
      watch(child, 2, file, next)
    } else watch(child, depth + 1, file, row)
  })
  if (depth === 1) {
    parser.on('assert', (res) => {
      const match = rows.findLast((r) => r.file === file && r.name === res.name)
      if (match !== undefined) match.ok = res.ok && !res.skip
    })
  } else if (depth >= 2) {
    // A failed check inside a case: named in the table, so a red run says what broke.
    parser.on('assert', (res) => { if (!res.ok && row !== null) row.figures.push(`failed: ${res.name}`) })
  }
}
let text = ''
try { text = readFileSync(report, 'utf8') } catch {}
const parser = new Parser()
watch(parser, 0, '', null)
parser.end(text)

const esc = (s) => s.replace(/\|/g, '\\|')
const out = ['', '| case | held | figures |', '| --- | --- | --- |']
for (const r of rows) out.push(`| ${esc(r.name)} | ${r.ok ? 'yes' : '**no**'} | ${esc(r.figures.join('; '))} |`)
out.push('', `${rows.filter((r) => r.ok).length} of ${rows.length} held, in ${Math.round((Date.now() - started) / 1000)} s.`)
process.stdout.write(out.join('\n') + '\n')
process.exit(run.status === 0 && rows.length > 0 && rows.every((r) => r.ok) ? 0 : 1)

#!/usr/bin/env node
// Reads TAP reports written by `tap` (TAP_REPORTER=tap TAP_REPORTER_FILE=...) and
// prints one closing line: `N passed, N failed[, N skipped]`. Before it, each failed test
// with its failed assertions and their diagnostics (bounded): what CI shows of a failure.
// A test is a leaf `t.test()`; a file that fails outside its leaves (a crash, a
// timeout, an error thrown at the top level) counts as one more failure, and a
// file with assertions but no subtests counts as one test.
import { readFileSync } from 'node:fs'
import { Parser } from 'tap-parser'

const counts = { passed: 0, failed: 0, skipped: 0 }
const failures = []
const DETAIL_LINES = 40

function count (res, path, parser) {
  if (res.skip || res.todo) counts.skipped++
  else if (res.ok) counts.passed++
  else {
    counts.failed++
    failures.push({ path, asserts: parser?.failedAsserts ?? [] })
  }
}

// The failed assertions of one test, with their diagnostics, at most DETAIL_LINES lines.
function detail (asserts) {
  const lines = []
  for (const res of asserts) {
    lines.push(`  not ok - ${res.name}`)
    if (res.diag !== null && typeof res.diag === 'object') {
      for (const [key, value] of Object.entries(res.diag)) {
        const text = typeof value === 'string' ? value : JSON.stringify(value)
        for (const line of `${key}: ${text}`.split('\n')) lines.push(`    ${line.slice(0, 300)}`)
      }
    }
  }
  if (lines.length > DETAIL_LINES) return [...lines.slice(0, DETAIL_LINES), `  ... ${lines.length - DETAIL_LINES} more lines in the TAP report`]
  return lines
}

function watch (parser, path, file) {
  let pending = null
  parser.failedAsserts = []
  parser.on('child', (child) => {
    parser.hasSubtests = true
    pending = child
    watch(child, file === undefined ? [child.name] : [...path, child.name], file ?? child)
  })
  parser.on('assert', (res) => {
    if (!res.ok && !res.skip && !res.todo) parser.failedAsserts.push(res)
    const child = pending
    pending = null
    const here = (file === undefined ? [res.name] : [...path, res.name]).join(' > ')
    if (file === undefined) {
      // A test file's own result.
      const failedBefore = child?.leafFailures ?? 0
      if (child === null || !child.hasSubtests) count(res, here, child)
      else if (!res.ok && failedBefore === 0) count(res, `${here} (the file failed outside its tests)`, child)
      return
    }
    if (child !== null && !child.hasSubtests) {
      count(res, here, child)
      if (!res.ok) file.leafFailures = (file.leafFailures ?? 0) + 1
    } else if (child === null && (res.skip || res.todo)) {
      counts.skipped++
    }
  })
}

const files = process.argv.slice(2)
if (files.length === 0) {
  process.stderr.write('usage: tap-summary.mjs REPORT.tap...\n')
  process.exit(2)
}
for (const file of files) {
  const parser = new Parser()
  watch(parser, [], undefined)
  parser.end(readFileSync(file, 'utf8'))
}
for (const { path, asserts } of failures) {
  process.stdout.write(`failed: ${path}\n`)
  const lines = detail(asserts)
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`)
}
const skipped = counts.skipped > 0 ? `, ${counts.skipped} skipped` : ''
process.stdout.write(`${counts.passed} passed, ${counts.failed} failed${skipped}\n`)
process.exitCode = counts.failed > 0 || counts.passed === 0 ? 1 : 0

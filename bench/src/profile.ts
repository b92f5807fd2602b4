import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fmt, table } from './stats.js'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }

/** Top functions by self time across the .cpuprofile files in `dir`. */
export async function summarizeProfile (dir: string, top: number): Promise<string> {
  const self = new Map<string, number>()
  const byPackage = new Map<string, number>()
  let total = 0
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as { nodes: ProfileNode[] }
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0
      if (hits === 0) continue
      const { functionName, url, lineNumber } = node.callFrame
      const where = url === '' ? '' : ` ${url.replace(/^.*node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?/, '').replace(/^file:\/\/.*?\/(packages|apps)\//, '$1/')}:${lineNumber + 1}`
      const key = `${functionName === '' ? '(anonymous)' : functionName}${where}`
      self.set(key, (self.get(key) ?? 0) + hits)
      const pkg = packageOf(url, functionName)
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + hits)
      total += hits
    }
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top)
  const packages = [...byPackage].sort((a, b) => b[1] - a[1])
  return table(['code', 'self %'], packages.map(([k, n]) => [k, fmt(n / total * 100, 1)])) + '\n\n' +
    table(['function', 'self %'], rows.map(([k, n]) => [k.replace(/\|/g, '\\|'), fmt(n / total * 100, 1)]))
}

/** Where a function lives: an npm package, an mcp-gw package, Node's own JavaScript, or native code. */
function packageOf (url: string, functionName: string): string {
  const npm = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (npm !== null) return npm[1]!
  const ours = /\/(packages|apps)\/([^/]+)\//.exec(url)
  if (ours !== null) return `mcp-gw ${ours[2]!}`
  if (url.startsWith('node:')) return 'node (JavaScript)'
  if (functionName.startsWith('(')) return functionName
  return 'native (sockets, syscalls, builtins)'
}

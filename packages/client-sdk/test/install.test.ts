import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnGateway, within } from '@mcp-gw/testkit'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import t from 'tap'
import type { Test } from 'tap'

// The README's install lines, run as they are written (only the tarball's path is this test's):
// the SDK packed from this checkout, installed with npm into a project outside the workspace,
// and the README's whole MCP server run from there against a real gateway. It needs the npm
// registry: the README's line installs @modelcontextprotocol/sdk and zod (the ranges
// apps/example-todo uses) beside the tarball, from ~/.npm when it has them (--prefer-offline).

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const repoRoot = join(packageDir, '..', '..')
const readme = readFileSync(join(packageDir, 'README.md'), 'utf8')
const version = (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string }).version
const pnpmPin = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { packageManager: string }).packageManager
const exampleDeps = (JSON.parse(readFileSync(join(repoRoot, 'apps/example-todo/package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies
const API_KEY = 'sdk-install-api-key-0123456789abcdef'
const TARBALL = '/tmp/mcp-gw-client-sdk.tgz'

function snippet (name: string, lang: string): string {
  const match = new RegExp(`<!-- readme-snippet: ${name} [^>]*-->\\n\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(readme)
  if (match === null) throw new Error(`README snippet ${name} (a \`\`\`${lang} block) not found`)
  return match[1]!
}

/** The install block's lines, by where they run: the checkout, then the author's project. */
function installLines (): { setup: string, pack: string, install: string } {
  const lines = snippet('install-from-checkout', 'sh').trimEnd().split('\n')
  const expected = ['# in a checkout of mcp-gw', /^npx -y \S+ install && npx -y \S+ build$/, /^npx -y \S+ --filter @mcp-gw\/client-sdk pack /, /^# in your MCP server's directory/, /^npm install /]
  if (lines.length !== expected.length || !expected.every((e, i) => typeof e === 'string' ? lines[i] === e : e.test(lines[i]!))) {
    throw new Error(`the README's install block is not the one this test knows how to run (checkout: install && build, pack; project: npm install):\n${lines.join('\n')}`)
  }
  return { setup: lines[1]!, pack: lines[2]!, install: lines[4]! }
}

// How npm reaches its registry, when set in the environment: kept. Every other npm_* variable
// is pnpm's or npx's script settings (npm_config_local_prefix would install into the workspace).
const NPM_NETWORK = /^npm_config_(registry|proxy|https_proxy|noproxy|cafile|strict_ssl)$/i

/** The environment of a process that must see nothing of this workspace: no NODE_PATH (pnpm's bin shims set it), no npm_* of pnpm's, no MCP_WEB_UI_*. */
function cleanEnv (more: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || v === '' || k === 'NODE_PATH' || k.startsWith('MCP_WEB_UI_')) continue
    if (!/^npm_/i.test(k) || NPM_NETWORK.test(k)) env[k] = v
  }
  return { ...env, ...more }
}

/** Runs `line` with sh in `cwd`; rejects with its output on a non-zero exit or after `ms` (the whole process group is killed). */
async function sh (t: Test, line: string, cwd: string, env: Record<string, string>, ms: number): Promise<string> {
  const child = spawn('sh', ['-c', line], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const kill = (): void => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} }
  t.teardown(kill)
  let output = ''
  child.stdout.on('data', (c: Buffer) => { output += c.toString() })
  child.stderr.on('data', (c: Buffer) => { output += c.toString() })
  const code = await within(ms, `\`${line}\``, new Promise<number | null>((resolve) => child.once('close', resolve))).catch((err: Error) => {
    kill()
    throw new Error(`${err.message}\n${output.slice(-3000)}`)
  })
  if (code !== 0) throw Object.assign(new Error(`\`${line}\` exited with ${String(code)}:\n${output.slice(-3000)}`), { output })
  return output
}

/** What a failed npm install means, in a sentence. */
function npmFailure (err: Error & { output?: string }): string {
  const out = err.output ?? err.message
  if (/E404[\s\S]*@mcp-gw(%2f|\/)/i.test(out)) return `the packed SDK depends on an @mcp-gw package that is not on the registry: its tarball does not install alone\n${out}`
  if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network request|request to \S+ failed/i.test(out)) {
    return `npm could not reach the npm registry: this test installs @modelcontextprotocol/sdk and zod from it beside the packed SDK, so it needs the registry (or a ~/.npm cache that holds them)\n${out}`
  }
  return err.message
}

// The README's whole server is the first thing an MCP server author copies: what mcp-gw adds to
// it stays small. Counted as the lines (comments and blank lines aside) that import the SDK,
// name one of its exports, or use a value one of them made (`const gateway = createGatewayClient(`).
t.test("the README's whole server: at most 11 lines are mcp-gw's", async (t) => {
  const code = snippet('whole-server', 'ts').split('\n').map((line) => line.replace(/\/\/.*$/, '').trim()).filter((line) => line !== '')
  const imported = /^import \{([^}]+)\} from '@mcp-gw\/client-sdk'$/.exec(code[0]!)
  t.ok(imported, 'the snippet starts by importing the SDK')
  const exports = imported![1]!.split(',').map((name) => name.trim())
  const made = code.flatMap((line) => {
    const bound = /^const (\w+) = (?:await )?(\w+)\(/.exec(line)
    return bound !== null && exports.includes(bound[2]!) ? [bound[1]!] : []
  })
  t.same(made.sort(), ['app', 'gateway', 'ui'], 'the values the SDK makes: its client, its UI server, its MCP Apps bridge')
  const names = new RegExp(`\\b(${[...exports, ...made].join('|')})\\b`)
  // Names in code, not in strings (the page's `app.js` is not the bridge).
  const ours = code.filter((line) => line.startsWith('import {') ? line.includes('@mcp-gw/') : names.test(line.replace(/(['"`])(?:\\.|(?!\1).)*\1/g, '""')))
  t.ok(ours.length <= 11, `${ours.length} lines of mcp-gw in the whole server:\n${ours.join('\n')}`)
})

t.test("the README's install lines install the SDK from its tarball alone, and its whole server runs", async (t) => {
  const { setup, pack, install } = installLines()
  t.equal(setup, `npx -y ${pnpmPin} install && npx -y ${pnpmPin} build`, 'the checkout is set up as the main README does (pnpm test did it before this test: running it here would rebuild under the other tests)')
  t.match(pack, `npx -y ${pnpmPin} `, 'pnpm pinned as in package.json')
  t.ok(pack.endsWith(` --out ${TARBALL}`), 'pack writes the file npm installs')
  t.equal(install, `npm install ${TARBALL} '@modelcontextprotocol/sdk@${exampleDeps['@modelcontextprotocol/sdk']}' 'zod@${exampleDeps.zod}'`,
    'npm installs the tarball and what the whole server imports, in the ranges the example uses')
  t.notMatch(readFileSync(join(packageDir, 'dist/index.js'), 'utf8'), /from ["'](@mcp-gw\/|\.\.?\/)/, 'dist/index.js is one bundle, with no import of @mcp-gw/* (run the build first)')

  const packDir = await mkdtemp(join(tmpdir(), 'mcp-gw-sdk-pack-'))
  const project = await mkdtemp(join(tmpdir(), 'mcp-gw-sdk-project-'))
  t.teardown(() => rm(packDir, { recursive: true, force: true }))
  t.teardown(() => rm(project, { recursive: true, force: true }))
  t.ok(relative(repoRoot, project).startsWith('..'), 'the project is outside the workspace')
  for (let dir = dirname(project); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules'))) throw new Error(`${join(dir, 'node_modules')} exists: the scratch project in ${project} could resolve packages from it`)
    if (dirname(dir) === dir) break
  }
  const tarball = join(packDir, 'mcp-gw-client-sdk.tgz')

  const started = performance.now()
  await sh(t, pack.replace(TARBALL, tarball), repoRoot, cleanEnv(), 60_000)
  t.ok(existsSync(tarball), `pnpm pack wrote ${tarball}`)
  t.comment(`pnpm pack: ${Math.round(performance.now() - started)} ms`)

  // The author's project, then the README's npm line.
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'readme-mcp-server', version: '1.0.0', private: true }, null, 2))
  const npmEnv = cleanEnv({
    npm_config_cache: join(homedir(), '.npm'),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_prefer_offline: 'true'
  })
  try {
    await sh(t, install.replace(TARBALL, tarball), project, npmEnv, 180_000)
  } catch (err) {
    throw new Error(npmFailure(err as Error))
  }
  t.same(await readdir(join(project, 'node_modules/@mcp-gw')), ['client-sdk'], 'no other @mcp-gw package installed')
  const installed = JSON.parse(readFileSync(join(project, 'node_modules/@mcp-gw/client-sdk/package.json'), 'utf8')) as { version: string }
  t.equal(installed.version, version)
  t.same((await readdir(join(project, 'node_modules/@mcp-gw/client-sdk/dist'))).filter((name) => name.endsWith('.js')), ['index.js'], 'one bundled file of code')
  t.comment(`pack and npm install: ${Math.round(performance.now() - started)} ms`)

  // The README's whole server, as server.mjs (plain JavaScript with top-level await), against a real gateway.
  await writeFile(join(project, 'server.mjs'), snippet('whole-server', 'ts'))
  const gateway = await spawnGateway({ apiKey: API_KEY })
  t.teardown(() => gateway.stop('SIGKILL'))
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['server.mjs'],
    cwd: project,
    env: cleanEnv({ MCP_WEB_UI_GATEWAY_URL: gateway.origin, MCP_WEB_UI_GATEWAY_API_KEY: API_KEY, MCP_WEB_UI_LOCAL_USER: 'alice' }),
    stderr: 'pipe'
  })
  let serverStderr = ''
  transport.stderr!.on('data', (c: Buffer) => { serverStderr = (serverStderr + c.toString()).slice(-4000) })
  t.teardown(() => { if (transport.pid !== null) try { process.kill(transport.pid, 'SIGKILL') } catch {} })
  const mcp = new Client({ name: 'install-test', version: '0.0.0' })
  t.teardown(() => mcp.close())
  const why = (): string => `\nthe server's stderr:\n${serverStderr}`
  await within(15_000, 'the README server answering initialize', mcp.connect(transport)).catch((err: Error) => { throw new Error(err.message + why()) })

  const result = await within(15_000, 'open_todo_ui', mcp.callTool({ name: 'open_todo_ui', arguments: {} })).catch((err: Error) => { throw new Error(err.message + why()) })
  const link = (result._meta?.['mcp-gw/link'] as { url?: string } | undefined)?.url
  t.match(link, `${gateway.origin}/mcp/`, 'a gateway link')
  const page = await within(10_000, 'the link through the gateway', fetch(link!))
  const body = await page.text()
  t.equal(page.status, 200, 'the link opens through the gateway', { body: body.slice(0, 500) })
  t.match(body, '<p>Hello alice</p>', "the README server's page, for the MCP user")
})

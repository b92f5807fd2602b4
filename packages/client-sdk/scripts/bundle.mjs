// After tsc: bundles dist/index.js with what it uses from @mcp-gw/protocol (a workspace
// package that is not published), so the packed SDK installs from its tarball alone. Node's
// builtins and @fastify/error stay imports (@fastify/error is a dependency: the .d.ts files
// name its types). tsc's per-file .d.ts stay as they are; its per-file .js, now inside
// index.js, are removed (package.json's `files` ships none of them either).
import { readdir, rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))

await build({
  entryPoints: [dist + 'index.js'],
  outfile: dist + 'index.js',
  allowOverwrite: true,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  external: ['@fastify/error'],
  sourcemap: true,
  logLevel: 'warning'
})

for (const name of await readdir(dist)) {
  if (/\.js(\.map)?$/.test(name) && !name.startsWith('index.js')) await rm(dist + name)
}

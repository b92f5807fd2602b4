// `pnpm start`: builds the gateway (turbo, cached), then runs it in this very process, so the
// terminal's Ctrl-C reaches the gateway itself (no nested pnpm between them to die of it; pnpm
// runs scripts in its own shell, shellEmulator in pnpm-workspace.yaml) and a clean stop exits 0.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const turbo = fileURLToPath(new URL('../node_modules/.bin/turbo', import.meta.url))
const built = spawnSync(turbo, ['run', 'build', '--filter=@mcp-gw/gateway...', '--output-logs=errors-only'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
if (built.status !== 0) process.exit(built.status ?? 1)
process.argv = [process.argv[0], fileURLToPath(new URL('../apps/gateway/dist/cli.js', import.meta.url)), 'start', ...process.argv.slice(2)]
await import('../apps/gateway/dist/cli.js')

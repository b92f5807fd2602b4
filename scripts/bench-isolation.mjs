#!/usr/bin/env node
// Isolated mode against path mode, side by side: one prebuilt gateway process with
// MCP_WEB_UI_WILDCARD_URL set, one backend process, wrk -t1 -c50 for 10 s per round,
// small GETs through `/mcp/<token>/api` and through `<label>.localhost` with the session
// cookie, interleaved, a warm-up each, the median of 3 rounds. Gateway CPU per request from
// /proc. Needs wrk (Debian's package) and a build (`pnpm build`).
//   node scripts/bench-isolation.mjs
import { spawn, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
const port = 39000 + Math.floor(Math.random() * 1000)
const backendPort = port + 1000
const backend = spawn(process.execPath, ['-e', `require('http').createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end('{"ok":true,"items":["milk","bread","eggs"],"n":42,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}') }).listen(${backendPort}, '127.0.0.1')`], { stdio: 'ignore' })
async function until (url) {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).ok) return
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${url} did not answer`)
}
await until(`http://127.0.0.1:${backendPort}/`)
const gw = spawn(process.execPath, [new URL('../apps/gateway/dist/cli.js', import.meta.url).pathname, 'start'], { env: { ...process.env, MCP_WEB_UI_GATEWAY_PORT: String(port), MCP_WEB_UI_WILDCARD_URL: `http://*.localhost:${port}`, MCP_WEB_UI_JWT_SECRET: randomBytes(32).toString('hex') }, stdio: 'ignore' })
await until(`http://127.0.0.1:${port}/ready`)
const secret = randomBytes(32).toString('hex')
const h = { 'content-type': 'application/json', 'x-mcpgw-server-secret': secret }
await fetch(`http://127.0.0.1:${port}/register-server`, { method: 'POST', headers: h, body: JSON.stringify({ serverName: 'b', host: '127.0.0.1', port: backendPort }) })
const { url, token } = await (await fetch(`http://127.0.0.1:${port}/create-session`, { method: 'POST', headers: h, body: JSON.stringify({ userId: 'alice', serverName: 'b' }) })).json()
const host = new URL(url).host
const cpu = () => { const f = execFileSync('cat', [`/proc/${gw.pid}/stat`]).toString().split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10 }
const run = (args) => { const c0 = cpu(); const o = execFileSync('wrk', ['-t1', '-c50', '-d10s', '--latency', ...args]).toString(); const c1 = cpu(); const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(o)[1]); const reqs = Number(/(\d+) requests in/.exec(o)[1]); const p99 = /99%\s+([\d.]+\w+)/.exec(o)[1]; return { rps, p99, cpuUs: (c1 - c0) * 1000 / reqs } }
const modes = {
  path: () => run([`http://127.0.0.1:${port}/mcp/${token}/api`]),
  isolated: () => run(['-H', `Host: ${host}`, '-H', `Cookie: mcpgw_session=${token}`, `http://127.0.0.1:${port}/api`])
}
for (const m of Object.values(modes)) m() // warm
const results = { path: [], isolated: [] }
for (let round = 0; round < 3; round++) for (const [name, m] of Object.entries(modes)) results[name].push(m())
const med = (xs) => [...xs].sort((a, b) => a - b)[1]
for (const [name, rs] of Object.entries(results)) console.log(name, 'req/s', med(rs.map((r) => r.rps)), 'cpu µs/req', med(rs.map((r) => r.cpuUs)).toFixed(1), 'p99', rs.map((r) => r.p99).join(','), 'all', rs.map((r) => r.rps).join(','))
console.log('ratio isolated/path req/s', (med(results.isolated.map((r) => r.rps)) / med(results.path.map((r) => r.rps))).toFixed(3))
gw.kill('SIGTERM'); backend.kill()

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '@mcp-gw/testkit'
import t from 'tap'
import { WebSocket } from 'ws'
import { API_KEY, startBackend, startGateway } from './helpers.js'

const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx'
const SNIPPET = fileURLToPath(new URL('../../../docs/deploy/nginx.conf', import.meta.url))

t.test('the documented nginx snippet passes HTTP, WebSocket and SSE through to the gateway', async (t) => {
  if (!existsSync(NGINX)) throw new Error(`nginx not found at ${NGINX}: install the Debian package nginx (or set NGINX_PATH)`)
  const backend = await startBackend(t)
  // Behind a proxy the API needs its key (a boot error otherwise).
  const gw = await startGateway(t, { trustProxy: ['127.0.0.1'], apiKey: API_KEY })
  await gw.app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: backend.port })
  const { token } = await gw.app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })

  // The snippet exactly as documented, with only the gateway's port changed.
  const snippet = (await readFile(SNIPPET, 'utf8')).replace('http://127.0.0.1:3082', `http://127.0.0.1:${gw.port}`)
  const [mapBlock, locationBlock] = snippet.split('# --- in server { ... } ---')
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-nginx-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  await writeFile(join(dir, 'nginx.conf'), `
worker_processes 1;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${mapBlock}
  server {
    listen 127.0.0.1:${port};
    ${locationBlock}
  }
}
`)
  const nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  nginx.stderr.on('data', (c: Buffer) => { output += c.toString() })
  t.teardown(() => { nginx.kill('SIGKILL') })
  const origin = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 10_000
  while (await fetch(`${origin}/mcp/`).then((r) => r.status, () => 0) === 0) {
    if (Date.now() > deadline || nginx.exitCode !== null) throw new Error(`nginx did not start: ${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  const http = await fetch(`${origin}/mcp/${token}/hello?x=1`)
  t.equal(await http.text(), 'backend saw /hello?x=1', 'HTTP')

  const ws = new WebSocket(`ws://127.0.0.1:${port}/mcp/${token}/ws`, { origin })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.send('through nginx')
  t.equal((await new Promise<Buffer>((resolve) => ws.once('message', resolve))).toString(), 'through nginx', 'WebSocket')
  ws.terminate()

  // The backend writes one event and keeps the stream open: it must arrive now, not at the end.
  const sse = await fetch(`${origin}/mcp/${token}/events`)
  t.equal(sse.headers.get('content-type'), 'text/event-stream')
  const reader = sse.body!.getReader()
  const first = await Promise.race([
    reader.read(),
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('SSE event held back by nginx')), 5000).unref())
  ])
  t.equal(Buffer.from(first.value!).toString(), 'data: hello\n\n', 'SSE, unbuffered')
  await reader.cancel()
})

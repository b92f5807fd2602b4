import { createServer, get } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { eventually, freePort, spawnGateway, startTestMongo } from '@mcp-gw/testkit'
import { reusePortSupported } from '../src/config.js'

// The supported way past one core: N gateway processes on one MongoDB, sharing one port
// through SO_REUSEPORT (or behind any load balancer); never a cluster on the embedded store.
t.test('two gateway processes share one port and one Mongo store: either serves any session, and a revocation reaches both', {
  skip: reusePortSupported() ? false : `SO_REUSEPORT needs Node.js 22.12+ on Linux (this is ${process.version})`
}, async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const backend = createServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end('{"ok":true}') })
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { backend.close(); backend.closeAllConnections() })

  const port = await freePort()
  const shared = {
    apiKey: 'reuse-port-' + randomBytes(16).toString('hex'),
    secret: randomBytes(32).toString('hex'),
    port,
    mongoUrl: mongo.url,
    dbName: mongo.uniqueDbName('mcpgw_reuse'),
    captureLog: true,
    env: { MCP_WEB_UI_REUSE_PORT: 'true', MCP_WEB_UI_ACCESS_LOG: 'true' }
  }
  const first = await spawnGateway(shared)
  t.teardown(() => first.stop())
  const second = await spawnGateway(shared)
  t.teardown(() => second.stop())
  // Its /ready may have been answered by the first: wait for its own word that it listens.
  await eventually(() => second.log().includes('"mcp-gw listening"'), { what: 'the second process listening', within: 10_000 })

  await first.admin.register('todo', (backend.address() as AddressInfo).port)
  const { token, sessionId } = await first.admin.session('alice', 'todo')
  const url = `http://127.0.0.1:${port}/mcp/${token}/api`
  // A fresh connection each time (fetch would keep one alive): the kernel picks a process per connection.
  const once = async (): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
    get(url, { agent: false, headers: { accept: 'application/json' } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject)
  })
  const served = (gw: typeof first): number => gw.log().split('\n').filter((line) => line.includes('"request completed"') && line.includes('"statusCode":200')).length

  const statuses: number[] = []
  for (let i = 0; i < 60; i++) statuses.push((await once()).status)
  t.same([...new Set(statuses)], [200], 'every request answered 200, whichever process took it')
  t.ok(served(first) > 0 && served(second) > 0, `both processes served requests (${served(first)} and ${served(second)})`)

  await first.admin.call('POST', '/revoke-session', { sessionId })
  // Whichever process a connection lands on refuses the session within the revocation bound.
  await eventually(async () => {
    for (let i = 0; i < 20; i++) {
      const res = await once()
      if (res.status !== 401 || !res.body.includes('"MCPGW_PROXY_TOKEN_REVOKED"')) return false
    }
    return true
  }, { what: 'both processes refusing the revoked session', within: 5000 })
  t.pass('20 requests in a row refused by whichever process took them')
})

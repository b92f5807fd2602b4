import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildGateway } from '../src/app.js'

t.test('the gateway proxies a session to its registered backend under /mcp', async (t) => {
  const backend = createServer((req, res) => res.end(`backend saw ${req.url}`))
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => backend.close(() => resolve())))
  const app = await buildGateway()
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  await app.mcpRegistry.registerServer({ serverName: 'todoodles', host: '127.0.0.1', port: (backend.address() as AddressInfo).port })
  const { token } = await app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })
  const res = await fetch(`${origin}/mcp/${token}/list?x=1`)
  t.equal(await res.text(), 'backend saw /list?x=1')
  const bad = await fetch(`${origin}/mcp/${token}/%zz`)
  t.equal(bad.status, 400)
  t.notOk((await bad.text()).includes(token), 'an undecodable URL is refused without quoting the token')
})

t.test('the prefix is configurable', async (t) => {
  const app = await buildGateway({ proxy: { prefix: '/apps' } })
  t.teardown(() => app.close())
  const res = await app.inject('/apps/not-a-token/')
  t.equal(res.statusCode, 401)
  t.equal((await app.inject('/mcp/not-a-token/')).statusCode, 404)
})

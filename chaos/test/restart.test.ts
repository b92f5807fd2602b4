import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startTestMongo } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'
import { figure, startGateway } from './helpers.js'

async function backend (t: Test): Promise<number> {
  const server = createServer((_req, res) => { res.end('ok') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return (server.address() as AddressInfo).port
}

t.test('a restart on the embedded store loses sessions and registrations, as documented; on MongoDB nothing is lost', async (t) => {
  const port = await backend(t)

  const embedded = await startGateway(t)
  await embedded.admin.register('todoodles', port)
  const { token } = await embedded.admin.session('alice', 'todoodles')
  t.equal((await fetch(`${embedded.origin}/mcp/${token}/`)).status, 200)
  await embedded.stop()
  const again = await startGateway(t, { port: embedded.port })
  const lost = await fetch(`${again.origin}/mcp/${token}/`)
  t.equal(lost.status, 401, 'embedded: the old link is refused after a restart')
  t.equal(((await lost.json()) as { code: string }).code, 'MCPGW_PROXY_TOKEN_UNKNOWN', 'as a session this gateway does not know (same secret)')
  t.match(await again.admin.call('GET', '/stats'), { servers: { live: 0 } }, 'embedded: registrations are gone until servers heartbeat again')
  figure(t, 'embedded store: sessions and registrations end with the process')

  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const dbName = mongo.uniqueDbName('mcpgw_restart')
  const durable = await startGateway(t, { mongoUrl: mongo.url, dbName })
  await durable.admin.register('todoodles', port)
  const kept = (await durable.admin.session('alice', 'todoodles')).token
  await durable.stop('SIGKILL')
  const back = await startGateway(t, { mongoUrl: mongo.url, dbName, port: durable.port })
  t.equal((await fetch(`${back.origin}/mcp/${kept}/`)).status, 200, 'MongoDB: the same link works after a SIGKILL and restart')
  figure(t, `MongoDB store: sessions and registrations survive a SIGKILL; restart to ready ${Math.round(back.startupMs)} ms`)
})

import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { INSTANCE_PROBE_ANSWER_HEADER, INSTANCE_PROBE_HEADER, instanceProbeProof } from '@mcp-gw/protocol'
import t from 'tap'
import type { Test } from 'tap'
import { mcpRegistryApi } from '../src/http-api.js'
import { pointsAtGateway, probeInstance } from '../src/instances.js'
import { mcpRegistryPlugin } from '../src/plugin.js'
import type { ServerRegistration } from '../src/types.js'
import { SECRET } from './helpers.js'

const PROOF_KEY = 'f'.repeat(64)

async function listen (t: Test, handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<Server> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return server
}

function holderAt (port: number, incarnation: string): ServerRegistration {
  return { serverName: 'b', ownerHash: 'x', instanceId: 'instance-0001', instance: null, incarnation, host: '127.0.0.1', port, protocol: 'http', metadata: {}, registeredAt: 0, lastHeartbeatAt: 0, expiresAt: Date.now() + 90_000 }
}

t.test('the instance probe: alive only with the holder\'s own proof; gone when nobody or somebody else is there; unclear otherwise', async (t) => {
  const answering = (incarnation: string, key = PROOF_KEY) => listen(t, (req, res) => {
    const challenge = String(req.headers[INSTANCE_PROBE_HEADER])
    res.writeHead(204, { [INSTANCE_PROBE_ANSWER_HEADER]: instanceProbeProof(key, challenge, incarnation) }).end()
  })
  const holder = await answering('holder-incarnation-01')
  t.equal(await probeInstance(holderAt((holder.address() as AddressInfo).port, 'holder-incarnation-01'), PROOF_KEY), 'alive')
  t.equal(await probeInstance(holderAt((holder.address() as AddressInfo).port, 'some-earlier-one-0001'), PROOF_KEY), 'gone', 'another incarnation answers there: the holder is gone')
  const forger = await answering('holder-incarnation-01', 'e'.repeat(64))
  t.equal(await probeInstance(holderAt((forger.address() as AddressInfo).port, 'holder-incarnation-01'), PROOF_KEY), 'unknown', 'a proof under another key proves nothing')
  t.equal(await probeInstance(holderAt((forger.address() as AddressInfo).port, 'holder-incarnation-01'), PROOF_KEY, ['d'.repeat(64)]), 'unknown', 'nor under a key the gateway does not accept')
  t.equal(await probeInstance(holderAt((forger.address() as AddressInfo).port, 'holder-incarnation-01'), PROOF_KEY, ['d'.repeat(64), 'e'.repeat(64)]), 'alive', "a holder that answers under a previous secret's proof key (a rotation) lives")
  t.equal(await probeInstance(holderAt((forger.address() as AddressInfo).port, 'some-earlier-one-0001'), PROOF_KEY, ['e'.repeat(64)]), 'gone', 'and another incarnation under it is as good as gone')
  const plain = await listen(t, (_req, res) => { res.end('hello') })
  t.equal(await probeInstance(holderAt((plain.address() as AddressInfo).port, 'holder-incarnation-01'), PROOF_KEY), 'unknown', 'an answer without a proof: assume it lives')
  const silent = await listen(t, () => {})
  const started = Date.now()
  t.equal(await probeInstance(holderAt((silent.address() as AddressInfo).port, 'holder-incarnation-01'), PROOF_KEY), 'unknown', 'no answer in time: assume it lives')
  t.ok(Date.now() - started < 3000, 'bounded')
  const closed = await listen(t, () => {})
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  t.equal(await probeInstance(holderAt(port, 'holder-incarnation-01'), PROOF_KEY), 'gone', 'nothing listens there')
})

t.test("a registration pointing at the gateway's own listening address is refused, in any spelling", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(mcpRegistryPlugin, { secret: SECRET })
  await app.register(mcpRegistryApi, {})
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  for (const host of ['127.0.0.1', 'localhost', '::ffff:127.0.0.1', '2130706433']) {
    const res = await app.inject({ method: 'POST', url: '/register-server', payload: { serverName: 'loop', host, port } })
    t.same([res.statusCode, res.json().code], [403, 'MCPGW_REGISTRY_BACKEND_IS_GATEWAY'], host)
  }
  t.equal(await app.mcpRegistry.discover('loop'), null, 'nothing was registered')
  const other = await app.inject({ method: 'POST', url: '/register-server', payload: { serverName: 'fine', host: '127.0.0.1', port: port === 65535 ? 65534 : port + 1 } })
  t.equal(other.statusCode, 200, 'another port of the same host is somebody else')
  t.equal(await pointsAtGateway('127.0.0.2', 3082, [{ address: '0.0.0.0', port: 3082 }]), true, 'listening on every address: every local address is the gateway')
  t.equal(await pointsAtGateway('127.0.0.2', 3082, [{ address: '127.0.0.1', port: 3082 }]), false, 'listening on one: another loopback address is not')
})

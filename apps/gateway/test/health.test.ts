import t from 'tap'
import { buildGateway } from '../src/app.js'
import { testConfig } from './helpers.js'

t.test('GET /health answers without auth; /ready reflects the store', async (t) => {
  const app = await buildGateway(testConfig(), { logLevel: 'silent' })
  t.teardown(() => app.close())
  t.same((await app.inject('/health')).json(), { status: 'ok' })
  t.same((await app.inject('/ready')).json(), { status: 'ready' })
  app.mcpRegistry.store.ping = async () => { throw Object.assign(new Error('down'), { code: 'MCPGW_REGISTRY_STORE_UNAVAILABLE', statusCode: 503 }) }
  const down = await app.inject('/ready')
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'MCPGW_REGISTRY_STORE_UNAVAILABLE')
})

t.test('the embedded store is used without MongoDB, with a generated secret', async (t) => {
  const app = await buildGateway(testConfig(), { logLevel: 'silent' })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.mcpRegistry.store.kind, 'memory')
})

t.test('the prefix is configurable', async (t) => {
  const app = await buildGateway(testConfig({ prefix: '/apps' }), { logLevel: 'silent' })
  t.teardown(() => app.close())
  t.equal((await app.inject('/apps/not-a-token/')).statusCode, 401)
  const missing = await app.inject('/mcp/not-a-token/')
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'MCPGW_NOT_FOUND', 'a 404 carries a code like every other refusal')
})

import { MemoryStore, Registry } from '@mcp-gw/registry'
import Fastify from 'fastify'
import type { FastifyServerOptions } from 'fastify'
import { test } from 'tap'
import { gatewayRewriteUrl, gatewayServerOptions, mcpGateway } from '../src/index.js'
import type { McpGatewayOptions } from '../src/index.js'
import { SECRET } from './helpers.js'

// Isolated mode and forward-auth need Fastify's rewriteUrl. A host app created without the one
// its plugin options need used to boot and answer session hosts with 404s: now the boot fails.

const isolation = { wildcardUrl: 'http://*.localhost:3999' }
const forwardAuth = { key: 'edge-key-0123456789abcdef' }

async function boot (server: FastifyServerOptions, options: McpGatewayOptions): Promise<unknown> {
  const registry = new Registry({ secret: SECRET, store: new MemoryStore() })
  await registry.init()
  const app = Fastify({ logger: false, ...server })
  try {
    await app.register(mcpGateway, { registry, ...options })
    await app.ready()
    return null
  } catch (err) {
    return err
  } finally {
    await app.close().catch(() => {})
    await registry.close()
  }
}

test('a rewriteUrl that does not match the plugin options stops the boot with a coded error', async (t) => {
  const cases: Array<[string, FastifyServerOptions, McpGatewayOptions]> = [
    ['isolation, no rewriteUrl', {}, { isolation }],
    ['forwardAuth, no rewriteUrl', {}, { forwardAuth }],
    ['isolation, a rewriteUrl made for another wildcard', gatewayServerOptions({ isolation: { wildcardUrl: 'http://*.localhost:4000' } }), { isolation }],
    ['isolation, a rewriteUrl made for forwardAuth only', { rewriteUrl: gatewayRewriteUrl({ forwardAuth }) }, { isolation }],
    ['isolation, a rewriteUrl of the host\'s own', { rewriteUrl: (req) => req.url ?? '/' }, { isolation }]
  ]
  for (const [name, server, options] of cases) {
    const err = await boot(server, options) as { code?: string, message?: string } | null
    t.equal(err?.code, 'MCPGW_PROXY_SERVER_OPTIONS_MISMATCH', name)
    t.match(err?.message, /gatewayServerOptions\(options\)/, `${name}: the message says what to do`)
    t.notMatch(err?.message, forwardAuth.key, `${name}: the edge key is never in the message`)
  }
})

test('the server options made from the same plugin options boot, in every mode', async (t) => {
  for (const options of [{}, { isolation }, { forwardAuth }, { isolation, forwardAuth }] as McpGatewayOptions[]) {
    t.equal(await boot(gatewayServerOptions(options), options), null, JSON.stringify(Object.keys(options)))
  }
  // Options that need no rewrite are served whatever the rewrite is (another gateway's, say).
  t.equal(await boot(gatewayServerOptions({ isolation }), { prefix: '/other' }), null, 'path mode beside an isolated gateway\'s rewrite')
})

test("the host's own rewriteUrl still runs for every request that is not a session host's", async (t) => {
  const registry = new Registry({ secret: SECRET, store: new MemoryStore() })
  await registry.init()
  const app = Fastify(gatewayServerOptions({ isolation }, { logger: false, rewriteUrl: (req) => req.url === '/old' ? '/new' : req.url ?? '/' }))
  t.teardown(async () => { await app.close(); await registry.close() })
  app.get('/new', async () => 'moved')
  await app.register(mcpGateway, { registry, isolation })
  const moved = await app.inject({ url: '/old', headers: { host: '127.0.0.1:3999' } })
  t.equal(moved.body, 'moved', "the host's rewrite ran")
  const onSessionHost = await app.inject({ url: '/old', headers: { host: `${'a'.repeat(26)}.localhost:3999` } })
  t.equal(onSessionHost.json().code, 'MCPGW_PROXY_TOKEN_MISSING', 'a session host still goes to the session proxy, whatever the host rewrites')
})

test('gatewayServerOptions keeps what the host sets and adds what the plugin needs', async (t) => {
  const frameworkErrors = (): void => {}
  const server = gatewayServerOptions({}, { logger: { level: 'warn' }, frameworkErrors, requestIdHeader: 'x-request-id' })
  t.equal(server.frameworkErrors, frameworkErrors, "the host's frameworkErrors kept")
  t.equal(server.requestIdHeader, 'x-request-id', "the host's requestIdHeader kept")
  t.equal(typeof server.clientErrorHandler, 'function', 'a coded clientErrorHandler added')
  t.equal(typeof server.childLoggerFactory, 'function', 'lazy request loggers added')
  const logger = server.logger as { level: string, serializers: { req: (r: unknown) => { url: string } } }
  t.equal(logger.level, 'warn')
  t.equal(logger.serializers.req({ method: 'GET', url: '/mcp/eyJabc.def.ghi/page', ip: '127.0.0.1' }).url, '/mcp/[redacted]/page', 'logged URLs hide the token')
  t.equal(gatewayServerOptions({}).requestIdHeader, false, 'client-chosen request ids stay out of the logs by default')
  t.throws(() => gatewayServerOptions({ prefix: 'mcp/' }), { code: 'MCPGW_PROXY_INVALID_OPTION' }, 'the options are checked once, here as in the plugin')
})

test("a logger of the host's own still never logs a token", async (t) => {
  const lines: string[] = []
  // A pino logger made elsewhere (here by another Fastify: this package has no pino of its own).
  const loggerInstance = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(line) } } } }).log
  const registry = new Registry({ secret: SECRET, store: new MemoryStore() })
  await registry.init()
  const app = Fastify(gatewayServerOptions({}, { loggerInstance }))
  t.teardown(async () => { await app.close(); await registry.close() })
  await app.register(mcpGateway, { registry })
  await app.inject({ url: '/mcp/eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl/page' })
  t.ok(lines.some((l) => l.includes('/mcp/[redacted]/page')), 'the request is logged with its token redacted')
  t.notOk(lines.some((l) => l.includes('c2lnbmF0dXJl')), 'the token never')
})

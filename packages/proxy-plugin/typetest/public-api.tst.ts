import type { SessionRecord, ServerRegistration } from '@mcp-gw/registry'
import Fastify from 'fastify'
import type { FastifyServerOptions } from 'fastify'
import { describe, expect, test } from 'tstyche'
import * as api from '@mcp-gw/proxy-plugin'
import mcpGatewayDefault, { gatewayServerOptions, mcpGateway } from '@mcp-gw/proxy-plugin'
import type { GatewayErrorBody, GatewayHandle, McpGatewayOptions } from '@mcp-gw/proxy-plugin'

// The package's public API, pinned: adding or removing an export is a decision, made here.
describe('@mcp-gw/proxy-plugin exports', () => {
  test('exactly these values', () => {
    expect<keyof typeof api>().type.toBe<
      | 'default' | 'mcpGateway' | 'gatewayServerOptions' | 'gatewayRewriteUrl' | 'isolationRewriteUrl' | 'sendError'
      | 'validateOptions' | 'errors'
      | 'DEFAULT_PREFIX' | 'DEFAULT_REVALIDATE_MS' | 'DEFAULT_CACHE_MAX_ENTRIES' | 'DEFAULT_STORE_OUTAGE_GRACE_MS'
      | 'DEFAULT_CONNECT_TIMEOUT_MS' | 'DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS' | 'DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS'
      | 'DEFAULT_WS_HANDSHAKE_TIMEOUT_MS' | 'DEFAULT_DRAIN_TIMEOUT_MS'
      | 'FORWARD_AUTH_PATH' | 'FORWARD_AUTH_ENDED_PATH' | 'FORWARD_AUTH_KEY_HEADER' | 'EDGE_CACHE_HEADER' | 'VERDICT_HEADERS'
    >()
  })

  test('the default export is the plugin', () => {
    expect(mcpGatewayDefault).type.toBe(mcpGateway)
  })

  test('every error has a stable code', () => {
    expect(new api.errors.ShuttingDownError().code).type.toBe<string>()
    expect(new api.errors.ServerOptionsMismatchError('x').statusCode).type.toBe<number | undefined>()
  })

  test('an error body as clients read it', () => {
    expect<GatewayErrorBody>().type.toBeAssignableTo<{ statusCode: number, code: string, error: string, message: string }>()
  })
})

describe('configuring Fastify and the plugin from one options object', () => {
  const options: McpGatewayOptions = { isolation: { wildcardUrl: 'https://*.apps.example.com' }, drainTimeoutMs: 5000 }

  test('gatewayServerOptions gives Fastify server options, keeping the host\'s own', () => {
    expect(gatewayServerOptions(options)).type.toBeAssignableTo<FastifyServerOptions>()
    expect(gatewayServerOptions(options, { logger: true, trustProxy: ['10.0.0.0/8'] }).trustProxy).type.toBe<string[] & FastifyServerOptions['trustProxy']>()
    expect(gatewayServerOptions).type.not.toBeCallableWith({ isolation: 'https://*.apps.example.com' })
  })

  test('the plugin registers with its options, and refuses ill-typed ones', () => {
    const app = Fastify(gatewayServerOptions(options))
    expect(app.register).type.toBeCallableWith(mcpGateway, options)
    expect(app.register).type.toBeCallableWith(mcpGateway, { prefix: '/apps', frameAncestors: ["'self'", 'https://claude.ai'] })
    expect(app.register).type.not.toBeCallableWith(mcpGateway, { prefix: 1 })
    expect(app.register).type.not.toBeCallableWith(mcpGateway, { drainTimeoutMs: '5s' })
  })
})

describe('Fastify declaration merging', () => {
  const app = Fastify()

  test('the instance carries the gateway handle', () => {
    expect(app.mcpGateway).type.toBe<GatewayHandle>()
    expect(app.mcpGateway.tunnels.size).type.toBe<number>()
    expect(app.mcpGateway.streams.size).type.toBe<number>()
  })

  test('requests carry the session and backend, once token-auth and discovery ran', () => {
    app.get('/x', async (request) => {
      expect(request.mcpSession).type.toBe<SessionRecord | null>()
      expect(request.mcpBackend).type.toBe<ServerRegistration | null>()
      return null
    })
  })
})

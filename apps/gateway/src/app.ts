import { randomBytes } from 'node:crypto'
import { frameworkErrors, mcpGateway, serverLogSerializers } from '@mcp-gw/proxy-plugin'
import type { McpGatewayOptions } from '@mcp-gw/proxy-plugin'
import { mcpRegistryPlugin } from '@mcp-gw/registry'
import type { RegistryPluginOptions } from '@mcp-gw/registry'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'

export interface GatewayOptions {
  registry?: RegistryPluginOptions
  proxy?: Omit<McpGatewayOptions, 'registry'>
  fastify?: FastifyServerOptions
}

/**
 * Composes the gateway: the registry, then the proxy plugins under the prefix.
 * The host adds only what the server level needs: token-free framework errors
 * and log lines. The HTTP API joins in a later issue.
 */
export async function buildGateway (options: GatewayOptions = {}): Promise<FastifyInstance> {
  const prefix = options.proxy?.prefix ?? '/mcp'
  const fastifyOptions: FastifyServerOptions = { logger: false, frameworkErrors, ...options.fastify }
  if (fastifyOptions.logger !== undefined && fastifyOptions.logger !== false && typeof fastifyOptions.logger === 'object') {
    fastifyOptions.logger = { ...fastifyOptions.logger, serializers: { ...serverLogSerializers(prefix), ...fastifyOptions.logger.serializers } }
  }
  const app = Fastify(fastifyOptions)
  const registry: RegistryPluginOptions = { ...options.registry }
  if (registry.secret === undefined && registry.keys === undefined) {
    registry.secret = randomBytes(32)
    app.log.warn('no JWT secret configured: generated one for this process; sessions end when it stops')
  }
  await app.register(mcpRegistryPlugin, registry)
  await app.register(mcpGateway, { ...options.proxy, prefix })
  app.get('/health', async () => ({ status: 'ok' }))
  return app
}

import { randomBytes } from 'node:crypto'
import { mcpRegistryPlugin } from '@mcp-gw/registry'
import type { RegistryPluginOptions } from '@mcp-gw/registry'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'

export interface GatewayOptions {
  registry?: RegistryPluginOptions
  fastify?: FastifyServerOptions
}

/**
 * Composes the gateway. For now: the registry on the embedded store and a
 * liveness route; the proxy plugins and the HTTP API join in later issues.
 */
export async function buildGateway (options: GatewayOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, ...options.fastify })
  const registry: RegistryPluginOptions = { ...options.registry }
  if (registry.secret === undefined && registry.keys === undefined) {
    registry.secret = randomBytes(32)
    app.log.warn('no JWT secret configured: generated one for this process; sessions end when it stops')
  }
  await app.register(mcpRegistryPlugin, registry)
  app.get('/health', async () => ({ status: 'ok' }))
  return app
}

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { assetRedirect } from './asset-fallback.js'
import { Authenticator } from './authenticator.js'
import { discovery } from './discovery.js'
import { validateOptions } from './options.js'
import type { ProxyOptions } from './options.js'
import { streamingProxy } from './streaming-proxy.js'
import { resolveRegistry, tokenAuth } from './token-auth.js'

export type McpGatewayOptions = ProxyOptions

/**
 * Everything in one registration: token-auth, discovery and the streaming
 * proxy in that order, in their own encapsulated context under `prefix`, so
 * their parsers and hooks never touch the host app. With `assetFallback`
 * (default) it also sets the host's not-found handler, to send a session
 * page's absolute-path requests back under its prefix.
 *
 *   await app.register(mcpGateway, { prefix: '/mcp', registry })
 */
async function mcpGatewayPlugin (fastify: FastifyInstance, opts: McpGatewayOptions): Promise<void> {
  const options = validateOptions(opts)
  const authenticator = new Authenticator(resolveRegistry(fastify, opts.registry), options)
  const shared = { ...opts, prefix: options.prefix, authenticator }

  let handle: FastifyInstance['mcpGateway'] | undefined
  await fastify.register(async function mcpGatewayContext (context) {
    await context.register(tokenAuth, shared)
    await context.register(discovery)
    await context.register(streamingProxy, shared)
    handle = context.mcpGateway
  }, { prefix: options.prefix })
  fastify.decorate('mcpGateway', { getter: () => handle! })

  if (options.assetFallback) {
    fastify.setNotFoundHandler(async function mcpAssetFallback (request, reply) {
      if (await assetRedirect(request, reply, options.prefix, authenticator)) return reply
      // Fastify's own 404, plus a stable code like every other refusal of ours.
      return reply.code(404).send({ message: `Route ${request.method}:${request.url.split('?')[0]} not found`, error: 'Not Found', statusCode: 404, code: 'MCPGW_NOT_FOUND' })
    })
  }
}

export const mcpGateway = fp(mcpGatewayPlugin, {
  fastify: '5.x',
  name: '@mcp-gw/proxy-plugin'
})

export default mcpGateway

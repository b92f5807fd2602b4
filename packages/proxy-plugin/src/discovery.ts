import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * Resolves `request.mcpBackend`, the live registration of the session's server,
 * or answers 503 MCPGW_PROXY_NO_BACKEND. Runs after token-auth.
 */
async function discoveryPlugin (fastify: FastifyInstance): Promise<void> {
  const routes = fastify.mcpAuthenticator.routes
  fastify.decorateRequest('mcpBackend', null)
  fastify.addHook('onRequest', function discover (request, _reply, done) {
    const session = request.mcpSession
    if (session === null) {
      done()
      return
    }
    const cached = routes.peek(session.serverName)
    if (cached !== undefined) {
      request.mcpBackend = cached
      done()
      return
    }
    routes.get(session.serverName).then((backend) => {
      request.mcpBackend = backend
      done()
    }, done)
  })
}

export const discovery = fp(discoveryPlugin, {
  fastify: '5.x',
  name: '@mcp-gw/proxy-plugin/discovery',
  dependencies: ['@mcp-gw/proxy-plugin/token-auth'],
  decorators: { fastify: ['mcpAuthenticator'] }
})

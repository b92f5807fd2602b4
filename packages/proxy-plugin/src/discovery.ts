import type { ServerRegistration, SessionRecord } from '@mcp-gw/registry'
import type { FastifyInstance, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { NoBackendError } from './errors.js'
import { edgeMaxAge } from './forward-auth.js'

/**
 * A session is served only by the instance that minted it, while its registrant holds it:
 * no other process of the same name, and nobody who registers after it stopped, gets the
 * earlier sessions (nor, through them, their users' identity headers).
 */
function admit (request: FastifyRequest, session: SessionRecord, backend: ServerRegistration, done: HookHandlerDoneFunction): void {
  if (backend.instanceId !== session.instanceId || backend.serverName !== session.serverName || (session.ownerHash !== null && session.ownerHash !== backend.ownerHash)) {
    done(new NoBackendError())
    return
  }
  request.mcpBackend = backend
  done()
}

/**
 * Resolves `request.mcpBackend`, the live instance that minted the session, or
 * answers 503 MCPGW_PROXY_NO_BACKEND (for browsers, a page: the server stopped). Runs after token-auth.
 */
async function discoveryPlugin (fastify: FastifyInstance): Promise<void> {
  const authenticator = fastify.mcpAuthenticator!
  const routes = authenticator.routes
  fastify.decorateRequest('mcpBackend', null)
  fastify.addHook('onRequest', function discover (request, _reply, done) {
    const session = request.mcpSession
    if (session === null) {
      done()
      return
    }
    const maxAgeMs = edgeMaxAge(request.raw, authenticator.revalidateMs)
    const cached = maxAgeMs === undefined ? routes.peek(session.instanceId) : undefined
    if (cached !== undefined) {
      admit(request, session, cached, done)
      return
    }
    routes.get(session.instanceId, maxAgeMs).then((backend) => admit(request, session, backend, done), done)
  })
}

export const discovery = fp(discoveryPlugin, {
  fastify: '5.x',
  name: '@mcp-gw/proxy-plugin/discovery',
  dependencies: ['@mcp-gw/proxy-plugin/token-auth'],
  decorators: { fastify: ['mcpAuthenticator'] }
})

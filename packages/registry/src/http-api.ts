import { randomBytes } from 'node:crypto'
import { errorBody, INCARNATION_HEADER, SERVER_SECRET_HEADER } from '@mcp-gw/protocol'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiGuard } from './api-guard.js'
import { auditRoute } from './audit-api.js'
import { operatorActor } from './audit-actor.js'
import type { ActorOf } from './audit-actor.js'
import { ApiBadRequestError, ApiInternalError, ApiInvalidRequestError, InvalidOptionError, NotFoundError, NotServerOwnerError } from './errors.js'
import * as schemas from './http-api-schemas.js'
import type { Registry } from './registry.js'
import { parseWildcardUrl, sessionLink } from './session-host.js'
import type { CreateSessionInput, InstanceSelector, RegisterServerInput } from './registry.js'
import type { WildcardUrl } from './session-host.js'
import type { ServerRegistration, SessionRecord } from './types.js'

export { SERVER_SECRET_HEADER }

export interface RegistryApiOptions {
  /**
   * Bearer key for every route but /health and /ready, compared in constant
   * time. Without one, those routes answer loopback clients only.
   */
  apiKey?: string
  /** Base of session URLs, e.g. `https://example.com`. Default: the request's own origin. */
  publicUrl?: string
  /** Where the proxy serves sessions. Default `/mcp`. */
  proxyPrefix?: string
  /**
   * Isolated mode: session links on a host of their own under this wildcard,
   * e.g. `https://*.apps.example.com` (the proxy plugin's `isolation.wildcardUrl`).
   */
  wildcardUrl?: string
  /** Browser origins allowed to call the API (beside CORS, the API refuses every other page). */
  allowedOrigins?: readonly string[]
}

function serverSecret (request: FastifyRequest): string | undefined {
  const value = request.headers[SERVER_SECRET_HEADER]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** The secret of a call that acts on an existing registration: without one, it is nobody's. */
function requireServerSecret (request: FastifyRequest, serverName: string): string {
  const secret = serverSecret(request)
  if (secret === undefined) throw new NotServerOwnerError(serverName)
  return secret
}

/** Which of the caller's instances a call acts for: `instanceId` as given, and its incarnation header. */
function selectorOf (request: FastifyRequest, instanceId: unknown): InstanceSelector {
  const incarnation = request.headers[INCARNATION_HEADER]
  return {
    ...(typeof instanceId === 'string' && { instanceId }),
    ...(typeof incarnation === 'string' && incarnation !== '' && { incarnation })
  }
}

function instanceJson (r: ServerRegistration, sessions?: number): Record<string, unknown> {
  return {
    instanceId: r.instanceId,
    ...(r.instance !== null && { instance: r.instance }),
    host: r.host,
    port: r.port,
    protocol: r.protocol,
    registeredAt: new Date(r.registeredAt).toISOString(),
    lastHeartbeatAt: new Date(r.lastHeartbeatAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
    ...(sessions !== undefined && { sessions })
  }
}

/**
 * A server name and its live instances (oldest first). The top-level address fields are the
 * oldest instance's, as answers had them before a name could have several.
 */
function serverJson (instances: ServerRegistration[], byInstance: Record<string, number>): Record<string, unknown> {
  return {
    ...registrationJson(instances[0]!),
    instances: instances.map((i) => instanceJson(i, byInstance[i.instanceId] ?? 0))
  }
}

function registrationJson (r: ServerRegistration): Record<string, unknown> {
  return {
    serverName: r.serverName,
    instanceId: r.instanceId,
    ...(r.instance !== null && { instance: r.instance }),
    host: r.host,
    port: r.port,
    protocol: r.protocol,
    metadata: r.metadata,
    registeredAt: new Date(r.registeredAt).toISOString(),
    lastHeartbeatAt: new Date(r.lastHeartbeatAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString()
  }
}

function sessionJson (s: SessionRecord): Record<string, unknown> {
  return {
    sessionId: s.sessionId,
    sessionKey: s.sessionKey,
    userId: s.userId,
    serverName: s.serverName,
    serverType: s.serverType,
    instanceId: s.instanceId,
    scopes: s.scopes,
    createdAt: new Date(s.createdAt).toISOString(),
    expiresAt: new Date(s.expiresAt).toISOString(),
    lastActivityAt: new Date(s.lastActivityAt).toISOString()
  }
}

/** Where session links point, as the options say: checked once, at registration. */
interface Links {
  publicUrl: string | undefined
  proxyPrefix: string
  wildcard: WildcardUrl | undefined
}

function linksOf (opts: RegistryApiOptions): Links {
  let publicUrl: string | undefined
  if (opts.publicUrl !== undefined) {
    try {
      const url = new URL(opts.publicUrl)
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme')
      publicUrl = url.href.replace(/\/+$/, '')
    } catch {
      throw new InvalidOptionError('publicUrl', 'expected an http(s) URL such as https://example.com')
    }
  }
  return {
    publicUrl,
    proxyPrefix: opts.proxyPrefix ?? '/mcp',
    wildcard: opts.wildcardUrl === undefined ? undefined : parseWildcardUrl(opts.wildcardUrl)
  }
}

/** The API's answer for anything thrown: our coded errors as they are, anything else generic (it could quote input). */
function apiErrorHandler (err: Error & { statusCode?: number, code?: string, validation?: unknown }, request: FastifyRequest, reply: FastifyReply): void {
  let error: Error & { statusCode?: number, code?: string } = err
  if (err.validation !== undefined) error = new ApiInvalidRequestError(err.message)
  else if (typeof err.code !== 'string' || !err.code.startsWith('MCPGW_')) {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    error = status >= 500 ? new ApiInternalError() : Object.assign(new ApiBadRequestError(), { statusCode: status })
  }
  const statusCode = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
  if (statusCode >= 500) request.log.error({ err: { code: err.code, message: err.message } }, 'API request failed')
  reply.code(statusCode).send(errorBody(statusCode, error.code!, error.message))
}

/** The route handlers, each named for its route. */
function handlers (registry: Registry, links: Links, actorOf: ActorOf) {
  const linkOrigin = (request: FastifyRequest): string => links.wildcard !== undefined
    ? `${links.wildcard.protocol}://${links.wildcard.pattern}`
    : new URL(links.publicUrl ?? `${request.protocol}://${request.host}`).origin

  /** A registrant acting on its own instance: the secret must be the one it was registered with. */
  async function assertOwnInstance (request: FastifyRequest, instanceId: string): Promise<void> {
    const instance = await registry.discoverInstance(instanceId)
    if (instance === null) throw new NotFoundError('instance', instanceId)
    await registry.assertServerOwner(instance.serverName, requireServerSecret(request, instance.serverName), selectorOf(request, instanceId))
  }

  return {
    async health () {
      return { status: 'ok' }
    },

    async ready () {
      await registry.ping()
      return { status: 'ready' }
    },

    async registerServer (request: FastifyRequest, reply: FastifyReply) {
      const given = serverSecret(request)
      const secret = given ?? randomBytes(32).toString('base64url')
      const registration = await registry.registerServer({ ...(request.body as Omit<RegisterServerInput, 'secret'>), secret, actor: actorOf(request) })
      const answer = {
        ...registrationJson(registration),
        linkOrigin: linkOrigin(request),
        ...(registration.ownerHash !== null && { proofKey: registry.tokens.proofKey(registration.ownerHash) })
      }
      // Key material: never cached. A secret made here was accepted only because the name was free: returned once.
      reply.header('cache-control', 'no-store')
      return given === undefined ? { ...answer, secret } : answer
    },

    async deregisterServer (request: FastifyRequest, reply: FastifyReply) {
      const { serverName: name } = request.params as { serverName: string }
      const selector = selectorOf(request, (request.query as { instanceId?: string }).instanceId)
      if (!(await registry.deregisterServer(name, requireServerSecret(request, name), selector, { actor: actorOf(request) }))) throw new NotFoundError('server', name)
      return reply.code(204).send()
    },

    async createSession (request: FastifyRequest, reply: FastifyReply) {
      const { instanceId, ...input } = request.body as Omit<CreateSessionInput, 'serverSecret' | 'instance'> & { instanceId?: string }
      // Never a token for another registrant's instance, nor for a name nobody holds right now.
      const issued = await registry.createSession({ ...input, serverSecret: requireServerSecret(request, input.serverName), instance: selectorOf(request, instanceId), actor: actorOf(request) })
      const base = links.publicUrl ?? `${request.protocol}://${request.host}`
      reply.code(issued.created ? 201 : 200).header('cache-control', 'no-store')
      return {
        token: issued.token,
        url: links.wildcard === undefined ? `${base}${links.proxyPrefix}/${issued.token}/` : sessionLink(links.wildcard, issued.session, issued.token),
        expiresAt: new Date(issued.session.expiresAt).toISOString(),
        sessionKey: issued.session.sessionKey,
        sessionId: issued.session.sessionId,
        created: issued.created
      }
    },

    async revokeSession (request: FastifyRequest) {
      const { reason, ...filter } = request.body as Parameters<Registry['revoke']>[0] & { reason?: string }
      // An instance's own revocations reach its own sessions only.
      if (filter.instanceId !== undefined) await assertOwnInstance(request, filter.instanceId)
      return { revoked: await registry.revoke(filter as Parameters<Registry['revoke']>[0], { actor: actorOf(request), reason }) }
    },

    async discoverServer (request: FastifyRequest) {
      const { serverName: name } = request.params as { serverName: string }
      const instances = await registry.instances(name)
      if (instances.length === 0) throw new NotFoundError('server', name)
      return serverJson(instances, (await registry.stats()).sessions.byInstance)
    },

    async listServers () {
      const [instances, stats] = await Promise.all([registry.listServers(), registry.stats()])
      const byName = new Map<string, ServerRegistration[]>()
      for (const instance of instances) {
        const list = byName.get(instance.serverName)
        if (list === undefined) byName.set(instance.serverName, [instance])
        else list.push(instance)
      }
      return { servers: [...byName.values()].map((list) => serverJson(list, stats.sessions.byInstance)) }
    },

    async listSessions (request: FastifyRequest) {
      const query = (request.query ?? {}) as NonNullable<Parameters<Registry['listSessions']>[0]>
      if (query.instanceId !== undefined && serverSecret(request) !== undefined) await assertOwnInstance(request, query.instanceId)
      return { sessions: (await registry.listSessions(query)).map(sessionJson) }
    },

    async stats (request: FastifyRequest) {
      return await registry.stats({ byUser: (request.query as { byUser?: boolean }).byUser === true })
    }
  }
}

async function registryApi (fastify: FastifyInstance, opts: RegistryApiOptions): Promise<void> {
  if (opts.apiKey !== undefined && (typeof opts.apiKey !== 'string' || opts.apiKey.length < 16)) {
    throw new InvalidOptionError('apiKey', 'expected at least 16 characters')
  }
  // Who calls, for the audit trail: scoped API keys will say which key (see audit-actor.ts).
  const actorOf = operatorActor(opts.apiKey !== undefined)
  const routes = handlers(fastify.mcpRegistry, linksOf(opts), actorOf)
  fastify.setErrorHandler(apiErrorHandler)
  fastify.get('/health', { schema: schemas.healthSchema }, routes.health)
  fastify.get('/ready', { schema: schemas.readySchema }, routes.ready)

  // Everything below needs the key, or a loopback client when no key is set.
  await fastify.register(async function admin (api) {
    api.addHook('onRequest', apiGuard(opts.apiKey, { allowedOrigins: opts.allowedOrigins ?? [] }))
    const security = opts.apiKey === undefined ? {} : { security: [{ bearerAuth: [] }] }
    api.post('/register-server', { schema: { ...schemas.registerServerSchema, ...security } }, routes.registerServer)
    api.delete('/register-server/:serverName', { schema: { ...schemas.deregisterServerSchema, ...security } }, routes.deregisterServer)
    api.post('/create-session', { schema: { ...schemas.createSessionSchema, ...security } }, routes.createSession)
    api.post('/revoke-session', { schema: { ...schemas.revokeSessionSchema, ...security } }, routes.revokeSession)
    api.get('/discover-server/:serverName', { schema: { ...schemas.discoverServerSchema, ...security } }, routes.discoverServer)
    api.get('/servers', { schema: { ...schemas.listServersSchema, ...security } }, routes.listServers)
    api.get('/sessions', { schema: { ...schemas.listSessionsSchema, ...security } }, routes.listSessions)
    api.get('/stats', { schema: { ...schemas.statsSchema, ...security } }, routes.stats)
    auditRoute(api, fastify.mcpRegistry, actorOf, security)
  })
}

/**
 * The registry over HTTP, with the routes the original gateway had:
 * /health, /ready, /register-server, /create-session, /revoke-session,
 * /discover-server/:serverName, plus /servers, /sessions and /stats.
 * Every route has a JSON schema (and so an OpenAPI description).
 */
export const mcpRegistryApi = fp(registryApi, {
  fastify: '5.x',
  name: '@mcp-gw/registry/http-api',
  dependencies: ['@mcp-gw/registry'],
  encapsulate: true
})

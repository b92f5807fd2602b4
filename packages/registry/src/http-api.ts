import { randomBytes } from 'node:crypto'
import { errorBody, INCARNATION_HEADER, SERVER_SECRET_HEADER } from '@mcp-gw/protocol'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiGuard } from './api-guard.js'
import { ApiKeyring, apiKeyIsLive, mayActFor } from './api-keys.js'
import type { ApiCaller, StaticApiKey } from './api-keys.js'
import { ApiBadRequestError, ApiInternalError, ApiShuttingDownError, ApiWatchesFullError, ApiInvalidRequestError, ApiKeyNotFoundError, ApiKeyScopeError, InvalidOptionError, NotFoundError, NotServerOwnerError } from './errors.js'
import { SessionQuota } from './quota.js'
import type { SessionQuotaOptions } from './quota.js'
import { actorOfCaller } from './audit-actor.js'
import { auditRoute } from './audit-api.js'
import type { ActorOf } from './audit-actor.js'
import * as schemas from './http-api-schemas.js'
import type { Registry } from './registry.js'
import { parseWildcardUrl, sessionLink } from './session-host.js'
import { sessionFacts } from './registry.js'
import type { CreateSessionInput, InstanceSelector, IssuedSession, RegisterServerInput, ShareSessionInput } from './registry.js'
import type { WildcardUrl } from './session-host.js'
import type { ApiKeyRecord, ServerRegistration, SessionRecord } from './types.js'

export { SERVER_SECRET_HEADER }

export interface RegistryApiOptions {
  /**
   * Bearer key for every route but /health and /ready, compared in constant
   * time. Without one, those routes answer loopback clients only.
   */
  apiKey?: string
  /**
   * Registrant keys given in the configuration, each acting for the server names it lists.
   * Keys made through `POST /keys` live in the store and need nothing here.
   */
  apiKeys?: readonly StaticApiKey[]
  /** Session creation limits per server name and per registrant key; false for none. */
  quota?: SessionQuotaOptions | false
  /**
   * Earlier operator keys, still accepted beside `apiKey` while registrants and operators move to
   * it (a rotation); each at least 16 characters. Only with `apiKey`.
   */
  previousApiKeys?: readonly string[]
  /** Base of session URLs, e.g. `https://example.com`. Default: the request's own origin. */
  publicUrl?: string
  /** Where the proxy serves sessions. Default `/mcp`. */
  proxyPrefix?: string
  /**
   * Isolated mode: session links on a host of their own under this wildcard,
   * e.g. `https://*.apps.example.com` (the proxy plugin's `isolation.wildcardUrl`).
   */
  wildcardUrl?: string
  /**
   * Who may frame session pages, as the proxy's `frameAncestors` says (`'self'`, `'none'`,
   * origins): told to registrants so an embedding view can offer a new tab instead of a
   * frame the browser will refuse. Unsaid when not given.
   */
  frameAncestors?: readonly string[]
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

function keyJson (k: ApiKeyRecord, now: number): Record<string, unknown> {
  return {
    keyId: k.keyId,
    role: k.role,
    servers: k.servers,
    label: k.label,
    createdAt: new Date(k.createdAt).toISOString(),
    expiresAt: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
    revokedAt: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
    live: apiKeyIsLive(k, now)
  }
}

/** The caller apiGuard found; every route below it has one. */
function callerOf (request: FastifyRequest): ApiCaller {
  return request.mcpgwCaller!
}

/** Refuses a caller whose key does not act for this server name. */
function assertMayActFor (request: FastifyRequest, serverName: string): void {
  if (!mayActFor(callerOf(request), serverName)) throw new ApiKeyScopeError()
}

function assertOperator (request: FastifyRequest): void {
  if (callerOf(request).servers !== null) throw new ApiKeyScopeError()
}

function sessionJson (s: SessionRecord): Record<string, unknown> {
  return {
    ...sessionFacts(s),
    sessionKey: s.sessionKey,
    ...(s.share !== undefined && { sharedFrom: s.share.from }),
    ...(s.share?.with != null && { sharedWith: s.share.with }),
    createdAt: new Date(s.createdAt).toISOString(),
    lastActivityAt: new Date(s.lastActivityAt).toISOString()
  }
}

/** Where session links point, as the options say: checked once, at registration. */
interface Links {
  publicUrl: string | undefined
  proxyPrefix: string
  wildcard: WildcardUrl | undefined
  frameAncestors: string[] | undefined
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
    wildcard: opts.wildcardUrl === undefined ? undefined : parseWildcardUrl(opts.wildcardUrl),
    frameAncestors: frameAncestorsOf(opts.frameAncestors)
  }
}

/** Told as given: the proxy, which applies the policy, is the one that checks it. */
function frameAncestorsOf (sources: readonly string[] | undefined): string[] | undefined {
  if (sources === undefined) return undefined
  if (!Array.isArray(sources) || sources.length === 0 || !sources.every((s) => typeof s === 'string' && /^[^\s;,]{1,300}$/.test(s))) {
    throw new InvalidOptionError('frameAncestors', "expected the proxy's frameAncestors: 'self', 'none' or origins such as https://claude.ai")
  }
  return [...sources]
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
  const retryAfter = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds
  if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter))
  reply.code(statusCode).send(errorBody(statusCode, error.code!, error.message))
}

const WATCH_COMMENT_MS = 15_000
/** Open watches across all instances: past it, 503 (the registrant heartbeats as before). */
const MAX_WATCHES = 50_000

/**
 * The registrants' held streams (`GET /register-server/:name/watch`), one per instance. They
 * carry nothing but a comment now and then (so a dead peer shows); their end says this
 * gateway stopped. A watch lives while its instance does: one whose instance has not
 * registered here for a registration's lifetime, or that deregistered, is ended (its
 * registrant, if alive, registers again and watches anew), so watches never outnumber the
 * live instances.
 */
class Watches {
  readonly #open = new Map<string, { reply: FastifyReply, seenAt: number }>()
  readonly #lifetimeMs: number
  readonly #now: () => number
  #timer: NodeJS.Timeout | null = null
  #closing = false

  constructor (lifetimeMs: number, now: () => number) {
    this.#lifetimeMs = lifetimeMs
    this.#now = now
  }

  /** Holds `reply` open for `instanceId` (ending an older one of it), or says why not. */
  open (instanceId: string, reply: FastifyReply): 'full' | 'closing' | 'gone' | null {
    if (this.#closing) return 'closing'
    // The caller went away while its ownership was checked: nothing to hold.
    if (reply.raw.destroyed || reply.request.raw.destroyed) {
      reply.hijack()
      return 'gone'
    }
    const older = this.#open.get(instanceId)
    if (older === undefined && this.#open.size >= MAX_WATCHES) return 'full'
    if (older !== undefined) endWatch(older.reply)
    reply.hijack()
    const raw = reply.raw
    // A connection of its own, never reused: its end is the news.
    raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'close' })
    raw.write(': watching\n\n')
    const entry = { reply, seenAt: this.#now() }
    this.#open.set(instanceId, entry)
    raw.on('close', () => { if (this.#open.get(instanceId) === entry) this.#open.delete(instanceId) })
    this.#timer ??= setInterval(() => { this.#tick() }, Math.min(WATCH_COMMENT_MS, Math.ceil(this.#lifetimeMs / 3))).unref()
    return null
  }

  /** The instance registered (or heartbeat) here: its watch lives on. */
  seen (instanceId: string): void {
    const entry = this.#open.get(instanceId)
    if (entry !== undefined) entry.seenAt = this.#now()
  }

  /** The instance deregistered: its watch ends. */
  end (instanceId: string): void {
    const entry = this.#open.get(instanceId)
    if (entry === undefined) return
    this.#open.delete(instanceId)
    endWatch(entry.reply)
  }

  #tick (): void {
    const stale = this.#now() - this.#lifetimeMs
    for (const [instanceId, entry] of this.#open) {
      if (entry.seenAt < stale) this.end(instanceId)
      else entry.reply.raw.write(':\n\n')
    }
  }

  /** The gateway is closing: every watch ends, and none opens again. */
  endAll (): void {
    this.#closing = true
    for (const entry of this.#open.values()) endWatch(entry.reply)
    this.#open.clear()
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}

/** Ends a watch; a peer that does not read what is left loses its socket a second later. */
function endWatch (reply: FastifyReply): void {
  const raw = reply.raw
  raw.end()
  if (!raw.socket?.destroyed) setTimeout(() => { raw.destroy() }, 1000).unref()
}

/** The route handlers, each named for its route. */
function handlers (registry: Registry, links: Links, quota: SessionQuota | null, actorOf: ActorOf, watches: Watches) {
  const linkOrigin = (request: FastifyRequest): string => links.wildcard !== undefined
    ? `${links.wildcard.protocol}://${links.wildcard.pattern}`
    : new URL(links.publicUrl ?? `${request.protocol}://${request.host}`).origin

  /** The quotas a caller's new session (or share) spends: its name's and its key's. */
  function admitter (request: FastifyRequest): (name: string) => Promise<void> {
    const caller = callerOf(request)
    return async (name) => {
      quota!.take(name, caller.kind === 'registrant' ? [`name:${name}`, `key:${caller.keyId!}`] : [`name:${name}`])
      await quota!.admit(name, async (n) => await registry.countSessions(n))
    }
  }

  /** What create-session and share-session answer: the token, its URL, and the session. */
  function issuedJson (request: FastifyRequest, issued: IssuedSession): Record<string, unknown> {
    const base = links.publicUrl ?? `${request.protocol}://${request.host}`
    return {
      token: issued.token,
      url: links.wildcard === undefined ? `${base}${links.proxyPrefix}/${issued.token}/` : sessionLink(links.wildcard, issued.session, issued.token),
      expiresAt: new Date(issued.session.expiresAt).toISOString(),
      sessionKey: issued.session.sessionKey,
      sessionId: issued.session.sessionId,
      shareLevel: issued.session.shareLevel ?? 'link',
      ...(issued.session.audience !== undefined && { groups: issued.session.audience.groups, emailDomains: issued.session.audience.emailDomains }),
      ...(issued.session.share !== undefined && { sharedFrom: issued.session.share.from }),
      ...(issued.session.share?.with != null && { sharedWith: issued.session.share.with }),
      created: issued.created
    }
  }

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
      assertMayActFor(request, (request.body as { serverName: string }).serverName)
      const given = serverSecret(request)
      const secret = given ?? randomBytes(32).toString('base64url')
      const registration = await registry.registerServer({ ...(request.body as Omit<RegisterServerInput, 'secret'>), secret, actor: actorOf(request) })
      watches.seen(registration.instanceId)
      const answer = {
        ...registrationJson(registration),
        linkOrigin: linkOrigin(request),
        ...(links.frameAncestors !== undefined && { frameAncestors: links.frameAncestors }),
        ...(registration.ownerHash !== null && { proofKey: registry.tokens.proofKey(registration.ownerHash) })
      }
      // Key material: never cached. A secret made here was accepted only because the name was free: returned once.
      reply.header('cache-control', 'no-store')
      return given === undefined ? { ...answer, secret } : answer
    },

    async watchServer (request: FastifyRequest, reply: FastifyReply) {
      const { serverName: name } = request.params as { serverName: string }
      assertMayActFor(request, name)
      const { instanceId } = request.query as { instanceId: string }
      await registry.assertServerOwner(name, requireServerSecret(request, name), selectorOf(request, instanceId))
      const refusal = watches.open(instanceId, reply)
      if (refusal === 'gone') return
      if (refusal === 'closing') throw new ApiShuttingDownError()
      if (refusal === 'full') throw new ApiWatchesFullError()
    },

    async deregisterServer (request: FastifyRequest, reply: FastifyReply) {
      const { serverName: name } = request.params as { serverName: string }
      assertMayActFor(request, name)
      const selector = selectorOf(request, (request.query as { instanceId?: string }).instanceId)
      if (!(await registry.deregisterServer(name, requireServerSecret(request, name), selector, { actor: actorOf(request) }))) throw new NotFoundError('server', name)
      if (selector.instanceId !== undefined) watches.end(selector.instanceId)
      return reply.code(204).send()
    },

    async createSession (request: FastifyRequest, reply: FastifyReply) {
      const { instanceId, ...input } = request.body as Omit<CreateSessionInput, 'serverSecret' | 'instance'> & { instanceId?: string }
      assertMayActFor(request, input.serverName)
      const serverSecret = requireServerSecret(request, input.serverName)
      // Quotas are spent once the caller proved it is the name's registrant: nobody spends another's.
      const admit = quota === null ? undefined : admitter(request)
      // Never a token for another registrant's instance, nor for a name nobody holds right now.
      const issued = await registry.createSession({ ...input, serverSecret, instance: selectorOf(request, instanceId), actor: actorOf(request), ...(admit !== undefined && { admit }) })
      if (issued.created) quota?.created(input.serverName)
      reply.code(issued.created ? 201 : 200).header('cache-control', 'no-store')
      return issuedJson(request, issued)
    },

    async shareSession (request: FastifyRequest, reply: FastifyReply) {
      const input = request.body as Omit<ShareSessionInput, 'serverSecret' | 'actor' | 'instance' | 'admit'>
      const shared = await registry.getSession(input.sessionId)
      // A session of a name the key does not act for, or of no one's (no secret): as if there were none.
      if (shared === null || shared.revokedAt !== null || !mayActFor(callerOf(request), shared.serverName) || serverSecret(request) === undefined) throw new NotFoundError('session', input.sessionId)
      // Only the registrant the session was issued for shares it (the same rule as create-session),
      // spending its quotas as a session would.
      const issued = await registry.shareSession({
        ...input,
        serverSecret: serverSecret(request),
        instance: selectorOf(request, undefined),
        actor: actorOf(request),
        ...(quota !== null && { admit: admitter(request) })
      })
      quota?.created(shared.serverName)
      reply.code(201).header('cache-control', 'no-store')
      return issuedJson(request, issued)
    },

    async revokeSession (request: FastifyRequest) {
      const { reason, ...filter } = request.body as Parameters<Registry['revoke']>[0] & { reason?: string }
      // An instance's own revocations reach its own sessions only.
      if (filter.instanceId !== undefined) await assertOwnInstance(request, filter.instanceId)
      // A registrant key's, its own server names' only.
      const servers = callerOf(request).servers
      const bounded = (servers === null ? filter : { ...filter, serverNames: servers }) as Parameters<Registry['revoke']>[0]
      return { revoked: await registry.revoke(bounded, { actor: actorOf(request), reason }) }
    },

    async discoverServer (request: FastifyRequest) {
      const { serverName: name } = request.params as { serverName: string }
      assertMayActFor(request, name)
      const instances = await registry.instances(name)
      if (instances.length === 0) throw new NotFoundError('server', name)
      return serverJson(instances, (await registry.stats()).sessions.byInstance)
    },

    async listServers (request: FastifyRequest) {
      const [instances, stats] = await Promise.all([registry.listServers(), registry.stats()])
      const byName = new Map<string, ServerRegistration[]>()
      const caller = callerOf(request)
      for (const instance of instances) {
        if (!mayActFor(caller, instance.serverName)) continue
        const list = byName.get(instance.serverName)
        if (list === undefined) byName.set(instance.serverName, [instance])
        else list.push(instance)
      }
      return { servers: [...byName.values()].map((list) => serverJson(list, stats.sessions.byInstance)) }
    },

    async listSessions (request: FastifyRequest) {
      const query = (request.query ?? {}) as NonNullable<Parameters<Registry['listSessions']>[0]>
      if (query.instanceId !== undefined && serverSecret(request) !== undefined) await assertOwnInstance(request, query.instanceId)
      if (query.serverName !== undefined) assertMayActFor(request, query.serverName)
      const servers = callerOf(request).servers
      return { sessions: (await registry.listSessions(servers === null ? query : { ...query, serverNames: servers })).map(sessionJson) }
    },

    async stats (request: FastifyRequest) {
      assertOperator(request)
      return await registry.stats({ byUser: (request.query as { byUser?: boolean }).byUser === true })
    },

    async createKey (request: FastifyRequest, reply: FastifyReply) {
      assertOperator(request)
      const made = await registry.createApiKey(request.body as Parameters<Registry['createApiKey']>[0], { actor: actorOf(request) })
      request.log.info({ keyId: made.record.keyId, role: made.record.role, servers: made.record.servers }, 'API key created')
      reply.code(201).header('cache-control', 'no-store')
      return { key: made.key, ...keyJson(made.record, Date.now()) }
    },

    async listKeys (request: FastifyRequest) {
      assertOperator(request)
      const now = Date.now()
      return { keys: (await registry.listApiKeys()).map((k) => keyJson(k, now)) }
    },

    async revokeKey (request: FastifyRequest, reply: FastifyReply) {
      assertOperator(request)
      const { keyId } = request.params as { keyId: string }
      const graceSeconds = (request.query as { graceSeconds?: number }).graceSeconds ?? 0
      if (!(await registry.revokeApiKey(keyId, graceSeconds, { actor: actorOf(request) }))) throw new ApiKeyNotFoundError()
      request.log.info({ keyId, graceSeconds }, 'API key revoked')
      return reply.code(204).send()
    }
  }
}

/**
 * The keys the API accepts: `apiKey` and `apiKeys` as configured, and those made through
 * `POST /keys` (looked up in the registry's store). For hosts guarding routes of their own
 * (`/metrics`) with apiGuard.
 */
export function apiKeyringFor (registry: Registry, opts: Pick<RegistryApiOptions, 'apiKey' | 'previousApiKeys' | 'apiKeys'>): ApiKeyring {
  const operatorKeys = opts.apiKey === undefined ? [] : [opts.apiKey, ...(opts.previousApiKeys ?? [])]
  return new ApiKeyring(
    [...operatorKeys.map((key) => ({ key, role: 'operator' as const })), ...(opts.apiKeys ?? [])],
    async (keyId) => await registry.findApiKey(keyId),
    registry.options.now
  )
}

async function registryApi (fastify: FastifyInstance, opts: RegistryApiOptions): Promise<void> {
  if (opts.apiKey !== undefined && (typeof opts.apiKey !== 'string' || opts.apiKey.length < 16)) {
    throw new InvalidOptionError('apiKey', 'expected at least 16 characters')
  }
  if (opts.previousApiKeys !== undefined) {
    if (!Array.isArray(opts.previousApiKeys) || !opts.previousApiKeys.every((k) => typeof k === 'string' && k.length >= 16)) {
      throw new InvalidOptionError('previousApiKeys', 'expected a list of keys of at least 16 characters')
    }
    if (opts.previousApiKeys.length > 0 && opts.apiKey === undefined) throw new InvalidOptionError('previousApiKeys', 'previous keys go with apiKey')
  }
  const registry = fastify.mcpRegistry
  const keyring = apiKeyringFor(registry, opts)
  const quota = opts.quota === false ? null : new SessionQuota({ ...opts.quota, now: registry.options.now })
  // Who calls, for the audit trail: the key apiGuard accepted.
  const actorOf: ActorOf = (request) => actorOfCaller(callerOf(request))
  const watches = new Watches(registry.options.registrationTtlSeconds * 1000, registry.options.now)
  // Before the server closes: an open stream would hold it, and its end is the news.
  fastify.addHook('preClose', (done) => { watches.endAll(); done() })
  const routes = handlers(registry, linksOf(opts), quota, actorOf, watches)
  fastify.decorateRequest('mcpgwCaller', null)
  fastify.setErrorHandler(apiErrorHandler)
  fastify.get('/health', { schema: schemas.healthSchema }, routes.health)
  fastify.get('/ready', { schema: schemas.readySchema }, routes.ready)

  // Everything below needs the key, or a loopback client when no key is set.
  await fastify.register(async function admin (api) {
    api.addHook('onRequest', apiGuard(keyring, { allowedOrigins: opts.allowedOrigins ?? [] }))
    const security = keyring.operatorKeyConfigured ? { security: [{ bearerAuth: [] }] } : {}
    api.post('/register-server', { schema: { ...schemas.registerServerSchema, ...security } }, routes.registerServer)
    api.delete('/register-server/:serverName', { schema: { ...schemas.deregisterServerSchema, ...security } }, routes.deregisterServer)
    api.get('/register-server/:serverName/watch', { schema: { ...schemas.watchServerSchema, ...security } }, routes.watchServer)
    api.post('/create-session', { schema: { ...schemas.createSessionSchema, ...security } }, routes.createSession)
    api.post('/share-session', { schema: { ...schemas.shareSessionSchema, ...security } }, routes.shareSession)
    api.post('/revoke-session', { schema: { ...schemas.revokeSessionSchema, ...security } }, routes.revokeSession)
    api.get('/discover-server/:serverName', { schema: { ...schemas.discoverServerSchema, ...security } }, routes.discoverServer)
    api.get('/servers', { schema: { ...schemas.listServersSchema, ...security } }, routes.listServers)
    api.get('/sessions', { schema: { ...schemas.listSessionsSchema, ...security } }, routes.listSessions)
    api.get('/stats', { schema: { ...schemas.statsSchema, ...security } }, routes.stats)
    api.post('/keys', { schema: { ...schemas.createKeySchema, ...security } }, routes.createKey)
    api.get('/keys', { schema: { ...schemas.listKeysSchema, ...security } }, routes.listKeys)
    api.delete('/keys/:keyId', { schema: { ...schemas.revokeKeySchema, ...security } }, routes.revokeKey)
    auditRoute(api, registry, actorOf, security)
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

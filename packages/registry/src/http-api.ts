import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import { BlockList, isIP } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiBrowserForbiddenError, ApiForbiddenError, ApiUnauthorizedError, InvalidOptionError, NotFoundError, NotServerOwnerError } from './errors.js'
import { parseWildcardUrl, sessionLink } from './session-host.js'
import type { CreateSessionInput, RegisterServerInput } from './registry.js'
import type { ServerRegistration, SessionRecord } from './types.js'
import { SCOPE_PATTERN, SERVER_NAME_PATTERN } from './validate-input.js'

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

const loopback = new BlockList()
loopback.addSubnet('127.0.0.0', 8, 'ipv4')
loopback.addAddress('::1', 'ipv6')

function isLoopback (ip: string): boolean {
  const mapped = ip.startsWith('::ffff:') ? ip.slice(7) : ip
  const kind = isIP(mapped)
  return kind !== 0 && loopback.check(mapped, kind === 4 ? 'ipv4' : 'ipv6')
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/**
 * The header a registrant proves itself with: the secret it registered with
 * (its own, or the one the first registration returned). Heartbeats,
 * deregistration and create-session for a live registration need it.
 */
export const SERVER_SECRET_HEADER = 'x-mcpgw-server-secret'

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

function isLoopbackHost (host: string | undefined): boolean {
  if (host === undefined) return false
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '')
  return name === 'localhost' || name.endsWith('.localhost') || isLoopback(name)
}

export interface ApiGuardOptions {
  /** Browser origins allowed to call the API (MCP_WEB_UI_CORS_ORIGINS). Default none. */
  allowedOrigins?: readonly string[]
}

/**
 * The API's access rule as an onRequest hook, for routes the host adds beside
 * the API (/metrics): the bearer key compared in constant time, or loopback
 * clients only when no key is set. Either way, a request a browser makes from a
 * page (it carries `Origin`, or `Sec-Fetch-Site` other than `none`) is refused
 * unless its origin is allowed: no session page, whatever origin it is served
 * from, can use the API with the browser's ambient access. Without a key, a
 * `Host` that is not a loopback name (DNS rebinding) and a request relayed by a
 * proxy are refused too: "loopback" must mean the caller, not a proxy on it.
 */
export function apiGuard (apiKey: string | undefined, options: ApiGuardOptions = {}): (request: FastifyRequest) => Promise<void> {
  const keyDigest = apiKey === undefined ? undefined : digest(apiKey)
  const allowedOrigins = new Set(options.allowedOrigins ?? [])
  return async function requireKey (request) {
    const origin = request.headers.origin
    const site = request.headers['sec-fetch-site']
    if ((origin !== undefined || (site !== undefined && site !== 'none')) && (origin === undefined || !allowedOrigins.has(origin))) {
      throw new ApiBrowserForbiddenError()
    }
    if (keyDigest === undefined) {
      const relayed = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined || request.headers['x-real-ip'] !== undefined
      if (!isLoopback(request.ip) || relayed || !isLoopbackHost(request.headers.host)) throw new ApiForbiddenError()
      return
    }
    const header = request.headers.authorization
    const given = header !== undefined && header.startsWith('Bearer ') ? header.slice(7) : ''
    if (!timingSafeEqual(digest(given), keyDigest)) throw new ApiUnauthorizedError()
  }
}

const iso = { type: 'string', format: 'date-time' } as const
const serverName = { type: 'string', pattern: SERVER_NAME_PATTERN.source, maxLength: 64 } as const
const metadata = { type: 'object', additionalProperties: true, maxProperties: 64 } as const
const errorSchema = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } }
} as const
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 503: errorSchema } as const

const secretHeader = {
  type: 'object',
  properties: { [SERVER_SECRET_HEADER]: { type: 'string', description: 'The registrant\'s secret (32 to 256 visible ASCII characters)' } }
} as const

const registrationSchema = {
  type: 'object',
  properties: {
    serverName: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'integer' },
    protocol: { type: 'string', enum: ['http', 'https'] },
    metadata: { type: 'object', additionalProperties: true },
    registeredAt: iso,
    lastHeartbeatAt: iso,
    expiresAt: iso
  }
} as const

const sessionSchema = {
  type: 'object',
  properties: {
    sessionId: { type: 'string' },
    sessionKey: { type: 'string' },
    userId: { type: 'string' },
    serverName: { type: 'string' },
    serverType: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    createdAt: iso,
    expiresAt: iso,
    lastActivityAt: iso
  }
} as const

const issuedSchema = {
  type: 'object',
  properties: { token: { type: 'string' }, url: { type: 'string' }, expiresAt: iso, sessionKey: { type: 'string' }, sessionId: { type: 'string' }, created: { type: 'boolean' } }
} as const

function registrationJson (r: ServerRegistration): Record<string, unknown> {
  return {
    serverName: r.serverName,
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
    scopes: s.scopes,
    createdAt: new Date(s.createdAt).toISOString(),
    expiresAt: new Date(s.expiresAt).toISOString(),
    lastActivityAt: new Date(s.lastActivityAt).toISOString()
  }
}

async function registryApi (fastify: FastifyInstance, opts: RegistryApiOptions): Promise<void> {
  const registry = fastify.mcpRegistry
  if (opts.apiKey !== undefined && (typeof opts.apiKey !== 'string' || opts.apiKey.length < 16)) {
    throw new InvalidOptionError('apiKey', 'expected at least 16 characters')
  }
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
  const proxyPrefix = opts.proxyPrefix ?? '/mcp'
  const wildcard = opts.wildcardUrl === undefined ? undefined : parseWildcardUrl(opts.wildcardUrl)
  const keyDigest = opts.apiKey === undefined ? undefined : digest(opts.apiKey)
  const linkOrigin = (request: FastifyRequest): string => wildcard !== undefined
    ? `${wildcard.protocol}://${wildcard.pattern}`
    : new URL(publicUrl ?? `${request.protocol}://${request.host}`).origin

  fastify.setErrorHandler((err: Error & { statusCode?: number, code?: string, validation?: unknown }, request, reply) => {
    const statusCode = err.validation !== undefined ? 400 : err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    const code = err.validation !== undefined ? 'MCPGW_API_INVALID_REQUEST' : typeof err.code === 'string' && err.code.startsWith('MCPGW_') ? err.code : statusCode >= 500 ? 'MCPGW_API_INTERNAL' : 'MCPGW_API_BAD_REQUEST'
    if (statusCode >= 500) request.log.error({ err: { code: err.code, message: err.message } }, 'API request failed')
    // Schema messages name fields, never values; anything unknown is not repeated.
    const message = err.validation !== undefined || code.startsWith('MCPGW_') ? err.message : 'Request failed'
    reply.code(statusCode).send({ statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message })
  })

  fastify.get('/health', { schema: { summary: 'Liveness', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, async () => ({ status: 'ok' }))
  fastify.get('/ready', { schema: { summary: 'Readiness: 200 when the store answers', response: { 200: { type: 'object', properties: { status: { type: 'string' } } }, 503: errorSchema } } }, async () => {
    await registry.ping()
    return { status: 'ready' }
  })

  // Everything below needs the key, or a loopback client when no key is set.
  await fastify.register(async function admin (api) {
    api.addHook('onRequest', apiGuard(opts.apiKey, { allowedOrigins: opts.allowedOrigins ?? [] }))
    const security = keyDigest === undefined ? {} : { security: [{ bearerAuth: [] }] }

    api.post('/register-server', {
      schema: {
        summary: 'Register a backend, or heartbeat it',
        description: `The first registration of a live name owns it: later calls for it must send the same ${SERVER_SECRET_HEADER}. ` +
          'Without the header, the gateway makes a secret and returns it once, in `secret`. Another registrant gets 409 until the registration lapses.',
        ...security,
        headers: secretHeader,
        body: {
          type: 'object',
          required: ['serverName', 'host', 'port'],
          additionalProperties: false,
          properties: {
            serverName,
            host: { type: 'string', minLength: 1, maxLength: 253 },
            port: { type: 'integer', minimum: 1, maximum: 65535 },
            protocol: { type: 'string', enum: ['http', 'https'] },
            metadata
          }
        },
        response: {
          200: {
            ...registrationSchema,
            properties: {
              ...registrationSchema.properties,
              secret: { type: 'string' },
              linkOrigin: { type: 'string', description: 'The origin session links point at (`https://*.apps.example.com` in isolated mode): what a page embedding them must allow in `frame-src`' }
            }
          },
          ...errors
        }
      }
    }, async (request, reply) => {
      const given = serverSecret(request)
      const secret = given ?? randomBytes(32).toString('base64url')
      const registration = await registry.registerServer({ ...(request.body as Omit<RegisterServerInput, 'secret'>), secret })
      const answer = { ...registrationJson(registration), linkOrigin: linkOrigin(request) }
      // A secret made here was accepted only because the name was free: return it, once.
      if (given === undefined) reply.header('cache-control', 'no-store')
      return given === undefined ? { ...answer, secret } : answer
    })

    api.delete('/register-server/:serverName', {
      schema: { summary: 'Deregister a backend (its registrant only)', ...security, headers: secretHeader, params: { type: 'object', properties: { serverName } }, response: { 204: { type: 'null' }, ...errors } }
    }, async (request, reply: FastifyReply) => {
      const { serverName: name } = request.params as { serverName: string }
      if (!(await registry.deregisterServer(name, requireServerSecret(request, name)))) throw new NotFoundError('server', name)
      return reply.code(204).send()
    })

    api.post('/create-session', {
      schema: {
        summary: 'Create a session (or return the live one) and its URL',
        description: `For a live registration, by its registrant only (${SERVER_SECRET_HEADER}): 404 MCPGW_REGISTRY_SERVER_NOT_REGISTERED when there is none. ` +
          '`url` is `<public url><prefix>/<token>/` in path mode, or `https://<label>.<wildcard domain>/?mcpgw_link=<token>` in isolated mode (the credential is swapped for a cookie on first use).',
        ...security,
        headers: secretHeader,
        body: {
          type: 'object',
          required: ['userId', 'serverName'],
          additionalProperties: false,
          properties: {
            userId: { type: 'string', minLength: 1, maxLength: 256 },
            serverName,
            serverType: serverName,
            ttlSeconds: { type: 'integer', minimum: 1 },
            scopes: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'string', pattern: SCOPE_PATTERN.source } },
            rotate: { type: 'boolean' },
            metadata
          }
        },
        response: { 200: issuedSchema, 201: issuedSchema, ...errors }
      }
    }, async (request, reply) => {
      const input = request.body as Omit<CreateSessionInput, 'serverSecret'>
      // Never a token for another registrant's server, nor for a name nobody holds right now.
      const issued = await registry.createSession({ ...input, serverSecret: requireServerSecret(request, input.serverName) })
      const base = publicUrl ?? `${request.protocol}://${request.host}`
      reply.code(issued.created ? 201 : 200).header('cache-control', 'no-store')
      return {
        token: issued.token,
        url: wildcard === undefined ? `${base}${proxyPrefix}/${issued.token}/` : sessionLink(wildcard, issued.session, issued.token),
        expiresAt: new Date(issued.session.expiresAt).toISOString(),
        sessionKey: issued.session.sessionKey,
        sessionId: issued.session.sessionId,
        created: issued.created
      }
    })

    api.post('/revoke-session', {
      schema: {
        summary: 'Revoke by sessionId, sessionKey or userId',
        ...security,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          maxProperties: 1,
          properties: { sessionId: { type: 'string', maxLength: 64 }, sessionKey: { type: 'string', maxLength: 400 }, userId: { type: 'string', maxLength: 256 } }
        },
        response: { 200: { type: 'object', properties: { revoked: { type: 'integer' } } }, ...errors }
      }
    }, async (request) => ({ revoked: await registry.revoke(request.body as Parameters<typeof registry.revoke>[0]) }))

    api.get('/discover-server/:serverName', {
      schema: { summary: 'The live registration of a server', ...security, params: { type: 'object', properties: { serverName } }, response: { 200: registrationSchema, ...errors } }
    }, async (request) => {
      const { serverName: name } = request.params as { serverName: string }
      const registration = await registry.discover(name)
      if (registration === null) throw new NotFoundError('server', name)
      return registrationJson(registration)
    })

    api.get('/servers', {
      schema: { summary: 'Live registrations', ...security, response: { 200: { type: 'object', properties: { servers: { type: 'array', items: registrationSchema } } }, ...errors } }
    }, async () => ({ servers: (await registry.listServers()).map(registrationJson) }))

    api.get('/sessions', {
      schema: {
        summary: 'Live sessions, newest first (never their tokens)',
        ...security,
        querystring: { type: 'object', additionalProperties: false, properties: { userId: { type: 'string' }, serverName, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
        response: { 200: { type: 'object', properties: { sessions: { type: 'array', items: sessionSchema } } }, ...errors }
      }
    }, async (request) => ({ sessions: (await registry.listSessions(request.query as Parameters<typeof registry.listSessions>[0])).map(sessionJson) }))

    api.get('/stats', {
      schema: {
        summary: 'Counts of live sessions and registrations; per user only with byUser=true',
        ...security,
        querystring: { type: 'object', additionalProperties: false, properties: { byUser: { type: 'boolean' } } },
        response: {
          200: {
            type: 'object',
            properties: {
              sessions: { type: 'object', properties: { live: { type: 'integer' }, byServer: { type: 'object', additionalProperties: { type: 'integer' } }, byUser: { type: 'object', additionalProperties: { type: 'integer' } } } },
              servers: { type: 'object', properties: { live: { type: 'integer' } } }
            }
          },
          ...errors
        }
      }
    }, async (request) => await registry.stats({ byUser: (request.query as { byUser?: boolean }).byUser === true }))
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

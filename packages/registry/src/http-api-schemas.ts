import { SERVER_SECRET_HEADER } from '@mcp-gw/protocol'
import { SCOPE_PATTERN, SERVER_NAME_PATTERN } from './validate-input.js'

/** The registry API's JSON schemas: requests are checked against them, answers serialised by them, OpenAPI built from them. */

export const iso = { type: 'string', format: 'date-time' } as const
export const serverName = { type: 'string', pattern: SERVER_NAME_PATTERN.source, maxLength: 64 } as const
export const metadata = { type: 'object', additionalProperties: true, maxProperties: 64 } as const
export const errorSchema = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } }
} as const
export const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 503: errorSchema } as const

export const secretHeader = {
  type: 'object',
  properties: { [SERVER_SECRET_HEADER]: { type: 'string', description: 'The registrant\'s secret (32 to 256 visible ASCII characters)' } }
} as const

export const registrationSchema = {
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

export const sessionSchema = {
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

export const issuedSchema = {
  type: 'object',
  properties: { token: { type: 'string' }, url: { type: 'string' }, expiresAt: iso, sessionKey: { type: 'string' }, sessionId: { type: 'string' }, created: { type: 'boolean' } }
} as const

const serverParams = { type: 'object', properties: { serverName } } as const

export const registerServerSchema = {
  summary: 'Register a backend, or heartbeat it',
  description: `The first registration of a live name owns it: later calls for it must send the same ${SERVER_SECRET_HEADER}. ` +
    'Without the header, the gateway makes a secret and returns it once, in `secret`. Another registrant gets 409 until the registration lapses.',
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
        proofKey: { type: 'string', description: 'What the backend checks X-Mcpgw-Registrant with (see @mcp-gw/protocol verifyRegistrantProof): keep it like the secret' },
        linkOrigin: { type: 'string', description: 'The origin session links point at (`https://*.apps.example.com` in isolated mode): what a page embedding them must allow in `frame-src`' }
      }
    },
    ...errors
  }
} as const

export const deregisterServerSchema = {
  summary: 'Deregister a backend (its registrant only)',
  headers: secretHeader,
  params: serverParams,
  response: { 204: { type: 'null' }, ...errors }
} as const

export const createSessionSchema = {
  summary: 'Create a session (or return the live one) and its URL',
  description: `For a live registration, by its registrant only (${SERVER_SECRET_HEADER}): 404 MCPGW_REGISTRY_SERVER_NOT_REGISTERED when there is none. ` +
    '`url` is `<public url><prefix>/<token>/` in path mode, or `https://<label>.<wildcard domain>/?mcpgw_link=<token>` in isolated mode (the credential is swapped for a cookie on first use).',
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
} as const

export const revokeSessionSchema = {
  summary: 'Revoke by sessionId, sessionKey or userId',
  body: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    properties: { sessionId: { type: 'string', maxLength: 64 }, sessionKey: { type: 'string', maxLength: 400 }, userId: { type: 'string', maxLength: 256 } }
  },
  response: { 200: { type: 'object', properties: { revoked: { type: 'integer' } } }, ...errors }
} as const

export const discoverServerSchema = {
  summary: 'The live registration of a server',
  params: serverParams,
  response: { 200: registrationSchema, ...errors }
} as const

export const listServersSchema = {
  summary: 'Live registrations',
  response: { 200: { type: 'object', properties: { servers: { type: 'array', items: registrationSchema } } }, ...errors }
} as const

export const listSessionsSchema = {
  summary: 'Live sessions, newest first (never their tokens)',
  querystring: { type: 'object', additionalProperties: false, properties: { userId: { type: 'string' }, serverName, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
  response: { 200: { type: 'object', properties: { sessions: { type: 'array', items: sessionSchema } } }, ...errors }
} as const

export const statsSchema = {
  summary: 'Counts of live sessions and registrations; per user only with byUser=true',
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
} as const

export const healthSchema = { summary: 'Liveness', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } as const
export const readySchema = { summary: 'Readiness: 200 when the store answers', response: { 200: { type: 'object', properties: { status: { type: 'string' } } }, 503: errorSchema } } as const

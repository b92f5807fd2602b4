import { EMAIL_DOMAIN_PATTERN, INCARNATION_HEADER, LOGIN_GROUP_PATTERN, MAX_AUDIENCE_ENTRIES, SERVER_SECRET_HEADER, SHARE_LEVELS } from '@mcp-gw/protocol'
// The patterns and limits are validate-input's (one home per rule); the schemas only refer to them.
import { ID_PATTERN, INCARNATION_PATTERN, INSTANCE_NAME_PATTERN, MAX_SCOPES, MAX_USER_ID_LENGTH, SCOPE_PATTERN, SERVER_NAME_PATTERN } from './validate-input.js'

/** The registry API's JSON schemas: requests are checked against them, answers serialised by them, OpenAPI built from them. */

export const iso = { type: 'string', format: 'date-time' } as const
export const serverName = { type: 'string', pattern: SERVER_NAME_PATTERN.source, maxLength: 64 } as const
export const metadata = { type: 'object', additionalProperties: true, maxProperties: 64 } as const
export const errorSchema = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } }
} as const
export const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 429: errorSchema, 503: errorSchema } as const

const groups = { type: 'array', minItems: 1, maxItems: MAX_AUDIENCE_ENTRIES, items: { type: 'string', pattern: LOGIN_GROUP_PATTERN.source }, description: 'With shareLevel authenticated: only people in one of these groups (as the login names them)' } as const
const emailDomains = { type: 'array', minItems: 1, maxItems: MAX_AUDIENCE_ENTRIES, items: { type: 'string', pattern: EMAIL_DOMAIN_PATTERN.source }, description: 'With shareLevel authenticated: or with a verified email address at one of these domains (lower case)' } as const
const audienceOut = { groups: { type: 'array', items: { type: 'string' } }, emailDomains: { type: 'array', items: { type: 'string' } } } as const

export const secretHeader = {
  type: 'object',
  properties: {
    [SERVER_SECRET_HEADER]: { type: 'string', description: 'The registrant\'s secret (32 to 256 visible ASCII characters)' },
    [INCARNATION_HEADER]: { type: 'string', description: 'The incarnation the caller registered with: the call acts for the instance this process holds' }
  }
} as const

const instanceId = { type: 'string', pattern: ID_PATTERN.source, description: 'An instance id, as registration answered it' } as const

export const instanceSchema = {
  type: 'object',
  properties: {
    instanceId: { type: 'string' },
    instance: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'integer' },
    protocol: { type: 'string', enum: ['http', 'https'] },
    registeredAt: iso,
    lastHeartbeatAt: iso,
    expiresAt: iso,
    sessions: { type: 'integer', description: 'Live sessions of this instance' }
  }
} as const

export const registrationSchema = {
  type: 'object',
  properties: {
    serverName: { type: 'string' },
    instanceId: { type: 'string' },
    instance: { type: 'string' },
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
    instanceId: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    shareLevel: { type: 'string', enum: [...SHARE_LEVELS] },
    ...audienceOut,
    sharedFrom: { type: 'string', description: 'On a share: the session it opens' },
    sharedWith: { type: 'string', description: 'On a share with one person: who' },
    createdAt: iso,
    expiresAt: iso,
    lastActivityAt: iso
  }
} as const

export const issuedSchema = {
  type: 'object',
  properties: { token: { type: 'string' }, url: { type: 'string' }, expiresAt: iso, sessionKey: { type: 'string' }, sessionId: { type: 'string' }, shareLevel: { type: 'string', enum: [...SHARE_LEVELS] }, ...audienceOut, sharedFrom: { type: 'string' }, sharedWith: { type: 'string' }, created: { type: 'boolean' } }
} as const

const serverParams = { type: 'object', properties: { serverName } } as const

export const serverSchema = {
  ...registrationSchema,
  properties: {
    ...registrationSchema.properties,
    instances: { type: 'array', items: instanceSchema, description: 'Every live instance of the name, oldest first (the top-level address is the first one\'s)' }
  }
} as const

export const registerServerSchema = {
  summary: 'Register an instance of a server (one process), or heartbeat it',
  description: 'A server name has any number of live instances; each session belongs to the instance that minted it and is routed to it alone. ' +
    `Calls for an instance send the ${SERVER_SECRET_HEADER} it was registered with (without the header, the gateway makes a secret and returns it once, in \`secret\`). ` +
    'Send `incarnation` (random, once per process) so a heartbeat is told from a second process with the same secret, and `instance` (a name the platform gives the process, kept across restarts) ' +
    'so a restarted process takes its earlier sessions back. A newcomer takes over a live instance of its identity only when the holder is gone; otherwise it becomes an instance of its own.',
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
      metadata,
      instance: { type: 'string', pattern: INSTANCE_NAME_PATTERN.source, description: 'The instance name the platform gave this process (stable across its restarts)' },
      incarnation: { type: 'string', pattern: INCARNATION_PATTERN.source, description: 'Random, made once per process start' }
    }
  },
  response: {
    200: {
      ...registrationSchema,
      properties: {
        ...registrationSchema.properties,
        secret: { type: 'string' },
        proofKey: { type: 'string', description: 'What the backend checks X-Mcpgw-Registrant with (see @mcp-gw/protocol verifyRegistrantProof): keep it like the secret' },
        linkOrigin: { type: 'string', description: 'The origin session links point at (`https://*.apps.example.com` in isolated mode): what a page embedding them must allow in `frame-src`' },
        frameAncestors: { type: 'array', items: { type: 'string' }, description: "Who may frame session pages (CSP `frame-ancestors` sources): with only `'self'` or `'none'`, no other site's view can frame a link; `*` alone: any page that holds the link (no policy is sent)" }
      }
    },
    ...errors
  }
} as const

export const deregisterServerSchema = {
  summary: 'Deregister the caller\'s instance (its registrant only)',
  headers: secretHeader,
  params: serverParams,
  querystring: { type: 'object', additionalProperties: false, properties: { instanceId } },
  response: { 204: { type: 'null' }, ...errors }
} as const

export const watchServerSchema = {
  summary: "Held open while this gateway runs, for the caller's instance (its registrant only)",
  description: 'A `text/event-stream` of comments, one every 15 s, that ends when this gateway stops: a registrant that sees it end registers again at once ' +
    'instead of at its next heartbeat (a gateway whose store forgot it, after a restart, learns it back within a second of listening). One per instance: a newer one ends the older.',
  headers: secretHeader,
  params: serverParams,
  querystring: { type: 'object', required: ['instanceId'], additionalProperties: false, properties: { instanceId } },
  response: { 200: { description: 'An event stream of comments', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors }
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
      userId: { type: 'string', minLength: 1, maxLength: MAX_USER_ID_LENGTH },
      serverName,
      serverType: serverName,
      ttlSeconds: { type: 'integer', minimum: 1 },
      scopes: { type: 'array', minItems: 1, maxItems: MAX_SCOPES, items: { type: 'string', pattern: SCOPE_PATTERN.source } },
      rotate: { type: 'boolean' },
      shareLevel: { type: 'string', enum: [...SHARE_LEVELS], description: 'Who may open the link: owner (only the logged-in person mapped to userId), authenticated (anyone logged in), link (whoever holds it). Default: the gateway\'s MCP_WEB_UI_MAX_SHARE_LEVEL (link); a wider one than that is refused.' },
      groups,
      emailDomains,
      metadata,
      instanceId
    }
  },
  response: { 200: issuedSchema, 201: issuedSchema, ...errors }
} as const

export const shareSessionSchema = {
  summary: 'Share a live session: a link of its own for another person, anyone logged in, or anyone with it',
  description: `By the session's registrant only (${SERVER_SECRET_HEADER}). The share has its own token and URL, ` +
    'opens the same UI on the same instance, is view-only unless `scopes` says more (never more than the session has), ' +
    'and ends when it expires, when it is revoked (POST /revoke-session with its sessionId), or when the session ends. ' +
    'The gateway\'s MCP_WEB_UI_MAX_SHARE_LEVEL holds; `person` and `authenticated` need a login at the gateway.',
  headers: secretHeader,
  body: {
    type: 'object',
    required: ['sessionId'],
    additionalProperties: false,
    properties: {
      sessionId: { type: 'string', pattern: ID_PATTERN.source, description: 'The session to share, as create-session answered it' },
      person: { type: 'string', minLength: 1, maxLength: MAX_USER_ID_LENGTH, description: 'The one logged-in person it opens for (the userId the gateway maps them to)' },
      shareLevel: { type: 'string', enum: [...SHARE_LEVELS], description: 'Without person: authenticated (anyone logged in, or those groups and emailDomains name) or link (whoever holds it)' },
      groups,
      emailDomains,
      scopes: { type: 'array', minItems: 1, maxItems: MAX_SCOPES, items: { type: 'string', pattern: SCOPE_PATTERN.source }, description: 'Default ["view"]' },
      ttlSeconds: { type: 'integer', minimum: 1, description: 'Default and at most: what is left of the session' }
    }
  },
  response: { 201: issuedSchema, ...errors }
} as const

export const revokeSessionSchema = {
  summary: 'Revoke by sessionId, sessionKey or userId',
  description: `With \`instanceId\`, only that instance's sessions, and only by its registrant (${SERVER_SECRET_HEADER}).`,
  headers: secretHeader,
  body: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 3,
    properties: {
      sessionId: { type: 'string', maxLength: 64 },
      sessionKey: { type: 'string', maxLength: 400 },
      userId: { type: 'string', maxLength: MAX_USER_ID_LENGTH },
      instanceId,
      reason: { type: 'string', maxLength: 200, description: 'Why, for the audit trail' }
    }
  },
  response: { 200: { type: 'object', properties: { revoked: { type: 'integer' } } }, ...errors }
} as const

export const discoverServerSchema = {
  summary: 'A server and its live instances',
  params: serverParams,
  response: { 200: serverSchema, ...errors }
} as const

export const listServersSchema = {
  summary: 'Live servers, each with its instances',
  response: { 200: { type: 'object', properties: { servers: { type: 'array', items: serverSchema } } }, ...errors }
} as const

export const listSessionsSchema = {
  summary: 'Live sessions, newest first (never their tokens)',
  querystring: { type: 'object', additionalProperties: false, properties: { userId: { type: 'string' }, serverName, instanceId, sharedFrom: { type: 'string', pattern: ID_PATTERN.source, description: 'Only the shares of this session' }, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
  response: { 200: { type: 'object', properties: { sessions: { type: 'array', items: sessionSchema } } }, ...errors }
} as const

export const statsSchema = {
  summary: 'Counts of live sessions and registrations; per user only with byUser=true',
  querystring: { type: 'object', additionalProperties: false, properties: { byUser: { type: 'boolean' } } },
  response: {
    200: {
      type: 'object',
      properties: {
        sessions: { type: 'object', properties: { live: { type: 'integer' }, byServer: { type: 'object', additionalProperties: { type: 'integer' } }, byInstance: { type: 'object', additionalProperties: { type: 'integer' } }, byUser: { type: 'object', additionalProperties: { type: 'integer' } } } },
        servers: { type: 'object', properties: { live: { type: 'integer' } } }
      }
    },
    ...errors
  }
} as const

export const healthSchema = { summary: 'Liveness', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } as const
export const readySchema = { summary: 'Readiness: 200 when the store answers', response: { 200: { type: 'object', properties: { status: { type: 'string' } } }, 503: errorSchema } } as const

const keyId = { type: 'string', pattern: '^[A-Za-z0-9_-]{16}$' } as const

export const apiKeySchema = {
  type: 'object',
  properties: {
    keyId: { type: 'string' },
    role: { type: 'string', enum: ['operator', 'registrant'] },
    servers: { type: 'array', items: { type: 'string' } },
    label: { type: 'string' },
    createdAt: iso,
    expiresAt: { type: ['string', 'null'], format: 'date-time' },
    revokedAt: { type: ['string', 'null'], format: 'date-time' },
    live: { type: 'boolean' }
  }
} as const

export const createKeySchema = {
  summary: 'Make an API key (operator only): shown once, the store keeps its SHA-256',
  description: 'A registrant key registers instances of its server names, mints their sessions, and lists and revokes their sessions; nothing else. An operator key does everything.',
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['role'],
    properties: {
      role: { type: 'string', enum: ['operator', 'registrant'] },
      servers: { type: 'array', items: serverName, minItems: 1, maxItems: 100 },
      label: { type: 'string', maxLength: 200 },
      ttlSeconds: { type: 'integer', minimum: 1 }
    }
  },
  response: { 201: { type: 'object', properties: { key: { type: 'string' }, ...apiKeySchema.properties } }, ...errors }
} as const

export const listKeysSchema = {
  summary: 'API keys made through the API (operator only; never the keys)',
  response: { 200: { type: 'object', properties: { keys: { type: 'array', items: apiKeySchema } } }, ...errors }
} as const

export const revokeKeySchema = {
  summary: 'Revoke an API key now, or after a grace period (operator only)',
  params: { type: 'object', required: ['keyId'], properties: { keyId } },
  querystring: { type: 'object', additionalProperties: false, properties: { graceSeconds: { type: 'integer', minimum: 0, maximum: 2592000 } } },
  response: { 204: { type: 'null' }, ...errors }
} as const

import createError from '@fastify/error'

/** Constructor arguments: the message's values, then optionally `{ cause }`. */
type Args<T extends unknown[]> = [...T, { cause: unknown }?]

/**
 * Every error the registry throws carries a stable `code`, an HTTP `statusCode`
 * and, where a lower layer failed, a `cause`. Match on `code`, never on messages.
 */

export const InvalidArgumentError = createError<Args<[string, string]>>(
  'MCPGW_REGISTRY_INVALID_ARGUMENT',
  'Invalid %s: %s',
  400
)

export const InvalidOptionError = createError<Args<[string, string]>>(
  'MCPGW_REGISTRY_INVALID_OPTION',
  'Invalid registry option %s: %s',
  500
)

export const WeakSecretError = createError<Args<[number]>>(
  'MCPGW_REGISTRY_WEAK_SECRET',
  'JWT secrets must be at least %d bytes long',
  500
)

export const StoreUnavailableError = createError<Args<[]>>(
  'MCPGW_REGISTRY_STORE_UNAVAILABLE',
  'The session store is unavailable',
  503
)

export const StoreFileError = createError<Args<[string, string]>>(
  'MCPGW_REGISTRY_STORE_FILE',
  'The store file %s cannot be used: %s',
  500
)

export const CapacityExceededError = createError<Args<[string, number]>>(
  'MCPGW_REGISTRY_CAPACITY_EXCEEDED',
  'The embedded store holds at most %s %d; raise the limit or use MongoDB',
  503
)

export const TooManySharesError = createError<Args<[number]>>(
  'MCPGW_REGISTRY_TOO_MANY_SHARES',
  'A session has at most %d live shares: revoke one first',
  409
)

export const SessionConflictError = createError<Args<[string]>>(
  'MCPGW_REGISTRY_SESSION_CONFLICT',
  'Could not settle the session for %s after repeated concurrent updates',
  503
)

export const RegistrationConflictError = createError<Args<[string]>>(
  'MCPGW_REGISTRY_REGISTRATION_CONFLICT',
  'Could not settle the registration of server %s after repeated concurrent updates',
  503
)

export const SigningKeyError = createError<Args<[string]>>(
  'MCPGW_REGISTRY_SIGNING_KEY',
  'Token signing failed: %s',
  500
)

export const BackendNotAllowedError = createError<Args<[]>>(
  'MCPGW_REGISTRY_BACKEND_NOT_ALLOWED',
  'Registrations may not point at that host',
  403
)

export const ApiUnauthorizedError = createError<Args<[]>>(
  'MCPGW_API_UNAUTHORIZED',
  'A valid API key is required (Authorization: Bearer <key>)',
  401
)

export const ApiForbiddenError = createError<Args<[]>>(
  'MCPGW_API_LOOPBACK_ONLY',
  'No API key is configured, so this route answers loopback clients only',
  403
)

export const ApiBrowserForbiddenError = createError<Args<[]>>(
  'MCPGW_API_BROWSER_FORBIDDEN',
  'The API does not answer web pages: call it from a server, or list the page\'s origin in MCP_WEB_UI_CORS_ORIGINS',
  403
)

export const NotFoundError = createError<Args<[string, string]>>(
  'MCPGW_API_NOT_FOUND',
  'No live %s named %s',
  404
)

/** Thrown by stores: the instance is live in another process of the same owner. The registry decides what follows. */
export const InstanceHeldError = createError<Args<[string]>>(
  'MCPGW_REGISTRY_INSTANCE_HELD',
  'Instance %s of this server is held by another live process',
  409
)

export const InstanceSupersededError = createError<Args<[string]>>(
  'MCPGW_REGISTRY_INSTANCE_SUPERSEDED',
  'This process no longer holds its instance of server %s (a restart of it took the instance over): register again',
  409
)

export const BackendIsGatewayError = createError<Args<[]>>(
  'MCPGW_REGISTRY_BACKEND_IS_GATEWAY',
  'Registrations may not point at the gateway itself',
  403
)

export const NotServerOwnerError = createError<Args<[string]>>(
  'MCPGW_REGISTRY_NOT_SERVER_OWNER',
  'Only the registrant of this instance of server %s may do this (send its X-Mcpgw-Server-Secret)',
  403
)

export const ServerNotRegisteredError = createError<Args<[string]>>(
  'MCPGW_REGISTRY_SERVER_NOT_REGISTERED',
  'Server %s has no live instance of this registrant: register it, then ask for sessions',
  404
)

export const ApiInvalidRequestError = createError<Args<[string]>>(
  'MCPGW_API_INVALID_REQUEST',
  'Invalid request: %s',
  400
)

export const ApiBadRequestError = createError<Args<[]>>(
  'MCPGW_API_BAD_REQUEST',
  'The request could not be handled',
  400
)

/** Too many registrants hold a watch open on this gateway: they heartbeat as before. */
export const ApiWatchesFullError = createError<Args<[]>>(
  'MCPGW_API_WATCHES_FULL',
  'This gateway holds as many watches as it may: heartbeats go on as before',
  503
)

/** The gateway is closing: a watch would end at once; register again shortly (elsewhere, or here once it is back). */
export const ApiShuttingDownError = createError<Args<[]>>(
  'MCPGW_API_SHUTTING_DOWN',
  'The gateway is shutting down; try again shortly',
  503
)

export const ApiInternalError = createError<Args<[]>>(
  'MCPGW_API_INTERNAL',
  'Request failed',
  500
)

export const ApiKeyScopeError = createError<Args<[]>>(
  'MCPGW_API_KEY_SCOPE',
  'This API key may not do that: registrant keys act for their own server names only (an operator key does the rest)',
  403
)

export const ApiKeyNotFoundError = createError<Args<[]>>(
  'MCPGW_API_KEY_NOT_FOUND',
  'No live API key has that id',
  404
)

/** Too many session creations: `retryAfterSeconds` says when one more will be taken. */
export const SessionRateLimitedError = createError<Args<[string, number]>>(
  'MCPGW_REGISTRY_RATE_LIMITED',
  'Too many sessions asked for server %s or with this key; retry in %d s',
  429
)

export const ServerQuotaError = createError<Args<[string, number]>>(
  'MCPGW_REGISTRY_SERVER_QUOTA',
  'Server %s holds its quota of %d live sessions: revoke some, let them expire, or raise MCP_WEB_UI_MAX_SESSIONS_PER_SERVER',
  429
)

export const AuditUnavailableError = createError<Args<[]>>(
  'MCPGW_API_AUDIT_UNAVAILABLE',
  'The audit trail is off, or its sink cannot be read back (only the file and Mongo sinks can)',
  404
)

export const AuditForbiddenError = createError<Args<[]>>(
  'MCPGW_API_AUDIT_FORBIDDEN',
  'Only operators may read the audit trail',
  403
)

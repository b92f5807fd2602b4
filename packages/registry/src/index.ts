// The public API: the plugins, the Registry and its stores, audit sinks, keys, tokens, session
// hosts, errors, defaults and types. Everything else is internal.
export { mcpRegistryPlugin, mcpRegistryPlugin as default, DEFAULT_SERVER_SELECTION_TIMEOUT_MS } from './plugin.js'
export type { RegistryPluginOptions, MongoConnectionOptions } from './plugin.js'
export { Registry } from './registry.js'
export { mcpRegistryApi, apiKeyringFor, SERVER_SECRET_HEADER } from './http-api.js'
export { Audit, AUDIT_EVENT_NAMES, auditText, auditUserAgent } from './audit.js'
export type { AuditActor, AuditContext, AuditEvent, AuditEventName, AuditQuery, AuditSink } from './audit.js'
export { parseAuditTime } from './audit-api.js'
export {
  StreamAuditSink, FileAuditSink, MongoAuditSink, MemoryAuditSink, readAuditFiles,
  DEFAULT_AUDIT_FILE_MAX_BYTES, DEFAULT_AUDIT_FILE_KEEP, DEFAULT_AUDIT_RETENTION_MS, DEFAULT_AUDIT_FLUSH_MS, DEFAULT_AUDIT_BATCH, DEFAULT_AUDIT_MAX_BUFFER
} from './audit-sinks.js'
export type { FileAuditSinkOptions, MongoAuditSinkOptions } from './audit-sinks.js'
export { apiGuard } from './api-guard.js'
export { parseStaticRegistrantKeys, MIN_API_KEY_LENGTH } from './api-keys.js'
export type { ApiCaller, ApiKeyring, StaticApiKey } from './api-keys.js'
export { SessionQuota, DEFAULT_SESSION_RATE_PER_SECOND, DEFAULT_SESSION_BURST, DEFAULT_MAX_SESSIONS_PER_SERVER } from './quota.js'
export type { SessionQuotaOptions } from './quota.js'
export type { ApiGuardOptions } from './api-guard.js'
export type { RegistryApiOptions } from './http-api.js'
export type { CreateSessionInput, IssuedSession, InstanceSelector, RegisterServerInput, ListSessionsInput, RegistryConstructorOptions, ShareSessionInput } from './registry.js'
export { MAX_SHARES_PER_SESSION } from './registry.js'
export { MemoryStore } from './memory-store.js'
export type { MemoryStoreOptions, StoreChange } from './memory-store.js'
export { JournalStore, ensurePrivateDirectory } from './journal-store.js'
export type { JournalStoreOptions } from './journal-store.js'
export { MongoStore } from './mongo-store.js'
export type { MongoStoreOptions } from './mongo-store.js'
export { TokenService, MIN_SECRET_BYTES, secretKeyId } from './tokens.js'
export type { TokenOptions, VerifyResult } from './tokens.js'
export {
  validateOptions,
  DEFAULT_SERVER_TYPE, DEFAULT_SCOPES, DEFAULT_SESSION_TTL_SECONDS, DEFAULT_MAX_SESSION_TTL_SECONDS,
  DEFAULT_REGISTRATION_TTL_SECONDS, DEFAULT_ACTIVITY_THROTTLE_MS, DEFAULT_SWEEP_INTERVAL_MS,
  DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SERVERS, DEFAULT_MONGO_DB_NAME
} from './options.js'
export type { RegistryOptions, NormalizedRegistryOptions } from './options.js'
export * as errors from './errors.js'
export {
  SERVER_NAME_PATTERN, SCOPE_PATTERN, MAX_USER_ID_LENGTH, MAX_SCOPES, MAX_METADATA_BYTES
} from './validate-input.js'
export type * from './types.js'
export { DEFAULT_ALLOWED_BACKENDS } from './backend-policy.js'
export { SHARE_LEVELS, shareLevelWithin } from '@mcp-gw/protocol'
export type { ShareLevel } from '@mcp-gw/protocol'
export { parseWildcardUrl, sessionHostLabel, sessionHostOf, sessionLink, sessionOrigin, SESSION_LINK_PARAM } from './session-host.js'
export type { WildcardUrl } from './session-host.js'

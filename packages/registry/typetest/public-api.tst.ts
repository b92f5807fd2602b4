import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import * as api from '@mcp-gw/registry'
import { mcpRegistryApi, mcpRegistryPlugin, Registry } from '@mcp-gw/registry'
import type { IssuedSession, RegistryPluginOptions, SessionRecord } from '@mcp-gw/registry'

// The package's public API, pinned: adding or removing an export is a decision, made here.
describe('@mcp-gw/registry exports', () => {
  test('exactly these values', () => {
    expect<keyof typeof api>().type.toBe<
      | 'AUDIT_EVENT_NAMES' | 'Audit' | 'DEFAULT_ACTIVITY_THROTTLE_MS' | 'DEFAULT_ALLOWED_BACKENDS'
      | 'DEFAULT_AUDIT_BATCH' | 'DEFAULT_AUDIT_FILE_KEEP' | 'DEFAULT_AUDIT_FILE_MAX_BYTES'
      | 'DEFAULT_AUDIT_FLUSH_MS' | 'DEFAULT_AUDIT_MAX_BUFFER' | 'DEFAULT_AUDIT_RETENTION_MS'
      | 'DEFAULT_MAX_SERVERS' | 'DEFAULT_MAX_SESSIONS' | 'DEFAULT_MAX_SESSIONS_PER_SERVER'
      | 'DEFAULT_MAX_SESSION_TTL_SECONDS' | 'DEFAULT_MONGO_DB_NAME' | 'DEFAULT_REGISTRATION_TTL_SECONDS'
      | 'DEFAULT_SCOPES' | 'DEFAULT_SERVER_SELECTION_TIMEOUT_MS' | 'DEFAULT_SERVER_TYPE'
      | 'DEFAULT_SESSION_BURST' | 'DEFAULT_SESSION_RATE_PER_SECOND' | 'DEFAULT_SESSION_TTL_SECONDS'
      | 'DEFAULT_SWEEP_INTERVAL_MS' | 'FileAuditSink' | 'JournalStore' | 'MAX_METADATA_BYTES' | 'MAX_SCOPES' | 'MAX_SHARES_PER_SESSION'
      | 'MAX_USER_ID_LENGTH' | 'MIN_API_KEY_LENGTH' | 'MIN_SECRET_BYTES' | 'MemoryAuditSink' | 'MemoryStore'
      | 'MongoAuditSink' | 'MongoStore' | 'Registry' | 'SCOPE_PATTERN' | 'SERVER_NAME_PATTERN'
      | 'SERVER_SECRET_HEADER' | 'SESSION_LINK_PARAM' | 'SHARE_LEVELS' | 'SessionQuota' | 'StreamAuditSink' | 'TokenService'
      | 'apiGuard' | 'apiKeyringFor' | 'auditText' | 'auditUserAgent' | 'default' | 'ensurePrivateDirectory' | 'errors'
      | 'mcpRegistryApi' | 'mcpRegistryPlugin' | 'parseAuditTime' | 'parseStaticRegistrantKeys'
      | 'parseWildcardUrl' | 'readAuditFiles' | 'secretKeyId' | 'sessionHostLabel' | 'sessionHostOf'
      | 'sessionLink' | 'sessionOrigin' | 'shareLevelWithin' | 'validateOptions'
    >()
  })

  test('the plugin is the default export', () => {
    expect(api.default).type.toBe(mcpRegistryPlugin)
  })
})

describe('registering the registry in a Fastify app', () => {
  const app = Fastify()

  test('the plugin and the API take their options, and refuse ill-typed ones', () => {
    expect(app.register).type.toBeCallableWith(mcpRegistryPlugin, { secret: 'x'.repeat(32) })
    expect(app.register).type.toBeCallableWith(mcpRegistryPlugin, { secret: 'x'.repeat(32), mongo: { url: 'mongodb://127.0.0.1:27017' } })
    expect(app.register).type.toBeCallableWith(mcpRegistryPlugin, { secret: 'x'.repeat(32), file: { path: '/var/lib/mcp-gw/store.journal' } })
    expect(app.register).type.not.toBeCallableWith(mcpRegistryPlugin, { secret: 'x'.repeat(32), file: '/var/lib/mcp-gw/store.journal' })
    expect(app.register).type.not.toBeCallableWith(mcpRegistryPlugin, { secret: 32 })
    expect(app.register).type.toBeCallableWith(mcpRegistryApi, { apiKey: 'k'.repeat(32) })
    expect<RegistryPluginOptions>().type.toBeAssignableFrom({ secret: 'x'.repeat(32) })
  })

  test('the instance carries the Registry', () => {
    expect(app.mcpRegistry).type.toBe<Registry>()
  })

  test('a session is minted for a user of a registered server', () => {
    expect(app.mcpRegistry.createSession({ userId: 'alice', serverName: 'todoodles' })).type.toBe<Promise<IssuedSession>>()
    expect<IssuedSession['session']>().type.toBe<SessionRecord>()
    expect(app.mcpRegistry.createSession).type.not.toBeCallableWith({ serverName: 'todoodles' })
  })
})

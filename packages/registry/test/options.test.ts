import t from 'tap'
import * as protocol from '@mcp-gw/protocol'
import {
  DEFAULT_ACTIVITY_THROTTLE_MS, DEFAULT_MAX_SESSION_TTL_SECONDS, DEFAULT_REGISTRATION_TTL_SECONDS,
  DEFAULT_SCOPES, DEFAULT_SERVER_TYPE, DEFAULT_SESSION_TTL_SECONDS, validateOptions
} from '../src/options.js'

t.test('defaults are filled in and the result is frozen', async (t) => {
  const options = validateOptions({})
  t.equal(options.sessionTtlSeconds, DEFAULT_SESSION_TTL_SECONDS)
  t.equal(options.maxSessionTtlSeconds, DEFAULT_MAX_SESSION_TTL_SECONDS)
  t.equal(options.registrationTtlSeconds, DEFAULT_REGISTRATION_TTL_SECONDS)
  t.equal(options.activityThrottleMs, DEFAULT_ACTIVITY_THROTTLE_MS)
  t.equal(options.defaultServerType, DEFAULT_SERVER_TYPE)
  t.same(options.defaultScopes, DEFAULT_SCOPES)
  t.equal(options.now, Date.now)
  t.ok(Object.isFrozen(options))
  t.ok(Object.isFrozen(options.defaultScopes))
  t.same(validateOptions(), validateOptions({}))
})

t.test('the default scopes are the protocol\'s, which the client SDK grants direct links too', async (t) => {
  t.equal(DEFAULT_SCOPES, protocol.DEFAULT_SCOPES)
  t.same(DEFAULT_SCOPES, ['view', 'interact'])
})

t.test('given values are kept', async (t) => {
  const now = (): number => 5
  const options = validateOptions({
    sessionTtlSeconds: 60,
    maxSessionTtlSeconds: 120,
    registrationTtlSeconds: 30,
    activityThrottleMs: 0,
    defaultScopes: ['view'],
    defaultServerType: 'dashboard',
    now,
    maxSessions: 10,
    issuer: 'gw'
  })
  t.match(options, { sessionTtlSeconds: 60, maxSessionTtlSeconds: 120, registrationTtlSeconds: 30, activityThrottleMs: 0, defaultServerType: 'dashboard', maxSessions: 10, issuer: 'gw' })
  t.same(options.defaultScopes, ['view'])
  t.equal(options.now, now)
})

t.test('a small maximum lowers the default TTL instead of failing', async (t) => {
  t.equal(validateOptions({ maxSessionTtlSeconds: 600 }).sessionTtlSeconds, 600)
})

t.test('bad values get a coded error naming the option', async (t) => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['sessionTtlSeconds', { sessionTtlSeconds: 0 }],
    ['sessionTtlSeconds', { sessionTtlSeconds: 1.5 }],
    ['sessionTtlSeconds', { sessionTtlSeconds: 200, maxSessionTtlSeconds: 100 }],
    ['maxSessionTtlSeconds', { maxSessionTtlSeconds: -1 }],
    ['registrationTtlSeconds', { registrationTtlSeconds: '90' }],
    ['activityThrottleMs', { activityThrottleMs: -1 }],
    ['sweepIntervalMs', { sweepIntervalMs: 0 }],
    ['maxSessions', { maxSessions: 0 }],
    ['maxServers', { maxServers: 2.5 }],
    ['defaultScopes', { defaultScopes: [] }],
    ['defaultScopes', { defaultScopes: ['Bad Scope'] }],
    ['defaultServerType', { defaultServerType: 'has space' }],
    ['now', { now: 5 }],
    ['issuer', { issuer: '' }],
    ['signingKid', { signingKid: 3 }],
    ['previousSecrets', { previousSecrets: 'x'.repeat(40) }]
  ]
  for (const [name, options] of bad) {
    t.throws(() => validateOptions(options), { code: 'MCPGW_REGISTRY_INVALID_OPTION', message: new RegExp(name) }, JSON.stringify(options))
  }
  t.throws(() => validateOptions(null as unknown as object), { code: 'MCPGW_REGISTRY_INVALID_OPTION' })
})

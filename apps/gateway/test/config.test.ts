import t from 'tap'
import { ConfigError, loadConfig, reusePortSupported } from '../src/config.js'

t.test('defaults are those of the original gateway', async (t) => {
  const config = loadConfig({})
  t.match(config, { frameAncestors: undefined, port: 3082, host: '127.0.0.1', mongoUrl: undefined, mongoDbName: 'mcp_webui', prefix: '/mcp', apiKey: undefined, corsOrigins: [], trustProxy: false, debug: false, drainTimeoutMs: 10_000 })
})

t.test('every variable is read', async (t) => {
  const config = loadConfig({
    MCP_WEB_UI_GATEWAY_PORT: '4000',
    MCP_WEB_UI_GATEWAY_HOST: '0.0.0.0',
    MCP_WEB_UI_MONGO_URL: 'mongodb://db:27017',
    MCP_WEB_UI_MONGO_DB_NAME: 'gw',
    MCP_WEB_UI_JWT_SECRET: 'x'.repeat(32),
    MCP_WEB_UI_PROXY_PREFIX: '/apps',
    MCP_WEB_UI_GATEWAY_API_KEY: 'k'.repeat(20),
    MCP_WEB_UI_PUBLIC_URL: 'https://example.com',
    MCP_WEB_UI_WILDCARD_URL: 'https://*.apps.example.com',
    MCP_WEB_UI_CORS_ORIGINS: 'https://a.example, https://b.example',
    MCP_WEB_UI_FRAME_ANCESTORS: "'self' https://claude.ai, https://*.claudemcpcontent.com",
    MCP_WEB_UI_ALLOWED_BACKENDS: '10.0.0.0/8,todo-ui',
    MCP_WEB_UI_TRUST_PROXY: '127.0.0.1,10.0.0.0/8',
    MCP_WEB_UI_DRAIN_TIMEOUT_MS: '2000',
    DEBUG: 'true'
  })
  t.match(config, {
    port: 4000,
    host: '0.0.0.0',
    mongoUrl: 'mongodb://db:27017',
    mongoDbName: 'gw',
    prefix: '/apps',
    publicUrl: 'https://example.com',
    wildcardUrl: 'https://*.apps.example.com',
    corsOrigins: ['https://a.example', 'https://b.example'],
    frameAncestors: ["'self'", 'https://claude.ai', 'https://*.claudemcpcontent.com'],
    allowedBackends: ['10.0.0.0/8', 'todo-ui'],
    trustProxy: ['127.0.0.1', '10.0.0.0/8'],
    drainTimeoutMs: 2000,
    debug: true,
    accessLog: true
  })
  t.equal(loadConfig({}).accessLog, false, 'no access log by default')
  t.match(loadConfig({}), { headersTimeoutMs: 30_000, maxConnections: 0, maxBodyBytes: 1024 ** 3 }, 'limits by default')
  t.equal(loadConfig({ MCP_WEB_UI_ACCESS_LOG: 'true' }).accessLog, true)
  t.equal(loadConfig({ DEBUG: 'true', MCP_WEB_UI_ACCESS_LOG: 'false' }).accessLog, false, 'an explicit setting wins over DEBUG')
  t.equal(loadConfig({}).logFormat, undefined, 'the log format follows the terminal unless set')
  t.equal(loadConfig({ MCP_WEB_UI_LOG_FORMAT: 'json' }).logFormat, 'json')
  t.equal(loadConfig({ MCP_WEB_UI_TRUST_PROXY: 'true', MCP_WEB_UI_GATEWAY_API_KEY: 'k'.repeat(20) }).trustProxy, true)
  t.equal(loadConfig({ MCP_WEB_UI_WILDCARD_URL: 'http://*.localhost:3082' }).wildcardUrl, 'http://*.localhost:3082')
  t.equal(loadConfig({ MCP_WEB_UI_GATEWAY_PORT: '' }).port, 3082, 'empty means unset')
})

t.test('a bad value stops the boot with a message naming the variable, never its value', async (t) => {
  const cases: Array<[string, Record<string, string>]> = [
    ['MCP_WEB_UI_GATEWAY_PORT', { MCP_WEB_UI_GATEWAY_PORT: '99999' }],
    ['MCP_WEB_UI_GATEWAY_PORT', { MCP_WEB_UI_GATEWAY_PORT: 'eighty' }],
    ['MCP_WEB_UI_MONGO_URL', { MCP_WEB_UI_MONGO_URL: 'postgres://x', MCP_WEB_UI_JWT_SECRET: 'x'.repeat(32) }],
    ['MCP_WEB_UI_PROXY_PREFIX', { MCP_WEB_UI_PROXY_PREFIX: 'mcp/' }],
    ['MCP_WEB_UI_GATEWAY_API_KEY', { MCP_WEB_UI_GATEWAY_API_KEY: 'short-key-value' }],
    ['MCP_WEB_UI_PUBLIC_URL', { MCP_WEB_UI_PUBLIC_URL: 'example.com' }],
    ['MCP_WEB_UI_CORS_ORIGINS', { MCP_WEB_UI_CORS_ORIGINS: '*' }],
    ['MCP_WEB_UI_CORS_ORIGINS', { MCP_WEB_UI_CORS_ORIGINS: 'https://a.example/path' }],
    ['MCP_WEB_UI_JWT_SECRET', { MCP_WEB_UI_JWT_SECRET: 'too-short-secret-value' }],
    ['MCP_WEB_UI_JWT_SECRET', { MCP_WEB_UI_MONGO_URL: 'mongodb://db:27017' }],
    ['MCP_WEB_UI_DRAIN_TIMEOUT_MS', { MCP_WEB_UI_DRAIN_TIMEOUT_MS: '-1' }],
    ['MCP_WEB_UI_ACCESS_LOG', { MCP_WEB_UI_ACCESS_LOG: 'yes' }],
    ['MCP_WEB_UI_LOG_FORMAT', { MCP_WEB_UI_LOG_FORMAT: 'text' }],
    ['MCP_WEB_UI_HEADERS_TIMEOUT_MS', { MCP_WEB_UI_HEADERS_TIMEOUT_MS: '5' }],
    ['MCP_WEB_UI_MAX_BODY_BYTES', { MCP_WEB_UI_MAX_BODY_BYTES: '-1' }],
    // A hop count trusts any client that sends enough X-Forwarded-For entries.
    ['MCP_WEB_UI_TRUST_PROXY', { MCP_WEB_UI_TRUST_PROXY: '2' }],
    // Behind a proxy every client is loopback: without a key the API would be open.
    ['MCP_WEB_UI_TRUST_PROXY.*MCP_WEB_UI_GATEWAY_API_KEY', { MCP_WEB_UI_TRUST_PROXY: '127.0.0.1' }],
    ['MCP_WEB_UI_FRAME_ANCESTORS', { MCP_WEB_UI_FRAME_ANCESTORS: 'https://claude.ai;script-src' }],
    ['MCP_WEB_UI_FRAME_ANCESTORS', { MCP_WEB_UI_FRAME_ANCESTORS: "'self' *" }],
    ['MCP_WEB_UI_WILDCARD_URL', { MCP_WEB_UI_WILDCARD_URL: 'https://apps.example.com' }],
    ['MCP_WEB_UI_WILDCARD_URL', { MCP_WEB_UI_WILDCARD_URL: 'https://*.apps_x.com' }],
    // Rotation: previous values only beside a current one, each long enough, none the current one or twice.
    ['MCP_WEB_UI_JWT_SECRET_PREVIOUS needs MCP_WEB_UI_JWT_SECRET', { MCP_WEB_UI_JWT_SECRET_PREVIOUS: 'p'.repeat(32) }],
    ['MCP_WEB_UI_JWT_SECRET_PREVIOUS entry 2 is shorter than 32 bytes', { MCP_WEB_UI_JWT_SECRET: 'c'.repeat(32), MCP_WEB_UI_JWT_SECRET_PREVIOUS: `${'p'.repeat(32)},previous-but-too-short-secret` }],
    ['MCP_WEB_UI_JWT_SECRET_PREVIOUS entry 1 is the current', { MCP_WEB_UI_JWT_SECRET: 'same-secret-as-before-0123456789abcdef', MCP_WEB_UI_JWT_SECRET_PREVIOUS: 'same-secret-as-before-0123456789abcdef' }],
    ['MCP_WEB_UI_JWT_SECRET_PREVIOUS entry 2 appears twice', { MCP_WEB_UI_JWT_SECRET: 'c'.repeat(32), MCP_WEB_UI_JWT_SECRET_PREVIOUS: 'listed-twice-secret-0123456789abcdef, listed-twice-secret-0123456789abcdef' }],
    ['MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS needs MCP_WEB_UI_GATEWAY_API_KEY', { MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS: 'previous-api-key-0123456789' }],
    ['MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS entry 1 is shorter than 16 characters', { MCP_WEB_UI_GATEWAY_API_KEY: 'k'.repeat(20), MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS: 'short-old-key' }],
    ['MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS entry 1 is the current', { MCP_WEB_UI_GATEWAY_API_KEY: 'current-api-key-0123456789', MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS: 'current-api-key-0123456789' }],
    ['MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS entry 2 appears twice', { MCP_WEB_UI_GATEWAY_API_KEY: 'k'.repeat(20), MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS: 'old-api-key-0123456789,old-api-key-0123456789' }],
    // Checked by the proxy plugin's own rules, named here by variable; the key is a secret.
    ['MCP_WEB_UI_FORWARD_AUTH_KEY', { MCP_WEB_UI_FORWARD_AUTH_KEY: 'short-edge-key' }],
    ['MCP_WEB_UI_FORWARD_AUTH_KEY', { MCP_WEB_UI_FORWARD_AUTH_KEY: 'edge key with spaces 0123456789' }]
  ]
  for (const [name, env] of cases) {
    const err = (() => { try { loadConfig(env); return null } catch (e) { return e as Error } })()
    t.type(err, ConfigError, JSON.stringify(env))
    t.match(err?.message, new RegExp(name), `names ${name}`)
    for (const value of Object.values(env)) if (value.length > 8) t.notMatch(err?.message, value, 'does not repeat the value')
  }
})

t.test('MCP_WEB_UI_REUSE_PORT: several processes on one port only when they share a Mongo store, on a Node that can', async (t) => {
  t.equal(loadConfig({}).reusePort, false)
  t.throws(() => loadConfig({ MCP_WEB_UI_REUSE_PORT: 'true' }), { code: 'MCPGW_GATEWAY_CONFIG', message: /MCP_WEB_UI_REUSE_PORT needs MCP_WEB_UI_MONGO_URL/ })
  t.throws(() => loadConfig({ MCP_WEB_UI_REUSE_PORT: 'yes' }), { code: 'MCPGW_GATEWAY_CONFIG' })
  const withMongo = { MCP_WEB_UI_REUSE_PORT: 'true', MCP_WEB_UI_MONGO_URL: 'mongodb://db:27017', MCP_WEB_UI_JWT_SECRET: 'x'.repeat(32) }
  if (reusePortSupported()) t.equal(loadConfig(withMongo).reusePort, true)
  else t.throws(() => loadConfig(withMongo), { message: /needs Node.js 22.12 or later/ })
  t.equal(reusePortSupported('22.12.0', 'linux'), true)
  t.equal(reusePortSupported('22.11.0', 'linux'), false)
  t.equal(reusePortSupported('23.0.0', 'linux'), false)
  t.equal(reusePortSupported('24.1.0', 'linux'), true)
  t.equal(reusePortSupported('24.1.0', 'win32'), false)
})

t.test('rotation: the previous JWT secrets and API keys, comma-separated', async (t) => {
  const config = loadConfig({
    MCP_WEB_UI_JWT_SECRET: 'the-current-jwt-secret-0123456789abcdef',
    MCP_WEB_UI_JWT_SECRET_PREVIOUS: 'the-previous-jwt-secret-0123456789abcdef, an-older-jwt-secret-0123456789abcdef01',
    MCP_WEB_UI_GATEWAY_API_KEY: 'the-current-api-key-0123',
    MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS: 'the-previous-api-key-0123'
  })
  t.same(config.jwtPreviousSecrets, ['the-previous-jwt-secret-0123456789abcdef', 'an-older-jwt-secret-0123456789abcdef01'])
  t.same(config.previousApiKeys, ['the-previous-api-key-0123'])
  t.match(loadConfig({}), { jwtPreviousSecrets: [], previousApiKeys: [] }, 'none by default')
  t.same(loadConfig({ MCP_WEB_UI_JWT_SECRET: 'c'.repeat(32), MCP_WEB_UI_JWT_SECRET_PREVIOUS: '' }).jwtPreviousSecrets, [], 'empty means unset')
})

t.test('the login (MCP_WEB_UI_OIDC_*) and the share-level cap', async (t) => {
  const login = {
    MCP_WEB_UI_PUBLIC_URL: 'https://gw.example.com',
    MCP_WEB_UI_OIDC_ISSUER: 'https://keycloak.example.com/realms/main',
    MCP_WEB_UI_OIDC_CLIENT_ID: 'mcp-gw',
    MCP_WEB_UI_OIDC_CLIENT_SECRET: 'client-secret-0123456789abcdef'
  }
  t.same(loadConfig(login).oidc, { issuer: 'https://keycloak.example.com/realms/main', clientId: 'mcp-gw', clientSecret: 'client-secret-0123456789abcdef', scopes: 'openid email profile', userClaim: 'sub', groupsClaim: undefined, loginSeconds: 8 * 3600 })
  t.match(loadConfig({ ...login, MCP_WEB_UI_OIDC_USER_CLAIM: 'email', MCP_WEB_UI_OIDC_SCOPES: ' openid  email ', MCP_WEB_UI_LOGIN_HOURS: '0.5', MCP_WEB_UI_MAX_SHARE_LEVEL: 'owner' }), { oidc: { userClaim: 'email', scopes: 'openid email', loginSeconds: 1800 }, maxShareLevel: 'owner' })
  t.same([loadConfig({}).oidc, loadConfig({}).maxShareLevel], [null, 'link'], 'off by default: bearer links, as before')
  t.equal(loadConfig({ ...login, MCP_WEB_UI_WILDCARD_URL: 'https://*.apps.example.com' }).wildcardUrl, 'https://*.apps.example.com', 'in isolated mode too')
  t.equal(loadConfig({ ...login, MCP_WEB_UI_OIDC_ISSUER: 'http://127.0.0.1:9999', MCP_WEB_UI_OIDC_CLIENT_SECRET: '' }).oidc?.clientSecret, undefined, 'a provider on this machine over http; a public client')
  const edge = { MCP_WEB_UI_GATEWAY_API_KEY: 'k'.repeat(20), MCP_WEB_UI_TRUST_PROXY: '10.0.0.5', MCP_WEB_UI_LOGIN_HEADER: 'X-Auth-Request-Email', MCP_WEB_UI_LOGIN_JWT_HEADER: 'Cf-Access-Jwt-Assertion', MCP_WEB_UI_LOGIN_JWKS_URL: 'https://team.cloudflareaccess.com/cdn-cgi/access/certs', MCP_WEB_UI_LOGIN_JWT_AUDIENCE: 'aud-tag', MCP_WEB_UI_MAX_SHARE_LEVEL: 'owner' }
  t.match(loadConfig(edge), { edgeLogin: { header: 'x-auth-request-email', jwtHeader: 'cf-access-jwt-assertion', jwtAudience: 'aud-tag', jwtUserClaim: 'email' }, maxShareLevel: 'owner', oidc: null }, 'an identity-aware proxy in front is a login too')
  t.equal(loadConfig({ ...edge, MCP_WEB_UI_WILDCARD_URL: 'https://*.apps.example.com' }).wildcardUrl, 'https://*.apps.example.com', 'and works in isolated mode')
  t.match(loadConfig({ ...edge, MCP_WEB_UI_LOGIN_GROUPS_HEADER: 'X-Auth-Request-Groups', MCP_WEB_UI_LOGIN_JWT_GROUPS_CLAIM: 'roles', MCP_WEB_UI_LOGIN_EMAIL_VERIFIED: 'true' }).edgeLogin, { groupsHeader: 'x-auth-request-groups', jwtGroupsClaim: 'roles', emailVerified: true }, 'its groups: a header beside the user header, a claim of the assertion; its addresses said to be verified')
  t.equal(loadConfig(edge).edgeLogin?.emailVerified, false, 'by default an edge\'s address is no proof')
  t.match(loadConfig({ ...login, MCP_WEB_UI_OIDC_GROUPS_CLAIM: 'https://example.com/groups' }).oidc, { groupsClaim: 'https://example.com/groups' }, 'a namespaced groups claim (Auth0)')
  const cases: Array<[RegExp, Record<string, string>]> = [
    [/MCP_WEB_UI_MAX_SHARE_LEVEL=owner needs a login at the gateway/, { MCP_WEB_UI_MAX_SHARE_LEVEL: 'owner' }],
    [/MCP_WEB_UI_LOGIN_GROUPS_HEADER goes beside MCP_WEB_UI_LOGIN_HEADER/, { MCP_WEB_UI_LOGIN_GROUPS_HEADER: 'X-Auth-Request-Groups' }],
    [/MCP_WEB_UI_LOGIN_GROUPS_HEADER goes beside MCP_WEB_UI_LOGIN_HEADER, and names another header/, { ...edge, MCP_WEB_UI_LOGIN_GROUPS_HEADER: 'X-Auth-Request-Email' }],
    [/MCP_WEB_UI_MAX_SHARE_LEVEL must be one of owner, authenticated, link/, { MCP_WEB_UI_MAX_SHARE_LEVEL: 'everyone' }],
    [/MCP_WEB_UI_OIDC_ISSUER needs MCP_WEB_UI_OIDC_CLIENT_ID/, { ...login, MCP_WEB_UI_OIDC_CLIENT_ID: '' }],
    [/MCP_WEB_UI_OIDC_CLIENT_ID and _SECRET need MCP_WEB_UI_OIDC_ISSUER/, { MCP_WEB_UI_OIDC_CLIENT_ID: 'mcp-gw' }],
    [/MCP_WEB_UI_OIDC_ISSUER needs MCP_WEB_UI_PUBLIC_URL/, { ...login, MCP_WEB_UI_PUBLIC_URL: '' }],
    [/MCP_WEB_UI_OIDC_ISSUER must be an https URL/, { ...login, MCP_WEB_UI_OIDC_ISSUER: 'http://keycloak.example.com/realms/main' }],
    [/MCP_WEB_UI_OIDC_ISSUER must be the OpenID provider's issuer URL/, { ...login, MCP_WEB_UI_OIDC_ISSUER: 'keycloak.example.com' }],
    [/MCP_WEB_UI_OIDC_SCOPES must be space-separated scopes including openid/, { ...login, MCP_WEB_UI_OIDC_SCOPES: 'email profile' }],
    [/MCP_WEB_UI_LOGIN_HOURS must be at most 720/, { ...login, MCP_WEB_UI_LOGIN_HOURS: '1000' }],
    [/needs an https MCP_WEB_UI_PUBLIC_URL/, { ...login, MCP_WEB_UI_PUBLIC_URL: 'http://gw.example.com' }],
    [/MCP_WEB_UI_LOGIN_HEADER needs MCP_WEB_UI_TRUST_PROXY/, { MCP_WEB_UI_LOGIN_HEADER: 'X-Auth-Request-Email' }],
    [/MCP_WEB_UI_LOGIN_JWT_HEADER needs MCP_WEB_UI_LOGIN_JWKS_URL/, { MCP_WEB_UI_LOGIN_JWT_HEADER: 'X-Pomerium-Jwt-Assertion' }],
    [/MCP_WEB_UI_LOGIN_JWKS_URL, _JWT_AUDIENCE and _JWT_ISSUER need MCP_WEB_UI_LOGIN_JWT_HEADER/, { MCP_WEB_UI_LOGIN_JWKS_URL: 'https://auth.example.com/jwks.json' }],
    [/MCP_WEB_UI_LOGIN_JWKS_URL must be an https URL/, { MCP_WEB_UI_LOGIN_JWT_HEADER: 'X-Pomerium-Jwt-Assertion', MCP_WEB_UI_LOGIN_JWKS_URL: 'http://auth.example.com/jwks.json', MCP_WEB_UI_LOGIN_JWT_AUDIENCE: 'gw' }]
  ]
  for (const [message, env] of cases) {
    const err = (() => { try { loadConfig(env); return null } catch (e) { return e as Error } })()
    t.type(err, ConfigError, JSON.stringify(Object.keys(env)))
    t.match(err?.message, message)
    t.notMatch(err?.message ?? '', /client-secret-0123456789abcdef/, 'never the client secret')
  }
})

import t from 'tap'
import { stderrLogger } from '../src/logger.js'
import { envFlag, resolveOptions } from '../src/options.js'

const secret = 'options-test-secret-0123456789abcdef'

t.test('the options and the environment become one checked object', async (t) => {
  const resolved = resolveOptions({ serverName: 'todoodles', env: { MCP_WEB_UI_GATEWAY_URL: 'http://gw:3000//', MCP_WEB_UI_GATEWAY_API_KEY: 'key', MCP_WEB_UI_FALLBACK: 'direct', MCP_WEB_UI_SERVER_SECRET: secret } })
  t.match(resolved, { serverName: 'todoodles', mode: 'gateway', gatewayUrl: 'http://gw:3000', apiKey: 'key', secret, fallback: true, instance: undefined, registerTimeoutMs: 10_000, requestTimeoutMs: 10_000, directTtlSeconds: 3600 })
  t.equal(resolved.logger, stderrLogger)
  t.ok(Object.isFrozen(resolved))
  t.match(resolveOptions({ serverName: 'todoodles', gatewayUrl: 'http://gw', apiKey: 'mine', fallback: 'none', env: { MCP_WEB_UI_GATEWAY_API_KEY: 'env', MCP_WEB_UI_FALLBACK: 'direct' } }), { apiKey: 'mine', fallback: false }, 'options win over the environment')
  t.match(resolveOptions({ serverName: 'todoodles', env: {} }), { mode: 'direct', gatewayUrl: '', apiKey: undefined })
  t.match(resolveOptions({ serverName: 'todoodles', env: {} }).secret, /^[\w-]{43}$/, 'a secret per process when none is given')
  for (const bad of [{ requestTimeoutMs: 0 }, { registerTimeoutMs: Number.NaN }, { directSessionTtlSeconds: -1 }, { fallback: 'sometimes' as 'none' }, { instance: 'not ok' }]) {
    t.throws(() => resolveOptions({ serverName: 'todoodles', env: {}, ...bad }), { code: 'MCPGW_SDK_INVALID_OPTION' }, JSON.stringify(bad))
  }
})

t.test('the instance: MCP_WEB_UI_INSTANCE_ID, else one per local user keyed by the secret', async (t) => {
  const of = (env: NodeJS.ProcessEnv, serverSecret = secret) => resolveOptions({ serverName: 'todoodles', serverSecret, env }).instance
  t.equal(of({ MCP_WEB_UI_INSTANCE_ID: 'pod-1', MCP_WEB_UI_LOCAL_USER: 'carol' }), 'pod-1')
  t.match(of({ MCP_WEB_UI_LOCAL_USER: 'carol' }), /^user-[0-9a-f]{24}$/)
  t.equal(of({ MCP_WEB_UI_LOCAL_USER: 'carol' }), of({ MCP_WEB_UI_LOCAL_USER: 'carol' }), 'stable across restarts')
  t.not(of({ MCP_WEB_UI_LOCAL_USER: 'carol' }), of({ MCP_WEB_UI_LOCAL_USER: 'dave' }))
  t.not(of({ MCP_WEB_UI_LOCAL_USER: 'carol' }), of({ MCP_WEB_UI_LOCAL_USER: 'carol' }, `${secret}x`), 'no guessing user ids without the secret')
  t.equal(of({}), undefined)
})

t.test('envFlag', async (t) => {
  t.same([envFlag('true'), envFlag('1'), envFlag('false'), envFlag('yes'), envFlag(''), envFlag(undefined)], [true, true, false, false, undefined, undefined])
})

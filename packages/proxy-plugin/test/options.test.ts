import t from 'tap'
import { DEFAULT_PREFIX, DEFAULT_REVALIDATE_MS, DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS, DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS, validateOptions } from '../src/options.js'

t.test('defaults are filled in and frozen', async (t) => {
  const options = validateOptions()
  t.equal(options.prefix, DEFAULT_PREFIX)
  t.equal(options.revalidateMs, DEFAULT_REVALIDATE_MS)
  t.ok(DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS > 5 * 60_000, 'a 5-minute long-poll fits')
  t.ok(DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS > 5 * 60_000, 'a 5-minute quiet stream fits')
  t.equal(options.forwardToken, false)
  t.equal(options.assetFallback, true)
  t.same(options.wsAllowedOrigins, [])
  t.ok(Object.isFrozen(options))
})

t.test('given values are normalised', async (t) => {
  const options = validateOptions({ prefix: '/apps/ui', wsAllowedOrigins: ['https://a.example/path'], upstreamIdleTimeoutMs: 0 })
  t.equal(options.prefix, '/apps/ui')
  t.same(options.wsAllowedOrigins, ['https://a.example'])
  t.equal(options.upstreamIdleTimeoutMs, 0)
  t.equal(validateOptions({ wsAllowedOrigins: '*' }).wsAllowedOrigins, '*')
})

t.test('bad values get a coded error naming the option', async (t) => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['prefix', { prefix: 'mcp' }], ['prefix', { prefix: '/mcp/' }], ['prefix', { prefix: '/' }], ['prefix', { prefix: '/a b' }],
    ['revalidateMs', { revalidateMs: -1 }], ['cacheMaxEntries', { cacheMaxEntries: 0 }],
    ['forwardToken', { forwardToken: 'yes' }], ['connectTimeoutMs', { connectTimeoutMs: 0 }],
    ['wsAllowedOrigins', { wsAllowedOrigins: ['not a url'] }], ['wsAllowedOrigins', { wsAllowedOrigins: 'https://a.example' }],
    ['trustProxy', { trustProxy: ['10.0.0.0/8'] }], ['now', { now: 1 }]
  ]
  for (const [name, options] of bad) {
    t.throws(() => validateOptions(options), { code: 'MCPGW_PROXY_INVALID_OPTION', message: new RegExp(name) }, JSON.stringify(options))
  }
})

import t from 'tap'
import { parseWildcardUrl, sessionHostLabel, sessionHostOf, sessionOrigin } from '../src/session-host.js'

t.test('wildcard URLs: a scheme, *. and a domain, an optional port', async (t) => {
  t.same(parseWildcardUrl('https://*.apps.example.com'), { protocol: 'https', suffix: '.apps.example.com', port: '', pattern: '*.apps.example.com' })
  t.same(parseWildcardUrl('http://*.localhost:3082/'), { protocol: 'http', suffix: '.localhost', port: '3082', pattern: '*.localhost:3082' })
  t.equal(parseWildcardUrl('https://*.Apps.Example.com:443').port, '', 'the default port is what browsers leave out')
  for (const bad of ['https://apps.example.com', 'https://*apps.example.com', 'ftp://*.x.com', 'https://a.*.x.com', 'https://*.x.com/path', 'https://*.-x.com', 'https://*.x.com:99999', '*.x.com', 'https://*.x_y.com']) {
    t.throws(() => parseWildcardUrl(bad), { code: 'MCPGW_REGISTRY_INVALID_OPTION' }, bad)
  }
})

t.test('a session label: DNS-safe, 26 characters, one per session, stable, unrelated to user or server', async (t) => {
  const labels = new Set<string>()
  for (let i = 0; i < 2000; i++) labels.add(sessionHostLabel({ sessionId: `session-${i}` }))
  t.equal(labels.size, 2000, 'no two sessions share a host')
  const label = sessionHostLabel({ sessionId: 'abc' })
  t.match(label, /^[a-z2-7]{26}$/)
  t.equal(sessionHostLabel({ sessionId: 'abc' }), label, 'the same session keeps its host')
  t.equal(sessionOrigin(parseWildcardUrl('http://*.localhost:3082'), { sessionId: 'abc' }), `http://${label}.localhost:3082`)
})

t.test('a Host header is outside the wildcard domain, a session host, or refused', async (t) => {
  const w = parseWildcardUrl('http://*.localhost:3082')
  const label = sessionHostLabel({ sessionId: 'abc' })
  const cases: Array<[string | undefined, string | null]> = [
    [`${label}.localhost:3082`, label], [`${label.toUpperCase()}.LOCALHOST:3082`, label], [`${label}.localhost.:3082`, label],
    ['127.0.0.1:3082', null], ['localhost.evil:3082', null], [undefined, null], ['[::1]:3082', null],
    [`${label}.localhost`, ''], [`${label}.localhost:3083`, ''], ['evil.localhost:3082', ''], [`x.${label}.localhost:3082`, ''], ['localhost:3082', null],
    [`${label}x.localhost:3082`, '']
  ]
  for (const [host, expected] of cases) t.equal(sessionHostOf(w, host), expected, String(host))
  const https = parseWildcardUrl('https://*.apps.example.com')
  t.equal(sessionHostOf(https, `${label}.apps.example.com`), label)
  t.equal(sessionHostOf(https, `${label}.apps.example.com:443`), label, 'an explicit default port')
  t.equal(sessionHostOf(https, `${label}.apps.example.com:80`), '')
})

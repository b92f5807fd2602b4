import t from 'tap'
import { parseTarget, redactUrl, stripTokenFromQuery } from '../src/request-target.js'

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig-nat_ure'

t.test('parseTarget splits prefix, token, path and query', async (t) => {
  t.same(parseTarget(`/mcp/${TOKEN}/a/b?x=1`, '/mcp'), { token: TOKEN, path: '/a/b', search: '?x=1' })
  t.same(parseTarget(`/mcp/${TOKEN}/`, '/mcp'), { token: TOKEN, path: '/', search: '' })
  t.same(parseTarget(`/mcp/${TOKEN}`, '/mcp'), { token: TOKEN, path: '', search: '' })
  t.same(parseTarget(`/mcp/${TOKEN}?x=/y`, '/mcp'), { token: TOKEN, path: '', search: '?x=/y' })
  t.same(parseTarget(`/apps/ui/${TOKEN}/x`, '/apps/ui'), { token: TOKEN, path: '/x', search: '' })
  t.same(parseTarget(`http://elsewhere.example/mcp/${TOKEN}/x?y`, '/mcp'), { token: TOKEN, path: '/x', search: '?y' }, 'absolute-form: only the path counts')
  t.equal(parseTarget('/mcpx/abc/', '/mcp'), null)
  t.equal(parseTarget('/other', '/mcp'), null)
  t.equal(parseTarget('http://[bad', '/mcp'), null)
  t.throws(() => parseTarget('/mcp/', '/mcp'), { code: 'MCPGW_PROXY_TOKEN_MISSING' })
  t.throws(() => parseTarget('/mcp', '/mcp'), { code: 'MCPGW_PROXY_TOKEN_MISSING' })
  t.throws(() => parseTarget('/mcp//x', '/mcp'), { code: 'MCPGW_PROXY_TOKEN_MISSING' })
  t.throws(() => parseTarget('/mcp/a%20b/x', '/mcp'), { code: 'MCPGW_PROXY_TOKEN_MALFORMED' })
  t.throws(() => parseTarget(`/mcp/${TOKEN}/../x`, '/mcp'), { code: 'MCPGW_PROXY_BAD_PATH' })
  t.throws(() => parseTarget(`/mcp/${TOKEN}/%2E%2E/x`, '/mcp'), { code: 'MCPGW_PROXY_BAD_PATH' })
  t.same(parseTarget(`/mcp/${TOKEN}//double//slash`, '/mcp'), { token: TOKEN, path: '//double//slash', search: '' }, 'double slashes stay a path on the same backend')
})

t.test('stripTokenFromQuery removes exactly the parameters carrying the token', async (t) => {
  t.equal(stripTokenFromQuery('', TOKEN), '')
  t.equal(stripTokenFromQuery('?a=1', TOKEN), '?a=1')
  t.equal(stripTokenFromQuery(`?token=${TOKEN}`, TOKEN), '')
  t.equal(stripTokenFromQuery(`?a=1&t=${TOKEN}&b=2`, TOKEN), '?a=1&b=2')
  t.equal(stripTokenFromQuery(`?x=${encodeURIComponent(TOKEN)}`, TOKEN), '')
  t.equal(stripTokenFromQuery(`?note=${TOKEN}-suffix`, TOKEN), `?note=${TOKEN}-suffix`, 'a different value that contains it is the app\'s business')
})

t.test('redactUrl hides the token segment and credential-looking query values', async (t) => {
  t.equal(redactUrl(`/mcp/${TOKEN}/page?x=1`, '/mcp'), '/mcp/[redacted]/page?x=1')
  t.equal(redactUrl('/_mcpgw/login/callback?code=Qx1abc&state=TzkA&iss=https%3A%2F%2Fidp', '/mcp'), '/_mcpgw/login/callback?code=[redacted]&state=[redacted]&iss=https%3A%2F%2Fidp', 'an OAuth callback\'s code and state')
  t.equal(redactUrl(`/mcp/${TOKEN}?x=1`, '/mcp'), '/mcp/[redacted]?x=1')
  t.equal(redactUrl(`/mcp/${TOKEN}`, '/mcp'), '/mcp/[redacted]')
  t.equal(redactUrl('/?page=2&mcpgw_frame=U59n1UxPD3cbrpvW4JQ2Rcnr0quItkrAs10pKkFamK0', '/mcp'), '/?page=2&mcpgw_frame=[redacted]', 'a frame ticket is not logged')
  t.equal(redactUrl('/?mcpgw%5Fframe=U59n1UxPD3cbrpvW4JQ2Rcnr0quItkrAs10pKkFamK0', '/mcp'), '/?mcpgw%5Fframe=[redacted]', 'in any spelling')
  t.equal(redactUrl(`/static/app.css?token=${TOKEN}&v=2`, '/mcp'), '/static/app.css?token=[redacted]&v=2')
  t.equal(redactUrl(`/x?whatever=${TOKEN}`, '/mcp'), '/x?whatever=[redacted]', 'JWT-shaped values, whatever their name')
  t.equal(redactUrl('/x?api_key=abc&page=2', '/mcp'), '/x?api_key=[redacted]&page=2')
  t.equal(redactUrl('/health', '/mcp'), '/health')
})

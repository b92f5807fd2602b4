import t from 'tap'
import { errorBody, sessionKeyOf, SERVER_NAME_PATTERN, SERVER_SECRET_PATTERN, urlHost } from '../src/index.js'

t.test('the shared rules', async (t) => {
  t.equal(urlHost('::1'), '[::1]', 'IPv6 in brackets')
  t.equal(urlHost('127.0.0.1'), '127.0.0.1')
  t.equal(sessionKeyOf('alice', 'todoodles'), 'alice:todoodles:mcp-webui')
  t.equal(sessionKeyOf('alice', 'todoodles', 'x'), 'alice:todoodles:x')
  t.ok(SERVER_NAME_PATTERN.test('todo.v2_a-b'))
  t.notOk(SERVER_NAME_PATTERN.test('-x'))
  t.notOk(SERVER_NAME_PATTERN.test('a'.repeat(65)))
  t.ok(SERVER_SECRET_PATTERN.test('x'.repeat(32)))
  t.notOk(SERVER_SECRET_PATTERN.test('x'.repeat(31)))
  t.notOk(SERVER_SECRET_PATTERN.test(`${'x'.repeat(31)} `))
  t.same(errorBody(401, 'MCPGW_X', 'no'), { statusCode: 401, code: 'MCPGW_X', error: 'Unauthorized', message: 'no' }, 'the status text comes from the status, never says Bad Request for a 401')
  t.equal(errorBody(599, 'MCPGW_X', 'm').error, 'Error')
})

import { createHmac } from 'node:crypto'
import { Registry } from '@mcp-gw/registry'
import t from 'tap'
import { openWebSocket, rawRequest, SECRET, startBackend, startGateway } from './helpers.js'

const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url')
const hmac = (input: string, secret: string): string => createHmac('sha256', secret).update(input).digest('base64url')
function signed (header: object, payload: object, secret = SECRET): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${hmac(input, secret)}`
}

/**
 * Every token an attacker can bring, over plain HTTP and over a WebSocket
 * upgrade: each is refused with 401 and its code, and no byte reaches a backend.
 * (CVE-2024-28179 was an upgrade path that skipped the check.)
 */
t.test('forged, confused and replayed tokens are refused over HTTP and over WebSocket upgrades', async (t) => {
  const backend = await startBackend(t)
  const other = await startBackend(t)
  const gw = await startGateway(t)
  const good = await gw.session(backend)
  await gw.session(other, { userId: 'bob', serverName: 'elsewhere' })
  const replayed = await gw.session(backend, { userId: 'carol' })
  await gw.registry.revoke({ userId: 'carol' })
  const payload = JSON.parse(Buffer.from(good.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  const header = JSON.parse(Buffer.from(good.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>
  const stranger = new Registry({ secret: 'a-different-gateway-secret-0123456789ab' })
  t.teardown(() => stranger.close())
  const foreign = (await stranger.createSession({ userId: 'bob', serverName: 'elsewhere' })).token

  const cases: Array<[string, string, string]> = [
    ['alg none, no signature', `${b64({ ...header, alg: 'none' })}.${b64(payload)}.`, 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    ['alg none, any signature', `${b64({ ...header, alg: 'none' })}.${b64(payload)}.${good.split('.')[2]}`, 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    ['RS256 header over an HMAC signature (key confusion)', signed({ ...header, alg: 'RS256' }, payload), 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    ['HS512 instead of the pinned HS256', signed({ ...header, alg: 'HS512' }, payload), 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    ['a kid this gateway does not have', signed({ ...header, kid: 'attacker-kid' }, payload), 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    ['claims rewritten to another user, old signature', `${good.split('.')[0]}.${b64({ ...payload, sub: 'mallory' })}.${good.split('.')[2]}`, 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    ['claims rewritten to another server, old signature', `${good.split('.')[0]}.${b64({ ...payload, serverName: 'elsewhere' })}.${good.split('.')[2]}`, 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    ['a valid token of another gateway', foreign, 'MCPGW_PROXY_TOKEN_BAD_SIGNATURE'],
    ['a token replayed after revocation', replayed, 'MCPGW_PROXY_TOKEN_REVOKED'],
    ['not a JWT', 'hello-world', 'MCPGW_PROXY_TOKEN_MALFORMED'],
    ['two segments', `${good.split('.')[0]}.${good.split('.')[1]}`, 'MCPGW_PROXY_TOKEN_MALFORMED'],
    ['JSON that is not an object', `${Buffer.from('[1,2]').toString('base64url')}.${b64(payload)}.x`, 'MCPGW_PROXY_TOKEN_MALFORMED'],
    ['4 KiB of base64url', 'A'.repeat(4096), 'MCPGW_PROXY_TOKEN_MALFORMED']
  ]
  for (const [name, token, code] of cases) {
    const res = await rawRequest(gw.port, `/mcp/${token}/api`, { method: 'POST' })
    t.equal(res.status, 401, `HTTP: ${name}`)
    t.equal(JSON.parse(res.body).code, code, `HTTP: ${name}: ${code}`)
    const err = await openWebSocket(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`).then(
      (ws) => { ws.terminate(); return { statusCode: 101, body: '{}' } },
      (e: { statusCode?: number, body?: string }) => e)
    t.equal(err.statusCode, 401, `upgrade: ${name}`)
    t.equal(JSON.parse(err.body ?? '{}').code, code, `upgrade: ${name}: ${code}`)
  }

  // Far past any sane token: refused before any parsing of ours, still not a 5xx.
  const huge = await rawRequest(gw.port, `/mcp/${'A'.repeat(64 * 1024)}/api`).catch(() => ({ status: 0, body: '' }))
  t.ok(huge.status === 0 || (huge.status >= 400 && huge.status < 500), `64 KiB token: ${huge.status} (4xx or connection closed)`)

  t.equal(backend.connections, 0, 'no connection reached the session\'s backend')
  t.equal(other.connections, 0, 'nor any other backend')
  t.equal((await rawRequest(gw.port, `/mcp/${good}/`)).status, 200, 'the good token still works')
})

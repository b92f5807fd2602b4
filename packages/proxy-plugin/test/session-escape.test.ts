import t from 'tap'
import { frameworkErrors } from '../src/error-reply.js'
import { rawRequest, startBackend, startGateway } from './helpers.js'

/**
 * A session reaches its own backend and nothing else, however the request is
 * spelled: dot segments raw and encoded, doubled slashes, absolute-form request
 * targets and forged Host headers.
 */
t.test('no spelling of a request reaches another backend or climbs out of the session\'s backend root', async (t) => {
  const mine = await startBackend(t)
  const other = await startBackend(t)
  const gw = await startGateway(t, { fastify: { frameworkErrors } })
  const token = await gw.session(mine)
  await gw.session(other, { userId: 'bob', serverName: 'elsewhere' })
  const otherHost = `127.0.0.1:${other.port}`

  const climbing = ['/../elsewhere/x', '/a/../../x', '/%2e%2e/x', '/%2E%2E/x', '/a/%2e%2e/%2e%2e/x', '/.%2e/x', '/%2e%2e%2fx', '/a/..%2f..%2fx', '/..\\x', '/a/%2e%2E%2f']
  for (const path of climbing) {
    const res = await rawRequest(gw.port, `/mcp/${token}${path}`)
    t.ok(res.status === 400 || (res.status === 200 && !JSON.parse(res.body).url.includes('..')), `${path}: ${res.status}`)
  }
  for (const seen of mine.seen) t.notMatch(seen.url, /(^|\/)\.\.(\/|$)/, `the backend never saw a dot segment (${seen.url})`)

  // Doubled slashes stay inside the session: the backend gets them under its own root.
  const doubled = await rawRequest(gw.port, `/mcp/${token}//${otherHost}/x`)
  t.equal(doubled.status, 200)
  t.equal(JSON.parse(doubled.body).url, `//${otherHost}/x`, 'a path on the session\'s backend, not a new authority')

  // Absolute-form targets: the authority in the request line is not a routing instruction.
  for (const target of [`http://${otherHost}/x`, `http://${otherHost}/mcp/${token}/x`, `http://evil.example/mcp/${token}/x`]) {
    const res = await rawRequest(gw.port, target)
    t.ok(res.status < 500, `${target.replace(token, '<token>')}: ${res.status}`)
    if (res.status === 200) t.equal(JSON.parse(res.body).url, '/x', 'if served at all, by the session\'s own backend')
  }

  // A Host header naming another backend changes nothing about where the request goes.
  const forged = await rawRequest(gw.port, `/mcp/${token}/x`, { headers: { host: otherHost } })
  t.equal(forged.status, 200)
  t.equal(JSON.parse(forged.body).url, '/x')
  t.equal(JSON.parse(forged.body).headers.host, `127.0.0.1:${mine.port}`, 'the backend is addressed by its registered host')

  t.equal(other.connections, 0, 'the other backend was never contacted')
})

import { Writable } from 'node:stream'
import { eventually } from '@mcp-gw/testkit'
import t from 'tap'
import { WebSocket } from 'ws'
import { frameworkErrors } from '../src/error-reply.js'
import { serverLogSerializers } from '../src/request-target.js'
import { rawRequest, startBackend, startGateway } from './helpers.js'

function capture (): { lines: string[], stream: Writable } {
  const lines: string[] = []
  return { lines, stream: new Writable({ write (chunk, _enc, done) { lines.push(chunk.toString()); done() } }) }
}

t.test('on its own, the plugin logs the URLs it routes with the token redacted', async (t) => {
  const { lines, stream } = capture()
  const backend = await startBackend(t)
  const gw = await startGateway(t, { fastify: { logger: { level: 'debug', stream } } })
  const token = await gw.session(backend)
  await fetch(`${gw.origin}/mcp/${token}/page?x=1`)
  await fetch(`${gw.origin}/mcp/${token}`, { redirect: 'manual' })
  await fetch(`${gw.origin}/mcp/not.a.token/page`)
  t.ok(lines.some((l) => l.includes('/mcp/[redacted]/page?x=1')))
  t.same(lines.filter((l) => l.includes(token)), [])
})

t.test('with the recommended server options, a full session leaves no token in the log, at debug level', async (t) => {
  const { lines, stream } = capture()
  const backend = await startBackend(t)
  const gw = await startGateway(t, { fastify: { logger: { level: 'debug', stream, serializers: serverLogSerializers('/mcp') }, frameworkErrors } })
  const token = await gw.session(backend)
  const viewer = await gw.session(backend, { userId: 'viewer', scopes: ['view'] })

  await fetch(`${gw.origin}/mcp/${token}/page?token=${token}`)
  await fetch(`${gw.origin}/mcp/${token}`, { redirect: 'manual' })
  await fetch(`${gw.origin}/mcp/${token}/api`, { method: 'POST', body: '{}', headers: { authorization: `Bearer ${token}`, cookie: `s=${token}` } })
  await fetch(`${gw.origin}/mcp/${viewer}/api`, { method: 'POST', body: '{}' })
  await fetch(`${gw.origin}/static/app.css`, { headers: { referer: `${gw.origin}/mcp/${token}/` } })
  await rawRequest(gw.port, `/mcp/${token}/%zz`)
  await rawRequest(gw.port, `/mcp/${token}/a/../../x`)
  // Spellings the router and the proxy do not route as a session: the token is still never logged.
  for (const path of [`/MCP/${token}/`, `/mcp//${token}/`, `/%6dcp/${token}/`, `/%6dcp/${token.replaceAll('.', '%2E')}/`, `http://gw.example/mcp/${token}/x`, `/elsewhere/${token}`, `/x?t=${token}`]) {
    await rawRequest(gw.port, path)
  }
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/mcp/${token}/ws`)
  await new Promise((resolve) => ws.once('open', resolve))
  ws.close()
  await gw.registry.revoke({ userId: 'alice' })
  // The refusals after the revocation are logged too.
  await eventually(async () => (await fetch(`${gw.origin}/mcp/${token}/after-revoke`)).status === 401, { within: 5000, what: 'the revocation reaching the cache' })

  t.ok(lines.length > 10, `the log was written (${lines.length} lines)`)
  t.ok(lines.some((l) => l.includes('/mcp/[redacted]/page')), 'URLs are logged with the token redacted')
  const leaks = lines.filter((l) => l.includes(token) || l.includes(viewer) || l.includes(token.split('.')[2]!))
  t.same(leaks, [], 'no line holds a token or its signature')
})

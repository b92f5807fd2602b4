import { request as httpRequest } from 'node:http'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import { mcpRegistryApi } from '../src/http-api.js'
import type { RegistryApiOptions } from '../src/http-api.js'
import { mcpRegistryPlugin } from '../src/plugin.js'
import { SECRET } from './helpers.js'

const OWNER = 'owner-secret-of-todoodles-0123456789abcdef'
const OTHER = 'mallory-secret-0123456789abcdef0123456789'

async function gateway (t: Test, options: RegistryApiOptions = {}, registrationTtlSeconds?: number) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(mcpRegistryPlugin, { secret: SECRET, ...(registrationTtlSeconds !== undefined && { registrationTtlSeconds }) })
  await app.register(mcpRegistryApi, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as AddressInfo).port }
}

async function register (app: Awaited<ReturnType<typeof gateway>>['app'], secret: string, port: number) {
  const res = await app.inject({ method: 'POST', url: '/register-server', headers: { 'x-mcpgw-server-secret': secret }, payload: { serverName: 'todoodles', host: '127.0.0.1', port } })
  if (res.statusCode !== 200) throw new Error(`registration failed: ${res.statusCode} ${res.body}`)
  return res.json() as { instanceId: string, frameAncestors?: string[] }
}

interface Watch { res: IncomingMessage, body: () => string, ended: Promise<string> }

/** A watch over a real socket, as the SDK holds it; rejects past 5 s. */
async function watch (port: number, instanceId: string, secret: string): Promise<Watch> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: `/register-server/todoodles/watch?instanceId=${instanceId}`, headers: { 'x-mcpgw-server-secret': secret }, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      const ended = new Promise<string>((resolve) => { res.on('close', () => resolve(body)) })
      resolve({ res, body: () => body, ended })
    })
    req.setTimeout(5000, () => { req.destroy(new Error('no answer within 5 s')) })
    req.on('error', reject)
    req.end()
  })
}

/** Resolves with the value, or fails the wait after `ms`. */
async function within<T> (ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })
  try { return await Promise.race([promise, deadline]) } finally { clearTimeout(timer) }
}

t.test("a watch: its registrant's only, held open with a first comment, one per instance, ended when the gateway closes", async (t) => {
  const { app, port } = await gateway(t)
  const { instanceId } = await register(app, OWNER, 12861)
  const other = await register(app, OTHER, 12862)

  const refused = await watch(port, instanceId, OTHER)
  t.same([refused.res.statusCode, JSON.parse(await within(5000, 'refusal', refused.ended)).code], [403, 'MCPGW_REGISTRY_NOT_SERVER_OWNER'], 'another registrant cannot watch this instance')
  const noSecret = await app.inject({ url: `/register-server/todoodles/watch?instanceId=${instanceId}` })
  t.equal(noSecret.statusCode, 403, 'nor can a caller without a secret')
  const noInstance = await app.inject({ url: '/register-server/todoodles/watch', headers: { 'x-mcpgw-server-secret': OWNER } })
  t.same([noInstance.statusCode, noInstance.json().code], [400, 'MCPGW_API_INVALID_REQUEST'], 'the instance is named')

  const first = await watch(port, instanceId, OWNER)
  t.equal(first.res.statusCode, 200)
  t.match(first.res.headers['content-type'], /^text\/event-stream/)
  t.equal(first.res.headers.connection, 'close', 'a connection of its own')
  await within(2000, 'the first comment', new Promise<void>((resolve) => {
    const check = (): void => { if (first.body().startsWith(': watching')) resolve(); else setTimeout(check, 10) }
    check()
  }))
  const second = await watch(port, instanceId, OWNER)
  t.equal(second.res.statusCode, 200)
  t.equal(await within(2000, 'the older watch ends', first.ended), ': watching\n\n', 'a newer watch of the same instance ends the older')
  const others = await watch(port, other.instanceId, OTHER)
  t.equal(others.res.statusCode, 200, "another instance's registrant watches its own")

  const closing = app.close()
  await within(2000, 'the watches end when the gateway closes', Promise.all([second.ended, others.ended]))
  await within(5000, 'the gateway closes although watches were open', closing)
})

t.test('a watch lives while its instance does: ended when it deregisters, or when it stops registering for a lifetime', async (t) => {
  const { app, port } = await gateway(t, {}, 3)
  const gone = await register(app, OWNER, 12861)
  const deregistered = await watch(port, gone.instanceId, OWNER)
  t.equal(deregistered.res.statusCode, 200)
  const del = await app.inject({ method: 'DELETE', url: `/register-server/todoodles?instanceId=${gone.instanceId}`, headers: { 'x-mcpgw-server-secret': OWNER } })
  t.equal(del.statusCode, 204)
  await within(2000, 'the deregistered instance\'s watch ends', deregistered.ended)

  const live = await register(app, OWNER, 12862)
  const silent = await register(app, OTHER, 12863)
  const kept = await watch(port, live.instanceId, OWNER)
  const dropped = await watch(port, silent.instanceId, OTHER)
  let keptEnded = false
  kept.ended.then(() => { keptEnded = true }, () => {})
  const beating = setInterval(() => { register(app, OWNER, 12862).catch(() => {}) }, 1000)
  t.teardown(() => clearInterval(beating))
  const started = Date.now()
  await within(6000, 'the silent instance\'s watch ends', dropped.ended)
  t.ok(Date.now() - started >= 2500, `not before its registration's lifetime (3 s): ${Date.now() - started} ms`)
  t.notOk(keptEnded, 'the one that keeps registering keeps its watch')
  clearInterval(beating)
})

t.test('who may frame session pages is told to registrants as configured, and a malformed list is refused at start', async (t) => {
  const { app } = await gateway(t, { frameAncestors: ["'self'", 'https://chatgpt.com'] })
  t.same((await register(app, OWNER, 12861)).frameAncestors, ["'self'", 'https://chatgpt.com'])
  const plain = await gateway(t)
  t.equal((await register(plain.app, OWNER, 12861)).frameAncestors, undefined, 'unsaid when not configured')
  for (const bad of [[], ['a b'], ['https://x;script-src *'], [42]]) {
    const app = Fastify()
    await app.register(mcpRegistryPlugin, { secret: SECRET })
    await t.rejects(async () => { await app.register(mcpRegistryApi, { frameAncestors: bad as string[] }).ready() }, { code: 'MCPGW_REGISTRY_INVALID_OPTION' }, JSON.stringify(bad))
    await app.close()
  }
})

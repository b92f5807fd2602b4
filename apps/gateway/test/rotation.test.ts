import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGatewayClient } from '@mcp-gw/client-sdk'
import type { GatewayClient } from '@mcp-gw/client-sdk'
import { secretKeyId } from '@mcp-gw/registry'
import { eventually, spawnGateway, startTestMongo } from '@mcp-gw/testkit'
import type { GatewayProcess } from '@mcp-gw/testkit'
import t from 'tap'
import type { Test } from 'tap'

/**
 * Rotating MCP_WEB_UI_JWT_SECRET and MCP_WEB_UI_GATEWAY_API_KEY on gateways run as their
 * users run them (`mcp-gw start`, real sockets), with a backend that uses the client SDK
 * and refuses any request its proof check does not pass: on MongoDB (two gateways sharing
 * the store, rolled one at a time as README "Rotating secrets" says) and on the embedded
 * store (one gateway, whose restart forgets links and registrations anyway).
 */
const OLD_SECRET = 'rotation-test-old-jwt-secret-0123456789abcdef'
const NEW_SECRET = 'rotation-test-new-jwt-secret-fedcba9876543210'
const OLD_KEY = 'rotation-test-old-api-key-0123'
const NEW_KEY = 'rotation-test-new-api-key-4567'
const SECRETS = [OLD_SECRET, NEW_SECRET, OLD_KEY, NEW_KEY]

/** The settings of each step of the procedure (README, "Rotating secrets"). */
const BEFORE = { secret: OLD_SECRET, apiKey: OLD_KEY, env: {} }
const STEP_1 = { secret: OLD_SECRET, apiKey: NEW_KEY, env: { MCP_WEB_UI_JWT_SECRET_PREVIOUS: NEW_SECRET, MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS: OLD_KEY } }
const STEP_2 = { secret: NEW_SECRET, apiKey: NEW_KEY, env: { MCP_WEB_UI_JWT_SECRET_PREVIOUS: OLD_SECRET, MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS: OLD_KEY } }
/** Step 3 for the JWT secret; registrants may still be moving to the new API key. */
const SECRET_DROPPED = { secret: NEW_SECRET, apiKey: NEW_KEY, env: { MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS: OLD_KEY } }
const AFTER = { secret: NEW_SECRET, apiKey: NEW_KEY, env: {} }
type Settings = typeof BEFORE

interface Gateways {
  /** (Re)starts gateway `i` with these settings, on its port if it had one. */
  start (i: number, settings: Settings): Promise<GatewayProcess>
  at (i: number): GatewayProcess
  /** Everything every gateway process logged. */
  logs (): string
}

function gateways (t: Test, store: Record<string, string>): Gateways {
  const running: GatewayProcess[] = []
  let logs = ''
  t.teardown(async () => { for (const gw of running) await gw.stop('SIGKILL') })
  return {
    async start (i, settings) {
      const before = running[i]
      if (before !== undefined) {
        await before.stop()
        logs += before.log()
      }
      const gw = await spawnGateway({
        apiKey: settings.apiKey,
        secret: settings.secret,
        captureLog: true,
        ...(before !== undefined && { port: before.port }),
        env: { ...store, ...settings.env }
      })
      running[i] = gw
      return gw
    },
    at: (i) => running[i]!,
    logs: () => logs + running.map((gw) => gw.log()).join('')
  }
}

/** A web UI behind the gateway: the client SDK registers it, and it answers only what `authenticate` vouches for. */
async function startBackend (t: Test, gatewayUrl: string, apiKey: string, serverName = 'rotating'): Promise<GatewayClient> {
  const warnings: unknown[] = []
  const client = createGatewayClient({
    serverName,
    gatewayUrl,
    apiKey,
    serverSecret: `${serverName}-registrant-secret-0123456789abcdef`,
    env: {},
    logger: { warn: (...args: unknown[]) => { warnings.push(args) }, info: () => {}, debug: () => {} }
  })
  const server = createServer((req, res) => {
    if (client.answerInstanceProbe(req, res)) return
    const who = client.authenticate(req)
    if (who === null) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('backend: no proof I can check')
      return
    }
    res.end(`hello ${who.userId}`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    await client.close({ timeoutMs: 500 })
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  await client.register({ host: '127.0.0.1', port: (server.address() as AddressInfo).port })
  return client
}

/** A session link's page through a gateway: status, and the backend's words or the gateway's code. */
async function open (gw: GatewayProcess, token: string): Promise<string> {
  const res = await fetch(`${gw.origin}/mcp/${token}/`, { signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  if (res.headers.get('content-type')?.includes('json') === true) return `${res.status} ${(JSON.parse(text) as { code: string }).code}`
  return `${res.status} ${text}`
}

async function apiStatus (gw: GatewayProcess, key: string): Promise<string> {
  const res = await fetch(`${gw.origin}/servers`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(5000) })
  const body = await res.json() as { code?: string }
  return `${res.status}${body.code !== undefined ? ` ${body.code}` : ''}`
}

/** A link a gateway makes itself (create-session), as a registrant with `key` asks for it. */
async function linkVia (gw: GatewayProcess, key: string, serverName = 'rotating'): Promise<string> {
  const res = await fetch(`${gw.origin}/create-session`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-mcpgw-server-secret': `${serverName}-registrant-secret-0123456789abcdef` },
    body: JSON.stringify({ userId: 'bob', serverName }),
    signal: AbortSignal.timeout(5000)
  })
  const body = await res.json() as { token: string }
  if (!res.ok) throw new Error(`create-session: ${res.status} ${JSON.stringify(body)}`)
  return body.token
}

/** When the registration of `serverName` lapses: what a heartbeat moves on. */
async function expiresAt (gw: GatewayProcess, serverName: string): Promise<string | undefined> {
  const res = await fetch(`${gw.origin}/servers`, { headers: { authorization: `Bearer ${NEW_KEY}` }, signal: AbortSignal.timeout(5000) })
  const { servers } = await res.json() as { servers: Array<{ serverName: string, instances: Array<{ expiresAt: string }> }> }
  return servers.find((s) => s.serverName === serverName)?.instances[0]?.expiresAt
}

const kidOf = (token: string): unknown => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid

function neverLogged (t: Test, logs: string): void {
  t.ok(logs.length > 0, 'the gateways logged')
  for (const secret of SECRETS) t.notOk(logs.includes(secret), 'no secret or key in any log line')
}

t.test('MongoDB, two gateways rolled one at a time: links, registrations and backends survive the rotation', { timeout: 120_000 }, async (t) => {
  const mongo = await startTestMongo()
  t.teardown(() => mongo.stop())
  const fleet = gateways(t, { MCP_WEB_UI_MONGO_URL: mongo.url, MCP_WEB_UI_MONGO_DB_NAME: mongo.uniqueDbName('rotation') })
  await fleet.start(0, BEFORE)
  await fleet.start(1, BEFORE)
  const [g1, g2] = [(): GatewayProcess => fleet.at(0), (): GatewayProcess => fleet.at(1)]

  // A backend registers through the second gateway before the rotation: the proof key it
  // holds is the old secret's, and its heartbeats, also to the second, keep it until that
  // gateway is swapped.
  const backend = await startBackend(t, g2().origin, OLD_KEY)
  await backend.ready
  const before = (await backend.createSession('alice')).token
  t.equal(kidOf(before), 'default', 'a link of today: kid `default`')
  t.equal(await open(g1(), before), '200 hello alice')
  t.equal(await open(g2(), before), '200 hello alice')

  // Step 1: every gateway accepts the new secret (and the new API key), one at a time.
  await fleet.start(0, STEP_1)
  t.equal(await open(g1(), before), '200 hello alice', 'step 1, first gateway: the old link')
  const step1 = await linkVia(g1(), NEW_KEY)
  t.equal(kidOf(step1), secretKeyId(OLD_SECRET), 'step 1 still signs with the old secret, under its key id')
  t.equal(await open(g2(), step1), '200 hello bob', 'which a gateway not restarted yet accepts')
  await fleet.start(1, STEP_1)
  for (const gw of [g1(), g2()]) {
    t.equal(await apiStatus(gw, OLD_KEY), '200', 'step 1: the old API key is accepted')
    t.equal(await apiStatus(gw, NEW_KEY), '200', 'and so is the new one')
    t.equal(await apiStatus(gw, 'rotation-test-wrong-api-key'), '401 MCPGW_API_UNAUTHORIZED')
  }

  // Step 2: the swap, one gateway at a time. Between the two restarts the backend still
  // holds the old proof key (its heartbeats go to the second gateway, which hands that one
  // out), yet the swapped gateway vouches under the new key: only the rotation header lets
  // the backend check the request.
  await fleet.start(0, STEP_2)
  t.equal(await open(g1(), before), '200 hello alice', 'step 2, swapped gateway: a link of before the rotation opens, and the backend, holding the old proof key, accepts the request')
  const fresh = await linkVia(g1(), NEW_KEY)
  t.equal(kidOf(fresh), secretKeyId(NEW_SECRET), 'new links are signed with the new secret')
  t.equal(await open(g1(), fresh), '200 hello bob', 'a new link opens on the swapped gateway')
  t.equal(await open(g2(), fresh), '200 hello bob', 'and on the one not swapped yet (step 1 made it accept the new secret)')
  t.equal(await open(g2(), before), '200 hello alice')
  const viaOldKey = (await backend.createSession('carol')).token
  t.equal(await open(g1(), viaOldKey), '200 hello carol', 'a registrant still on the old API key goes on making links')

  await fleet.start(1, STEP_2)
  const swappedAt = await expiresAt(g2(), 'rotating')
  t.ok(swappedAt, 'the backend is registered')
  for (const gw of [g1(), g2()]) {
    t.equal(await open(gw, before), '200 hello alice', 'both swapped: the link minted before the rotation opens')
    t.equal(await open(gw, fresh), '200 hello bob', 'and the new one')
  }
  const late = createGatewayClient({ serverName: 'latecomer', gatewayUrl: g2().origin, apiKey: OLD_KEY, serverSecret: 'latecomer-registrant-secret-0123456789abcdef', env: {}, logger: { warn: () => {}, info: () => {}, debug: () => {} } })
  t.teardown(() => late.close({ timeoutMs: 500 }))
  await late.register({ host: '127.0.0.1', port: 9 })
  t.equal(late.state, 'registered', 'a registrant with the old API key registers after the rotation')
  const newcomer = await startBackend(t, g1().origin, NEW_KEY, 'newcomer')
  await newcomer.ready
  t.equal(await open(g2(), (await newcomer.createSession('dave')).token), '200 hello dave', 'and one with the new key')

  // Step 3 waits for every backend's next heartbeat (a third of the registration TTL, 30 s):
  // the swapped gateway it beats to hands it the new proof key.
  await eventually(async () => (await expiresAt(g2(), 'rotating')) !== swappedAt, { what: "the backend's next heartbeat", within: 45_000, everyMs: 500 })
  // Then, once links of the old secret may lapse, the previous secret is dropped.
  await fleet.start(0, SECRET_DROPPED)
  await fleet.start(1, SECRET_DROPPED)
  for (const gw of [g1(), g2()]) {
    t.equal(await open(gw, before), '401 MCPGW_PROXY_TOKEN_BAD_SIGNATURE', 'the old secret dropped: its links get the coded 401')
    t.equal(await open(gw, step1), '401 MCPGW_PROXY_TOKEN_BAD_SIGNATURE', 'whatever kid they carry')
    t.equal(await open(gw, fresh), '200 hello bob', 'links of the new secret open on gateways with it alone, and the backend checks them with the key its heartbeat brought')
  }
  // And once every registrant has moved to the new API key, the old one.
  await fleet.start(0, AFTER)
  await fleet.start(1, AFTER)
  for (const gw of [g1(), g2()]) {
    t.equal(await apiStatus(gw, OLD_KEY), '401 MCPGW_API_UNAUTHORIZED', 'the old API key dropped')
    t.equal(await apiStatus(gw, NEW_KEY), '200')
    t.equal(await open(gw, fresh), '200 hello bob')
  }
  neverLogged(t, fleet.logs())
  t.match(fleet.logs(), /JWT secret rotation: previous secrets still accepted/)
  t.ok(fleet.logs().includes(secretKeyId(OLD_SECRET)), 'the log names the secrets by key id')
})

t.test('embedded store, one gateway: the API key rotates without breaking a registrant; new links open', { timeout: 60_000 }, async (t) => {
  const fleet = gateways(t, {})
  const gw = (): GatewayProcess => fleet.at(0)
  await fleet.start(0, BEFORE)
  const backend = await startBackend(t, gw().origin, OLD_KEY)
  await backend.ready
  t.equal(await open(gw(), (await backend.createSession('alice')).token), '200 hello alice')

  // One gateway has nobody to roll with: straight to the swap. Its embedded store forgets
  // links and registrations on the restart, rotation or not; registrants come back by themselves.
  await fleet.start(0, STEP_2)
  t.equal(await apiStatus(gw(), OLD_KEY), '200', 'the old API key is accepted')
  t.equal(await apiStatus(gw(), NEW_KEY), '200', 'and the new one')
  const link = await backend.createSession('alice')
  t.equal(link.via, 'gateway')
  t.equal(kidOf(link.token), secretKeyId(NEW_SECRET))
  t.equal(await open(gw(), link.token), '200 hello alice', 'a registrant on the old key registers again and its new link opens')
  const newcomer = await startBackend(t, gw().origin, NEW_KEY, 'newcomer')
  await newcomer.ready
  t.equal(await open(gw(), (await newcomer.createSession('bob')).token), '200 hello bob', 'one on the new key too')

  await fleet.start(0, AFTER)
  t.equal(await apiStatus(gw(), OLD_KEY), '401 MCPGW_API_UNAUTHORIZED', 'the old API key dropped')
  await t.rejects(backend.createSession('alice'), { code: 'MCPGW_SDK_UNAUTHORIZED' }, 'a registrant still on it is refused, with the code that says so')
  const again = await newcomer.createSession('bob')
  t.equal(await open(gw(), again.token), '200 hello bob')
  neverLogged(t, fleet.logs())
})

import { createServer as createNetServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { createGatewayClient } from '../src/client.js'
import type { GatewayClient } from '../src/client.js'
import { startWebUI } from '../src/web-ui.js'
import { within } from '@mcp-gw/testkit'
import { API_KEY, quietLogger, startGateway } from './helpers.js'

// A tool call waits on createSession: the README promises at most the session bound
// (500 ms by default) on a gateway that is down, hung or slow, then a direct link (with the
// fallback) or a coded error. Asserted with slack for a loaded machine, far below the
// 8-10 s (hung after registration) and 301 s (hung from the start) it once took.
const BOUND_MS = 500
const SLACK_MS = 700

/** A gateway that accepts connections and never answers: a stuck or overloaded one. */
async function hungListener (t: Test): Promise<string> {
  const held: Socket[] = []
  const server = createNetServer((socket) => { held.push(socket) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of held) s.destroy(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** How long one createSession took, and what it gave. */
async function timed (client: GatewayClient, userId: string): Promise<{ ms: number, via?: string, code?: string }> {
  const started = performance.now()
  try {
    const link = await within(BOUND_MS + 5000, 'createSession', client.createSession(userId))
    return { ms: performance.now() - started, via: link.via }
  } catch (err) {
    return { ms: performance.now() - started, code: (err as { code?: string }).code }
  }
}

async function startClient (t: Test, gatewayUrl: string, fallback: 'direct' | 'none'): Promise<GatewayClient> {
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl, apiKey: API_KEY, logger: quietLogger(), fallback })
  t.teardown(() => client.close({ timeoutMs: 200 }))
  const ui = await startWebUI((_req, res) => res.end('ui'), { portRange: [12000, 13000], client })
  t.teardown(() => ui.close())
  return client
}

t.test('a gateway that accepts and never answers, from the start: every tool call gets its direct link within the bound', async (t) => {
  const client = await startClient(t, await hungListener(t), 'direct')
  for (let i = 0; i < 4; i++) {
    const call = await timed(client, 'alice')
    t.equal(call.via, 'direct', `call ${i + 1}: a direct link`)
    t.ok(call.ms < BOUND_MS + SLACK_MS, `call ${i + 1} took ${Math.round(call.ms)} ms`)
  }
})

t.test('a gateway that accepts and never answers, without the fallback: a coded error within the bound', async (t) => {
  const client = await startClient(t, await hungListener(t), 'none')
  for (let i = 0; i < 3; i++) {
    const call = await timed(client, 'alice')
    t.equal(call.code, 'MCPGW_SDK_GATEWAY_TIMEOUT', `call ${i + 1}: says the gateway did not answer in time`)
    t.ok(call.ms < BOUND_MS + SLACK_MS, `call ${i + 1} took ${Math.round(call.ms)} ms`)
  }
})

/** The real registry API, registered, then answering every call only after 30 s. */
async function gatewayTurningSlow (t: Test): Promise<{ url: string, slow: (on: boolean) => void }> {
  let slow = false
  const waits = new Set<NodeJS.Timeout>()
  const gw = await startGateway(t, 0, 60, {
    beforeListen: (app) => app.addHook('onRequest', async () => {
      if (!slow) return
      await new Promise<void>((resolve) => { const timer = setTimeout(() => { waits.delete(timer); resolve() }, 30_000); waits.add(timer) })
    })
  })
  // Before app.close() (teardowns run last-in first): close() waits for requests in flight.
  t.teardown(() => { for (const timer of waits) clearTimeout(timer); gw.app.server.closeAllConnections() })
  return { url: gw.url, slow: (on) => { slow = on } }
}

t.test('a registered gateway that turns slow (30 s per answer): each tool call is bounded, and gateway links come back after', async (t) => {
  const gw = await gatewayTurningSlow(t)
  const client = await startClient(t, gw.url, 'direct')
  await within(5000, 'registration', client.ready)
  t.equal((await timed(client, 'alice')).via, 'gateway', 'a gateway link while the gateway answers')
  gw.slow(true)
  for (let i = 0; i < 4; i++) {
    const call = await timed(client, 'alice')
    t.equal(call.via, 'direct', `slow call ${i + 1}: a direct link`)
    t.ok(call.ms < BOUND_MS + SLACK_MS, `slow call ${i + 1} took ${Math.round(call.ms)} ms`)
  }
  gw.slow(false)
  const back = await timed(client, 'alice')
  t.equal(back.via, 'gateway', 'a gateway link as soon as the gateway answers in time again')
})

t.test('a gateway that recovers while the registration loop is stuck on it: the next tool call gets a gateway link at once', async (t) => {
  const gw = await gatewayTurningSlow(t)
  const client = await startClient(t, gw.url, 'direct')
  await within(5000, 'registration', client.ready)
  gw.slow(true)
  // Times out, falls back, and sets the loop registering again at once: that call hangs for 30 s.
  t.equal((await timed(client, 'alice')).via, 'direct')
  await new Promise((resolve) => setTimeout(resolve, 50))
  gw.slow(false)
  // Waiting on the loop's stuck call would give a direct link after the bound.
  const call = await timed(client, 'alice')
  t.equal(call.via, 'gateway', 'the tool call sends its own registration, not the stuck one')
  t.ok(call.ms < BOUND_MS, `took ${Math.round(call.ms)} ms`)
})

t.test('a registered gateway that turns slow, without the fallback: a coded error within the bound', async (t) => {
  const gw = await gatewayTurningSlow(t)
  const client = await startClient(t, gw.url, 'none')
  await within(5000, 'registration', client.ready)
  gw.slow(true)
  const call = await timed(client, 'alice')
  t.equal(call.code, 'MCPGW_SDK_GATEWAY_TIMEOUT')
  t.ok(call.ms < BOUND_MS + SLACK_MS, `took ${Math.round(call.ms)} ms`)
})

t.test('the bound is an option (sessionTimeoutMs) and an environment variable', async (t) => {
  const url = await hungListener(t)
  const client = createGatewayClient({ serverName: 'todoodles', gatewayUrl: url, apiKey: API_KEY, logger: quietLogger(), env: { MCP_WEB_UI_SESSION_TIMEOUT_MS: '150' } })
  t.teardown(() => client.close({ timeoutMs: 200 }))
  const ui = await startWebUI((_req, res) => res.end('ui'), { portRange: [12000, 13000], client })
  t.teardown(() => ui.close())
  const call = await timed(client, 'alice')
  t.equal(call.code, 'MCPGW_SDK_GATEWAY_TIMEOUT')
  t.ok(call.ms < 150 + SLACK_MS, `took ${Math.round(call.ms)} ms`)
  t.throws(() => createGatewayClient({ serverName: 'todoodles', gatewayUrl: url, sessionTimeoutMs: -1 }), { code: 'MCPGW_SDK_INVALID_OPTION' })
  t.throws(() => createGatewayClient({ serverName: 'todoodles', gatewayUrl: url, env: { MCP_WEB_UI_SESSION_TIMEOUT_MS: 'soon' } }), { code: 'MCPGW_SDK_INVALID_OPTION' })
})

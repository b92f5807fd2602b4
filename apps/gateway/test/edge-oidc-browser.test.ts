import { freePort, launchChromium, logInAtTestIdp as logIn, startTestIdp, within } from '@mcp-gw/testkit'
import t from 'tap'
import { buildGateway } from '../src/app.js'
import { caddyEdge, EDGE_KEY, nginxEdge } from './edge-helpers.js'
import { createSessionUrl, startPageApp, testConfig } from './helpers.js'

/**
 * A link bound to a person, opened in Chromium through an edge that carries the bytes (Caddy
 * forward-auth, and the pooled nginx): the edge relays the gateway's answers to a page load (the
 * link swapped for a label, then the way to the OpenID provider), the person logs in, and the
 * page, its WebSocket and its event stream open, carried by the edge; someone else gets none.
 */
const EDGES = [
  { file: 'caddy/path-mode.Caddyfile', websocketsThroughGateway: true },
  { file: 'nginx/path-mode-pooled.conf', websocketsThroughGateway: false }
]

for (const edge of EDGES) {
  t.test(`${edge.file}: an owner link opens behind the edge after its person logs in, with the token in no address`, async (t) => {
    const edgePort = await freePort()
    const publicUrl = `http://gw.localhost:${edgePort}`
    const idp = await startTestIdp({ redirectUris: [`${publicUrl}/_mcpgw/login/callback`] })
    t.teardown(() => idp.close())
    const app = await buildGateway(testConfig({
      publicUrl,
      trustProxy: ['127.0.0.1'],
      forwardAuthKey: EDGE_KEY,
      oidc: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, scopes: 'openid email profile', userClaim: 'sub', groupsClaim: 'groups', loginSeconds: 3600 }
    }), { logLevel: 'silent' })
    t.teardown(() => app.close())
    const gatewayPort = await freePort()
    await app.listen({ port: gatewayPort, host: '127.0.0.1' })
    if (edge.file.startsWith('caddy')) await caddyEdge(t, edge.file, gatewayPort, edgePort, publicUrl)
    else await nginxEdge(t, edge.file, gatewayPort, edgePort)
    const todo = await startPageApp(t)
    const secret = 'todo-registrant-secret-0123456789abcdef'
    await app.mcpRegistry.registerServer({ serverName: 'todo', host: '127.0.0.1', port: todo.port, secret })
    const { url: link } = await createSessionUrl(gatewayPort, secret, { userId: 'alice', serverName: 'todo', shareLevel: 'owner', serverType: 'ui-owner' })
    t.equal(new URL(link).origin, publicUrl, 'the link names the edge\'s address')
    const token = new URL(link).pathname.split('/')[2]!

    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const alice = await (await browser.newContext()).newPage()
    const seenByProvider: string[] = []
    alice.on('request', (request) => { if (request.url().startsWith(idp.issuer)) seenByProvider.push(`${request.url()} ${request.headers().referer ?? ''}`) })
    const first = await alice.goto(link)
    t.ok(first?.url().startsWith(idp.issuer), 'not logged in: sent to the provider')
    await logIn(alice, idp.issuer, 'alice')
    await alice.waitForFunction(() => document.getElementById('echo')?.textContent !== '' && document.getElementById('event')?.textContent !== '', null, { timeout: 10_000 })
    t.match(new URL(alice.url()).pathname, /^\/mcp\/s\/[\w-]{22}\/$/, 'back at the page, under its label')
    t.notOk(alice.url().includes(token), 'no token in the address bar')
    t.notOk(seenByProvider.some((line) => line.includes(token)), 'the provider never saw the link')
    t.equal(await alice.textContent('#echo'), 'echo: round trip', 'its WebSocket opened')
    t.equal(await alice.textContent('#event'), 'event: hello alice', 'its event stream opened, and the backend was told who is logged in')
    t.equal(app.mcpGateway.metrics.responses['2xx'], 0, 'the page and its event stream carried by the edge, not the gateway')
    t.equal(app.mcpGateway.tunnels.size, edge.websocketsThroughGateway ? 1 : 0, edge.websocketsThroughGateway ? 'the WebSocket through the gateway (Caddy cannot end it)' : 'the WebSocket carried by nginx too')
    t.notOk(todo.seen.some((s) => String(s.headers.cookie ?? '').includes('mcpgw') || JSON.stringify(s.headers).includes(token)), 'no backend request carried a gateway cookie or the token')

    // Bob, logged in as himself, with Alice's link: refused, and nothing reaches the backend.
    const bob = await (await browser.newContext()).newPage()
    const before = todo.seen.length
    await bob.goto(link)
    await logIn(bob, idp.issuer, 'bob')
    await bob.waitForSelector('h1', { timeout: 10_000 })
    t.match(await within(5000, 'the refusal page', bob.textContent('body')), /MCPGW_PROXY_NOT_YOUR_SESSION/, 'someone else gets the 403 page')
    t.equal(todo.seen.length, before, 'the backend heard nothing from Bob')
  })
}

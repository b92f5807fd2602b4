import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'
import type { Page } from 'playwright-core'

/**
 * The test provider's people: what each one's claims are. Log in with the name as login, any
 * password. `eve` signed up with alice's address, which the provider never verified. Their
 * groups come with the `profile` scope, in the `groups` claim.
 */
export const TEST_IDP_USERS = Object.freeze({
  alice: { sub: 'alice', email: 'alice@example.test', email_verified: true, name: 'Alice Liddell', preferred_username: 'alice', groups: ['staff'] },
  bob: { sub: 'bob', email: 'bob@example.test', email_verified: true, name: 'Bob Builder', preferred_username: 'bob', groups: ['staff', 'ops'] },
  eve: { sub: 'eve', email: 'alice@example.test', email_verified: false, name: 'Eve', preferred_username: 'eve', groups: ['guests'] }
})

export interface TestIdp {
  /** The issuer URL (http://127.0.0.1:<port>): MCP_WEB_UI_OIDC_ISSUER. */
  issuer: string
  clientId: string
  clientSecret: string
  close: () => Promise<void>
}

export interface StartTestIdpOptions {
  /** Where the provider may send browsers back: the gateway's <public url>/_mcpgw/login/callback. */
  redirectUris: string[]
  clientId?: string
  clientSecret?: string
}

/**
 * A real OpenID provider (panva's certified `oidc-provider`) on 127.0.0.1, with three people
 * (TEST_IDP_USERS) and one confidential client that must use PKCE. Its development login and
 * consent pages are what a browser test logs in through: the login form takes a person's
 * name as login and any password, then a consent page asks to continue.
 */
export async function startTestIdp (options: StartTestIdpOptions): Promise<TestIdp> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const clientId = options.clientId ?? 'mcp-gw'
  const clientSecret = options.clientSecret ?? 'test-idp-client-secret-0123456789'
  const people = TEST_IDP_USERS as Record<string, (typeof TEST_IDP_USERS)['alice']>
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: options.redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post'
    }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username', 'groups'] },
    findAccount: (_ctx, id) => {
      const person = people[id]
      if (person === undefined) return undefined
      return { accountId: id, claims: () => ({ ...person }) }
    },
    pkce: { required: () => true },
    cookies: { keys: ['mcp-gw test idp cookie key'] },
    features: { devInteractions: { enabled: true } }
  })
  // Its development-only warnings are expected here.
  provider.on('server_error', () => {})
  server.on('request', provider.callback())
  return {
    issuer,
    clientId,
    clientSecret,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/**
 * Logs in on the test provider's pages as `who` (its login form, then its consent page the
 * first time), from wherever the gateway sent the page; resolves once the browser left the provider.
 */
export async function logInAtTestIdp (page: Page, issuer: string, who: string): Promise<void> {
  const atProvider = (url: URL): boolean => url.href.startsWith(issuer)
  await page.waitForURL(atProvider, { timeout: 10_000 })
  const loginPage = page.url()
  await page.fill('input[name=login]', who)
  await page.fill('input[name=password]', 'any password')
  await Promise.all([page.waitForURL((url) => url.href !== loginPage, { timeout: 10_000 }), page.click('button[type=submit]')])
  // Consent, the first time this person uses the client; then back to the gateway.
  if (atProvider(new URL(page.url()))) await Promise.all([page.waitForURL((url) => !atProvider(url), { timeout: 10_000 }), page.click('button[type=submit]')])
}

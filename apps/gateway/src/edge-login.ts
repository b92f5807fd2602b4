import type { LoggedInPerson, LoginSource } from '@mcp-gw/proxy-plugin'
import type { FastifyRequest } from 'fastify'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import proxyAddr from 'proxy-addr'
import type { EdgeLoginConfig } from './config.js'
import { emailFrom, groupsFrom, personExtras } from './login-person.js'

/** Verified assertions kept (until their expiry), so a page's requests verify one signature, not one each. */
const MAX_KEPT = 10_000
const MAX_ASSERTION_BYTES = 8192
/** Algorithms an identity-aware proxy signs with (Pomerium ES256, Cloudflare Access RS256); never `none` or HMAC. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

/**
 * Who is logged in, as an identity-aware proxy in front of the gateway says (oauth2-proxy,
 * Pomerium, Cloudflare Access): a signed assertion in a header, verified with jose against the
 * proxy's JWKS (issuer, audience, expiry), from any peer; or a plain header naming the person,
 * believed only from the proxies MCP_WEB_UI_TRUST_PROXY lists. An assertion that does not
 * verify names no one (the plain header is not asked then). Works on session hosts too: the
 * proxy fronts every host.
 */
export function edgeLogin (config: EdgeLoginConfig, trustProxy: boolean | string[]): LoginSource {
  const jwks = config.jwksUrl === undefined ? null : createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 })
  const trusted = trustProxy === true ? () => true : trustProxy === false ? () => false : proxyAddr.compile(trustProxy)
  const kept = new Map<string, { person: LoggedInPerson, exp: number }>()

  async function verified (assertion: string): Promise<LoggedInPerson | null> {
    const now = Date.now()
    const hit = kept.get(assertion)
    if (hit !== undefined) {
      if (hit.exp > now) return hit.person
      kept.delete(assertion)
    }
    try {
      const { payload } = await jwtVerify(assertion, jwks!, {
        algorithms: ALGORITHMS,
        audience: config.jwtAudience!,
        ...(config.jwtIssuer !== undefined && { issuer: config.jwtIssuer }),
        requiredClaims: ['exp']
      })
      const userId = payload[config.jwtUserClaim]
      if (typeof userId !== 'string' || userId.length === 0 || userId.length > 256) return null
      // An address counts for email domains when the assertion says it is verified, or when the
      // operator says the proxy's are (and the assertion does not say otherwise).
      const email = emailFrom(payload.email, payload.email_verified === true || (config.emailVerified && payload.email_verified !== false))
      const label = typeof payload.email === 'string' && payload.email.length > 0 && payload.email.length <= 256 ? payload.email : userId
      const person = { userId, label, ...personExtras(groupsFrom(payload[config.jwtGroupsClaim]).groups, email) }
      if (kept.size >= MAX_KEPT) kept.clear()
      kept.set(assertion, { person, exp: (payload.exp as number) * 1000 })
      return person
    } catch {
      // Forged, unsigned, expired, for another audience, or the JWKS cannot be had: no one.
      return null
    }
  }

  return {
    personOf (request: FastifyRequest) {
      if (config.jwtHeader !== undefined) {
        const assertion = request.headers[config.jwtHeader]
        if (assertion !== undefined) {
          if (typeof assertion !== 'string' || assertion.length > MAX_ASSERTION_BYTES) return null
          return verified(assertion)
        }
      }
      if (config.header !== undefined && trusted(request.socket.remoteAddress ?? '', 0)) {
        const value = request.headers[config.header]
        // One value, as the proxy set it (a client's second one would be joined with a comma).
        if (typeof value === 'string' && value.length > 0 && value.length <= 256 && !value.includes(',')) {
          // Its groups (oauth2-proxy's X-Auth-Request-Groups, comma-separated), from one header line
          // only: a client's own line would be joined to the proxy's. The value counts as an email
          // address when the operator says the proxy's are verified.
          let groups: string[] | undefined
          if (config.groupsHeader !== undefined) {
            const lines = request.raw.headersDistinct[config.groupsHeader]
            if (lines !== undefined && lines.length > 1) return null
            groups = groupsFrom(lines?.[0]).groups
          }
          return { userId: value, label: value, ...personExtras(groups, emailFrom(value, config.emailVerified)) }
        }
      }
      return null
    },
    // Never passed to a backend: an assertion is good from any peer, so a backend that saw one
    // could open its person's other sessions with it.
    credentialHeaders: [config.jwtHeader, config.header, config.groupsHeader].filter((h): h is string => h !== undefined),
    onSessionHosts: true
  }
}

/** The gateway's logins together: its own (a cookie, which can send a browser to log in) first, then the edge's. */
export function composeLogins (own: LoginSource | undefined, edge: LoginSource | undefined): LoginSource | undefined {
  if (own === undefined || edge === undefined) return own ?? edge
  return {
    personOf: (request, place) => own.personOf(request, place) ?? edge.personOf(request, place),
    ...(own.askLogin !== undefined && { askLogin: own.askLogin }),
    ...(own.acceptTicket !== undefined && { acceptTicket: own.acceptTicket }),
    ...(own.signOutPath !== undefined && { signOutPath: own.signOutPath }),
    credentialHeaders: [...(own.credentialHeaders ?? []), ...(edge.credentialHeaders ?? [])],
    ...(own.onSessionHosts === true && { onSessionHosts: true })
  }
}

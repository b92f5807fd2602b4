import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { LOGIN_TICKET_PARAM, sessionHostOf } from '@mcp-gw/protocol'
import type { WildcardUrl } from '@mcp-gw/protocol'
import type { LoggedInPerson, LoginPlace, LoginSource } from '@mcp-gw/proxy-plugin'
import { sendError } from '@mcp-gw/proxy-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import * as oidc from 'openid-client'
import type { OidcConfig } from './config.js'
import { LoginFailedError, LoginUnavailableError } from './errors.js'
import { emailFrom, groupsFrom, personExtras } from './login-person.js'
import { cookieValues, escapeHtml } from './page-parts.js'

/**
 * The gateway's login: OpenID Connect's authorization code flow with PKCE, through
 * openid-client (discovery, the token exchange and the ID token's checks are its own).
 *
 * A person who opens a link bound to a person (share level owner or authenticated) without a
 * login is sent to the provider at once; where they came from waits in a short-lived signed
 * cookie on the gateway's host, so no URL the provider sees (nor a Referer) holds the link.
 * Back at /_mcpgw/login/callback, the ID token's `userClaim` (from userinfo where the ID token
 * lacks it) becomes the login cookie: HttpOnly, SameSite=Lax, Secure under https, signed with
 * a key derived from the gateway's secret, never passed to a backend (an mcpgw_ cookie). It
 * lasts `loginSeconds`; after that the browser goes through the provider again, which answers
 * at once while its own session lasts (the refresh). Logging out ends the cookie and every
 * copy of it on this process.
 */

export const LOGIN_PATH = '/_mcpgw/login'
export const LOGIN_CALLBACK_PATH = '/_mcpgw/login/callback'
export const LOGOUT_PATH = '/_mcpgw/logout'
/** Isolated mode: where a session host sends a browser to be logged in, and back with a ticket. */
export const LOGIN_HOST_PATH = '/_mcpgw/login/host'
/** How long a login ticket (on its way to a session host) holds. */
const TICKET_TTL_SECONDS = 60

const STATE_TTL_SECONDS = 600
/** Logouts, and login states used, remembered at most (each until it would have expired). */
const MAX_REMEMBERED = 100_000

export interface GatewayLoginOptions {
  oidc: OidcConfig
  /** The gateway's public URL: the provider sends browsers back to <publicUrl>/_mcpgw/login/callback. */
  publicUrl: string
  /** Where session links live (a login's return address must be under it, or `/`). */
  prefix: string
  /** A key for the cookies' signatures, derived from the gateway's secret. */
  signingKey: string
  /** Discovery and token requests time out after this (ms). Default 10000. */
  timeoutMs?: number
  /** Isolated mode's session hosts, which get the login through a one-time ticket. */
  wildcard?: WildcardUrl
}

interface LoginCookie { person: LoggedInPerson, exp: number, nonce: string }
/** A login on its way to one session host (in a URL, once), or kept there (its cookie): the login's own nonce and expiry. */
interface HostLogin extends LoginCookie { label: string }
interface LoginState { verifier: string, state: string, nonce: string, returnTo: string, exp: number }

/** What a signed cookie's value says, or null: `<base64url JSON>.<HMAC>`, its purpose in the MAC. */
function unsign (key: string, purpose: string, value: string): unknown {
  const dot = value.lastIndexOf('.')
  if (dot <= 0) return null
  const payload = value.slice(0, dot)
  const mac = Buffer.from(value.slice(dot + 1))
  const expected = Buffer.from(macOf(key, purpose, payload))
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return null
  try {
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    return null
  }
}

function signed (key: string, purpose: string, value: unknown): string {
  const payload = Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${payload}.${macOf(key, purpose, payload)}`
}

function macOf (key: string, purpose: string, payload: string): string {
  return createHmac('sha256', key).update(`mcp-gw ${purpose}\0${payload}`).digest('base64url')
}

/**
 * A return address the gateway may send a browser to after login: a session page under the
 * prefix, the way back to a session host, or `/`.
 */
export function safeReturnTo (value: unknown, prefix: string): string {
  if (typeof value !== 'string' || value.length > 4096) return '/'
  // Never `//host` or `/\host` (another site), nothing outside the prefix.
  if (!(value.startsWith(prefix + '/') || value.startsWith(LOGIN_HOST_PATH + '?')) || /[\\\s]/.test(value)) return '/'
  return value
}

/**
 * Registers the login routes on the gateway's API origin and returns the proxy's LoginSource.
 * The provider's metadata is discovered on first use (and again after a failure), so a
 * provider that is down delays logins, never the gateway's start.
 */
export function gatewayLogin (app: FastifyInstance, opts: GatewayLoginOptions): LoginSource {
  const https = opts.publicUrl.startsWith('https:')
  // __Host-: no sibling subdomain can plant one; mcpgw_ names are never passed to a backend either way.
  const cookieName = https ? '__Host-mcpgw_login' : 'mcpgw_login'
  const stateName = https ? '__Host-mcpgw_login_state' : 'mcpgw_login_state'
  const secure = https ? '; Secure' : ''
  const wildcard = opts.wildcard
  // On a session host: __Host- too under https, so no other session host can plant one with Domain=.
  const hostSecure = wildcard?.protocol === 'https'
  const hostCookieName = hostSecure ? '__Host-mcpgw_person' : 'mcpgw_person'
  // The session host's half of a login round trip: the ticket that comes back must name it, so
  // a ticket someone else got for this host cannot be pushed into this browser.
  const bindCookieName = hostSecure ? '__Host-mcpgw_login_bind' : 'mcpgw_login_bind'
  const usedTickets = new Map<string, number>()
  // The gateway as browsers reach it (a public URL with a path, behind a proxy that strips it, included).
  const base = opts.publicUrl.replace(/\/+$/, '')
  const redirectUri = base + LOGIN_CALLBACK_PATH
  const loggedOut = new Map<string, number>()
  /** States whose callback came, until they expire: a callback is answered once. */
  const usedStates = new Map<string, number>()
  const issuer = new URL(opts.oidc.issuer)
  let discovered: Promise<oidc.Configuration> | null = null

  function provider (): Promise<oidc.Configuration> {
    discovered ??= oidc.discovery(issuer, opts.oidc.clientId, opts.oidc.clientSecret, undefined, {
      timeout: Math.ceil((opts.timeoutMs ?? 10_000) / 1000),
      // Plain http only for a provider on this machine (the configuration allows nothing else).
      ...(issuer.protocol === 'http:' && { execute: [oidc.allowInsecureRequests] })
    }).catch((err: unknown) => {
      discovered = null
      app.log.error({ issuer: issuer.origin, err: { message: (err as Error).message } }, 'OpenID provider discovery failed')
      throw new LoginUnavailableError({ cause: err })
    })
    return discovered
  }

  /**
   * The login a request carries: the gateway's cookie on its own host, or a session host's
   * cookie for that host alone. Two logins of different people (one planted at a longer path
   * by a page on this origin, whose cookie the browser sends first): no one.
   */
  function loginOf (request: FastifyRequest, sessionHost: string | null): LoginCookie | null {
    const now = Math.floor(Date.now() / 1000)
    let found: LoginCookie | null = null
    const [name, purpose] = sessionHost === null ? [cookieName, 'login'] : [hostCookieName, 'host login']
    for (const value of cookieValues(request, name)) {
      const cookie = unsign(opts.signingKey, purpose, value) as HostLogin | null
      if (cookie === null || typeof cookie.exp !== 'number' || cookie.exp <= now || loggedOut.has(cookie.nonce)) continue
      if (typeof cookie.person?.userId !== 'string' || typeof cookie.person.label !== 'string') continue
      if (sessionHost !== null && cookie.label !== sessionHost) continue
      if (found !== null && found.person.userId !== cookie.person.userId) return null
      found = cookie
    }
    return found
  }

  function personOf (request: FastifyRequest, place?: LoginPlace): LoggedInPerson | null {
    return loginOf(request, place?.sessionHost ?? null)?.person ?? null
  }

  /**
   * The way to a session host's page with the login in a ticket: for that host only, for a
   * minute, once, and for the browser whose round trip it is (`bind`, the hash of that host's
   * bind cookie).
   */
  function withTicket (to: URL, label: string, login: LoginCookie, bind: string): string {
    const ticket: HostLogin = { person: login.person, exp: Math.min(login.exp, Math.floor(Date.now() / 1000) + TICKET_TTL_SECONDS), nonce: login.nonce, label }
    const value = signed(opts.signingKey, 'host ticket', { ...ticket, loginExp: login.exp, id: randomBytes(12).toString('base64url'), bind })
    to.searchParams.append(LOGIN_TICKET_PARAM, value)
    return to.href
  }

  /** A session host's address to come back to (its own scheme, a host under the wildcard), or null. */
  function sessionHostUrl (value: unknown): { url: URL, label: string } | null {
    if (wildcard === undefined || typeof value !== 'string' || value.length > 4096) return null
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return null
    }
    const label = sessionHostOf(wildcard, url.host)
    if (url.protocol !== `${wildcard.protocol}:` || label === null || label === '' || url.username !== '' || url.password !== '') return null
    return { url, label }
  }

  /** Forgets what has expired; true when there is room for one more. */
  function roomIn (entries: Map<string, number>, now: number): boolean {
    if (entries.size < MAX_REMEMBERED) return true
    for (const [key, exp] of entries) if (exp <= now) entries.delete(key)
    return entries.size < MAX_REMEMBERED
  }

  async function startLogin (reply: FastifyReply, returnTo: string): Promise<FastifyReply> {
    const config = await provider()
    const verifier = oidc.randomPKCECodeVerifier()
    const state: LoginState = { verifier, state: oidc.randomState(), nonce: oidc.randomNonce(), returnTo, exp: Math.floor(Date.now() / 1000) + STATE_TTL_SECONDS }
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: opts.oidc.scopes,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: state.state,
      nonce: state.nonce
    })
    return await reply.code(302)
      .header('set-cookie', `${stateName}=${signed(opts.signingKey, 'login state', state)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${STATE_TTL_SECONDS}${secure}`)
      .header('location', url.href)
      // Where the browser was (a link, in path mode) never reaches the provider.
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-store')
      .send()
  }

  async function finishLogin (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    // A provider sends the browser back from its own site. A callback a page of this origin
    // started (a session page of any MCP server, in path mode) is someone's login planted on
    // the visitor: refused.
    if (request.headers['sec-fetch-site'] === 'same-origin') throw new LoginFailedError('a login comes back from the identity provider, not from a page of this gateway')
    const config = await provider()
    const now = Math.floor(Date.now() / 1000)
    const state = cookieValues(request, stateName).map((v) => unsign(opts.signingKey, 'login state', v) as LoginState | null).find((s): s is LoginState => s !== null && typeof s.exp === 'number' && s.exp > now)
    if (state === undefined || usedStates.has(state.state)) throw new LoginFailedError('this login started too long ago, or in another browser: open the link again')
    // Full of live entries: refused rather than left replayable.
    if (!roomIn(usedStates, now)) throw new LoginFailedError('too many logins at once: try again in a minute')
    usedStates.set(state.state, state.exp)
    const query = request.raw.url!.slice(request.raw.url!.indexOf('?'))
    let claims: Record<string, unknown>
    try {
      const tokens = await oidc.authorizationCodeGrant(config, new URL(redirectUri + (query.startsWith('?') ? query : '')), {
        pkceCodeVerifier: state.verifier,
        expectedState: state.state,
        expectedNonce: state.nonce,
        idTokenExpected: true
      })
      claims = { ...tokens.claims() }
      // Providers that keep the ID token small (only `sub`) give the rest from userinfo.
      if ((claims[opts.oidc.userClaim] === undefined || labelOf(claims) === undefined) && typeof tokens.access_token === 'string') {
        claims = { ...(await oidc.fetchUserInfo(config, tokens.access_token, claims.sub as string)), ...claims }
      } else if (opts.oidc.groupsClaim !== undefined && claims[opts.oidc.groupsClaim] === undefined && typeof tokens.access_token === 'string') {
        // Groups asked for, and not in the ID token: from userinfo, if it gives them (a login goes on without).
        const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub as string).catch((err: unknown) => {
          request.log.warn({ err: { message: (err as Error).message } }, 'userinfo (for groups) failed: logged in without groups')
          return {}
        })
        claims = { ...info, ...claims }
      }
    } catch (err) {
      // The provider's reasons are logged (they name no secret); the browser gets a code.
      request.log.warn({ err: { message: (err as Error).message, code: (err as { code?: unknown }).code } }, 'login refused')
      throw new LoginFailedError('the identity provider did not confirm the login: open the link again')
    }
    const userId = claims[opts.oidc.userClaim]
    if (typeof userId !== 'string' || userId.length === 0 || userId.length > 256) {
      throw new LoginFailedError(`the identity provider gave no ${opts.oidc.userClaim} for this person (MCP_WEB_UI_OIDC_USER_CLAIM)`)
    }
    // An address the provider has not verified names whoever typed it in (an account made with
    // someone else's address): never the person an owner link was made for.
    if (opts.oidc.userClaim === 'email' && claims.email_verified !== true) {
      throw new LoginFailedError('the identity provider has not verified this person\'s email address, which names them here (MCP_WEB_UI_OIDC_USER_CLAIM=email)')
    }
    const label = labelOf(claims) ?? userId
    // Groups as the provider lists them; an email only when the provider verified it (email domains are checked against it).
    const groups = opts.oidc.groupsClaim === undefined ? { groups: undefined, dropped: 0 } : groupsFrom(claims[opts.oidc.groupsClaim])
    if (groups.dropped > 0) request.log.warn({ loginUser: userId, dropped: groups.dropped }, 'login: groups past the limit (64, 1500 bytes) left out')
    const person = { userId, label, ...personExtras(groups.groups, emailFrom(claims.email, claims.email_verified === true)) }
    const cookie: LoginCookie = { person, exp: now + opts.oidc.loginSeconds, nonce: randomBytes(12).toString('base64url') }
    request.log.info({ loginUser: userId }, 'logged in')
    return await reply.code(303)
      .header('set-cookie', [
        `${cookieName}=${signed(opts.signingKey, 'login', cookie)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${opts.oidc.loginSeconds}${secure}`,
        `${stateName}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure}`
      ])
      .header('location', base + safeReturnTo(state.returnTo, opts.prefix))
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-store')
      .send()
  }

  app.register(async function gatewayLoginRoutes (context) {
    context.setErrorHandler((err, _request, reply) => sendError(reply, err))
    // The log-out button is a form: its (empty) body is read and set aside.
    context.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 }, (_request, _body, done) => { done(null, {}) })
    context.get(LOGIN_PATH, { schema: { hide: true } }, async (request, reply) => {
      return await startLogin(reply, safeReturnTo((request.query as { return?: unknown }).return, opts.prefix))
    })
    context.get(LOGIN_CALLBACK_PATH, { schema: { hide: true } }, finishLogin)
    if (wildcard !== undefined) {
      // A session host's browser: logged in here already, back with a ticket; else logged in first.
      context.get(LOGIN_HOST_PATH, { schema: { hide: true } }, async (request, reply) => {
        const { to: raw, bind } = request.query as { to?: unknown, bind?: unknown }
        const to = sessionHostUrl(raw)
        if (to === null) throw new LoginFailedError('that is not a page of this gateway\'s session hosts')
        if (typeof bind !== 'string' || !BIND.test(bind)) throw new LoginFailedError('open the session\'s link again')
        const login = loginOf(request, null)
        if (login === null) return await startLogin(reply, `${LOGIN_HOST_PATH}?to=${encodeURIComponent(to.url.href)}&bind=${bind}`)
        return await reply.code(303).header('location', withTicket(to.url, to.label, login, bind)).header('referrer-policy', 'no-referrer').header('cache-control', 'no-store').send()
      })
    }
    // A link to log out (from a 403 page, on any host) opens this page; its button logs out.
    context.get(LOGOUT_PATH, { schema: { hide: true } }, async (_request, reply) => {
      reply.header('cache-control', 'no-store').type('text/html; charset=utf-8')
      return '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Log out</title></head><body><h1>Log out of mcp-gw?</h1>' +
        '<form method="post" action=""><button type="submit">Log out</button></form></body></html>\n'
    })
    context.post(LOGOUT_PATH, { schema: { hide: true } }, async (request, reply) => {
      // A form on another site cannot log a person out (a nuisance, but theirs to choose).
      const site = request.headers['sec-fetch-site']
      if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new LoginFailedError('log out from the gateway\'s own pages')
      const now = Math.floor(Date.now() / 1000)
      for (const value of cookieValues(request, cookieName)) {
        const cookie = unsign(opts.signingKey, 'login', value) as LoginCookie | null
        if (cookie !== null && typeof cookie.exp === 'number' && cookie.exp > now && roomIn(loggedOut, now)) loggedOut.set(cookie.nonce, cookie.exp)
      }
      const ended = await provider().then((config) => config.serverMetadata().end_session_endpoint, () => undefined)
      reply.code(200)
        .header('set-cookie', `${cookieName}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure}`)
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer')
        .type('text/html; charset=utf-8')
      return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Logged out</title></head><body><h1>Logged out of mcp-gw</h1>' +
        (ended === undefined ? '' : `<p><a href="${escapeHtml(oidc.buildEndSessionUrl(await provider(), { client_id: opts.oidc.clientId }).href)}">Log out of your identity provider too</a></p>`) +
        '</body></html>\n'
    })
  })

  return {
    personOf,
    askLogin (request, reply, returnTo, place) {
      if (place?.sessionHost != null) {
        // To the gateway's host to log in (the page asked for, on this host, holds no credential:
        // the link was swapped for the host's cookie first), and back with a ticket.
        const back = `${wildcard!.protocol}://${request.headers.host!}${returnTo}`
        const secret = randomBytes(18).toString('base64url')
        reply.code(303).header('location', `${base}${LOGIN_HOST_PATH}?to=${encodeURIComponent(back)}&bind=${bindOf(secret)}`)
          .header('set-cookie', `${bindCookieName}=${secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${STATE_TTL_SECONDS}${hostSecure ? '; Secure' : ''}`)
          .header('referrer-policy', 'no-referrer').header('cache-control', 'no-store').send()
        return
      }
      startLogin(reply, safeReturnTo(returnTo, opts.prefix)).catch((err: unknown) => { sendError(reply, err) })
    },
    ...(wildcard !== undefined && {
      acceptTicket (value: string, label: string, request: FastifyRequest) {
        const now = Math.floor(Date.now() / 1000)
        const ticket = unsign(opts.signingKey, 'host ticket', value) as (HostLogin & { loginExp: number, id: string, bind: string }) | null
        if (ticket === null || ticket.label !== label || typeof ticket.exp !== 'number' || ticket.exp <= now || typeof ticket.id !== 'string' || usedTickets.has(ticket.id) || loggedOut.has(ticket.nonce)) return null
        // Only the browser that set out from this host (its bind cookie) takes the ticket.
        if (typeof ticket.bind !== 'string' || !cookieValues(request, bindCookieName).some((secret) => bindOf(secret) === ticket.bind)) return null
        // Full of live entries: refused rather than left replayable.
        if (!roomIn(usedTickets, now)) return null
        usedTickets.set(ticket.id, ticket.exp)
        const kept: HostLogin = { person: ticket.person, exp: ticket.loginExp, nonce: ticket.nonce, label }
        const secure = hostSecure ? '; Secure' : ''
        return {
          setCookie: [
            `${hostCookieName}=${signed(opts.signingKey, 'host login', kept)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.max(1, ticket.loginExp - now)}${secure}`,
            `${bindCookieName}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure}`
          ]
        }
      },
      onSessionHosts: true
    }),
    // An address, not a path: on a session host a path would be the backend's.
    signOutPath: base + LOGOUT_PATH
  }
}

const BIND = /^[A-Za-z0-9_-]{43}$/

/** What a login round trip's bind cookie is named by in URLs: its SHA-256, never the cookie itself. */
function bindOf (secret: string): string {
  return createHash('sha256').update(`mcp-gw login bind\0${secret}`).digest('base64url')
}

/** What to show a person about themselves: their email, user name or name, as the provider says. */
function labelOf (claims: Record<string, unknown>): string | undefined {
  return [claims.email, claims.preferred_username, claims.name].find((c): c is string => typeof c === 'string' && c.length > 0 && c.length <= 256)
}

import type { FastifyReply, FastifyRequest } from 'fastify'
import { InvalidOptionError } from './errors.js'

/** A person logged in to the gateway, as the host's login (or an identity-aware edge) vouches. */
export interface LoggedInPerson {
  /** The person as MCP servers name users: what an `owner` session's userId is compared with. */
  userId: string
  /** What to show the person about themselves (an email, a name); userId when there is nothing else. */
  label: string
  /** The groups the login says the person is in: what a session limited to groups is checked against. */
  groups?: readonly string[]
  /** Their email address, only when the login vouches it is theirs (verified): what email domains are checked against. */
  email?: string
}

/** Where a request is asked about: a session host (isolated mode, by its label), or the host app's own host (null). */
export interface LoginPlace {
  sessionHost: string | null
}

/**
 * Who is logged in, for sessions whose share level is `owner` or `authenticated`: the host
 * app's login (the gateway's OIDC login, say). `link` sessions never ask it.
 */
export interface LoginSource {
  /**
   * The person this request's login names, or null: read from a signed cookie or header (return
   * it at once), or from something to verify first, such as an edge's signed assertion (a promise).
   */
  personOf (request: FastifyRequest, place: LoginPlace): LoggedInPerson | null | Promise<LoggedInPerson | null>
  /**
   * Answers a browser's page navigation that carries no login, typically by sending it to
   * log in and back to `returnTo` (the request's path and query, which in path mode holds
   * the session's token: keep it out of every URL). Without it such a request gets 401.
   */
  askLogin?: (request: FastifyRequest, reply: FastifyReply, returnTo: string, place: LoginPlace) => void
  /**
   * On a session host, the ticket (`mcpgw_login`) a login sent the browser back with: the
   * Set-Cookie that keeps the person on this host, or null when the ticket does not hold.
   */
  acceptTicket?: (ticket: string, sessionHost: string, request: FastifyRequest) => { setCookie: string | string[] } | null
  /**
   * Request headers that carry the login (an edge's signed assertion, its user header): never
   * passed to a backend, which could otherwise replay them to the gateway as that person.
   */
  credentialHeaders?: readonly string[]
  /** Where a logged-in person signs out (a path, or a URL on the host app's host), linked from the 403 page. */
  signOutPath?: string
  /**
   * Whether it can tell who is logged in on a session host (isolated mode) too: true for a login
   * an edge in front of every host vouches for (a header, a signed assertion); not for a
   * cookie on the gateway's own host. Default false: with isolation, such a source is refused.
   */
  onSessionHosts?: boolean
}

export function loginsOption (value: unknown, isolated: boolean): LoginSource | null {
  if (value === undefined) return null
  const source = value as Partial<LoginSource> | null
  if (typeof source?.personOf !== 'function' || (source.askLogin !== undefined && typeof source.askLogin !== 'function') ||
    (source.signOutPath !== undefined && (typeof source.signOutPath !== 'string' || !/^(\/(?![/\\])|https?:\/\/)/.test(source.signOutPath))) ||
    (source.acceptTicket !== undefined && typeof source.acceptTicket !== 'function') ||
    (source.credentialHeaders !== undefined && (!Array.isArray(source.credentialHeaders) || !source.credentialHeaders.every((h) => typeof h === 'string' && /^[A-Za-z0-9_-]+$/.test(h)))) ||
    (source.onSessionHosts !== undefined && typeof source.onSessionHosts !== 'boolean')) {
    throw new InvalidOptionError('logins', 'expected { personOf(request, place), askLogin?(request, reply, returnTo, place), acceptTicket?(ticket, sessionHost), signOutPath?, onSessionHosts? }')
  }
  // A session host is an origin of its own: a login cookie of the gateway's host never reaches it.
  if (isolated && source.onSessionHosts !== true) throw new InvalidOptionError('logins', 'this login works in path mode only (a session host never sees the gateway\'s login cookie): leave isolation off, or use a login an edge vouches for on every host (onSessionHosts)')
  return source as LoginSource
}

/** Whether a request is a browser loading a page (which can be sent to log in), not a script's fetch. */
export function isPageNavigation (request: FastifyRequest): boolean {
  if (request.method !== 'GET') return false
  const mode = request.headers['sec-fetch-mode']
  if (mode !== undefined) return mode === 'navigate'
  const accept = request.headers.accept
  return typeof accept === 'string' && accept.includes('text/html')
}

/** The headers a login rides in, as a backend would read their names: dropped from every proxied request. */
export function credentialHeadersOf (source: LoginSource | null): ReadonlySet<string> {
  return new Set((source?.credentialHeaders ?? []).map((h) => h.toLowerCase().replaceAll('_', '-')))
}

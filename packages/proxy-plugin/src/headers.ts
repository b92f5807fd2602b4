import type { IncomingHttpHeaders } from 'node:http'
import type { ServerRegistration, SessionRecord } from '@mcp-gw/registry'
import type { ClientFacts } from './client-facts.js'

/**
 * What a backend is told about the request, and what the browser is told about
 * the response. Shared by the HTTP proxy and the WebSocket handshake.
 */
export interface ForwardContext {
  token: string
  prefix: string
  forwardToken: boolean
  /** Client-to-gateway facts, already resolved with the trust-proxy setting. */
  forwardedFor: string
  proto: string
  host: string | undefined
  session: SessionRecord
}

export function forwardContext (facts: ClientFacts, session: SessionRecord, token: string, prefix: string, forwardToken: boolean): ForwardContext {
  return { token, prefix, forwardToken, forwardedFor: facts.forwardedFor, proto: facts.proto, host: facts.host, session }
}

/** Headers that tell the backend who the gateway authenticated. Only the gateway sets them. */
export const IDENTITY_HEADERS = ['x-mcpgw-user-id', 'x-mcpgw-session-id', 'x-mcpgw-server-type', 'x-mcpgw-scopes'] as const

// Hop-by-hop headers (RFC 9110 7.6.1) the client meant for us, not for the backend.
// reply-from drops Connection and Transfer-Encoding itself; undici refuses the rest.
const HOP_BY_HOP = new Set(['upgrade', 'keep-alive', 'proxy-connection', 'expect', 'http2-settings', 'te'])

/**
 * Request headers for the backend, as a new object: deleting keys would turn
 * the object V8 sees on every proxied request into a slow dictionary. For an
 * `upgrade` (the WebSocket handshake) the hop-by-hop headers that carry it stay.
 */
export function rewriteRequestHeaders (headers: IncomingHttpHeaders, ctx: ForwardContext, upgrade = false): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  const token = ctx.forwardToken ? null : ctx.token
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    if (!upgrade && HOP_BY_HOP.has(name) && !(name === 'te' && value === 'trailers')) continue
    // Whatever a client sent under our header names (and our tracing ones) is
    // dropped: a backend must not take it as something the gateway said.
    if (name.startsWith('x-') && (name.startsWith('x-mcpgw-') || name === 'x-real-ip' || name === 'x-forwarded-host')) continue
    if (token !== null && typeof value === 'string' && value.includes(token)) {
      // The gateway token is not the backend's credential.
      if (name === 'authorization') continue
      if (name === 'cookie') {
        const kept = value.split(/;\s*/).filter((c) => !c.includes(token))
        if (kept.length > 0) out.cookie = kept.join('; ')
        continue
      }
    }
    out[name] = value
  }
  out['x-forwarded-for'] = ctx.forwardedFor
  out['x-forwarded-proto'] = ctx.proto
  if (ctx.host !== undefined) out['x-forwarded-host'] = ctx.host
  out['x-forwarded-prefix'] = ctx.prefix + '/' + ctx.token
  out['x-mcpgw-user-id'] = encodeURIComponent(ctx.session.userId)
  out['x-mcpgw-session-id'] = ctx.session.sessionId
  out['x-mcpgw-server-type'] = ctx.session.serverType
  out['x-mcpgw-scopes'] = ctx.session.scopes.join(',')
  return out
}

// Policies that never send a path to another origin; anything else is replaced.
const SAFE_REFERRER_POLICIES = new Set([
  'no-referrer', 'same-origin', 'origin', 'strict-origin', 'strict-origin-when-cross-origin', 'origin-when-cross-origin'
])

/** Rewrites response headers in place for the browser. */
export function rewriteResponseHeaders (
  headers: Record<string, string | string[] | undefined>,
  ctx: Pick<ForwardContext, 'token' | 'prefix'>,
  backend: ServerRegistration
): Record<string, string | string[] | undefined> {
  const base = `${ctx.prefix}/${ctx.token}`
  const location = headers.location
  if (typeof location === 'string') headers.location = rewriteLocation(location, base, backend)

  // The token is in every URL under the prefix: it must never travel in a Referer to another site.
  const policy = headers['referrer-policy']
  const last = typeof policy === 'string' ? policy.split(',').pop()?.trim().toLowerCase() : undefined
  if (last === undefined || !SAFE_REFERRER_POLICIES.has(last)) headers['referrer-policy'] = 'same-origin'

  const setCookie = headers['set-cookie']
  if (setCookie !== undefined) {
    headers['set-cookie'] = (Array.isArray(setCookie) ? setCookie : [setCookie]).map((c) => scopeCookie(c, base))
  }

  const type = headers['content-type']
  if (typeof type === 'string' && type.startsWith('text/event-stream')) {
    // Tell a buffering reverse proxy in front of us (nginx) to pass events as they come.
    headers['x-accel-buffering'] = 'no'
  }
  return headers
}

function rewriteLocation (location: string, base: string, backend: ServerRegistration): string {
  if (location.startsWith('/') && !location.startsWith('//')) return base + location
  if (location.startsWith('http://') || location.startsWith('https://')) {
    try {
      const url = new URL(location)
      const backendHost = backend.host.includes(':') ? `[${backend.host}]` : backend.host
      if (url.hostname === backendHost && Number(url.port || (url.protocol === 'https:' ? 443 : 80)) === backend.port) {
        return base + url.pathname + url.search + url.hash
      }
    } catch {}
  }
  return location
}

/** A backend cookie at Path=/x belongs to this session's prefix, not to the whole gateway origin. */
function scopeCookie (cookie: string, base: string): string {
  let scoped = false
  const parts = cookie.split(';').map((part) => {
    const trimmed = part.trim()
    if (/^path=/i.test(trimmed)) {
      scoped = true
      const path = trimmed.slice(5)
      return ` Path=${base}${path.startsWith('/') ? path : `/${path}`}`
    }
    return part
  })
  if (!scoped) parts.push(` Path=${base}/`)
  return parts.join(';')
}

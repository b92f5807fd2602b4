import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { errorBody, isLoopbackHost, isLoopbackIp } from '@mcp-gw/protocol'
import type { ApiKeyring, SessionRecord, ServerRegistration } from '@mcp-gw/registry'
import Fastify, { LogController } from 'fastify'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import { sendError } from '@mcp-gw/proxy-plugin'
import { DashboardSignInError } from './errors.js'
import { cookieValues, escapeHtml } from './page-parts.js'

/**
 * The operator's page: live servers and their instances, sessions and what is open on them,
 * revoke buttons, and live figures, rendered on the server from the registry (no build step,
 * no script but its own, by nonce).
 *
 * On an origin of its own (its own port): never the one that serves path-mode session pages,
 * whose scripts (any registered server's) would otherwise be same-origin with it, nor a session
 * host. Who may look: with an operator key configured, whoever exchanges it (a form) for a cookie
 * (HttpOnly, SameSite=Strict, Path=/dashboard, signed with a key derived from the gateway's
 * secret, naming the key, and checked against it on every request: a revoked key's cookie opens
 * nothing); with none, a loopback client, as for the API. Its forms act only for a request its
 * own page started (Fetch Metadata; Origin where a browser sends none), and failed sign-ins from
 * one address are slowed down.
 */

export const DASHBOARD_PATH = '/dashboard'
const COOKIE = 'mcpgw_operator'
/** Sign-outs remembered at most (each until its cookie's expiry): a bound on what a flood of sign-ins and -outs holds. */
const MAX_SIGNED_OUT = 100_000
const COOKIE_TTL_SECONDS = 8 * 3600
const STATIC_KEY_ID = /^static:[0-9a-f]{12}$/

export interface DashboardOptions {
  keyring: ApiKeyring
  /** The operator keys from the environment (current and previous), whose cookies stay good. */
  staticOperatorKeys: string[]
  /** What is open on each session, by session id (WebSockets, event streams, long-polls). */
  openBySession: () => Map<string, number>
  /** The live figures the page draws. */
  figures: () => Record<string, unknown>
  /** A key for the cookie's signature, derived from the gateway's secret. */
  signingKey: string
}

interface Viewer { keyId: string | null }

function since (ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`
}

function sign (key: string, payload: string): string {
  return createHmac('sha256', key).update(`mcp-gw dashboard\0${payload}`).digest('base64url')
}

/** Whether the request is one the dashboard's own page started (or a plain navigation to it). */
function ownPage (request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site']
  if (site !== undefined) return site === 'same-origin'
  // Browsers send Fetch Metadata to secure origins only; elsewhere the Origin of a form post says it.
  const origin = request.headers.origin
  if (origin === undefined) return false
  try {
    return new URL(origin).host === request.headers.host
  } catch {
    return false
  }
}

/** Bidirectional and invisible formatting characters written out (`<U+202E>`), not obeyed. */
function visible (text: unknown): string {
  return String(text).replace(/[\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]/g, (c) => `<U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}>`)
}

/** Text as the operator should read it, isolated from its neighbours' direction. */
function shown (text: unknown): string {
  return `<bdi>${escapeHtml(visible(text))}</bdi>`
}

/** Who opens a session's link, when not whoever holds it: a note beside its scopes. */
function audience (s: SessionRecord): string {
  const level = s.shareLevel ?? 'link'
  if (s.share !== undefined) {
    const whom = s.share.with !== null ? shown(s.share.with) : level === 'authenticated' ? `anyone logged in${among(s)}` : 'anyone with the link'
    return ` <span class="muted">(shared with ${whom})</span>`
  }
  return level === 'link' ? '' : ` <span class="muted">(${level === 'owner' ? 'its user only' : `anyone logged in${among(s)}`})</span>`
}

/** The groups and email domains an `authenticated` session is limited to, as a note. */
function among (s: SessionRecord): string {
  if (s.audience === undefined) return ''
  return ` in ${[...s.audience.groups.map((g) => shown(g)), ...s.audience.emailDomains.map((d) => `@${shown(d)}`)].join(', ')}`
}

const MAX_FAILURES = 5
const FAILURE_WINDOW_MS = 60_000

/** Failed sign-ins by address: after five in a minute, that address waits out the minute. */
class SignInThrottle {
  readonly #failures = new Map<string, { count: number, since: number }>()

  blocked (ip: string, now: number): boolean {
    const entry = this.#failures.get(ip)
    if (entry === undefined) return false
    if (now - entry.since > FAILURE_WINDOW_MS) {
      this.#failures.delete(ip)
      return false
    }
    return entry.count >= MAX_FAILURES
  }

  fail (ip: string, now: number): void {
    const entry = this.#failures.get(ip)
    if (entry === undefined || now - entry.since > FAILURE_WINDOW_MS) {
      // Bounded: a flood of addresses forgets the oldest.
      if (this.#failures.size >= 10_000) this.#failures.delete(this.#failures.keys().next().value!)
      this.#failures.set(ip, { count: 1, since: now })
    } else {
      entry.count++
    }
  }
}

/**
 * The dashboard's own server (listen it on a port of its own): it reads the gateway's registry
 * and counters, and serves nothing else.
 */
export function buildDashboard (gateway: FastifyInstance, opts: DashboardOptions & { trustProxy: FastifyServerOptions['trustProxy'] }): FastifyInstance {
  const app = Fastify({ loggerInstance: gateway.log.child({ component: 'dashboard' }), trustProxy: opts.trustProxy ?? false, logController: new LogController({ disableRequestLogging: true }), return503OnClosing: true })
  const registry = gateway.mcpRegistry
  const throttle = new SignInThrottle()
  // A store outage and the like: the gateway's coded answers, never a stack.
  app.setErrorHandler((err, _request, reply) => sendError(reply, err))
  /** Sign-ins ended by a sign-out, by nonce, until their cookie would have expired anyway. */
  const signedOut = new Map<string, number>()
  const staticIds = new Set(opts.staticOperatorKeys.map((k) => `static:${createHash('sha256').update(k).digest('hex').slice(0, 12)}`))

  /** Who is looking, or null: the cookie's key still works (or a loopback client, with no operator key). */
  async function viewer (request: FastifyRequest): Promise<Viewer | null> {
    if (!opts.keyring.operatorKeyConfigured) {
      const relayed = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined || request.headers['x-real-ip'] !== undefined
      return isLoopbackIp(request.ip) && !relayed && isLoopbackHost(request.headers.host) ? { keyId: null } : null
    }
    for (const value of cookieValues(request, COOKIE)) {
      const who = await fromCookie(value)
      if (who !== null) return who
    }
    return null
  }

  /**
   * The cookie's fields when its signature holds and it has not expired: `<exp>.<keyId>.<nonce>`.
   * The nonce names this sign-in, so a sign-out can end it (copies included).
   */
  function signedCookie (value: string): { exp: number, keyId: string, nonce: string } | null {
    const [exp, keyId, nonce, mac, ...rest] = value.split('.')
    if (exp === undefined || keyId === undefined || nonce === undefined || mac === undefined || rest.length > 0 || !/^\d{1,12}$/.test(exp) || Number(exp) * 1000 <= Date.now()) return null
    const expected = sign(opts.signingKey, `${exp}.${keyId}.${nonce}`)
    if (mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))) return null
    return { exp: Number(exp) * 1000, keyId, nonce }
  }

  async function fromCookie (value: string): Promise<Viewer | null> {
    const cookie = signedCookie(value)
    if (cookie === null || signedOut.has(cookie.nonce)) return null
    const { keyId } = cookie
    if (STATIC_KEY_ID.test(keyId)) return staticIds.has(keyId) ? { keyId } : null
    const record = await registry.findApiKey(keyId)
    if (record === null || record.role !== 'operator' || record.revokedAt !== null || (record.expiresAt !== null && record.expiresAt <= Date.now())) return null
    return { keyId }
  }

  function page (reply: FastifyReply, status: number, title: string, body: string, script = ''): FastifyReply {
    const nonce = randomBytes(16).toString('base64')
    return reply.code(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'same-origin')
      .header('content-security-policy', `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`)
      .send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)} · mcp-gw</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#1a1a1a;max-width:80rem}
h1{font-size:1.3rem;margin:0 0 1rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top;overflow-wrap:anywhere}
th{font-weight:600;background:#f5f5f5}td form{margin:0}.muted{color:#666}.ok{color:#17702e}.warn{color:#a35200}
button{font:inherit;cursor:pointer}.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:1rem}
.figure{border:1px solid #ddd;border-radius:6px;padding:.5rem .75rem}.figure b{font-size:1.2rem}.figure svg{display:block;width:100%;height:40px}
.flash{background:#eef7ee;border:1px solid #9c9;padding:.5rem .75rem;border-radius:6px}header{display:flex;justify-content:space-between;align-items:baseline}
</style></head><body>${body}${script === '' ? '' : `<script nonce="${nonce}">${script}</script>`}</body></html>`)
  }

  function loginPage (reply: FastifyReply, status: number, message: string): FastifyReply {
    return page(reply, status, 'Sign in', `<h1>mcp-gw</h1>
<p>${escapeHtml(message)}</p>
<form method="post" action="${DASHBOARD_PATH}/login">
<label>Operator key <input type="password" name="key" autocomplete="current-password" required minlength="16" size="48"></label>
<button>Sign in</button></form>
<p class="muted">The key is the gateway's MCP_WEB_UI_GATEWAY_API_KEY, or an operator key from <code>mcp-gw keys create --operator</code>. It is exchanged for a cookie for this page only.</p>`)
  }

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  app.get(DASHBOARD_PATH, { schema: { hide: true } }, async (request, reply) => {
    const who = await viewer(request)
    if (who === null) {
      return opts.keyring.operatorKeyConfigured
        ? loginPage(reply, 401, 'Sign in with an operator key to see this gateway.')
        : page(reply, 403, 'Forbidden', '<h1>mcp-gw</h1><p>Without an operator key (MCP_WEB_UI_GATEWAY_API_KEY), this page is for this machine only.</p>')
    }
    const now = Date.now()
    const [instances, sessions, stats] = await Promise.all([registry.listServers(), registry.listSessions({ limit: 500 }), registry.stats()])
    const open = opts.openBySession()
    const flash = (request.query as { revoked?: string }).revoked
    const byName = new Map<string, ServerRegistration[]>()
    for (const i of instances) byName.set(i.serverName, [...(byName.get(i.serverName) ?? []), i])
    const ttlMs = registry.options.registrationTtlSeconds * 1000
    const serverRows = [...byName.entries()].map(([name, list]) => list.map((i, n) => {
      // A registrant heartbeats at a third of its lifetime: later than two thirds is a missed beat or two.
      const quiet = now - i.lastHeartbeatAt > (2 * ttlMs) / 3
      return `<tr>${n === 0 ? `<td rowspan="${list.length}"><b>${shown(name)}</b></td>` : ''}<td><code>${escapeHtml(i.instanceId)}</code>${i.instance === null ? '' : ` <span class="muted">${shown(i.instance)}</span>`}</td><td>${escapeHtml(i.protocol)}://${escapeHtml(i.host)}:${i.port}</td><td>${stats.sessions.byInstance[i.instanceId] ?? 0}</td><td class="${quiet ? 'warn' : 'ok'}">${quiet ? 'heartbeat late' : 'healthy'}: last ${since(i.lastHeartbeatAt, now)}, lapses in ${Math.max(0, Math.round((i.expiresAt - now) / 1000))} s</td><td>${since(i.registeredAt, now)}</td></tr>`
    }).join('')).join('')
    const users = [...new Set(sessions.map((s) => s.userId))]
    const sessionRows = sessions.map((s: SessionRecord) => `<tr><td>${shown(s.userId)}</td><td>${shown(s.serverName)}</td><td>${escapeHtml(s.scopes.join(', '))}${audience(s)}</td><td>${since(s.createdAt, now)}</td><td>${since(s.lastActivityAt, now)}</td><td>${open.get(s.sessionId) ?? 0}</td><td>${Math.max(0, Math.round((s.expiresAt - now) / 60_000))} min</td><td><form method="post" action="${DASHBOARD_PATH}/revoke"><input type="hidden" name="sessionId" value="${escapeHtml(s.sessionId)}"><button aria-label="Revoke ${escapeHtml(visible(s.userId))}'s ${escapeHtml(visible(s.serverName))} session">Revoke</button></form></td></tr>`).join('')
    const userForm = `<form method="post" action="${DASHBOARD_PATH}/revoke" id="revoke-user"><label>Revoke every session of <select name="userId">${users.map((u) => `<option value="${escapeHtml(u)}">${escapeHtml(visible(u))}</option>`).join('')}</select></label> <button>Revoke</button></form>`
    const body = `<header><h1>mcp-gw</h1><span class="muted">${escapeHtml(registry.store.kind)} store · ${who.keyId === null ? 'this machine' : `key ${escapeHtml(who.keyId)}`}${who.keyId === null ? '' : ` · <form method="post" action="${DASHBOARD_PATH}/logout" style="display:inline"><button>Sign out</button></form>`}</span></header>
${flash === undefined || !/^\d{1,6}$/.test(flash) ? '' : `<p class="flash" role="status">Revoked ${flash} session${flash === '1' ? '' : 's'}. Open pages, WebSockets and streams on ${flash === '1' ? 'it' : 'them'} end within seconds.</p>`}
<h2>Live figures</h2>
<div class="figures" id="figures">
<div class="figure"><span>Requests/s</span> <b id="f-rps">…</b><svg id="c-rps" viewBox="0 0 60 40" preserveAspectRatio="none"></svg></div>
<div class="figure"><span>p99 latency</span> <b id="f-p99">…</b><svg id="c-p99" viewBox="0 0 60 40" preserveAspectRatio="none"></svg></div>
<div class="figure"><span>Errors/s (4xx · 5xx)</span> <b id="f-err">…</b><svg id="c-err" viewBox="0 0 60 40" preserveAspectRatio="none"></svg></div>
<div class="figure"><span>Open WebSockets · streams</span> <b id="f-open">…</b><svg id="c-open" viewBox="0 0 60 40" preserveAspectRatio="none"></svg></div>
</div>
<table id="errors"><caption>Coded answers on session traffic, last two minutes</caption><thead><tr><th>Code</th><th>Count</th></tr></thead><tbody><tr><td colspan="2" class="muted">None.</td></tr></tbody></table>
<h2>Servers <span class="muted">(${stats.servers.live} instance${stats.servers.live === 1 ? '' : 's'})</span></h2>
${serverRows === '' ? '<p class="muted">No MCP server is registered. A server registers with MCP_WEB_UI_GATEWAY_URL set to this gateway.</p>' : `<table id="servers"><thead><tr><th>Server</th><th>Instance</th><th>Backend</th><th>Sessions</th><th>Registration</th><th>Since</th></tr></thead><tbody>${serverRows}</tbody></table>`}
<h2>Sessions <span class="muted">(${stats.sessions.live} live${sessions.length < stats.sessions.live ? `, the newest ${sessions.length} shown` : ''})</span></h2>
${sessionRows === '' ? '<p class="muted">No live session.</p>' : `${userForm}<table id="sessions"><thead><tr><th>User</th><th>Server</th><th>Scopes</th><th>Created</th><th>Last activity</th><th>Open</th><th>Expires in</th><th></th></tr></thead><tbody>${sessionRows}</tbody></table>`}`
    return page(reply, 200, 'Dashboard', body, FIGURES_SCRIPT)
  })

  app.get(`${DASHBOARD_PATH}/figures`, { schema: { hide: true } }, async (request, reply) => {
    if (await viewer(request) === null) {
      const err = new DashboardSignInError()
      return reply.code(401).header('cache-control', 'no-store').send(errorBody(401, err.code, err.message))
    }
    return reply.header('cache-control', 'no-store').send(opts.figures())
  })

  app.post(`${DASHBOARD_PATH}/login`, { schema: { hide: true } }, async (request, reply) => {
    if (!ownPage(request)) return page(reply, 403, 'Forbidden', '<h1>mcp-gw</h1><p>Sign in from the dashboard\'s own page.</p>')
    const now = Date.now()
    if (throttle.blocked(request.ip, now)) return loginPage(reply, 429, 'Too many wrong keys from this address: try again in a minute.')
    const key = (request.body as { key?: unknown } | undefined)?.key
    const caller = typeof key === 'string' && key.length >= 16 && key.length <= 512 ? await opts.keyring.resolve(key) : null
    if (caller === null || caller.kind !== 'operator' || caller.keyId === null) {
      throttle.fail(request.ip, now)
      request.log.warn({ ip: request.ip }, 'dashboard: a sign-in with a key that is not an operator key')
      return loginPage(reply, 401, 'That is not an operator key of this gateway.')
    }
    const exp = Math.floor(Date.now() / 1000) + COOKIE_TTL_SECONDS
    const payload = `${exp}.${caller.keyId}.${randomBytes(12).toString('base64url')}`
    const secure = request.protocol === 'https' ? '; Secure' : ''
    return reply.code(303)
      .header('set-cookie', `${COOKIE}=${payload}.${sign(opts.signingKey, payload)}; Path=${DASHBOARD_PATH}; HttpOnly; SameSite=Strict; Max-Age=${COOKIE_TTL_SECONDS}${secure}`)
      .header('location', DASHBOARD_PATH)
      .send()
  })

  app.post(`${DASHBOARD_PATH}/logout`, { schema: { hide: true } }, async (request, reply) => {
    if (!ownPage(request)) return page(reply, 403, 'Forbidden', '<h1>mcp-gw</h1><p>Sign out from the dashboard\'s own page.</p>')
    // The sign-in ends here, not only in this browser: a copy of the cookie opens nothing more.
    const now = Date.now()
    for (const [nonce, exp] of signedOut) if (exp <= now) signedOut.delete(nonce)
    for (const value of cookieValues(request, COOKIE)) {
      const cookie = signedCookie(value)
      if (cookie !== null && signedOut.size < MAX_SIGNED_OUT) signedOut.set(cookie.nonce, cookie.exp)
    }
    return reply.code(303).header('set-cookie', `${COOKIE}=; Path=${DASHBOARD_PATH}; HttpOnly; SameSite=Strict; Max-Age=0`).header('location', DASHBOARD_PATH).send()
  })

  app.post(`${DASHBOARD_PATH}/revoke`, { schema: { hide: true } }, async (request, reply) => {
    const who = ownPage(request) ? await viewer(request) : null
    if (who === null) return page(reply, 403, 'Forbidden', '<h1>mcp-gw</h1><p>Revoke from the dashboard\'s own page, signed in.</p>')
    const body = (request.body ?? {}) as { sessionId?: unknown, userId?: unknown }
    const filter = typeof body.sessionId === 'string' ? { sessionId: body.sessionId } : typeof body.userId === 'string' ? { userId: body.userId } : null
    if (filter === null) return page(reply, 400, 'Bad request', '<h1>mcp-gw</h1><p>Nothing to revoke was named.</p>')
    const revoked = await registry.revoke(filter, { actor: { kind: who.keyId === null ? 'loopback' : 'operator', keyId: who.keyId }, reason: 'revoked from the dashboard' })
    return reply.code(303).header('location', `${DASHBOARD_PATH}?revoked=${revoked}`).send()
  })

  // Anything else on this origin: the page is one click away.
  app.setNotFoundHandler(async (request, reply) => request.method === 'GET' && request.url === '/' ? reply.redirect(DASHBOARD_PATH) : reply.code(404).send(errorBody(404, 'MCPGW_NOT_FOUND', `Route ${request.method}:${request.url.split('?')[0]!} not found`)))
  return app
}

/** Polls the figures every 2 s and draws the last two minutes of each as a line. */
const FIGURES_SCRIPT = `
const points = { rps: [], p99: [], err: [], open: [] }
let last = null
/** Each poll's new coded answers, by code, for the last two minutes. */
const errorWindows = []
const drawErrors = () => {
  const total = {}
  for (const w of errorWindows) for (const [code, n] of Object.entries(w)) total[code] = (total[code] ?? 0) + n
  const rows = Object.entries(total).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])
  const body = document.querySelector('#errors tbody')
  body.replaceChildren(...(rows.length === 0 ? [Object.assign(document.createElement('tr'), { innerHTML: '<td colspan="2" class="muted">None.</td>' })] : rows.map(([code, n]) => {
    const tr = document.createElement('tr')
    const c = document.createElement('td')
    const k = document.createElement('code')
    k.textContent = code
    c.append(k)
    const v = document.createElement('td')
    v.textContent = String(n)
    tr.append(c, v)
    return tr
  })))
}
const draw = (id, values) => {
  const svg = document.getElementById('c-' + id)
  const max = Math.max(1, ...values)
  const line = values.map((v, i) => (60 - values.length + i + 1) + ',' + (39 - (v / max) * 37).toFixed(1)).join(' ')
  svg.innerHTML = '<polyline fill="none" stroke="#2563eb" stroke-width="1.5" vector-effect="non-scaling-stroke" points="' + line + '"/>'
  svg.dataset.points = String(values.length)
}
const p99 = (prev, now) => {
  const count = now.latencyCount - prev.latencyCount
  if (count <= 0) return 0
  const target = count * 0.99
  for (let i = 0; i < now.latencyBuckets.length; i++) {
    if (now.latencyBuckets[i] - prev.latencyBuckets[i] >= target) return now.bucketBoundsMs[i]
  }
  return now.bucketBoundsMs[now.bucketBoundsMs.length - 1]
}
const tick = async () => {
  let now
  try { now = await (await fetch('${DASHBOARD_PATH}/figures', { cache: 'no-store' })).json() } catch { return }
  if (last !== null && now.time > last.time) {
    const s = (now.time - last.time) / 1000
    const sum = (o) => o['2xx'] + o['3xx'] + o['4xx'] + o['5xx']
    const rps = (sum(now.responses) - sum(last.responses)) / s
    const err4 = (now.responses['4xx'] - last.responses['4xx']) / s
    const err5 = (now.responses['5xx'] - last.responses['5xx']) / s
    const values = { rps, p99: p99(last, now), err: err4 + err5, open: now.websockets + now.streams }
    for (const k of Object.keys(points)) { points[k].push(values[k]); if (points[k].length > 60) points[k].shift(); draw(k, points[k]) }
    document.getElementById('f-rps').textContent = rps.toFixed(1)
    document.getElementById('f-p99').textContent = '≤ ' + values.p99 + ' ms'
    document.getElementById('f-err').textContent = err4.toFixed(1) + ' · ' + err5.toFixed(1)
    document.getElementById('f-open').textContent = now.websockets + ' · ' + now.streams
    const fresh = {}
    for (const [code, n] of Object.entries(now.errors)) fresh[code] = n - (last.errors[code] ?? 0)
    errorWindows.push(fresh)
    if (errorWindows.length > 60) errorWindows.shift()
    drawErrors()
  }
  last = now
}
tick()
setInterval(tick, 2000)
`

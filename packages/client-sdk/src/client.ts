import { randomBytes } from 'node:crypto'
import { INSTANCE_PROBE_ANSWER_HEADER, INSTANCE_PROBE_HEADER, INSTANCE_PROBE_PATH, instanceProbeProof, isLoopbackHost, sessionKeyOf } from '@mcp-gw/protocol'
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  ClosedError, DirectLoopbackOnlyError, GatewayAnswerError, GatewayKeyScopeError, GatewayTimeoutError, GatewayUnauthorizedError, GatewayUnreachableError,
  InvalidOptionError, NotRegisteredError, gatewayCodeOf
} from './errors.js'
import { authenticateRequest } from './authenticate.js'
import { GatewayApi, REREGISTER_CODES, isUnreachable } from './gateway-api.js'
import type { CallOptions, Registration } from './gateway-api.js'
import type { UiIdentity } from './authenticate.js'
import { DirectLinks, directOrigin } from './direct-links.js'
import { resolveOptions } from './options.js'
import type { GatewayClientOptions, ResolvedOptions } from './options.js'

export interface RegisterInput {
  host: string
  port: number
  protocol?: 'http' | 'https'
  metadata?: Record<string, unknown>
}

export interface SessionOptions {
  ttlSeconds?: number
  scopes?: string[]
  /**
   * Who may open the link: `owner` (only the person logged in to the gateway as this userId),
   * `authenticated` (anyone logged in to it), `link` (whoever holds it). Default: the gateway's
   * `MCP_WEB_UI_MAX_SHARE_LEVEL` (`link` unless the operator lowered it). `owner` and
   * `authenticated` need a gateway with a login, and are never answered with a direct link.
   */
  shareLevel?: 'owner' | 'authenticated' | 'link'
  /** With `authenticated`: only people in one of these groups (as the gateway's login names them)... */
  groups?: string[]
  /** ...or with a verified email address at one of these domains. */
  emailDomains?: string[]
  /** Replace a live session for the same user instead of returning it. */
  rotate?: boolean
}

export interface ShareOptions {
  /**
   * The one person the share opens for, as the gateway's login names them (the userId this
   * server uses). Without it, `shareLevel` says who: `authenticated` (anyone logged in to the
   * gateway) or `link` (whoever holds the share's link, if the gateway allows bearer links).
   */
  person?: string
  shareLevel?: 'authenticated' | 'link'
  /** Instead of a person: people in one of these groups (as the gateway's login names them)... */
  groups?: string[]
  /** ...or with a verified email address at one of these domains. */
  emailDomains?: string[]
  /** Default `['view']`: view-only. Never more than the shared session has. */
  scopes?: string[]
  /** Default and at most: what is left of the shared session's life. */
  ttlSeconds?: number
}

export interface SessionLink {
  /** Open this in a browser. */
  url: string
  /** The bearer token inside the URL; never log it. */
  token: string
  expiresAt: Date
  sessionId?: string
  /** `gateway`: through the gateway; `direct`: straight to the UI server (direct mode, or the fallback). */
  via: 'gateway' | 'direct'
  /**
   * Who may frame the page (CSP `frame-ancestors` sources), as the gateway said when this
   * process registered; absent when unknown (direct links, older gateways).
   */
  frameAncestors?: string[]
}

/**
 * Where the client stands with the gateway:
 * - `idle`: nothing to register yet (before `register()` / `startWebUI()`)
 * - `connecting`: registering, or retrying after a refusal that may pass
 * - `registered`: the gateway routes to this UI; links are gateway links
 * - `unreachable`: the gateway cannot be reached; `createSession` fails (no fallback)
 * - `direct`: direct links: direct mode, or the gateway is unreachable and `fallback: 'direct'` is on
 * - `refused`: the gateway refused the API key; nothing is retried
 * - `closed`: after `close()`
 */
export type ClientState = 'idle' | 'connecting' | 'registered' | 'unreachable' | 'direct' | 'refused' | 'closed'

export interface ClientEvents {
  registered: []
  unreachable: [Error]
  direct: []
  refused: [Error]
  closed: []
}

export interface GatewayClient extends EventEmitter<ClientEvents> {
  readonly mode: 'gateway' | 'direct'
  readonly serverName: string
  readonly state: ClientState
  /** True while the gateway routes to this UI (or, in direct mode, once the UI is bound). */
  readonly registered: boolean
  /**
   * The origins this client's links can point at: the gateway's public origin (or its
   * wildcard origin in isolated mode, as the gateway reported it when registering; the
   * gateway URL's origin until then), and the UI server's own origin in direct mode or
   * with `fallback: 'direct'`. What a page embedding the links must allow to frame.
   */
  readonly linkOrigins: string[]
  /**
   * Settles once links can be handed out: registered, or direct links (direct mode or the
   * fallback). Rejects if the gateway refuses the API key or the client is closed first.
   */
  readonly ready: Promise<void>
  /**
   * Starts registering the UI (in the background, with heartbeats and one backoff loop).
   * The promise settles like `ready`, and rejects with the last failure (MCPGW_SDK_GATEWAY_UNREACHABLE,
   * or the gateway's refusal) after `registerTimeoutMs` (registration goes on); nobody needs to await it.
   */
  register (input: RegisterInput): Promise<void>
  /** Stops heartbeats and removes the registration (the call gives up after `timeoutMs`, default `requestTimeoutMs`). */
  deregister (timeoutMs?: number): Promise<void>
  createSession (userId: string, options?: SessionOptions): Promise<SessionLink>
  /**
   * Shares a live session of this process (by the `sessionId` of its link) with another
   * person, anyone logged in, or anyone with the link: a link of its own, view-only unless
   * `scopes` says more, ending when revoked (`revokeSession({ sessionId })` with the share's
   * id), when it expires, or when the shared session ends. Through the gateway only.
   */
  shareSession (sessionId: string, options?: ShareOptions): Promise<SessionLink>
  /** Revokes this server's sessions of `userId`, or one session (or share) by id. */
  revokeSession (selector: { userId: string } | { sessionId: string }): Promise<number>
  /** Checks a direct link's token. Null for anything else. */
  validateDirectToken (token: string): { userId: string } | null
  /**
   * Who a request to the UI (HTTP or WebSocket upgrade) is for: the gateway's identity
   * headers, accepted only with the gateway's fresh proof that it set them for this registrant,
   * or a direct link's token (`?token=` or this UI's cookie). Given `res`, a token from the
   * query is swapped for an HttpOnly cookie, so the page's own requests need no token.
   * Null: refuse the request.
   */
  authenticate (req: IncomingMessage, res?: ServerResponse): UiIdentity | null
  /**
   * Answers the gateway's instance probe (`GET /.well-known/mcp-gw/instance`), by which it
   * tells a restart of this process from a second live one; true when it answered.
   * `startWebUI` calls it for you before your handler.
   */
  answerInstanceProbe (req: IncomingMessage, res: ServerResponse): boolean
  /** Stops heartbeats and deregisters (bounded by `timeoutMs`, default 1500). */
  close (options?: { timeoutMs?: number }): Promise<void>
}

/** How long a watch may stay silent (the gateway writes every 15 s) before the connection counts as dead. */
const WATCH_SILENCE_MS = 45_000
/** A watch that ends sooner than this was not the gateway stopping: the re-registration after it backs off. */
const WATCH_SHORT_MS = 2000
/** After a watch ends, how long failed registrations retry within a second (a restart's time to listen again). */
const RESTART_WINDOW_MS = 60_000

const MIN_HEARTBEAT_MS = 1000
const BASE_BACKOFF_MS = 250
const MAX_BACKOFF_MS = 15_000

/** Capped exponential backoff with equal jitter: the n-th retry waits 50-100% of min(cap, base * 2^n). */
export function backoffMs (attempt: number, random = Math.random): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** Math.min(attempt, 16))
  return Math.round(ceiling * (0.5 + random() / 2))
}

/**
 * Whether a direct link to the UI can be safe: over https, or on loopback, where browsers send
 * Fetch Metadata (see `authenticate`); a plain-http LAN name gets neither.
 */
function directLinksWork (address: RegisterInput): boolean {
  return address.protocol === 'https' || isLoopbackHost(address.host)
}

class Client extends EventEmitter<ClientEvents> implements GatewayClient {
  readonly mode: 'gateway' | 'direct'
  readonly serverName: string
  readonly ready: Promise<void>
  #state: ClientState = 'idle'
  readonly #options: ResolvedOptions
  readonly #api: GatewayApi
  /** This process, to the gateway: made once, never shown in logs. */
  readonly #incarnation = randomBytes(16).toString('base64url')
  /** The instance the gateway registered this process as, from the last registration. */
  #instanceId: string | null = null
  /** What the gateway keys its proofs with: given with each registration, null until the first. */
  #proofKey: string | null = null
  /** Why the gateway refused this client for good (its key, or the key's scope). */
  #refusal: Error | null = null
  #registration: RegisterInput | null = null
  #timer: NodeJS.Timeout | null = null
  #attempt = 0
  /** The registration call in flight: everyone who needs one waits for the same. */
  #inFlight: Promise<void> | null = null
  /** Abandons the registration call in flight, for a tool call that will not wait on the loop's longer timeout. */
  #inFlightAbort: AbortController | null = null
  /** The call in flight was sent for a tool call, bounded by its deadline: other tool calls may share it. */
  #inFlightBounded = false
  #lastWarning = ''
  #linkOrigin: string | null = null
  #frameAncestors: string[] | null = null
  #lastError: Error | null = null
  #settleReady!: (err?: Error) => void
  readonly #directLinks = new DirectLinks()
  #closing: Promise<void> | null = null
  /** Aborts calls in flight when the client deregisters or closes. */
  #abort = new AbortController()
  /** The watch held open on the gateway (its end says the gateway went away): its abort. */
  #watching: AbortController | null = null
  #watchedInstance: string | null = null
  /** Watches in a row that ended within WATCH_SHORT_MS. */
  #shortWatches = 0
  /** When the gateway last went away (a watch ended): retries stay within a second for a minute after. */
  #watchEndedAt: number | null = null

  constructor (options: GatewayClientOptions) {
    super()
    this.#options = resolveOptions(options)
    const { gatewayUrl: url, apiKey, secret, serverName, requestTimeoutMs: timeoutMs } = this.#options
    this.#api = new GatewayApi({ url, apiKey, secret, serverName, timeoutMs })
    this.mode = this.#options.mode
    this.serverName = this.#options.serverName
    this.ready = new Promise<void>((resolve, reject) => {
      this.#settleReady = (err) => { if (err === undefined) resolve(); else reject(err) }
    })
    // Awaiting `ready` is optional: an unobserved rejection must not end the process.
    this.ready.catch(() => {})
    if (this.#options.gatewayUnset) {
      // The one mistake that fails silently otherwise: links that work only on this machine.
      this.#options.logger.warn({ serverName: this.serverName },
        'no gateway configured (MCP_WEB_UI_GATEWAY_URL is not set): links point straight at this UI server')
    }
  }

  get state (): ClientState { return this.#state }
  get registered (): boolean { return this.#state === 'registered' || (this.mode === 'direct' && this.#state === 'direct') }

  get linkOrigins (): string[] {
    const origins: string[] = []
    if (this.mode === 'gateway') origins.push(this.#linkOrigin ?? new URL(this.#options.gatewayUrl).origin)
    const registration = this.#registration
    if (registration !== null && (this.mode === 'direct' || this.#options.fallback) && directLinksWork(registration)) {
      origins.push(directOrigin(registration))
    }
    return origins
  }

  #enter (state: ClientState, err?: Error): void {
    if (this.#state === state || this.#state === 'closed') return
    this.#state = state
    if (state === 'registered' || state === 'direct') this.#settleReady()
    if (state === 'refused' || state === 'closed') this.#settleReady(err ?? new ClosedError())
    if (state === 'unreachable') this.emit('unreachable', err!)
    else if (state === 'refused') this.emit('refused', err!)
    else if (state !== 'idle' && state !== 'connecting') this.emit(state)
  }

  /** Read anew after an await: close() may have run meanwhile. */
  #closed (): boolean { return this.#state === 'closed' }

  /** One warning per kind of trouble, not one per try. */
  #warnOnce (kind: string, fields: object, msg: string): void {
    if (this.#lastWarning === kind) return
    this.#lastWarning = kind
    this.#options.logger.warn({ serverName: this.serverName, ...fields }, msg)
  }

  /** The gateway cannot be reached, or does not answer in time: said once, then direct links with the fallback. */
  #unreachable (err: Error): void {
    const fallback = this.#options.fallback
    this.#warnOnce('unreachable', { gateway: this.#options.gatewayUrl, code: gatewayCodeOf(err) ?? (err as { code?: string }).code, fallback: fallback ? 'direct' : 'none' },
      `${err instanceof GatewayTimeoutError ? 'the gateway does not answer in time' : 'the gateway cannot be reached'}; ${fallback ? 'handing out direct links until it answers' : 'retrying'}`)
    // Already on direct links: the gateway is still away, nothing changed.
    if (this.#state !== 'direct') {
      this.#enter('unreachable', err)
      if (fallback) this.#enter('direct')
    }
  }

  /** What every call to the gateway carries: this process's incarnation once registered, and the abort of close(). */
  #callOptions (timeoutMs?: number, abandon?: AbortSignal): CallOptions {
    return {
      // Only once registered by this client: a registration made elsewhere is found by the secret alone.
      ...(this.#instanceId !== null && { incarnation: this.#incarnation }),
      ...(timeoutMs !== undefined && { timeoutMs }),
      signal: abandon === undefined ? this.#abort.signal : AbortSignal.any([this.#abort.signal, abandon])
    }
  }

  /** A call made for a registration since replaced: the current one (if any) is sent next, at once. */
  #handOver (): void {
    if (this.#registration !== null && !this.#closed()) this.#schedule(0)
  }

  #schedule (ms: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { this.#timer = null; this.#registerNow().catch(() => {}) }, ms)
    this.#timer.unref()
  }

  /**
   * One registration call, shared by whoever asks while it is in flight (the
   * heartbeat timer, `createSession`), and the one place that moves the state and
   * schedules the next call. Rejects with the failure; the loop goes on by itself.
   */
  #registerNow (timeoutMs?: number): Promise<void> {
    if (this.#inFlight === null) {
      const abandon = new AbortController()
      this.#inFlightAbort = abandon
      this.#inFlightBounded = timeoutMs !== undefined
      this.#inFlight = this.#attemptRegistration(abandon.signal, timeoutMs).finally(() => { this.#inFlight = null })
    }
    return this.#inFlight
  }

  /**
   * A registration for a tool call, bounded by what is left of its deadline: it shares a
   * call sent for another tool call (bounded too), and abandons one of the background loop,
   * which may wait on a hung gateway for the whole `requestTimeoutMs`, for a fresh one.
   */
  async #registrationFor (timeoutMs: number): Promise<void> {
    const pending = this.#inFlight
    if (pending !== null && !this.#inFlightBounded) {
      this.#inFlightAbort?.abort()
      await pending.catch(() => {})
    }
    return await this.#registerNow(timeoutMs)
  }

  async #attemptRegistration (abandon: AbortSignal, timeoutMs?: number): Promise<void> {
    const registration = this.#registration
    if (registration === null || this.#state === 'closed' || this.#state === 'refused') throw new NotRegisteredError()
    if (this.#timer !== null) clearTimeout(this.#timer)
    let result: Registration
    try {
      result = await this.#api.register({
        serverName: this.serverName,
        ...registration,
        incarnation: this.#incarnation,
        ...(this.#options.instance !== undefined && { instance: this.#options.instance })
      }, this.#callOptions(timeoutMs, abandon))
    } catch (err) {
      // Abandoned for a fresh call, which decides the state.
      if (abandon.aborted) throw err
      if (this.#registration !== registration || this.#closed()) {
        this.#handOver()
        throw err
      }
      if (err instanceof GatewayUnauthorizedError || err instanceof GatewayKeyScopeError) {
        this.#options.logger.warn({ serverName: this.serverName, code: err.code }, err instanceof GatewayKeyScopeError
          ? `the API key (MCP_WEB_UI_GATEWAY_API_KEY) does not act for the server name ${this.serverName}; registration stopped: ask the operator for a key that does`
          : 'the gateway refused the API key (MCP_WEB_UI_GATEWAY_API_KEY); registration stopped')
        this.#refusal = err
        this.#enter('refused', err)
        throw err
      }
      this.#lastError = err as Error
      const gatewayCode = gatewayCodeOf(err)
      const retryInMs = this.#retryDelay(this.#attempt++)
      if (isUnreachable(err)) {
        this.#unreachable(err as Error)
      } else {
        const code = gatewayCode ?? (err as { code?: string }).code
        this.#warnOnce(`refused:${code}`, { code }, err instanceof GatewayAnswerError
          ? 'the gateway\'s answer to the registration is malformed; retrying'
          : 'the gateway refused the registration; retrying')
        if (this.#state !== 'direct') this.#enter('connecting')
      }
      this.#schedule(retryInMs)
      throw err
    }
    if (this.#registration !== registration || this.#closed()) {
      this.#handOver()
      return
    }
    if (this.#state !== 'registered') this.#options.logger.info({ serverName: this.serverName, gateway: this.#options.gatewayUrl }, 'registered with the gateway')
    this.#attempt = 0
    this.#lastWarning = ''
    this.#lastError = null
    if (result.linkOrigin !== undefined) this.#linkOrigin = result.linkOrigin
    this.#frameAncestors = result.frameAncestors ?? null
    if (result.proofKey !== undefined) this.#proofKey = result.proofKey
    if (result.instanceId !== undefined) this.#instanceId = result.instanceId
    this.#enter('registered')
    this.#watch()
    // A third of the remaining lifetime: two heartbeats may fail before the registration lapses.
    const lifetime = result.expiresAt.getTime() - Date.now()
    this.#schedule(Math.max(MIN_HEARTBEAT_MS, Math.floor(lifetime / 3)))
  }

  /**
   * Holds a watch open on the gateway once registered: when it ends (the gateway stopped or
   * restarted, and may have forgotten this instance) the client registers again at once,
   * not at its next heartbeat. An older gateway without watches: heartbeats alone, as before.
   */
  #watch (): void {
    if (this.#instanceId === null || (this.#watching !== null && this.#watchedInstance === this.#instanceId)) return
    this.#unwatch()
    const stop = new AbortController()
    this.#watching = stop
    this.#watchedInstance = this.#instanceId
    const since = Date.now()
    this.#api.watch(this.#instanceId, { incarnation: this.#incarnation, silenceMs: WATCH_SILENCE_MS, signal: AbortSignal.any([stop.signal, this.#abort.signal]) })
      .then((outcome) => {
        if (this.#watching === stop) this.#watching = null
        if (stop.signal.aborted || this.#registration === null || this.#closed() || this.#state === 'refused' || outcome === 'unsupported') return
        const now = Date.now()
        if (now - since < WATCH_SHORT_MS) {
          // The first of a run starts the window; a watch that keeps ending at once (not a
          // restart: say a proxy cutting it) does not renew it, and backs off as before.
          if (++this.#shortWatches === 1 && (this.#watchEndedAt === null || now - this.#watchEndedAt >= RESTART_WINDOW_MS)) this.#watchEndedAt = now
        } else {
          this.#shortWatches = 0
          this.#watchEndedAt = now
        }
        // Soon, not at once: a gateway that is closing may still answer a moment, and the
        // processes it served should not all come back in the same millisecond.
        this.#schedule(this.#retryDelay(this.#shortWatches))
      })
      .catch(() => {})
  }

  /**
   * The backoff for a retry. Within a minute of the gateway going away (its watch ended), when
   * it is most likely restarting, at most a second: the server is back soon after it listens.
   */
  #retryDelay (attempt: number): number {
    const restarting = this.#watchEndedAt !== null && Date.now() - this.#watchEndedAt < RESTART_WINDOW_MS
    return backoffMs(restarting ? Math.min(attempt, 2) : attempt)
  }

  #unwatch (): void {
    this.#watching?.abort()
    this.#watching = null
  }

  async register (input: RegisterInput): Promise<void> {
    if (this.#state === 'closed') throw new ClosedError()
    if (typeof input?.host !== 'string' || !Number.isInteger(input.port) || input.port < 1 || input.port > 65535) {
      throw new InvalidOptionError('register', 'expected { host, port }')
    }
    this.#registration = { ...input }
    if ((this.mode === 'direct' || this.#options.fallback) && !directLinksWork(input)) {
      this.#options.logger.warn({ serverName: this.serverName, host: input.host }, this.mode === 'direct'
        ? 'direct links over http work only on a loopback host: tool calls will fail (MCPGW_SDK_DIRECT_LOOPBACK_ONLY); set MCP_WEB_UI_GATEWAY_URL, or serve the UI over https'
        : 'no direct fallback: direct links over http work only on a loopback host')
    }
    if (this.mode === 'direct') {
      this.#enter('direct')
      return
    }
    if (this.#state === 'refused') throw this.#refusal ?? new GatewayUnauthorizedError()
    if (this.#state === 'idle') this.#enter('connecting')
    this.#attempt = 0
    this.#registerNow().catch(() => {})
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(this.#lastError ?? new GatewayUnreachableError(this.#options.gatewayUrl)), this.#options.registerTimeoutMs)
    })
    try {
      await Promise.race([this.ready, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  async deregister (timeoutMs = this.#options.requestTimeoutMs): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#unwatch()
    const had = this.#registration !== null
    this.#registration = null
    if (this.#state !== 'closed' && this.#state !== 'refused') this.#state = 'idle'
    // A registration call in flight lands first (else the delete could overtake it, and it would
    // re-create what the delete removed); past half the budget it is abandoned.
    if (this.#inFlight !== null) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([this.#inFlight.catch(() => {}), new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs / 2) })])
      clearTimeout(timer)
      this.#abort.abort()
      this.#abort = new AbortController()
    }
    if (this.mode === 'gateway' && had) await this.#api.deregister(this.#instanceId, this.#callOptions(timeoutMs))
  }

  async createSession (userId: string, sessionOptions: SessionOptions = {}): Promise<SessionLink> {
    if (this.#state === 'closed') throw new ClosedError()
    if (typeof userId !== 'string' || userId.length === 0) throw new InvalidOptionError('userId', 'expected a non-empty string')
    const personBound = sessionOptions.shareLevel !== undefined && sessionOptions.shareLevel !== 'link'
    if (this.mode === 'direct') {
      if (this.#registration === null) throw new NotRegisteredError()
      // A direct link is a bearer link: never one for a session bound to a person.
      if (personBound) throw new InvalidOptionError('shareLevel', `${String(sessionOptions.shareLevel)} needs the gateway's login; a direct link opens for whoever holds it`)
      return this.#directLink(userId, sessionOptions)
    }
    if (this.#state === 'refused') throw this.#refusal ?? new GatewayUnauthorizedError()
    // A tool call waits on this: every call to the gateway below gets what is left of one
    // bound, past which the answer is a direct link (the fallback) or MCPGW_SDK_GATEWAY_TIMEOUT;
    // the registration loop goes on by itself.
    const bound = this.#options.sessionTimeoutMs
    const deadline = Date.now() + bound
    const left = (): number => {
      const ms = deadline - Date.now()
      if (ms <= 0) throw new GatewayTimeoutError(this.#options.gatewayUrl, bound)
      return ms
    }
    try {
      // Registered by other means (the API, another tool) with this secret: nothing to register here.
      if (this.#registration === null) return await this.#gatewayLink(userId, sessionOptions, left())
      // Not registered (yet, or any more): register first, so the link is never one the gateway refuses.
      if (this.#state !== 'registered') await this.#registrationFor(left())
      try {
        return await this.#gatewayLink(userId, sessionOptions, left())
      } catch (err) {
        // The gateway forgot this instance (a restart of its embedded store, a lapse, a restart of this
        // process's identity elsewhere that took it over): register now, ask again.
        if (!REREGISTER_CODES.has(gatewayCodeOf(err) ?? '')) throw err
        await this.#registrationFor(left())
        return await this.#gatewayLink(userId, sessionOptions, left())
      }
    } catch (caught) {
      // Said with the whole bound, not what was left of it for the last call.
      const err = caught instanceof GatewayTimeoutError ? new GatewayTimeoutError(this.#options.gatewayUrl, bound, { cause: caught }) : caught
      if (!this.#options.fallback || personBound || !isUnreachable(err) || this.#registration === null || !directLinksWork(this.#registration)) throw err
      const wasRegistered = this.#state === 'registered'
      this.#unreachable(err as Error)
      // Registered a moment ago, unreachable (or too slow) now: the loop finds out the rest.
      if (wasRegistered) this.#schedule(0)
      return this.#directLink(userId, sessionOptions)
    }
  }

  async #gatewayLink (userId: string, sessionOptions: SessionOptions, timeoutMs: number): Promise<SessionLink> {
    const issued = await this.#api.createSession({
      userId,
      serverName: this.serverName,
      ...(this.#options.serverType !== undefined && { serverType: this.#options.serverType }),
      ...(sessionOptions.ttlSeconds !== undefined && { ttlSeconds: sessionOptions.ttlSeconds }),
      ...(sessionOptions.scopes !== undefined && { scopes: sessionOptions.scopes }),
      ...(sessionOptions.shareLevel !== undefined && { shareLevel: sessionOptions.shareLevel }),
      ...(sessionOptions.groups !== undefined && { groups: sessionOptions.groups }),
      ...(sessionOptions.emailDomains !== undefined && { emailDomains: sessionOptions.emailDomains }),
      ...(sessionOptions.rotate !== undefined && { rotate: sessionOptions.rotate }),
      ...(this.#instanceId !== null && { instanceId: this.#instanceId })
    }, this.#callOptions(timeoutMs))
    return { ...issued, via: 'gateway', ...(this.#frameAncestors !== null && { frameAncestors: this.#frameAncestors }) }
  }

  #directLink (userId: string, sessionOptions: SessionOptions): SessionLink {
    if (!directLinksWork(this.#registration!)) throw new DirectLoopbackOnlyError(directOrigin(this.#registration!))
    const { token, expiresAt } = this.#directLinks.issue(userId, sessionOptions.ttlSeconds ?? this.#options.directTtlSeconds)
    return { url: `${directOrigin(this.#registration!)}/?token=${token}`, token, expiresAt: new Date(expiresAt), via: 'direct' }
  }

  async shareSession (sessionId: string, options: ShareOptions = {}): Promise<SessionLink> {
    if (this.#state === 'closed') throw new ClosedError()
    if (typeof sessionId !== 'string' || sessionId.length === 0) throw new InvalidOptionError('sessionId', 'expected the sessionId of a gateway link')
    // A direct link is one bearer token per user: there is nothing to share but the link itself.
    if (this.mode === 'direct') throw new InvalidOptionError('mode', 'sharing needs the gateway (MCP_WEB_UI_GATEWAY_URL)')
    if (this.#state === 'refused') throw this.#refusal ?? new GatewayUnauthorizedError()
    const issued = await this.#api.shareSession({
      sessionId,
      ...(options.person !== undefined && { person: options.person }),
      ...(options.shareLevel !== undefined && { shareLevel: options.shareLevel }),
      ...(options.groups !== undefined && { groups: options.groups }),
      ...(options.emailDomains !== undefined && { emailDomains: options.emailDomains }),
      ...(options.scopes !== undefined && { scopes: options.scopes }),
      ...(options.ttlSeconds !== undefined && { ttlSeconds: options.ttlSeconds })
    }, this.#callOptions(this.#options.sessionTimeoutMs))
    return { ...issued, via: 'gateway', ...(this.#frameAncestors !== null && { frameAncestors: this.#frameAncestors }) }
  }

  async revokeSession (selector: { userId: string } | { sessionId: string }): Promise<number> {
    const revoked = 'userId' in selector ? this.#directLinks.revokeUser(selector.userId) : 0
    if (this.mode === 'direct') return revoked
    // This instance's sessions only: never another process's of the same name.
    const body = {
      ...('sessionId' in selector ? { sessionId: selector.sessionId } : { sessionKey: sessionKeyOf(selector.userId, this.serverName, this.#options.serverType) }),
      ...(this.#instanceId !== null && { instanceId: this.#instanceId })
    }
    return revoked + await this.#api.revokeSession(body, this.#callOptions())
  }

  validateDirectToken (token: string): { userId: string } | null {
    const entry = this.#directLinks.find(token)
    return entry === null ? null : { userId: entry.userId }
  }

  authenticate (req: IncomingMessage, res?: ServerResponse): UiIdentity | null {
    const context = { proofKey: this.#proofKey, instanceId: this.#instanceId, port: this.#registration?.port ?? null, directLinks: this.#directLinks }
    return authenticateRequest(context, req, res)
  }

  answerInstanceProbe (req: IncomingMessage, res: ServerResponse): boolean {
    const challenge = req.headers[INSTANCE_PROBE_HEADER]
    if (typeof challenge !== 'string' || !(req.url === INSTANCE_PROBE_PATH || req.url?.startsWith(`${INSTANCE_PROBE_PATH}?`) === true)) return false
    const headers: Record<string, string> = { 'cache-control': 'no-store', 'content-length': '0' }
    // Only while registered: a process that is not (any more) has no instance to vouch for.
    if (this.#proofKey !== null && this.#state === 'registered' && challenge.length <= 64) {
      headers[INSTANCE_PROBE_ANSWER_HEADER] = instanceProbeProof(this.#proofKey, challenge, this.#incarnation)
    }
    res.writeHead(204, headers).end()
    return true
  }

  close (options: { timeoutMs?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      const timeoutMs = options.timeoutMs ?? 1500
      try {
        await this.deregister(timeoutMs)
      } catch (err) {
        this.#options.logger.warn({ serverName: this.serverName, code: (err as { code?: string }).code }, 'deregistration failed; the registration will lapse by itself')
      }
      this.#enter('closed')
    })()
    return this.#closing
  }
}

/**
 * A client for one MCP server's web UI. In gateway mode it registers the UI
 * with the gateway in the background and keeps the registration alive with
 * heartbeats well inside its expiry, re-creating it by itself if the gateway
 * restarts or forgets it; session links point at the gateway. In direct mode
 * (no gateway configured) links point straight at the UI server, as before the
 * gateway existed.
 */
export function createGatewayClient (options: GatewayClientOptions): GatewayClient {
  return new Client(options)
}

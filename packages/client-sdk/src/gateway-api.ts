import { get as httpGet } from 'node:http'
import { get as httpsGet } from 'node:https'
import { INCARNATION_HEADER, SERVER_SECRET_HEADER } from '@mcp-gw/protocol'
import {
  GatewayAnswerError, GatewayKeyScopeError, GatewayRequestError, GatewayTimeoutError, GatewayUnauthorizedError, GatewayUnreachableError,
  gatewayCodeOf
} from './errors.js'

/** The calls of the gateway's registry API the client makes, each answer parsed and checked. */

export interface GatewayApiOptions {
  /** The gateway's URL, without trailing slashes. */
  url: string
  apiKey: string | undefined
  /** The registrant secret, sent with every call. */
  secret: string
  /** The server the client acts for: a key that does not act for it is refused with its name. */
  serverName: string
  /** Per call, unless the call gives its own. */
  timeoutMs: number
}

/** What a call carries beside its body. */
export interface CallOptions {
  /** Sent only once this client registered: a registration made elsewhere is found by the secret alone. */
  incarnation?: string
  timeoutMs?: number
  signal?: AbortSignal
}

export interface RegisterBody {
  serverName: string
  host: string
  port: number
  protocol?: 'http' | 'https'
  metadata?: Record<string, unknown>
  incarnation: string
  instance?: string
}

/** The part of a `register-server` answer the client reads. */
export interface Registration {
  expiresAt: Date
  /** The origin links point at (the wildcard origin in isolated mode). */
  linkOrigin?: string
  /** What the gateway keys its registrant proofs with. */
  proofKey?: string
  /** The instance the gateway registered this process as. */
  instanceId?: string
  /** Who may frame the gateway's session pages (CSP `frame-ancestors` sources), when it says. */
  frameAncestors?: string[]
}

export interface CreateSessionBody {
  userId: string
  serverName: string
  serverType?: string
  ttlSeconds?: number
  scopes?: string[]
  shareLevel?: 'owner' | 'authenticated' | 'link'
  groups?: string[]
  emailDomains?: string[]
  rotate?: boolean
  instanceId?: string
}

/** The part of a `create-session` answer the client reads. */
export interface IssuedSession {
  url: string
  token: string
  expiresAt: Date
  sessionId: string
}

export interface ShareSessionBody {
  sessionId: string
  person?: string
  shareLevel?: 'owner' | 'authenticated' | 'link'
  groups?: string[]
  emailDomains?: string[]
  scopes?: string[]
  ttlSeconds?: number
}

export type RevokeBody = ({ sessionId: string } | { sessionKey: string }) & { instanceId?: string }

/** Refusals after which registering again (and asking again) is the cure: the gateway lost track of this process's instance. */
export const REREGISTER_CODES = new Set(['MCPGW_REGISTRY_SERVER_NOT_REGISTERED', 'MCPGW_REGISTRY_NOT_SERVER_OWNER', 'MCPGW_REGISTRY_INSTANCE_SUPERSEDED'])

/**
 * Answers that say the gateway is there and refuses (a full store, a quota): the caller
 * hears why, and never gets a direct link instead, as it would from a gateway that is away.
 */
const REFUSAL_CODES = new Set(['MCPGW_REGISTRY_CAPACITY_EXCEEDED', 'MCPGW_REGISTRY_RATE_LIMITED', 'MCPGW_REGISTRY_SERVER_QUOTA'])

/** A failure that the gateway coming back fixes, vs. a refusal (a wrong key, a quota) or a malformed answer. */
export function isUnreachable (err: unknown): boolean {
  if (err instanceof GatewayUnreachableError || err instanceof GatewayTimeoutError) return true
  return err instanceof GatewayRequestError && 'gatewayStatus' in err && typeof err.gatewayStatus === 'number' &&
    err.gatewayStatus >= 500 && !REFUSAL_CODES.has(gatewayCodeOf(err) ?? '')
}

/** Reads the fields of one answer; the first that does not hold is a MCPGW_SDK_MALFORMED_ANSWER naming the call. */
function answerOf (call: string, payload: unknown) {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new GatewayAnswerError(call, 'expected a JSON object')
  const fields = new Map<string, unknown>(Object.entries(payload))
  const string = (name: string): string => {
    const value = fields.get(name)
    if (typeof value !== 'string') throw new GatewayAnswerError(call, `${name} is not a string`)
    return value
  }
  return {
    string,
    optionalString: (name: string): string | undefined => fields.get(name) === undefined ? undefined : string(name),
    date: (name: string): Date => {
      const date = new Date(string(name))
      if (Number.isNaN(date.getTime())) throw new GatewayAnswerError(call, `${name} is not a date`)
      return date
    },
    optionalStrings: (name: string): string[] | undefined => {
      const value = fields.get(name)
      if (value === undefined) return undefined
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new GatewayAnswerError(call, `${name} is not a list of strings`)
      return value as string[]
    },
    count: (name: string): number => {
      const value = fields.get(name)
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new GatewayAnswerError(call, `${name} is not a count`)
      return value
    }
  }
}

export function parseRegistration (payload: unknown): Registration {
  const answer = answerOf('POST /register-server', payload)
  const linkOrigin = answer.optionalString('linkOrigin')
  const proofKey = answer.optionalString('proofKey')
  const instanceId = answer.optionalString('instanceId')
  const frameAncestors = answer.optionalStrings('frameAncestors')
  return {
    expiresAt: answer.date('expiresAt'),
    ...(linkOrigin !== undefined && { linkOrigin }),
    ...(proofKey !== undefined && { proofKey }),
    ...(instanceId !== undefined && { instanceId }),
    ...(frameAncestors !== undefined && { frameAncestors })
  }
}

export function parseIssuedSession (payload: unknown, call = 'POST /create-session'): IssuedSession {
  const answer = answerOf(call, payload)
  return { url: answer.string('url'), token: answer.string('token'), expiresAt: answer.date('expiresAt'), sessionId: answer.string('sessionId') }
}

export function parseRevoked (payload: unknown): number {
  return answerOf('POST /revoke-session', payload).count('revoked')
}

/** A small client of the gateway's registry API for one server: its key, its secret, its timeouts. */
export class GatewayApi {
  readonly #options: GatewayApiOptions

  constructor (options: GatewayApiOptions) {
    this.#options = options
  }

  /** Registers this process's instance, or heartbeats it. */
  async register (body: RegisterBody, call: CallOptions = {}): Promise<Registration> {
    return parseRegistration(await this.#call('POST', '/register-server', body, call))
  }

  /** Removes the instance (all the secret's, without `instanceId`); a registration already gone is no failure. */
  async deregister (instanceId: string | null, call: CallOptions = {}): Promise<void> {
    const query = instanceId === null ? '' : `?instanceId=${encodeURIComponent(instanceId)}`
    await this.#call('DELETE', `/register-server/${encodeURIComponent(this.#options.serverName)}${query}`, undefined, call)
  }

  async createSession (body: CreateSessionBody, call: CallOptions = {}): Promise<IssuedSession> {
    return parseIssuedSession(await this.#call('POST', '/create-session', body, call))
  }

  /** A share of a live session of this registrant: a link of its own. */
  async shareSession (body: ShareSessionBody, call: CallOptions = {}): Promise<IssuedSession> {
    return parseIssuedSession(await this.#call('POST', '/share-session', body, call), 'POST /share-session')
  }

  /** How many sessions the gateway revoked. */
  async revokeSession (body: RevokeBody, call: CallOptions = {}): Promise<number> {
    return parseRevoked(await this.#call('POST', '/revoke-session', body, call))
  }

  /**
   * Holds the instance's watch open (`GET /register-server/:name/watch`) until the gateway
   * ends it, the connection breaks, nothing (not even its comment every 15 s) comes for
   * `silenceMs`, or `signal` aborts. `ended`: the gateway went away or restarted (and may
   * have forgotten this instance); `unsupported`: it has no watch for this caller (an older
   * gateway, or one holding too many), which then heartbeats as before.
   */
  async watch (instanceId: string, call: CallOptions & { silenceMs: number }): Promise<'ended' | 'unsupported'> {
    const url = new URL(`${this.#options.url}/register-server/${encodeURIComponent(this.#options.serverName)}/watch?instanceId=${encodeURIComponent(instanceId)}`)
    // A socket of its own (no pool): held for hours, and destroyed with the watch, so it never
    // keeps a pooled connection (or a closing gateway) waiting.
    const get = url.protocol === 'https:' ? httpsGet : httpGet
    return await new Promise((resolve) => {
      let settled = false
      let timer: NodeJS.Timeout | undefined
      const done = (outcome: 'ended' | 'unsupported'): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        call.signal?.removeEventListener('abort', onAbort)
        req.destroy()
        resolve(outcome)
      }
      const quiet = (ms: number): void => {
        clearTimeout(timer)
        timer = setTimeout(() => done('ended'), ms).unref()
      }
      const onAbort = (): void => done('ended')
      const req = get(url, { headers: this.#headers(call, false), agent: false }, (res) => {
        if (res.statusCode !== 200) {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => { if (body.length < 4096) body += chunk })
          res.on('end', () => {
            let code: unknown
            try { code = (JSON.parse(body) as { code?: unknown } | null)?.code } catch {}
            // The gateway lost this instance since it registered, or is going away: registering
            // again (shortly) is the cure. A gateway without watches, or holding too many: heartbeats.
            if (typeof code === 'string' && (REREGISTER_CODES.has(code) || code === 'MCPGW_API_SHUTTING_DOWN')) return done('ended')
            done((res.statusCode ?? 0) >= 500 && code !== 'MCPGW_API_WATCHES_FULL' ? 'ended' : 'unsupported')
          })
          res.on('error', () => done('ended'))
          return
        }
        quiet(call.silenceMs)
        res.on('data', () => quiet(call.silenceMs))
        res.on('end', () => done('ended'))
        res.on('error', () => done('ended'))
        res.on('close', () => done('ended'))
      })
      req.on('error', () => done('ended'))
      // Like the heartbeat's timer: a watch never keeps the process alive by itself.
      req.on('socket', (socket) => { socket.unref() })
      quiet(this.#options.timeoutMs)
      if (call.signal?.aborted === true) return done('ended')
      call.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  #headers (call: CallOptions, json: boolean): Record<string, string> {
    const { apiKey, secret } = this.#options
    return {
      ...(apiKey !== undefined && { authorization: `Bearer ${apiKey}` }),
      [SERVER_SECRET_HEADER]: secret,
      ...(call.incarnation !== undefined && { [INCARNATION_HEADER]: call.incarnation }),
      ...(json && { 'content-type': 'application/json' })
    }
  }

  /** The answer's JSON body (null when there is none) for a 2xx, or a DELETE's 404; else the coded error. */
  async #call (method: string, path: string, body: unknown, call: CallOptions): Promise<unknown> {
    const { url, serverName } = this.#options
    const timeoutMs = call.timeoutMs ?? this.#options.timeoutMs
    // A timer of its own, cleared when the call settles: a timeout signal inside
    // AbortSignal.any() can be collected before it fires, and the call then waits for
    // undici's own 300-s header timeout.
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), timeoutMs).unref()
    const onAbort = (): void => deadline.abort()
    call.signal?.addEventListener('abort', onAbort, { once: true })
    let res: Response
    let payload: unknown
    try {
      res = await fetch(`${url}${path}`, {
        method,
        headers: this.#headers(call, body !== undefined),
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: deadline.signal
      })
      // Not JSON is a malformed answer; a body cut by the deadline is the deadline's.
      payload = await res.json().catch((err: unknown) => { if (deadline.signal.aborted) throw err; return null })
    } catch (err) {
      if (deadline.signal.aborted && call.signal?.aborted !== true) throw new GatewayTimeoutError(url, timeoutMs, { cause: err })
      throw new GatewayUnreachableError(url, { cause: err })
    } finally {
      clearTimeout(timer)
      call.signal?.removeEventListener('abort', onAbort)
    }
    const code = typeof payload === 'object' && payload !== null && 'code' in payload && typeof payload.code === 'string' ? payload.code : undefined
    if (res.status === 401 || code === 'MCPGW_API_LOOPBACK_ONLY') throw new GatewayUnauthorizedError()
    if (code === 'MCPGW_API_KEY_SCOPE') throw new GatewayKeyScopeError(serverName)
    if (!res.ok && !(method === 'DELETE' && res.status === 404)) {
      const retryAfter = Number(res.headers.get('retry-after') ?? '')
      // Its reason, as it said it (the gateway's messages never repeat what a caller sent).
      const said = typeof payload === 'object' && payload !== null && 'message' in payload && typeof payload.message === 'string' && /^[\x20-\x7e]{1,300}$/.test(payload.message) ? payload.message : undefined
      const err = Object.assign(new GatewayRequestError(res.status, code ?? ''), {
        gatewayCode: code ?? '',
        gatewayStatus: res.status,
        ...(said !== undefined && { gatewayMessage: said }),
        ...(Number.isInteger(retryAfter) && retryAfter >= 0 && { retryAfterSeconds: retryAfter })
      })
      if (said !== undefined) err.message += `: ${said}`
      throw err
    }
    return payload
  }
}

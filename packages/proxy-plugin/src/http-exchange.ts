import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Agent } from 'undici'
import type { Dispatcher } from 'undici'
import { BadGatewayError, BodyTooLargeError, GatewayTimeoutError, NoBackendError } from './errors.js'
import { sendError } from './error-reply.js'
import { backendHost, backendOrigin, rewriteResponseHeaders } from './headers.js'
import type { ForwardContext } from './headers.js'
import type { NormalizedProxyOptions } from './options.js'
import { endAndHangUp } from './metrics.js'
import type { StreamSet } from './metrics.js'
import type { OpenOnSession, SessionWatch } from './session-watch.js'
import { auditRefusal, StreamAudit } from './audit.js'
import type { Audit } from '@mcp-gw/registry'

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
const BODY_TOO_LARGE = 'MCPGW_PROXY_BODY_TOO_LARGE'

/**
 * One connection pool per backend origin (undici's Agent keeps a Pool per origin
 * and drops it once its sockets are gone, as backends on random ports come and go).
 */
export function backendAgent (options: Pick<NormalizedProxyOptions, 'connectTimeoutMs' | 'upstreamHeadersTimeoutMs' | 'upstreamIdleTimeoutMs'>): Agent {
  return new Agent({
    connect: { timeout: options.connectTimeoutMs },
    headersTimeout: options.upstreamHeadersTimeoutMs,
    bodyTimeout: options.upstreamIdleTimeoutMs,
    keepAliveTimeout: 30_000
  })
}

/** What every exchange of one proxy context shares. */
export interface ExchangeContext {
  agent: Agent
  streams: StreamSet
  /** Ends exchanges still open when their session is revoked or expires. */
  watch: SessionWatch
  maxBodyBytes: number
  /** Set once the server is closing: a response that ends then takes its connection with it. */
  closing: boolean
  /** The audit trail (event streams and refusals). */
  audit: Audit
}

/**
 * One proxied HTTP request: dispatched to the backend's pool with undici's
 * handler interface, its answer written straight to Node's response, chunk by
 * chunk, pausing the backend whenever the client's socket is full. No stream
 * objects: this object and the two callbacks it gives Node ('close', 'drain')
 * are the whole per-request cost.
 *
 * Until the backend answers, the reply is Fastify's and any failure is a coded
 * error answer; from the answer on it is hijacked (Fastify's onResponse hooks
 * and request log still run, on the response's 'finish'), and a failure cuts the
 * response, so the client never takes a truncated body for a whole one.
 */
class Exchange implements Dispatcher.DispatchHandler, OpenOnSession {
  readonly #request: FastifyRequest
  readonly #reply: FastifyReply
  readonly #res: ServerResponse
  readonly #ctx: ForwardContext
  readonly #shared: ExchangeContext
  #controller: Dispatcher.DispatchController | null = null
  #status = 0
  /** The answer's head, until its first byte commits it. */
  #head: Record<string, string | string[] | number> | null = null
  #eventStream = false
  /** Ended because its session was: the backend's further callbacks change nothing. */
  #cut = false
  /** Why it was cut, for the audit: its session's end, or the server's drain. */
  #cutBy: 'session' | 'shutdown' = 'session'
  /** An event stream's audit, when the trail is on. */
  #stream: StreamAudit | null = null
  #streamBytes = 0
  #backendEnded = false

  constructor (request: FastifyRequest, reply: FastifyReply, ctx: ForwardContext, shared: ExchangeContext) {
    this.#request = request
    this.#reply = reply
    this.#res = reply.raw
    this.#ctx = ctx
    this.#shared = shared
    this.#res.once('close', this.#onClientClose)
    // Watched until its response closes ('close' has not fired yet unless it is destroyed).
    if (!this.#res.destroyed) shared.watch.add(ctx.token, this)
  }

  // The client hung up (or the response ended): a backend still talking is dropped.
  readonly #onClientClose = (): void => {
    this.#shared.watch.remove(this.#ctx.token, this)
    this.#stream?.closed(undefined, this.#streamBytes, this.#cut ? this.#cutBy : this.#shared.closing ? 'shutdown' : this.#backendEnded ? 'backend' : 'client')
    if (!this.#res.writableFinished) this.#controller?.abort(new BadGatewayError())
  }

  /**
   * The session was revoked or expired while this exchange is open: the backend is dropped;
   * an event stream ends (the browser's EventSource reconnects and is refused), a body under
   * way is cut (never taken for a whole one), and a request still waiting (a long-poll) gets
   * the session's coded refusal.
   */
  cut (refusal: Error): void {
    if (this.#cut) return
    this.#cut = true
    if ((refusal as { code?: string }).code === 'MCPGW_PROXY_SHUTTING_DOWN') this.#cutBy = 'shutdown'
    this.#shared.watch.remove(this.#ctx.token, this)
    this.#controller?.abort(refusal)
    const res = this.#res
    if (res.headersSent) {
      if (this.#eventStream) endAndHangUp(res)
      else res.destroy()
      return
    }
    this.#head = null
    if (res.destroyed || this.#reply.sent) return
    this.#reply.header('connection', 'close')
    this.#refuse(refusal)
  }

  #refuse (err: unknown): void {
    if (this.#shared.audit.enabled) auditRefusal(this.#shared.audit, this.#request, err)
    sendError(this.#reply, err)
  }

  readonly #resume = (): void => { this.#controller?.resume() }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#res.destroyed || this.#cut) controller.abort(new BadGatewayError())
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.#cut) return
    // An informational answer (100 Continue, 103 Early Hints) comes before the real one: skipped.
    if (statusCode >= 100 && statusCode < 200 && statusCode !== 101) return
    if (statusCode < 200 || statusCode > 599) {
      // Not a final HTTP status (a 600, a 101 with no upgrade asked): nothing a client can be told.
      controller.abort(new BadGatewayError())
      return
    }
    const reply = this.#reply
    const out = rewriteResponseHeaders(headers, this.#ctx)
    // Headers the host app's hooks set on the reply (onRequest, preHandler) travel too, under the backend's.
    const own = reply.getHeaders()
    for (const name in own) if (out[name] === undefined && own[name] !== undefined) out[name] = own[name]!
    // An HTTP/1 connection whose request body is still coming cannot carry another request.
    if (!this.#request.raw.complete) out.connection = 'close'
    const type = out['content-type']
    this.#status = statusCode
    this.#head = out
    // An event stream is announced at once, so the client knows it is open before its first event.
    // Any other answer's head waits for its first byte: a backend that breaks before that (bad
    // chunking, a 304 with a body) still gets a coded 502 instead of a cut response.
    if (typeof type === 'string' && type.startsWith('text/event-stream')) {
      this.#commit()
      this.#eventStream = true
      if (this.#shared.audit.enabled) this.#stream = new StreamAudit(this.#shared.audit, this.#request, 'sse')
      this.#shared.streams.add(this.#res)
      this.#res.flushHeaders()
      // Opened after the server began closing: ended like the streams open then.
      if (this.#shared.closing) endAndHangUp(this.#res)
    }
  }

  #commit (): void {
    const head = this.#head!
    this.#head = null
    this.#reply.hijack()
    this.#res.writeHead(this.#status, head)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#cut) return
    if (this.#head !== null) this.#commit()
    if (this.#stream !== null) this.#streamBytes += chunk.length
    if (!this.#res.write(chunk)) {
      controller.pause()
      this.#res.once('drain', this.#resume)
    }
  }

  onResponseEnd (): void {
    if (this.#cut) return
    this.#backendEnded = true
    if (this.#head !== null) this.#commit()
    if (this.#shared.closing) endAndHangUp(this.#res)
    else this.#res.end()
  }

  onResponseError (_controller: Dispatcher.DispatchController, error: Error & { code?: string }): void {
    if (this.#cut) return
    const res = this.#res
    if (this.#reply.raw.headersSent) {
      // Part of the answer is out: cut it, so the client sees a failure and not a short body.
      res.destroy()
      return
    }
    this.#head = null
    if (res.destroyed || this.#reply.sent) return
    const reply = this.#reply
    const cause = (error.cause as { code?: string } | undefined)?.code
    const code = error.code ?? cause
    if (code === BODY_TOO_LARGE || cause === BODY_TOO_LARGE) {
      // The rest of the body is not worth reading: answer and hang up.
      reply.header('connection', 'close')
      this.#refuse(new BodyTooLargeError(this.#shared.maxBodyBytes))
      return
    }
    if (!this.#request.raw.complete) reply.header('connection', 'close')
    if (code === 'MCPGW_PROXY_BAD_GATEWAY') {
      this.#refuse(error)
      return
    }
    // The one line an operator gets when access logs are off. The URL stays out: it holds the token.
    reply.log.warn({ code, serverName: this.#ctx.backend.serverName }, 'backend request failed')
    this.#refuse(TIMEOUT_CODES.has(code ?? '')
      ? new GatewayTimeoutError({ cause: error })
      // Nothing listens where the instance registered: its process stopped (crashed, say) and its
      // registration has not lapsed yet. The same answer as once it has: the stopped page.
      : code === 'ECONNREFUSED' ? new NoBackendError({ cause: error }) : new BadGatewayError({ cause: error }))
  }
}

/** Sends the request to its backend; the exchange answers the client. */
export function proxyHttp (request: FastifyRequest, reply: FastifyReply, ctx: ForwardContext, path: string, headers: IncomingHttpHeaders, shared: ExchangeContext): void {
  const backend = ctx.backend
  const body = request.body as Readable | undefined
  const hasBody = body !== undefined && body !== null
  // The backend's own Host, as on a direct request; with no body to pass, no length of one.
  headers.host = backendHost(backend)
  if (!hasBody) headers['content-length'] = undefined
  shared.agent.dispatch({
    origin: backendOrigin(backend),
    path,
    method: request.method as Dispatcher.HttpMethod,
    headers,
    body: hasBody ? body : null
  }, new Exchange(request, reply, ctx, shared))
}

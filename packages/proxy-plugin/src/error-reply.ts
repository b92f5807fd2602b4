import { STATUS_CODES } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { errorBody as body } from '@mcp-gw/protocol'
import type { ErrorBody } from '@mcp-gw/protocol'
import { BadGatewayError, BadPathError, BadRequestError, BadSignatureError, ExpectationFailedError, ExpiredTokenError, HeadersTooLargeError, InternalError, MalformedRequestError, MalformedTokenError, MissingTokenError, RequestTimeoutError, RevokedTokenError, UnknownTokenError } from './errors.js'

export type GatewayErrorBody = ErrorBody

/** A coded error as the client sees it. Only our own messages pass; anything else is generic. */
// A backend's answer that is not valid HTTP (a 304 with a body, broken chunking), surfacing
// from undici's parser once the answer has started: the backend failed, not us.
const UPSTREAM_PROTOCOL = /^(HPE_|UND_ERR_)/

/** Set on a response the gateway answered with a coded error: what the metrics count by code. */
export const ANSWERED_CODE = Symbol('mcpgw.answeredCode')

export function errorBody (err: unknown): GatewayErrorBody {
  const raw = err as { code?: unknown, name?: unknown } | null
  if (raw?.name === 'HTTPParserError' || (typeof raw?.code === 'string' && UPSTREAM_PROTOCOL.test(raw.code))) err = new BadGatewayError()
  const e = err as { statusCode?: unknown, code?: unknown, message?: unknown } | null
  const ours = typeof e?.code === 'string' && e.code.startsWith('MCPGW_')
  const statusCode = typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500
  if (ours) return body(statusCode, e.code as string, String(e.message))
  // Framework messages can quote the URL, and with it the token: never pass them on.
  const generic = statusCode >= 500 ? new InternalError() : new BadRequestError()
  return body(statusCode, generic.code, STATUS_CODES[statusCode] ?? 'Error')
}

export function wantsJson (accept: string | undefined): boolean {
  if (accept === undefined) return true
  return accept.includes('json') || !accept.includes('text/html')
}

/** The refusals of a credential itself (missing, malformed, unknown, expired, revoked): its link is no good any more. */
const LINK_REFUSALS = new Set([MissingTokenError, MalformedTokenError, BadSignatureError, UnknownTokenError, ExpiredTokenError, RevokedTokenError].map((E) => new E().code))

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

function errorPage (body: GatewayErrorBody, signOutPath?: string): string {
  const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>${body.statusCode} ${esc(body.error)}</title></head>` +
    `<body><h1>${body.statusCode} ${esc(body.error)}</h1><p>${esc(body.message)}</p>` +
    // (Only a credential's own refusals: a link that needs a login, or a label opened in another
    // browser, is still a good link.)
    (LINK_REFUSALS.has(body.code) ? '<p>This link is no longer valid: ask the MCP server for a new link.</p>' : '') +
    (body.code === 'MCPGW_PROXY_NO_BACKEND' ? '<p>The MCP server that made this link is not running any more. Ask the assistant to open the UI again for a new link.</p>' : '') +
    (signOutPath !== undefined ? `<p><a href="${esc(signOutPath)}">Log out</a> to open it as someone else.</p>` : '') +
    `<p><code>${esc(body.code)}</code></p></body></html>\n`
}

/** JSON when the client accepts it, else a small HTML page. */
export function sendError (reply: FastifyReply, err: unknown): FastifyReply {
  const body = errorBody(err)
  ;(reply.raw as { [ANSWERED_CODE]?: string })[ANSWERED_CODE] = body.code
  reply.code(body.statusCode).header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').header('x-content-type-options', 'nosniff')
  if (wantsJson(reply.request.headers.accept)) return reply.type('application/json; charset=utf-8').send(body)
  const signOutPath = (err as { signOutPath?: unknown } | null)?.signOutPath
  return reply.type('text/html; charset=utf-8').send(errorPage(body, typeof signOutPath === 'string' ? signOutPath : undefined))
}

/** The same answer written straight to a socket (an upgrade that never became a WebSocket). */
export function writeSocketError (socket: Duplex, err: unknown, accept: string | undefined): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy()
    return
  }
  const body = errorBody(err)
  const json = wantsJson(accept)
  const payload = json ? JSON.stringify(body) : errorPage(body)
  // Written, then destroyed once flushed: an upgrade socket is off Node's connection list and
  // allows half-open connections, so end() alone would wait for the client (and hold a server's close).
  socket.write(
    `HTTP/1.1 ${body.statusCode} ${body.error}\r\n` +
    'Connection: close\r\n' +
    `Content-Type: ${json ? 'application/json' : 'text/html'}; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(payload)}\r\n` +
    'Cache-Control: no-store\r\n\r\n' +
    payload
  )
  hangUp(socket)
}

/** Ends a socket and destroys it once what was written is out, whatever its far end does. */
export function hangUp (socket: Duplex): void {
  const s = socket as Duplex & { destroySoon?: () => void }
  if (typeof s.destroySoon === 'function') s.destroySoon()
  else socket.end(() => socket.destroy())
}

/**
 * For Fastify's `frameworkErrors` server option. Fastify's own answer to an
 * undecodable URL quotes the URL, token included, to the client and the log;
 * this answers with a coded error that quotes nothing.
 *
 *   Fastify({ frameworkErrors })
 */
export function frameworkErrors (error: Error & { code?: string }, _request: FastifyRequest, reply: FastifyReply): void {
  sendError(reply, error.code === 'FST_ERR_BAD_URL' ? new BadPathError() : error)
}

/**
 * For Fastify's `clientErrorHandler` server option: what Node's HTTP parser
 * refuses (a malformed request line, oversized headers, a slowloris past the
 * headers timeout) gets a coded answer like every other refusal, instead of
 * Fastify's uncoded one.
 *
 *   Fastify({ clientErrorHandler })
 */
export function clientErrorHandler (err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) {
    socket.destroy()
    return
  }
  const refusal = err.code === 'HPE_HEADER_OVERFLOW'
    ? new HeadersTooLargeError()
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? new RequestTimeoutError() : new MalformedRequestError()
  writeSocketError(socket, refusal, undefined)
}

/**
 * For the server's 'checkExpectation' event: Node answers an `Expect` other
 * than 100-continue with a bare 417 of its own; this one carries a code.
 *
 *   app.server.on('checkExpectation', expectationFailed)
 */
export function expectationFailed (req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify(errorBody(new ExpectationFailedError()))
  res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
  res.end(req.method === 'HEAD' ? undefined : body)
}

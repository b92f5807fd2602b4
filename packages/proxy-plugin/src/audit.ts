import { auditText, auditUserAgent } from '@mcp-gw/registry'
import type { Audit, SessionRecord } from '@mcp-gw/registry'
import type { FastifyRequest } from 'fastify'
import { errorBody } from './error-reply.js'

/**
 * A session's fields as every proxy event names them: ids, never its token; for a share, the
 * session it opens; with a login, who is logged in (on a share, the viewer, not the sharer).
 */
function sessionFields (session: Partial<Pick<SessionRecord, 'sessionId' | 'userId' | 'serverName' | 'instanceId' | 'share'>> | null, request?: FastifyRequest): Record<string, unknown> {
  if (session === null) return {}
  const person = request?.mcpPerson ?? null
  return {
    sessionId: session.sessionId,
    userId: session.userId,
    serverName: session.serverName,
    instanceId: session.instanceId,
    ...(session.share !== undefined && { sharedFrom: session.share.from }),
    ...(person !== null && { loginUser: person.userId })
  }
}

/** Where the request came from: its address (as trustProxy reads it) and user agent. */
function clientFields (request: FastifyRequest): Record<string, unknown> {
  return { clientAddress: request.ip, userAgent: auditUserAgent(request.headers['user-agent']) }
}

/**
 * `session.opened`, once per session and gateway process: the first request a session's
 * credential opened, with `via` the link's token or the session host's cookie.
 */
export function auditOpened (audit: Audit, request: FastifyRequest, session: SessionRecord, via: 'link' | 'cookie'): void {
  // Once per session, and per person on a session bound to people (each viewer of a share).
  const person = request.mcpPerson
  if (!audit.once('session.opened', person === null ? session.sessionId : `${session.sessionId}\0${person.userId}`)) return
  audit.emit('session.opened', { ...sessionFields(session, request), ...clientFields(request), via })
}

/** `request.refused`: a coded answer of the proxy, with its code and message (never the URL: it holds the token). */
export function auditRefusal (audit: Audit, request: FastifyRequest, err: unknown): void {
  const body = errorBody(err)
  audit.emit('request.refused', {
    code: body.code,
    statusCode: body.statusCode,
    reason: auditText(body.message),
    method: request.method,
    ...sessionFields(request.mcpSession ?? (err as { mcpSession?: Pick<SessionRecord, 'sessionId' | 'userId' | 'serverName'> } | null)?.mcpSession ?? null, request),
    ...clientFields(request)
  })
}

export type StreamKind = 'websocket' | 'sse'

/** An open stream's audit: `stream.opened` now, `stream.closed` once, with its duration and bytes. */
export class StreamAudit {
  readonly #audit: Audit
  readonly #fields: Record<string, unknown>
  readonly #started = performance.now()
  #closed = false

  constructor (audit: Audit, request: FastifyRequest, kind: StreamKind) {
    this.#audit = audit
    this.#fields = { kind, ...sessionFields(request.mcpSession, request), clientAddress: request.ip }
    audit.emit('stream.opened', { ...this.#fields, userAgent: auditUserAgent(request.headers['user-agent']) })
  }

  /** `bytesIn`: from the client; `bytesOut`: to it. `endedBy`: client, backend, session (revoked or expired) or shutdown. */
  closed (bytesIn: number | undefined, bytesOut: number, endedBy: string): void {
    if (this.#closed) return
    this.#closed = true
    this.#audit.emit('stream.closed', {
      ...this.#fields,
      durationMs: Math.round(performance.now() - this.#started),
      bytesIn,
      bytesOut,
      endedBy
    })
  }
}

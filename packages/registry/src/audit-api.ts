import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ActorOf } from './audit-actor.js'
import { AUDIT_EVENT_NAMES } from './audit.js'
import type { AuditQuery } from './audit.js'
import { ApiInvalidRequestError, AuditForbiddenError, AuditUnavailableError } from './errors.js'
import { errors } from './http-api-schemas.js'
import type { Registry } from './registry.js'

const MAX_LIMIT = 1000
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }

/** `1h`, `30m`, `7d`, `90s`, or an ISO 8601 time: epoch ms. */
export function parseAuditTime (value: string, now: number): number {
  const relative = /^(\d{1,9})([smhd])$/.exec(value)
  if (relative !== null) return now - Number(relative[1]) * UNITS[relative[2]!]!
  const t = Date.parse(value)
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(t)) throw new ApiInvalidRequestError('since and until take a duration such as 1h, 30m, 7d, or an ISO 8601 time')
  return t
}

export const auditSchema = {
  summary: 'The audit trail: events, oldest first (the newest `limit` of those that match)',
  description: 'Operators only. Answers when the gateway writes its audit trail to a sink that can be read back (file or Mongo).',
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      user: { type: 'string', maxLength: 256 },
      server: { type: 'string', maxLength: 64 },
      event: { type: 'string', maxLength: 64, description: `An event name (${AUDIT_EVENT_NAMES.join(', ')}), or a prefix ending in a dot (session.)` },
      since: { type: 'string', maxLength: 40, description: 'A duration back from now (1h, 30m, 7d) or an ISO 8601 time' },
      until: { type: 'string', maxLength: 40 },
      limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 100 }
    }
  },
  response: {
    200: { type: 'object', properties: { events: { type: 'array', items: { type: 'object', additionalProperties: true } } } },
    ...errors
  }
} as const

/** GET /audit, in the API's guarded context. */
export function auditRoute (api: FastifyInstance, registry: Registry, actorOf: ActorOf, security: object): void {
  api.get('/audit', { schema: { ...auditSchema, ...security } }, async (request: FastifyRequest) => {
    // The trail names every user and server: operators only (registrant keys are refused).
    if (actorOf(request).kind === 'registrant') throw new AuditForbiddenError()
    const sink = registry.audit.sink
    if (sink?.query === undefined) throw new AuditUnavailableError()
    const q = request.query as { user?: string, server?: string, event?: string, since?: string, until?: string, limit?: number }
    const now = Date.now()
    const query: AuditQuery = {
      limit: q.limit ?? 100,
      ...(q.user !== undefined && { userId: q.user }),
      ...(q.server !== undefined && { serverName: q.server }),
      ...(q.event !== undefined && { event: q.event }),
      ...(q.since !== undefined && { since: parseAuditTime(q.since, now) }),
      ...(q.until !== undefined && { until: parseAuditTime(q.until, now) })
    }
    return { events: await sink.query(query) }
  })
}

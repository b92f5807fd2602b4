import type { FastifyRequest } from 'fastify'
import type { ApiCaller } from './api-keys.js'
import type { AuditActor } from './audit.js'

/** Who the HTTP API's caller is, for the audit trail. */
export type ActorOf = (request: FastifyRequest) => AuditActor

/** The audit actor of a caller apiGuard accepted: its kind and key id (never the key). */
export function actorOfCaller (caller: ApiCaller): AuditActor {
  return { kind: caller.kind, keyId: caller.keyId }
}

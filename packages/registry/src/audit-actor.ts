import type { FastifyRequest } from 'fastify'
import type { AuditActor } from './audit.js'

/** Who the HTTP API's caller is, for the audit trail. */
export type ActorOf = (request: FastifyRequest) => AuditActor

/**
 * Today's rule: one API key, so a caller with it is the operator; without a key the API
 * answers loopback callers only. Scoped keys (operator and registrant keys) replace this
 * with the key the guard accepted: `{ kind, keyId }`.
 */
export function operatorActor (apiKeySet: boolean): ActorOf {
  const actor: AuditActor = Object.freeze({ kind: apiKeySet ? 'operator' : 'loopback', keyId: null })
  return () => actor
}

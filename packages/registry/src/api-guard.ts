import { isLoopbackHost, isLoopbackIp as isLoopback } from '@mcp-gw/protocol'
import type { FastifyRequest } from 'fastify'
import { ApiKeyring } from './api-keys.js'
import type { ApiCaller } from './api-keys.js'
import { ApiBrowserForbiddenError, ApiForbiddenError, ApiKeyScopeError, ApiUnauthorizedError } from './errors.js'

export interface ApiGuardOptions {
  /** Browser origins allowed to call the API (MCP_WEB_UI_CORS_ORIGINS). Default none. */
  allowedOrigins?: readonly string[]
  /** Only operator keys (or loopback callers when no operator key is set) pass: registrant keys get 403. */
  operatorOnly?: boolean
  /** Keys accepted beside the current one while callers move to it (a rotation). Only with a key. */
  previousApiKeys?: readonly string[]
}

/**
 * The API's access rule as an onRequest hook, for the API's routes and those the host adds
 * beside it (/metrics): a bearer key, operator or registrant (static, or stored and found by
 * its id, compared in constant time), or, only when no operator key is configured, a loopback
 * client with no key (operator powers, as on a laptop). The caller lands in
 * `request.mcpgwCaller`. Either way, a request a browser makes from a page (it carries
 * `Origin`, or `Sec-Fetch-Site` other than `none`) is refused unless its origin is allowed:
 * no session page, whatever origin it is served from, can use the API with the browser's
 * ambient access. Without a key, a `Host` that is not a loopback name (DNS rebinding) and a
 * request relayed by a proxy are refused too: "loopback" must mean the caller, not a proxy on it.
 * `keys` may be a single operator key (or none), as before there were scoped keys.
 */
export function apiGuard (keys: ApiKeyring | string | undefined, options: ApiGuardOptions = {}): (request: FastifyRequest) => Promise<void> {
  const keyring = keys instanceof ApiKeyring
    ? keys
    : new ApiKeyring(keys === undefined ? [] : [keys, ...(options.previousApiKeys ?? [])].map((key) => ({ key, role: 'operator' as const })), async () => null)
  const allowedOrigins = new Set(options.allowedOrigins ?? [])
  const operatorOnly = options.operatorOnly === true
  return async function requireKey (request) {
    const origin = request.headers.origin
    const site = request.headers['sec-fetch-site']
    if ((origin !== undefined || (site !== undefined && site !== 'none')) && (origin === undefined || !allowedOrigins.has(origin))) {
      throw new ApiBrowserForbiddenError()
    }
    const header = request.headers.authorization
    const bearer = header !== undefined && header.startsWith('Bearer ') ? header.slice(7) : ''
    let caller = bearer === '' ? null : await keyring.resolve(bearer)
    if (caller === null) {
      // A key that names nobody is refused; with no operator key configured, a bearer that is not
      // shaped like a key of ours is ignored (registrants configured with a key the gateway does
      // not ask for), and the caller is judged by where it is.
      if (keyring.operatorKeyConfigured || ApiKeyring.looksStored(bearer)) throw new ApiUnauthorizedError()
      const relayed = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined || request.headers['x-real-ip'] !== undefined
      if (!isLoopback(request.ip) || relayed || !isLoopbackHost(request.headers.host)) throw new ApiForbiddenError()
      caller = LOOPBACK
    }
    if (operatorOnly && caller.servers !== null) throw new ApiKeyScopeError()
    request.mcpgwCaller = caller
  }
}

const LOOPBACK: ApiCaller = Object.freeze({ kind: 'loopback', keyId: null, servers: null })

declare module 'fastify' {
  interface FastifyRequest {
    /** Who called the API, set by apiGuard; null before it ran. */
    mcpgwCaller: ApiCaller | null
  }
}

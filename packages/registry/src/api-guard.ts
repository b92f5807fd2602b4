import { createHash, timingSafeEqual } from 'node:crypto'
import { BlockList, isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { ApiBrowserForbiddenError, ApiForbiddenError, ApiUnauthorizedError } from './errors.js'

const loopback = new BlockList()
loopback.addSubnet('127.0.0.0', 8, 'ipv4')
loopback.addAddress('::1', 'ipv6')

function isLoopback (ip: string): boolean {
  const mapped = ip.startsWith('::ffff:') ? ip.slice(7) : ip
  const kind = isIP(mapped)
  return kind !== 0 && loopback.check(mapped, kind === 4 ? 'ipv4' : 'ipv6')
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

function isLoopbackHost (host: string | undefined): boolean {
  if (host === undefined) return false
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '')
  return name === 'localhost' || name.endsWith('.localhost') || isLoopback(name)
}

export interface ApiGuardOptions {
  /** Browser origins allowed to call the API (MCP_WEB_UI_CORS_ORIGINS). Default none. */
  allowedOrigins?: readonly string[]
  /** Keys accepted beside the current one while callers move to it (a rotation). Only with a key. */
  previousApiKeys?: readonly string[]
}

/**
 * The API's access rule as an onRequest hook, for routes the host adds beside
 * the API (/metrics): the bearer key compared in constant time, or loopback
 * clients only when no key is set. Either way, a request a browser makes from a
 * page (it carries `Origin`, or `Sec-Fetch-Site` other than `none`) is refused
 * unless its origin is allowed: no session page, whatever origin it is served
 * from, can use the API with the browser's ambient access. Without a key, a
 * `Host` that is not a loopback name (DNS rebinding) and a request relayed by a
 * proxy are refused too: "loopback" must mean the caller, not a proxy on it.
 */
export function apiGuard (apiKey: string | undefined, options: ApiGuardOptions = {}): (request: FastifyRequest) => Promise<void> {
  // Every accepted key, each compared in constant time, all of them whichever matches.
  const keyDigests = apiKey === undefined ? undefined : [apiKey, ...(options.previousApiKeys ?? [])].map(digest)
  const allowedOrigins = new Set(options.allowedOrigins ?? [])
  return async function requireKey (request) {
    const origin = request.headers.origin
    const site = request.headers['sec-fetch-site']
    if ((origin !== undefined || (site !== undefined && site !== 'none')) && (origin === undefined || !allowedOrigins.has(origin))) {
      throw new ApiBrowserForbiddenError()
    }
    if (keyDigests === undefined) {
      const relayed = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined || request.headers['x-real-ip'] !== undefined
      if (!isLoopback(request.ip) || relayed || !isLoopbackHost(request.headers.host)) throw new ApiForbiddenError()
      return
    }
    const header = request.headers.authorization
    const given = header !== undefined && header.startsWith('Bearer ') ? header.slice(7) : ''
    const givenDigest = digest(given)
    let accepted = false
    for (const keyDigest of keyDigests) accepted = timingSafeEqual(givenDigest, keyDigest) || accepted
    if (!accepted) throw new ApiUnauthorizedError()
  }
}

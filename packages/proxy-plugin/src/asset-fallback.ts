import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Authenticator } from './authenticator.js'
import { parseTarget } from './request-target.js'
import { labelPrefix } from './path-link.js'

/**
 * A session page at `<prefix>/<token>/` that asks for `/static/app.css` reaches
 * the gateway outside the prefix. When that request's Referer is a page of a
 * live session on this same origin, answer 307 to `<prefix>/<token>/static/app.css`
 * (method and body kept). The token is validated first, so nobody is sent into
 * a session they hold no credential for: a browser sends a same-origin Referer
 * only from a page it actually loaded, and the gateway's Referrer-Policy keeps
 * that Referer from ever leaving the origin.
 *
 * Returns true when it answered.
 */
export async function assetRedirect (
  request: FastifyRequest,
  reply: FastifyReply,
  prefix: string,
  authenticator: Authenticator
): Promise<boolean> {
  const referer = request.headers.referer
  const url = request.raw.url
  if (referer === undefined || url === undefined || !url.startsWith('/') || url.startsWith(`${prefix}/`)) return false
  let ref: URL
  try {
    ref = new URL(referer)
  } catch {
    return false
  }
  if (ref.host !== request.headers.host) return false
  let target
  try {
    target = parseTarget(ref.pathname, prefix)
  } catch {
    return false
  }
  if (target === null) return false
  if (target.label === undefined) {
    try {
      await authenticator.sessions.get(target.token)
    } catch {
      return false
    }
  }
  // (Under a label there is nothing to check here: the asset's path gets no cookie of the
  // label's, and the URL it is sent to opens only with that cookie.)
  reply
    .code(307)
    .header('location', `${target.label === undefined ? `${prefix}/${target.token}` : labelPrefix(prefix, target.label)}${url}`)
    .header('referrer-policy', 'same-origin')
    // The answer depends on who asks: never cache it.
    .header('cache-control', 'no-store')
    .header('vary', 'Referer')
    .send()
  return true
}

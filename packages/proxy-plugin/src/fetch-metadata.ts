import type { IncomingHttpHeaders } from 'node:http'
import { CrossSiteRequestError, ServiceWorkerRefusedError } from './errors.js'

/**
 * What the browser says about who started a request (Fetch Metadata), read
 * before anything else:
 * - A Service Worker's script (`Service-Worker: script`) is refused, in both
 *   modes: a worker answers from its cache after its session is revoked or
 *   expired, and in path mode with no frame-ancestors of ours, for as long as
 *   the browser keeps it.
 * - On a session host, whose cookie is the credential, a request another site
 *   (or another session host: same-site) started is refused unless it is a
 *   plain navigation (following a link, a frame's `src`): so no other page can
 *   post to a session's backend, fetch from it or open its WebSocket with the
 *   session's cookie. In path mode the credential is in the URL, which no other
 *   page knows. Browsers send no Fetch Metadata to plain-http origins: there an unsafe
 *   request whose Origin is another host's is refused all the same, but a same-site
 *   subresource GET (a `<script src>`) carries the Lax cookie: use https.
 */
export function fetchRefusal (headers: IncomingHttpHeaders, method: string, sessionHost: boolean): Error | null {
  const worker = headers['service-worker']
  if (worker !== undefined && values(worker).includes('script')) return new ServiceWorkerRefusedError()
  if (!sessionHost) return null
  // Browsers send Fetch Metadata only to secure origins: over plain http (a wildcard domain
  // other than *.localhost) the Origin of an unsafe request is what tells another page's.
  const origin = headers.origin
  if (origin !== undefined && method !== 'GET' && method !== 'HEAD' && !sameHost(origin, headers.host)) return new CrossSiteRequestError()
  // Browsers send one lower-case value; any other spelling is read at its strictest.
  const site = headers['sec-fetch-site']
  if (site === undefined || !values(site).some((v) => v === 'cross-site' || v === 'same-site')) return null
  const modes = values(headers['sec-fetch-mode'] ?? '')
  const navigation = modes.length > 0 && modes.every((m) => m === 'navigate' || m === 'nested-navigate')
  // An upgrade is never a navigation, whatever it claims.
  if (navigation && (method === 'GET' || method === 'HEAD') && headers.upgrade === undefined) return null
  return new CrossSiteRequestError()
}

/**
 * Whether a request another site (or another session host) started is for a frame rather
 * than a tab: a navigation (the only such request fetchRefusal lets through) whose
 * destination is not a top-level document. Read at its strictest: no destination, or any
 * other spelling, counts as a frame.
 */
export function framedByOtherSite (headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site']
  if (site === undefined || !values(site).some((v) => v === 'cross-site' || v === 'same-site')) return false
  const dest = values(headers['sec-fetch-dest'] ?? '')
  return !(dest.length > 0 && dest.every((d) => d === 'document'))
}

/** A header's values as a browser never sends them but a client may: repeated, comma-joined, in any case. */
function values (value: string | string[]): string[] {
  return (Array.isArray(value) ? value.join(',') : value).toLowerCase().split(',').map((v) => v.trim()).filter((v) => v !== '')
}

function sameHost (origin: string, host: string | undefined): boolean {
  if (host === undefined) return false
  try {
    return new URL(origin).host === host.toLowerCase()
  } catch {
    return false
  }
}

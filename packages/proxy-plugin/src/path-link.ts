import { createHmac } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { PATH_LABEL_SEGMENT } from './request-target.js'

/**
 * Path mode without the credential in the URL. A browser that opens a session's link
 * (`<prefix>/<token>/...`) as a page is sent to `<prefix>/s/<label>/...` with the credential
 * in an HttpOnly cookie scoped to that path: the address bar, history, screenshots, Referer
 * (whatever a page's own referrer policy says) and the backend's X-Forwarded-Prefix then hold
 * the label, which opens nothing without the cookie.
 *
 * The label is keyed by the credential itself (an HMAC), not derived from the session id:
 * session ids reach backends, logs and the audit trail, and on the gateway's one origin a
 * page that can name another session's label can send that session's cookie along.
 */

/** The cookie that holds a path-mode session's credential, on the path of its label. */
export const PATH_COOKIE = 'mcpgw_s'

/** A session credential's path label: 22 base64url characters. */
export function pathLabel (token: string): string {
  return createHmac('sha256', token).update('mcpgw-path-label').digest('base64url').slice(0, 22)
}

/** `<prefix>/s/<label>`: the cookie's path, and the URL the browser is sent to. */
export function labelPrefix (prefix: string, label: string): string {
  return `${prefix}/${PATH_LABEL_SEGMENT}/${label}`
}

/**
 * Whether this request opened a link the browser should swap: a GET that loads a page in a
 * tab, or in a frame of the gateway's own origin. Not for a frame of another site (an MCP Apps
 * host: its view may run at an opaque origin, where no cookie is kept, and a frame's URL is in
 * no address bar), nor for clients that say nothing of what they load (scripts, curl): those
 * keep the link. (Over plain http a browser says nothing either; it is known by what it asks
 * for.) An edge's forward-auth question about a page load gets the swap as its answer, as for a
 * session host's link: every edge relays it to the browser (nginx hands it to the gateway).
 */
export function swapsPathLink (request: FastifyRequest): boolean {
  if (request.method !== 'GET') return false
  const h = request.headers
  if (h['sec-fetch-mode'] === undefined) {
    // Browsers send no Fetch Metadata to an origin that is not secure (plain http on a name
    // other than localhost): there a page load is what asks for HTML with
    // `Upgrade-Insecure-Requests: 1`, which browsers send on navigations and scripts do not.
    return h['upgrade-insecure-requests'] === '1' && typeof h.accept === 'string' && h.accept.includes('text/html')
  }
  if (h['sec-fetch-mode'] !== 'navigate') return false
  const dest = h['sec-fetch-dest']
  return dest === 'document' || ((dest === 'iframe' || dest === 'frame') && h['sec-fetch-site'] === 'same-origin')
}

import type { FastifyRequest } from 'fastify'

/** Cookie values looked at, at most (a page elsewhere on the domain can plant more). */
const MAX_COOKIES = 8

/**
 * Every value of cookie `name` a request carries: a page elsewhere on the domain can plant more
 * under the same name (at a longer path, or with Domain=), and a cookie library's parse would keep
 * one of them, not necessarily ours. More than eight is a flood planted to push ours (or a second
 * person's) out of sight: none at all, then.
 */
export function cookieValues (request: FastifyRequest, name: string): string[] {
  const header = request.headers.cookie
  if (header === undefined || !header.includes(name)) return []
  const values: string[] = []
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
    if (values.length === MAX_COOKIES) return []
    values.push(pair.slice(eq + 1).trim())
  }
  return values
}

/** Text (or an attribute's value) as HTML shows it, never as markup. */
export function escapeHtml (text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

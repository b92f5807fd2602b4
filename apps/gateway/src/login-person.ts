import { LOGIN_GROUP_PATTERN } from '@mcp-gw/protocol'

/**
 * What a login keeps of a person beside their id: their groups and their verified email, read
 * the same way from an OpenID provider's claims, an edge's signed assertion and an edge's headers.
 */

/** At most this many groups are kept per login (they ride in its cookie, and in a ticket's URL)... */
export const MAX_PERSON_GROUPS = 64
/**
 * ...and at most this many UTF-8 bytes of their names together: a browser drops a cookie past
 * 4096 bytes (the login would then loop), and the cookie also holds the id, label and email.
 */
export const MAX_PERSON_GROUP_BYTES = 1500

/**
 * The groups a claim (a list, or one name) or a header (comma-separated) gives, as a login keeps
 * them: names a session can be limited to (1 to 128 characters, no control characters or
 * commas), the first ones that fit MAX_PERSON_GROUPS and MAX_PERSON_GROUP_BYTES; undefined when
 * there are none. `dropped` counts those left out, for the log.
 */
export function groupsFrom (value: unknown): { groups: string[] | undefined, dropped: number } {
  const names = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',').map((v) => v.trim()) : []
  const valid = [...new Set(names.filter((n): n is string => typeof n === 'string' && LOGIN_GROUP_PATTERN.test(n)))]
  const kept: string[] = []
  let bytes = 0
  for (const name of valid) {
    const size = Buffer.byteLength(name) + 3
    if (kept.length === MAX_PERSON_GROUPS || bytes + size > MAX_PERSON_GROUP_BYTES) break
    kept.push(name)
    bytes += size
  }
  return { groups: kept.length === 0 ? undefined : kept, dropped: valid.length - kept.length }
}

const EMAIL = /^[^\s@,]{1,64}@[^\s@,]{1,253}$/

/** An email address the login vouches for (`verified`), or undefined. */
export function emailFrom (value: unknown, verified: boolean): string | undefined {
  return verified && typeof value === 'string' && EMAIL.test(value) ? value : undefined
}

/** The person's fields beyond id and label, left out when empty (they ride in cookies). */
export function personExtras (groups: string[] | undefined, email: string | undefined): { groups?: string[], email?: string } {
  return { ...(groups !== undefined && { groups }), ...(email !== undefined && { email }) }
}

import { createHmac, timingSafeEqual } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import { BlockList, isIP } from 'node:net'

/**
 * What the gateway, the registry and the client SDK must agree on, written once.
 * No dependencies: an MCP server that installs the client SDK pulls in nothing else.
 */

/** A server name: what registrations, sessions and links are keyed by. */
export const SERVER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** A registrant's secret: 32 to 256 visible ASCII characters. */
export const SERVER_SECRET_PATTERN = /^[\x21-\x7e]{32,256}$/

/** The header a registrant proves itself with on the registry API. */
export const SERVER_SECRET_HEADER = 'x-mcpgw-server-secret'

/**
 * What the gateway sends a backend with every request: `registrantProof`, which
 * only the gateway and the backend can make (it is keyed by the proof key the
 * gateway gave the backend when it registered, derived from the gateway's own
 * secret and the registrant's: nothing in the store is enough to make one) and
 * which vouches for the identity headers beside it, for a minute.
 */
export const REGISTRANT_HEADER = 'x-mcpgw-registrant'

/** How far a proof's time may be from the backend's clock, in seconds: its whole useful life. */
export const PROOF_MAX_SKEW_SECONDS = 60

/** What a proof vouches for: the identity headers' values. */
export interface ProvenIdentity {
  sessionId: string
  userId: string
  serverType: string
  scopes: readonly string[]
}

function proofMac (proofKey: string, seconds: number, identity: ProvenIdentity): string {
  return createHmac('sha256', proofKey)
    .update(`mcp-gw registrant proof\0${seconds}\0${identity.sessionId}\0${identity.userId}\0${identity.serverType}\0${identity.scopes.join(',')}`)
    .digest('hex')
}

/**
 * `<unix seconds>.<HMAC-SHA256 hex>` keyed by the registration's proof key, over
 * the time and the identity. Something that captures one (a process that took
 * over a dead backend's port) can neither change the identity it vouches for
 * nor use it after a minute.
 */
export function registrantProof (proofKey: string, identity: ProvenIdentity, nowMs: number = Date.now()): string {
  const seconds = Math.floor(nowMs / 1000)
  return `${seconds}.${proofMac(proofKey, seconds, identity)}`
}

/** Whether `proof` is a fresh proof for this identity made with `proofKey`. */
export function verifyRegistrantProof (proof: unknown, proofKey: string, identity: ProvenIdentity, nowMs: number = Date.now()): boolean {
  if (typeof proof !== 'string') return false
  const match = /^(\d{1,12})\.([0-9a-f]{64})$/.exec(proof)
  if (match === null) return false
  const seconds = Number(match[1])
  if (Math.abs(nowMs / 1000 - seconds) > PROOF_MAX_SKEW_SECONDS) return false
  return timingSafeEqual(Buffer.from(match[2]!, 'latin1'), Buffer.from(proofMac(proofKey, seconds, identity), 'latin1'))
}

/**
 * What the gateway sends beside REGISTRANT_HEADER while its secret rotates: the same
 * proof made with each other proof key it accepts (those of its previous secrets, or of
 * the next one), comma-separated. A backend registered before the rotation holds such a
 * key until its next heartbeat hands it the current one; with this it keeps accepting
 * requests meanwhile. X-Mcpgw-Registrant itself keeps its format, so SDKs that do not
 * read this header work as before (from their next heartbeat on). Absent when the
 * gateway has one secret.
 */
export const REGISTRANT_ROTATION_HEADER = 'x-mcpgw-registrant-rotation'

/** At most this many proofs in REGISTRANT_ROTATION_HEADER are looked at (a gateway sends one per other secret). */
export const MAX_ROTATION_PROOFS = 8

/** The REGISTRANT_ROTATION_HEADER value for these proof keys (null for none). */
export function registrantRotationProof (proofKeys: readonly string[], identity: ProvenIdentity, nowMs: number = Date.now()): string | null {
  if (proofKeys.length === 0) return null
  return proofKeys.slice(0, MAX_ROTATION_PROOFS).map((key) => registrantProof(key, identity, nowMs)).join(',')
}

/**
 * Whether the gateway vouched for this identity with `proofKey`: `proof`
 * (REGISTRANT_HEADER) or one of the proofs in `rotation` (REGISTRANT_ROTATION_HEADER).
 */
export function verifyRegistrantProofs (proof: unknown, rotation: unknown, proofKey: string, identity: ProvenIdentity, nowMs: number = Date.now()): boolean {
  if (verifyRegistrantProof(proof, proofKey, identity, nowMs)) return true
  if (typeof rotation !== 'string' || rotation.length > MAX_ROTATION_PROOFS * 80) return false
  const proofs = rotation.split(',')
  for (let i = 0; i < proofs.length && i < MAX_ROTATION_PROOFS; i++) {
    if (verifyRegistrantProof(proofs[i]!.trim(), proofKey, identity, nowMs)) return true
  }
  return false
}

/**
 * Instances. One registration is one process (an instance) of a server; a name has any
 * number of them. A process says which incarnation it is (random, made once per process)
 * and, optionally, which stable instance of the server it is (`instance`: a name the
 * platform gives each process, kept across restarts). The header carries the incarnation
 * on calls that act on the caller's own instance (create-session, deregister).
 */
export const INCARNATION_HEADER = 'x-mcpgw-incarnation'

/** An incarnation: 16 to 64 base64url characters. */
export const INCARNATION_PATTERN = /^[A-Za-z0-9_-]{16,64}$/

/** An instance name the platform gives a process: 1 to 128 of A-Z a-z 0-9 . _ : @ -. */
export const INSTANCE_NAME_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/

/**
 * Where the gateway asks a registered backend whether a given incarnation still
 * serves there, before it lets a newcomer with the same identity take that
 * instance's sessions over. The challenge travels in INSTANCE_PROBE_HEADER; the
 * answer, in the same header, is `instanceProbeProof` for the incarnation that serves.
 */
export const INSTANCE_PROBE_PATH = '/.well-known/mcp-gw/instance'
export const INSTANCE_PROBE_HEADER = 'x-mcpgw-instance-probe'
export const INSTANCE_PROBE_ANSWER_HEADER = 'x-mcpgw-instance-proof'

function probeMac (proofKey: string, what: string): string {
  return createHmac('sha256', proofKey).update(`mcp-gw instance probe\0${what}`).digest('hex')
}

/**
 * `<presence MAC>.<incarnation MAC>`, both HMAC-SHA256 keyed by the registration's proof
 * key over the challenge: the first says a process of that registrant answers, the second
 * which incarnation it is, without naming it (an incarnation is what a heartbeat carries,
 * so it is never shown to whoever asks).
 */
export function instanceProbeProof (proofKey: string, challenge: string, incarnation: string): string {
  return `${probeMac(proofKey, `present\0${challenge}`)}.${probeMac(proofKey, `incarnation\0${challenge}\0${incarnation}`)}`
}

/**
 * What a probe answer proves for this challenge: `holder` (made by the process of that
 * incarnation), `other` (made with the key, by another incarnation), or null (nothing).
 */
export function verifyInstanceProbe (answer: unknown, proofKey: string, challenge: string, incarnation: string): 'holder' | 'other' | null {
  if (typeof answer !== 'string' || !/^[0-9a-f]{64}\.[0-9a-f]{64}$/.test(answer)) return null
  const [present, which] = answer.split('.') as [string, string]
  const same = (a: string, b: string): boolean => timingSafeEqual(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'))
  if (!same(present, probeMac(proofKey, `present\0${challenge}`))) return null
  return same(which, probeMac(proofKey, `incarnation\0${challenge}\0${incarnation}`)) ? 'holder' : 'other'
}

/** Headers that tell the backend who the gateway authenticated; only the gateway sets them. */
/**
 * The instance (process) the session belongs to: a process that is not that instance (a
 * sibling now listening at a stopped process's address) refuses the request.
 */
export const INSTANCE_ID_HEADER = 'x-mcpgw-instance-id'

/**
 * On a session bound to a person (share level owner or authenticated): who is logged in, as
 * the gateway maps them (the userId MCP servers use), percent-encoded. Only the gateway sets it.
 */
export const LOGIN_USER_HEADER = 'x-mcpgw-login-user'

export const IDENTITY_HEADERS = ['x-mcpgw-user-id', 'x-mcpgw-session-id', 'x-mcpgw-server-type', 'x-mcpgw-scopes', INSTANCE_ID_HEADER, REGISTRANT_HEADER, REGISTRANT_ROTATION_HEADER, LOGIN_USER_HEADER] as const

/**
 * Who may open a session's link, from the narrowest: `owner`, only the logged-in person
 * the gateway maps to the session's userId; `authenticated`, anyone logged in to the
 * gateway; `link`, whoever holds the link (a bearer credential, the default).
 */
export const SHARE_LEVELS = Object.freeze(['owner', 'authenticated', 'link'] as const)
export type ShareLevel = typeof SHARE_LEVELS[number]

/**
 * Who of the people logged in an `authenticated` session (or share) opens for: anyone in one of
 * `groups` (as the login names them), or anyone whose verified email address is at one of
 * `emailDomains`. Absent: anyone logged in.
 */
export interface SessionAudience {
  groups: readonly string[]
  emailDomains: readonly string[]
}

/** A group name as logins carry them: 1 to 128 characters, no control characters, no comma (headers list them comma-separated). */
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
export const LOGIN_GROUP_PATTERN = /^[^\x00-\x1f\x7f,]{1,128}$/u

/** An email domain, lower case: `example.com`. */
export const EMAIL_DOMAIN_PATTERN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/

/** At most this many groups, and this many email domains, in one session's audience. */
export const MAX_AUDIENCE_ENTRIES = 32

/** Whether a logged-in person (their groups, their verified email) is in an audience. */
export function inAudience (audience: SessionAudience, person: { groups?: readonly string[], email?: string }): boolean {
  if (person.groups !== undefined && person.groups.some((g) => audience.groups.includes(g))) return true
  const at = person.email === undefined ? -1 : person.email.lastIndexOf('@')
  return at > 0 && audience.emailDomains.includes(person.email!.slice(at + 1).toLowerCase())
}

/** Whether `level` lets in no more people than `cap`. */
export function shareLevelWithin (level: ShareLevel, cap: ShareLevel): boolean {
  return SHARE_LEVELS.indexOf(level) <= SHARE_LEVELS.indexOf(cap)
}

/** The server type of a session when none is given. */
export const DEFAULT_SERVER_TYPE = 'mcp-webui'

/** The scopes of a session created without any, and of a UI request a direct link lets in. */
export const DEFAULT_SCOPES: readonly string[] = Object.freeze(['view', 'interact'])

/** A session's key: one live session per user, server and server type. */
export function sessionKeyOf (userId: string, serverName: string, serverType: string = DEFAULT_SERVER_TYPE): string {
  return `${userId}:${serverName}:${serverType}`
}

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/** Whether an IP address (IPv4-mapped IPv6 included) is a loopback one; false for names. */
export function isLoopbackIp (ip: string): boolean {
  const mapped = ip.startsWith('::ffff:') ? ip.slice(7) : ip
  const kind = isIP(mapped)
  return kind !== 0 && LOOPBACK.check(mapped, kind === 4 ? 'ipv4' : 'ipv6')
}

/**
 * Whether a `Host` header (or a bare host) names this machine's loopback: `localhost`,
 * `*.localhost`, a loopback address. Browsers treat these as secure contexts.
 */
export function isLoopbackHost (host: string | undefined): boolean {
  if (host === undefined) return false
  const name = (host.startsWith('[') ? host.slice(1, host.indexOf(']')) : isIP(host) === 6 ? host : host.replace(/:\d*$/, '')).toLowerCase()
  return name === 'localhost' || name.endsWith('.localhost') || isLoopbackIp(name)
}

/** A host as it goes into a URL: IPv6 addresses in brackets. */
export function urlHost (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** The one error body of every mcp-gw HTTP answer. */
export interface ErrorBody {
  statusCode: number
  /** Stable: match on it (every code is in docs/errors.md). */
  code: string
  /** The status text (Node's STATUS_CODES). */
  error: string
  message: string
}

export function errorBody (statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
}

export { FRAME_TICKET_PARAM, LOGIN_TICKET_PARAM, readWildcardUrl, SESSION_LINK_PARAM, sessionHostLabel, sessionHostOf, sessionLink, sessionOrigin } from './session-host.js'
export type { WildcardUrl } from './session-host.js'

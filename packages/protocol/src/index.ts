import { STATUS_CODES } from 'node:http'

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
 * What the gateway sends a backend with every request: the SHA-256 (hex) of the
 * secret the backend registered with. Only the gateway and the backend know it.
 */
export const REGISTRANT_HEADER = 'x-mcpgw-registrant'

/** Headers that tell the backend who the gateway authenticated; only the gateway sets them. */
export const IDENTITY_HEADERS = ['x-mcpgw-user-id', 'x-mcpgw-session-id', 'x-mcpgw-server-type', 'x-mcpgw-scopes', REGISTRANT_HEADER] as const

/** The server type of a session when none is given. */
export const DEFAULT_SERVER_TYPE = 'mcp-webui'

/** A session's key: one live session per user, server and server type. */
export function sessionKeyOf (userId: string, serverName: string, serverType: string = DEFAULT_SERVER_TYPE): string {
  return `${userId}:${serverName}:${serverType}`
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

export { readWildcardUrl, SESSION_LINK_PARAM, sessionHostLabel, sessionHostOf, sessionLink, sessionOrigin } from './session-host.js'
export type { WildcardUrl } from './session-host.js'

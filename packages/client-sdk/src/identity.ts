import { timingSafeEqual, createHash } from 'node:crypto'
import { userInfo } from 'node:os'
import { InvalidOptionError, NoSubjectError, PlatformCredentialError } from './errors.js'

/** What an MCP SDK passes a tool handler as `extra` (only the part read here). */
export interface McpRequestExtra {
  authInfo?: {
    clientId?: string
    extra?: Record<string, unknown>
  }
  /** Present on HTTP transports: the request's headers. Absent on stdio. */
  requestInfo?: {
    headers?: Record<string, string | string[] | undefined>
  }
}

export interface McpUserOptions {
  /**
   * Who an authenticated request is from, when the auth info says it somewhere other
   * than `extra.sub` (an email claim, a user id your token verifier adds). Returning
   * undefined refuses the request.
   */
  fromAuth?: (authInfo: NonNullable<McpRequestExtra['authInfo']>) => string | undefined
  /**
   * The user of this process, when the platform runs one process per user and says who
   * in its environment. Default: the variable `localUserEnv` names.
   */
  localUser?: string
  /** The environment variable that names this process's user. Default `MCP_WEB_UI_LOCAL_USER`. */
  localUserEnv?: string
  /**
   * An HTTP server that serves many users: the request header the platform puts the user
   * in (e.g. `X-User-ID`). Believed only with the platform credential (`platformToken`).
   * Default: MCP_WEB_UI_USER_HEADER.
   */
  userHeader?: string
  /**
   * The secret the platform sends with every request, compared in constant time. Default:
   * MCP_WEB_UI_PLATFORM_TOKEN.
   */
  platformToken?: string
  /**
   * Where the platform sends it: `authorization` (as `Bearer <token>`) or a header of its
   * own. Default: MCP_WEB_UI_PLATFORM_TOKEN_HEADER, else `authorization`.
   */
  platformTokenHeader?: string
  env?: NodeJS.ProcessEnv
}

function header (extra: McpRequestExtra, name: string): string | undefined {
  const value = extra.requestInfo?.headers?.[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}

function sameSecret (given: string, expected: string): boolean {
  // Hashed first: equal lengths for timingSafeEqual, and no early exit on length.
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest())
}

/**
 * Who an MCP request is for, so a link is made for that user and nobody else, in this order:
 * - the authenticated subject when the transport carries auth (`extra.authInfo`: its
 *   `extra.sub`, or what `fromAuth` says);
 * - the user the platform gave this process (MCP_WEB_UI_LOCAL_USER, or `localUserEnv`);
 * - on HTTP, the user header the platform sends (`userHeader`), only beside the platform
 *   credential (`platformToken`; MCPGW_SDK_PLATFORM_CREDENTIAL without it);
 * - on stdio, the OS user: the person who runs the server on a laptop.
 * An HTTP request that none of these names is refused (MCPGW_SDK_NO_SUBJECT), never given
 * the OS user, which every user of a shared server would share. Never the OAuth client id
 * (every user of one client shares it), never a tool argument (the model fills those in).
 */
export function mcpUserId (extra: McpRequestExtra | undefined, options: McpUserOptions = {}): string {
  const auth = extra?.authInfo
  if (auth !== undefined && auth !== null) {
    const subject = options.fromAuth !== undefined ? options.fromAuth(auth) : auth.extra?.sub
    if (typeof subject === 'string' && subject !== '') return subject
    throw new NoSubjectError("the request's auth info names no user (extra.sub): pass fromAuth to say who it is")
  }
  const env = options.env ?? process.env
  const local = options.localUser ?? env[options.localUserEnv ?? 'MCP_WEB_UI_LOCAL_USER']
  if (local !== undefined && local !== '') {
    if (typeof local !== 'string') throw new InvalidOptionError('localUser', 'expected a non-empty string')
    return local
  }
  const userHeader = options.userHeader ?? (env.MCP_WEB_UI_USER_HEADER || undefined)
  // The OS user stands for stdio only: a server configured for a platform's users never falls
  // back to it, even on a transport that says nothing of its requests.
  if (extra?.requestInfo === undefined && userHeader === undefined) return userInfo().username
  if (extra?.requestInfo === undefined) throw new NoSubjectError(`the transport passed no request headers, so no ${userHeader} header`)
  if (userHeader === undefined) {
    throw new NoSubjectError('an HTTP request without auth: set MCP_WEB_UI_LOCAL_USER (a process per user) or MCP_WEB_UI_USER_HEADER with MCP_WEB_UI_PLATFORM_TOKEN (users in a header)')
  }
  const token = options.platformToken ?? (env.MCP_WEB_UI_PLATFORM_TOKEN || undefined)
  if (token === undefined || token.length < 16) throw new InvalidOptionError('platformToken', 'a user header is believed only with a platform credential of 16 or more characters (MCP_WEB_UI_PLATFORM_TOKEN)')
  const tokenHeader = (options.platformTokenHeader ?? (env.MCP_WEB_UI_PLATFORM_TOKEN_HEADER || 'authorization')).toLowerCase()
  let given = header(extra, tokenHeader)
  if (tokenHeader === 'authorization' && given !== undefined) given = /^Bearer (.+)$/i.exec(given)?.[1]
  if (given === undefined || !sameSecret(given, token)) throw new PlatformCredentialError(userHeader)
  const user = header(extra, userHeader)
  if (user === undefined || user === '') throw new NoSubjectError(`the platform sent no ${userHeader} header`)
  return user
}

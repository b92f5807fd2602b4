import { userInfo } from 'node:os'
import { InvalidOptionError, NoSubjectError } from './errors.js'

/** What an MCP SDK passes a tool handler as `extra` (only the part read here). */
export interface McpRequestExtra {
  authInfo?: {
    clientId?: string
    extra?: Record<string, unknown>
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
   * The user of an unauthenticated transport (stdio, or HTTP without auth): the
   * person running the server. Default: MCP_WEB_UI_LOCAL_USER, else the OS user name.
   */
  localUser?: string
  env?: NodeJS.ProcessEnv
}

/**
 * Who an MCP request is for, so a link is made for that user and nobody else:
 * the authenticated subject when the transport carries auth (`extra.authInfo`:
 * its `extra.sub`, or what `fromAuth` says), otherwise the local user. Never the
 * OAuth client id: every user of one client (all of Claude's, say) shares it, so
 * they would share one list. Never a tool argument: the model fills those in,
 * and could name anyone.
 */
export function mcpUserId (extra: McpRequestExtra | undefined, options: McpUserOptions = {}): string {
  const auth = extra?.authInfo
  if (auth !== undefined && auth !== null) {
    const subject = options.fromAuth !== undefined ? options.fromAuth(auth) : auth.extra?.sub
    if (typeof subject === 'string' && subject !== '') return subject
    throw new NoSubjectError()
  }
  const env = options.env ?? process.env
  const local = options.localUser ?? (env.MCP_WEB_UI_LOCAL_USER || userInfo().username)
  if (typeof local !== 'string' || local === '') throw new InvalidOptionError('localUser', 'expected a non-empty string')
  return local
}

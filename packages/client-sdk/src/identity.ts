import { userInfo } from 'node:os'
import { InvalidOptionError } from './errors.js'

/** What an MCP SDK passes a tool handler as `extra` (only the part read here). */
export interface McpRequestExtra {
  authInfo?: {
    clientId?: string
    extra?: Record<string, unknown>
  }
}

export interface McpUserOptions {
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
 * its `extra.sub`, else its client id), otherwise the local user. Never take the
 * user from a tool argument: the model fills those in, and could name anyone.
 */
export function mcpUserId (extra: McpRequestExtra | undefined, options: McpUserOptions = {}): string {
  const auth = extra?.authInfo
  if (auth !== undefined && auth !== null) {
    const subject = auth.extra?.sub
    if (typeof subject === 'string' && subject !== '') return subject
    if (typeof auth.clientId === 'string' && auth.clientId !== '') return auth.clientId
  }
  const env = options.env ?? process.env
  const local = options.localUser ?? (env.MCP_WEB_UI_LOCAL_USER || userInfo().username)
  if (typeof local !== 'string' || local === '') throw new InvalidOptionError('localUser', 'expected a non-empty string')
  return local
}

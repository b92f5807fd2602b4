import { readWildcardUrl } from '@mcp-gw/protocol'
import type { WildcardUrl } from '@mcp-gw/protocol'
import { InvalidOptionError } from './errors.js'

export { SESSION_LINK_PARAM, sessionHostLabel, sessionHostOf, sessionLink, sessionOrigin } from '@mcp-gw/protocol'
export type { WildcardUrl }

/**
 * Reads `https://*.apps.example.com` or `http://*.localhost:3082` (isolated
 * mode's wildcard URL); anything else is MCPGW_REGISTRY_INVALID_OPTION.
 */
export function parseWildcardUrl (value: string): WildcardUrl {
  const wildcard = readWildcardUrl(value)
  if (wildcard === null) throw new InvalidOptionError('wildcardUrl', 'expected a URL such as https://*.apps.example.com or http://*.localhost:3082')
  return wildcard
}

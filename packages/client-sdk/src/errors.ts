import createError from '@fastify/error'

type Args<T extends unknown[]> = [...T, { cause: unknown }?]

export const GatewayUnreachableError = createError<Args<[string]>>('MCPGW_SDK_GATEWAY_UNREACHABLE', 'The gateway at %s could not be reached', 503)
/** The gateway took longer than the call's bound (a stuck or overloaded gateway, or one behind a stuck proxy). */
export const GatewayTimeoutError = createError<Args<[string, number]>>('MCPGW_SDK_GATEWAY_TIMEOUT', 'The gateway at %s did not answer within %d ms', 504)
export const GatewayUnauthorizedError = createError<Args<[]>>('MCPGW_SDK_UNAUTHORIZED', 'The gateway refused the API key (check MCP_WEB_UI_GATEWAY_API_KEY)', 401)
/** The key is good but does not act for this server name (a registrant key for other names). */
export const GatewayKeyScopeError = createError<Args<[string]>>('MCPGW_SDK_KEY_SCOPE', 'The API key does not act for server %s: ask the gateway operator for a key that does (mcp-gw keys create --server <name>)', 403)
/**
 * The gateway refused or failed a request: `gatewayStatus` and `gatewayCode` say how (and
 * `gatewayMessage` why, also appended to the message), and
 * `retryAfterSeconds` when it said when to ask again (a quota: MCPGW_REGISTRY_RATE_LIMITED,
 * MCPGW_REGISTRY_SERVER_QUOTA). A refusal is never mistaken for an unreachable gateway.
 */
export const GatewayRequestError = createError<Args<[number, string]>>('MCPGW_SDK_REQUEST_FAILED', 'The gateway answered %d %s', 502)
/**
 * The gateway accepted a call, but its answer is not what the SDK reads (not JSON, or a field
 * missing or of another type): another service at the gateway's URL, or a proxy's own page.
 */
export const GatewayAnswerError = createError<Args<[string, string]>>('MCPGW_SDK_MALFORMED_ANSWER', "The gateway's answer to %s is malformed: %s", 502)

/** The gateway's own code (`MCPGW_REGISTRY_...`) of a refused request, when it sent one. */
export function gatewayCodeOf (err: unknown): string | undefined {
  return (err as { gatewayCode?: string } | null)?.gatewayCode
}
export const PortRangeExhaustedError = createError<Args<[number, number]>>('MCPGW_SDK_PORT_RANGE_EXHAUSTED', 'No free port from %d to %d', 503)
export const InvalidOptionError = createError<Args<[string, string]>>('MCPGW_SDK_INVALID_OPTION', 'Invalid option %s: %s', 500)
/**
 * Direct links over plain http to a host that is not this machine's loopback: browsers send
 * no Fetch Metadata there, and cookies ignore ports, so any page on that host could act with
 * the link's cookie. Use the gateway, or serve the UI over https.
 */
export const DirectLoopbackOnlyError = createError<Args<[string]>>('MCPGW_SDK_DIRECT_LOOPBACK_ONLY', 'Direct links over http work only on a loopback host (localhost, 127.0.0.1, ::1), and the UI is at %s: use the gateway (MCP_WEB_UI_GATEWAY_URL), or https', 500)
/** The browser helper's check (`/.well-known/mcp-gw/link`): the page's link no longer opens the UI. */
export const LinkInvalidError = createError<Args<[]>>('MCPGW_SDK_LINK_INVALID', 'This link no longer opens the UI: ask for a new one', 401)
export const NotRegisteredError = createError<Args<[]>>('MCPGW_SDK_NOT_REGISTERED', 'Call register() or startWebUI() before creating sessions', 500)
export const ClosedError = createError<Args<[]>>('MCPGW_SDK_CLOSED', 'The client was closed', 500)
export const NoSubjectError = createError<Args<[string]>>('MCPGW_SDK_NO_SUBJECT', 'No user for this MCP request: %s', 401)
export const PlatformCredentialError = createError<Args<[string]>>('MCPGW_SDK_PLATFORM_CREDENTIAL', 'The platform credential is missing or wrong: the user header %s is believed only beside it', 401)

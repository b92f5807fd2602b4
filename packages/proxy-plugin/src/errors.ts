import createError from '@fastify/error'

/** Constructor arguments: the message's values, then optionally `{ cause }`. */
type Args<T extends unknown[]> = [...T, { cause: unknown }?]

// Refusals are routine: no stack trace is captured for them.
const NO_STACK = false

export const MissingTokenError = createError<Args<[]>>('MCPGW_PROXY_TOKEN_MISSING', 'No session token in the URL', 401, Error, NO_STACK)
export const MalformedTokenError = createError<Args<[]>>('MCPGW_PROXY_TOKEN_MALFORMED', 'The session token is malformed', 401, Error, NO_STACK)
export const BadSignatureError = createError<Args<[]>>('MCPGW_PROXY_TOKEN_BAD_SIGNATURE', 'The session token was not signed by this gateway', 401, Error, NO_STACK)
export const UnknownTokenError = createError<Args<[]>>('MCPGW_PROXY_TOKEN_UNKNOWN', 'The session token is not known to this gateway', 401, Error, NO_STACK)
export const ExpiredTokenError = createError<Args<[]>>('MCPGW_PROXY_TOKEN_EXPIRED', 'The session has expired', 401, Error, NO_STACK)
export const RevokedTokenError = createError<Args<[]>>('MCPGW_PROXY_TOKEN_REVOKED', 'The session was revoked', 401, Error, NO_STACK)
export const ScopeDeniedError = createError<Args<[string]>>('MCPGW_PROXY_SCOPE_DENIED', 'This session may not use %s: it lacks the interact scope', 403, Error, NO_STACK)
export const OriginDeniedError = createError<Args<[]>>('MCPGW_PROXY_ORIGIN_DENIED', 'WebSocket connections from this origin are not allowed', 403, Error, NO_STACK)
export const BadPathError = createError<Args<[]>>('MCPGW_PROXY_BAD_PATH', 'The request path is not allowed', 400, Error, NO_STACK)
export const BadUpgradeError = createError<Args<[]>>('MCPGW_PROXY_BAD_UPGRADE', 'Only WebSocket upgrades are proxied: GET with Upgrade: websocket, a Sec-WebSocket-Key and version 13', 400, Error, NO_STACK)
export const MalformedRequestError = createError<Args<[]>>('MCPGW_PROXY_MALFORMED_REQUEST', 'The request is not valid HTTP/1.1', 400, Error, NO_STACK)
export const HeadersTooLargeError = createError<Args<[]>>('MCPGW_PROXY_HEADERS_TOO_LARGE', 'The request headers are too large', 431, Error, NO_STACK)
export const RequestTimeoutError = createError<Args<[]>>('MCPGW_PROXY_REQUEST_TIMEOUT', 'The request headers did not arrive in time', 408, Error, NO_STACK)
export const ExpectationFailedError = createError<Args<[]>>('MCPGW_PROXY_EXPECTATION_FAILED', 'The only expectation this gateway meets is 100-continue', 417, Error, NO_STACK)
export const BadHostError = createError<Args<[]>>('MCPGW_PROXY_BAD_HOST', 'Exactly one Host header is required', 400, Error, NO_STACK)
export const UnknownSessionHostError = createError<Args<[]>>('MCPGW_PROXY_UNKNOWN_SESSION_HOST', 'This host is not a session host of this gateway', 404, Error, NO_STACK)
export const WrongSessionHostError = createError<Args<[]>>('MCPGW_PROXY_WRONG_SESSION_HOST', 'This credential belongs to another session host', 403, Error, NO_STACK)
export const BodyTooLargeError = createError<Args<[number]>>('MCPGW_PROXY_BODY_TOO_LARGE', 'The request body is larger than the %d bytes this gateway passes on', 413, Error, NO_STACK)
export const NoBackendError = createError<Args<[]>>('MCPGW_PROXY_NO_BACKEND', 'The server behind this link has stopped: ask the assistant for a new link', 503, Error, NO_STACK)
export const StoreUnavailableError = createError<Args<[]>>('MCPGW_PROXY_STORE_UNAVAILABLE', 'The session store is unavailable; try again shortly', 503, Error, NO_STACK)
export const BadGatewayError = createError<Args<[]>>('MCPGW_PROXY_BAD_GATEWAY', 'The backend could not be reached or failed', 502, Error, NO_STACK)
export const GatewayTimeoutError = createError<Args<[]>>('MCPGW_PROXY_GATEWAY_TIMEOUT', 'The backend did not answer in time', 504, Error, NO_STACK)
export const ShuttingDownError = createError<Args<[]>>('MCPGW_PROXY_SHUTTING_DOWN', 'The gateway is shutting down; try again shortly', 503, Error, NO_STACK)
export const InvalidOptionError = createError<Args<[string, string]>>('MCPGW_PROXY_INVALID_OPTION', 'Invalid proxy option %s: %s', 500)
/** Fastify was created without the server options the plugin's options need (gatewayServerOptions). */
export const ServerOptionsMismatchError = createError<Args<[string]>>('MCPGW_PROXY_SERVER_OPTIONS_MISMATCH', 'Fastify was not created with the server options these plugin options need: %s. Create it with Fastify(gatewayServerOptions(options))', 500)
/** Anything thrown that is not one of ours: never its message (it could quote the URL, and with it the token). */
export const InternalError = createError<Args<[]>>('MCPGW_PROXY_INTERNAL', 'Internal Server Error', 500, Error, NO_STACK)
export const BadRequestError = createError<Args<[]>>('MCPGW_PROXY_BAD_REQUEST', 'Bad Request', 400, Error, NO_STACK)
/** No route: Fastify's own 404, with a code like every other refusal. */
export const RouteNotFoundError = createError<Args<[string, string]>>('MCPGW_NOT_FOUND', 'Route %s:%s not found', 404, Error, NO_STACK)
export const ServiceWorkerRefusedError = createError<Args<[]>>('MCPGW_PROXY_SERVICE_WORKER_REFUSED', 'Service Workers are not served through this gateway: one would outlive its session', 403, Error, NO_STACK)
export const ForwardAuthDeniedError = createError<Args<[]>>('MCPGW_PROXY_FORWARD_AUTH_DENIED', 'Forward-auth requests need the edge key and the original method, URI and Host', 403, Error, NO_STACK)
export const EndedListError = createError<Args<[]>>('MCPGW_PROXY_FORWARD_AUTH_BAD_LIST', 'An edge asks which sessions ended with text/plain: up to 1000 session tokens, one per line', 400, Error, NO_STACK)
export const FrameUnboundError = createError<Args<[]>>('MCPGW_PROXY_FRAME_UNBOUND', 'In another site\'s frame, a session page opens only through its link: open the link again', 403, Error, NO_STACK)
export const LinkNotOpenedHereError = createError<Args<[]>>('MCPGW_PROXY_LINK_NOT_OPENED_HERE', 'This address opens a session only in the browser that opened its link: open the link again', 401, Error, NO_STACK)
export const CrossSiteRequestError = createError<Args<[]>>('MCPGW_PROXY_CROSS_SITE', 'Another site started this request: only navigations reach a session from elsewhere', 403, Error, NO_STACK)
export const LoginRequiredError = createError<Args<[]>>('MCPGW_PROXY_LOGIN_REQUIRED', 'This link opens only for a person logged in to the gateway: log in, then open it again', 401, Error, NO_STACK)
/**
 * An `owner` session's link, opened by someone logged in as another person. Names neither: in
 * path mode any MCP server's page shares the gateway's origin and could read it.
 */
export const NotYourSessionError = createError<Args<[]>>('MCPGW_PROXY_NOT_YOUR_SESSION', 'You are logged in as someone other than the person this link was made for: log out to open it as them', 403, Error, NO_STACK)

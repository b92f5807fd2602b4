// The public API: the plugin, the server options it needs, its options and defaults, its
// errors, and the names an edge or a host app configures against. Everything else is internal.
export { mcpGateway, mcpGateway as default } from './plugin.js'
export type { McpGatewayOptions } from './plugin.js'
export { gatewayServerOptions, gatewayRewriteUrl, isolationRewriteUrl } from './server-options.js'
export { sendError } from './error-reply.js'
export type { GatewayErrorBody } from './error-reply.js'
export {
  validateOptions,
  DEFAULT_PREFIX, DEFAULT_REVALIDATE_MS, DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_STORE_OUTAGE_GRACE_MS,
  DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS, DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
  DEFAULT_WS_HANDSHAKE_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS
} from './options.js'
export type { ProxyOptions, NormalizedProxyOptions } from './options.js'
export * as errors from './errors.js'
export type { GatewayHandle } from './types.js'
export type { LoggedInPerson, LoginPlace, LoginSource } from './logins.js'
export type { TunnelSet } from './ws-proxy.js'
export type { ProxyMetrics, StreamSet } from './metrics.js'
export type { Authenticator } from './authenticator.js'
export { FORWARD_AUTH_PATH, FORWARD_AUTH_ENDED_PATH, FORWARD_AUTH_KEY_HEADER, EDGE_CACHE_HEADER, VERDICT_HEADERS } from './forward-auth.js'

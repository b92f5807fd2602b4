export { mcpGateway, mcpGateway as default } from './plugin.js'
export type { McpGatewayOptions } from './plugin.js'
export { tokenAuth } from './token-auth.js'
export type { TokenAuthOptions } from './token-auth.js'
export { discovery } from './discovery.js'
export { streamingProxy } from './streaming-proxy.js'
export { Authenticator } from './authenticator.js'
export type { RegistrantProofs } from './authenticator.js'
export { assetRedirect } from './asset-fallback.js'
export { clientErrorHandler, expectationFailed, frameworkErrors, sendError } from './error-reply.js'
export { redactUrl, parseTarget, serverLogSerializers } from './request-target.js'
export { lazyChildLogger } from './child-logger.js'
export type { RequestTarget } from './request-target.js'
export {
  validateOptions, frameAncestorsPolicy,
  DEFAULT_PREFIX, DEFAULT_REVALIDATE_MS, DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_STORE_OUTAGE_GRACE_MS,
  DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS, DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
  DEFAULT_WS_HANDSHAKE_TIMEOUT_MS
} from './options.js'
export type { ProxyOptions, NormalizedProxyOptions } from './options.js'
export * as errors from './errors.js'
export type { GatewayHandle } from './types.js'
export type { TunnelSet } from './ws-proxy.js'
export { ProxyMetrics, StreamSet } from './metrics.js'
export { IDENTITY_HEADERS } from './headers.js'
export { isolationRewriteUrl, gatewayRewriteUrl } from './plugin.js'
export { FORWARD_AUTH_PATH, FORWARD_AUTH_KEY_HEADER, EDGE_CACHE_HEADER, VERDICT_HEADERS } from './forward-auth.js'
export { sessionCookieName, ISOLATED_PREFIX } from './isolation.js'

import type { ServerRegistration, SessionRecord } from '@mcp-gw/registry'
import type { Authenticator } from './authenticator.js'
import type { LoggedInPerson } from './logins.js'
import type { ProxyMetrics, StreamSet } from './metrics.js'
import type { RequestTarget } from './request-target.js'
import type { TunnelSet } from './ws-proxy.js'

export interface GatewayHandle {
  authenticator: Authenticator
  /** Open WebSocket tunnels, for metrics and shutdown. */
  tunnels: TunnelSet
  /** Open Server-Sent Event streams, for metrics and shutdown. */
  streams: StreamSet
  metrics: ProxyMetrics
  /**
   * What is open on each session, by session id: WebSocket tunnels, event streams and requests
   * waiting on their backend (long-polls), which a revocation ends.
   */
  openBySession (): Map<string, number>
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The session the request's token belongs to, set by token-auth. */
    mcpSession: SessionRecord | null
    /** The live backend of that session's server, set by discovery. */
    mcpBackend: ServerRegistration | null
    /** Who is logged in, set by token-auth for sessions bound to a person (share level owner or authenticated). */
    mcpPerson: LoggedInPerson | null
    /** Internal: the parsed gateway URL. Holds the token; never log it. */
    mcpTarget: RequestTarget | null
  }
  interface FastifyInstance {
    /**
     * Set by token-auth in the context it is registered in (and so only there):
     * discovery and the streaming proxy declare it as their dependency.
     */
    mcpAuthenticator?: Authenticator
    mcpGateway: GatewayHandle
  }
}

import type { FastifyInstance } from 'fastify'

/**
 * Stops accepting, tells WebSocket clients 1001 (going away), ends event
 * streams, lets in-flight requests finish for up to `drainTimeoutMs`, then
 * cuts what is left and closes the store.
 */
export async function shutdown (app: FastifyInstance, drainTimeoutMs: number): Promise<void> {
  const gateway = app.mcpGateway
  gateway.tunnels.closeAll(1001, 'gateway shutting down')
  gateway.streams.endAll()
  const cut = setTimeout(() => app.server.closeAllConnections(), drainTimeoutMs)
  cut.unref()
  try {
    await app.close()
  } finally {
    clearTimeout(cut)
  }
}

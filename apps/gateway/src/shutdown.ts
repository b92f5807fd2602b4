import type { FastifyInstance } from 'fastify'

/**
 * Stops accepting and closes the app: the proxy plugin itself tells WebSocket
 * clients 1001 (going away), ends event streams, and answers requests still
 * waiting on a backend after `drainTimeoutMs` (it was given the same bound).
 * Whatever else is still open then (an API request, a connection that never
 * finished its headers) is cut, and the store is closed.
 */
export async function shutdown (app: FastifyInstance, drainTimeoutMs: number): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), drainTimeoutMs + 250)
  cut.unref()
  try {
    await app.close()
  } finally {
    clearTimeout(cut)
  }
}

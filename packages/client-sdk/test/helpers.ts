import type { AddressInfo } from 'node:net'
import { mcpRegistryApi, mcpRegistryPlugin } from '@mcp-gw/registry'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import type { RegistryApiOptions, RegistryPluginOptions } from '@mcp-gw/registry'
import type { Test } from 'tap'

export const API_KEY = 'sdk-test-api-key-0123456789'

/** The gateway's registration API on 127.0.0.1, with a short registration TTL. */
export async function startGateway (t: Test, port = 0, registrationTtlSeconds = 3, more: { api?: Partial<RegistryApiOptions>, registry?: Partial<RegistryPluginOptions>, beforeListen?: (app: FastifyInstance) => void } = {}): Promise<{ app: FastifyInstance, url: string, port: number }> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(mcpRegistryPlugin, { secret: 'sdk-test-secret-0123456789abcdef0123', registrationTtlSeconds, ...more.registry })
  await app.register(mcpRegistryApi, { apiKey: API_KEY, publicUrl: 'https://gw.example', ...more.api })
  more.beforeListen?.(app)
  await app.listen({ port, host: '127.0.0.1' })
  const bound = (app.server.address() as AddressInfo).port
  return { app, port: bound, url: `http://127.0.0.1:${bound}` }
}

export function quietLogger (): { warn: () => void, info: () => void, debug: () => void, warnings: unknown[] } {
  const warnings: unknown[] = []
  return { warnings, warn: (...args: unknown[]) => { warnings.push(args) }, info: () => {}, debug: () => {} }
}

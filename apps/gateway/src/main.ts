import { buildGateway } from './app.js'

const DEFAULT_PORT = 3082

function portFromEnv (): number {
  const raw = process.env.MCP_WEB_UI_GATEWAY_PORT
  if (raw === undefined || raw === '') return DEFAULT_PORT
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('MCP_WEB_UI_GATEWAY_PORT must be a whole number from 0 to 65535\n')
    process.exit(1)
  }
  return port
}

const app = await buildGateway({
  fastify: { logger: { level: process.env.DEBUG === 'true' ? 'debug' : 'info' } },
  ...(process.env.MCP_WEB_UI_PROXY_PREFIX !== undefined && process.env.MCP_WEB_UI_PROXY_PREFIX !== '' && {
    proxy: { prefix: process.env.MCP_WEB_UI_PROXY_PREFIX }
  })
})
const address = await app.listen({ port: portFromEnv(), host: process.env.MCP_WEB_UI_GATEWAY_HOST ?? '127.0.0.1' })
app.log.info({ address }, 'mcp-gw listening')

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

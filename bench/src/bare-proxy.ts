// The floor for a Node.js proxy: @fastify/http-proxy with a fixed upstream, no
// auth and no logging. usage: node bare-proxy.js <port> <upstream>
import httpProxy from '@fastify/http-proxy'
import Fastify from 'fastify'

const [port, upstream] = [Number(process.argv[2]), process.argv[3]!]
const app = Fastify({ logger: false })
await app.register(httpProxy, { upstream, websocket: true })
await app.listen({ port, host: '127.0.0.1' })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })

#!/usr/bin/env node
import { createServer } from 'node:http'
import { closeOnExit, createGatewayClient, mcpAppBridge, startWebUI } from '@mcp-gw/client-sdk'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { buildMcpServer } from './mcp.js'
import { TodoStore } from './todos.js'
import { createTodoUi } from './ui.js'

// stdout belongs to JSON-RPC in stdio mode: everything here logs to stderr.
const log = (msg: string): void => { process.stderr.write(`example-todo: ${msg}\n`) }

const todos = new TodoStore()
// Gateway URL, API key, fallback and secret come from MCP_WEB_UI_* variables (see the README).
const client = createGatewayClient({ serverName: process.env.MCP_SERVER_NAME ?? 'todoodles' })
const app = mcpAppBridge(client, { title: 'Todo list' })
const ui = createTodoUi(todos, client)
// Binds at once; registration with the gateway goes on in the background.
const handle = await startWebUI(ui.handler, {
  portRange: [Number(process.env.MCP_WEB_UI_PORT_MIN ?? 12000), Number(process.env.MCP_WEB_UI_PORT_MAX ?? 13000)],
  host: process.env.MCP_WEB_UI_HOST ?? '127.0.0.1',
  ...(process.env.MCP_WEB_UI_ADVERTISE_HOST !== undefined && { advertiseHost: process.env.MCP_WEB_UI_ADVERTISE_HOST }),
  client
})
ui.attach(handle.server)
log(`web UI on ${handle.host}:${handle.port} (${client.mode} mode)`)
client.on('registered', () => log('registered with the gateway'))
client.on('direct', () => log('handing out direct links'))

// SIGTERM, SIGINT, stdin closed, or an uncaught error: deregister, then exit.
const shutdown = closeOnExit([handle, client])

const httpFlag = process.argv.indexOf('--http')
if (httpFlag !== -1) {
  // Streamable HTTP, stateless: a fresh server and transport per request.
  const port = Number(process.argv[httpFlag + 1] ?? 3000)
  const mcpHttp = createServer((req, res) => {
    if (req.url !== '/mcp') {
      res.writeHead(404).end()
      return
    }
    const server = buildMcpServer(todos, client, app)
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    res.on('close', () => { transport.close().catch(() => {}); server.close().catch(() => {}) })
    server.connect(transport).then(() => transport.handleRequest(req, res)).catch(() => { if (!res.headersSent) res.writeHead(500).end() })
  })
  mcpHttp.once('error', (err: NodeJS.ErrnoException) => {
    log(`cannot serve MCP on 127.0.0.1:${port} (${err.code ?? err.message}); exiting`)
    shutdown(1).catch(() => {})
  })
  mcpHttp.listen(port, '127.0.0.1', () => log(`MCP over Streamable HTTP on http://127.0.0.1:${port}/mcp`))
} else {
  await buildMcpServer(todos, client, app).connect(new StdioServerTransport())
}

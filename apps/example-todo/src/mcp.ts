import type { GatewayClient, McpAppBridge } from '@mcp-gw/client-sdk'
import { mcpUserId, supportsMcpApps } from '@mcp-gw/client-sdk'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import type { TodoStore } from './todos.js'

/**
 * The MCP side: a tool that opens the UI, and one that changes the list. Both act
 * for the user the MCP request is from (`mcpUserId`), never for a user the model
 * names in an argument.
 */
export function buildMcpServer (todos: TodoStore, client: GatewayClient, app: McpAppBridge): McpServer {
  const server = new McpServer({ name: 'example-todo', version: '0.0.0' })
  // MCP Apps hosts render this resource inline; it frames the live UI.
  app.registerResource(server)

  server.registerTool('open_todo_ui', {
    title: 'Open the todo list',
    description: "Shows the user's todo list web UI, which updates live.",
    _meta: app.toolMeta
  }, async (extra) => {
    const userId = mcpUserId(extra)
    const link = await client.createSession(userId)
    // The link reaches the MCP Apps view through _meta; only hosts without MCP Apps get it as text.
    return app.toolResult(link, {
      text: `Opened the todo list (${todos.get(userId).items.length} items).`,
      appsSupported: supportsMcpApps(server.server.getClientCapabilities())
    })
  })

  server.registerTool('add_todo', {
    title: 'Add a todo',
    description: "Adds an item to the user's todo list; open UIs show it at once.",
    inputSchema: { text: z.string().min(1).max(500) }
  }, async ({ text }, extra) => {
    const list = todos.add(mcpUserId(extra), text)
    return { content: [{ type: 'text', text: `Added "${text}" (${list.items.length} items)` }] }
  })

  return server
}

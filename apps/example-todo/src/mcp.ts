import type { GatewayClient } from '@mcp-gw/client-sdk'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import type { TodoStore } from './todos.js'

/** The MCP side: a tool that hands out the UI link, and one that changes the list. */
export function buildMcpServer (todos: TodoStore, client: GatewayClient): McpServer {
  const server = new McpServer({ name: 'example-todo', version: '0.0.0' })

  server.registerTool('open_todo_ui', {
    title: 'Open the todo list',
    description: "Returns a link to the user's todo list web UI, which updates live.",
    inputSchema: { userId: z.string().min(1).max(256).describe('Whose list to open') }
  }, async ({ userId }) => {
    const link = await client.createSession(userId)
    return {
      content: [
        { type: 'text', text: link.url },
        { type: 'resource_link', uri: link.url, name: 'todo-ui', title: `Todo list of ${userId}`, mimeType: 'text/html' }
      ]
    }
  })

  server.registerTool('add_todo', {
    title: 'Add a todo',
    description: "Adds an item to the user's todo list; open UIs show it at once.",
    inputSchema: { userId: z.string().min(1).max(256), text: z.string().min(1).max(500) }
  }, async ({ userId, text }) => {
    const list = todos.add(userId, text)
    return { content: [{ type: 'text', text: `Added "${text}" (${list.items.length} items)` }] }
  })

  return server
}

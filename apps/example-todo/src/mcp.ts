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

  // Which user made each share (its id), so only they can end it. Kept in this process, as the list is.
  const sharedBy = new Map<string, string>()
  server.registerTool('share_todo_ui', {
    title: 'Share the todo list',
    description: "Shares the user's live todo list page with one person (by their login name), the people of one group, or anyone logged in to the gateway; view-only unless interactive is true. Answers with the share's link and id.",
    inputSchema: { person: z.string().min(1).max(256).optional(), group: z.string().min(1).max(128).optional(), interactive: z.boolean().optional() }
  }, async ({ person, group, interactive }, extra) => {
    if (person !== undefined && group !== undefined) return { isError: true, content: [{ type: 'text', text: 'Share with a person or a group, not both.' }] }
    // The user's own session (the live one, or a new one), then a link of its own for the other person.
    const own = await client.createSession(mcpUserId(extra))
    if (own.sessionId === undefined) return { isError: true, content: [{ type: 'text', text: 'Sharing needs the gateway.' }] }
    const share = await client.shareSession(own.sessionId, {
      ...(person !== undefined ? { person } : group !== undefined ? { groups: [group] } : { shareLevel: 'authenticated' as const }),
      scopes: interactive === true ? ['view', 'interact'] : ['view']
    })
    if (share.sessionId !== undefined) sharedBy.set(share.sessionId, mcpUserId(extra))
    return { content: [{ type: 'text', text: `Shared ${interactive === true ? 'to change' : 'to view'} with ${person ?? (group !== undefined ? `the group ${group}` : 'anyone logged in')}: ${share.url} (share id ${share.sessionId ?? ''})` }] }
  })

  server.registerTool('stop_sharing_todo_ui', {
    title: 'Stop sharing the todo list',
    description: 'Ends a share of the todo list page by the share id share_todo_ui gave: its page stops at once.',
    inputSchema: { shareId: z.string().min(1).max(64) }
  }, async ({ shareId }, extra) => {
    // Only a share this user made: an id alone never ends someone else's session.
    if (sharedBy.get(shareId) !== mcpUserId(extra)) return { isError: true, content: [{ type: 'text', text: 'No such share of yours.' }] }
    sharedBy.delete(shareId)
    const ended = await client.revokeSession({ sessionId: shareId })
    return { content: [{ type: 'text', text: ended > 0 ? 'Stopped sharing.' : 'No such share is live.' }] }
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

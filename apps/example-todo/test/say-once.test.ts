import t from 'tap'
import type { Test } from 'tap'
import { eventually, freePort } from '@mcp-gw/testkit'
import { callText, connectExample, startGatewayProcess } from './helpers.js'
import type { ExampleProcess } from './helpers.js'

// What a new MCP server author sees in the MCP client's log (stderr) when a setting is
// wrong: one line naming what to fix, however many tool calls follow, and never a byte of
// it on stdout, where the MCP client reads JSON-RPC.

/** The SDK's warnings on stderr (JSON lines of level warn). */
function warnings (example: ExampleProcess): string[] {
  return example.stderr().split('\n').filter((line) => {
    try {
      return (JSON.parse(line) as { level?: string, name?: string }).level === 'warn'
    } catch {
      return false
    }
  })
}

async function callThrice (example: ExampleProcess): Promise<string[]> {
  const texts: string[] = []
  for (let i = 0; i < 3; i++) {
    const result = await example.mcp.callTool({ name: 'open_todo_ui', arguments: {} })
    texts.push(JSON.stringify(result))
  }
  return texts
}

async function saysOnce (t: Test, example: ExampleProcess, pattern: RegExp): Promise<void> {
  await eventually(() => warnings(example).length > 0, { within: 5000, what: 'a warning on stderr' })
  const lines = warnings(example)
  t.equal(lines.length, 1, `one line, not one per call: ${lines.join(' | ')}`)
  t.match(lines[0], pattern)
  t.same(example.strayStdout(), [], 'nothing but JSON-RPC on stdout')
}

t.test('no gateway URL set: one line naming MCP_WEB_UI_GATEWAY_URL, and direct links that still work', async (t) => {
  // The environment a new author's MCP client gives: no MCP_WEB_UI_* at all.
  const example = await connectExample(t, null, { MCP_WEB_UI_USE_GATEWAY: '', MCP_WEB_UI_GATEWAY_URL: '' })
  const results = await callThrice(example)
  t.match(results[2], /http:\/\/127\.0\.0\.1:\d+\/\?token=/, 'a direct link')
  await saysOnce(t, example, /MCP_WEB_UI_GATEWAY_URL is not set/)
})

t.test('MCP_WEB_UI_USE_GATEWAY=false chosen on purpose: nothing to warn about', async (t) => {
  const example = await connectExample(t, null)
  await callThrice(example)
  t.same(warnings(example), [])
})

t.test('a wrong API key: one line naming MCP_WEB_UI_GATEWAY_API_KEY, and each tool call says why', async (t) => {
  const gw = await startGatewayProcess(t)
  const example = await connectExample(t, gw, { MCP_WEB_UI_GATEWAY_API_KEY: 'not-the-key-0123456789abcdef' })
  const results = await callThrice(example)
  for (const result of results) t.match(result, /MCPGW_SDK_UNAUTHORIZED|refused the API key/)
  await saysOnce(t, example, /refused the API key \(MCP_WEB_UI_GATEWAY_API_KEY\)/)
})

t.test('a key that does not act for this server name: one line naming the name', async (t) => {
  const gw = await startGatewayProcess(t, { MCP_WEB_UI_REGISTRANT_KEYS: 'notes=registrant-key-for-notes-0123456789' })
  const example = await connectExample(t, gw, { MCP_WEB_UI_GATEWAY_API_KEY: 'registrant-key-for-notes-0123456789' })
  const results = await callThrice(example)
  for (const result of results) t.match(result, /MCPGW_SDK_KEY_SCOPE|does not act for/)
  await saysOnce(t, example, /does not act for the server name todoodles/)
})

t.test('the gateway cannot be reached, with the fallback: one line saying links are direct until it answers', async (t) => {
  const port = await freePort()
  const example = await connectExample(t, null, { MCP_WEB_UI_USE_GATEWAY: 'true', MCP_WEB_UI_GATEWAY_URL: `http://127.0.0.1:${port}`, MCP_WEB_UI_FALLBACK: 'direct' })
  const results = await callThrice(example)
  for (const result of results) t.match(result, /\?token=/, 'direct links')
  await saysOnce(t, example, /cannot be reached; handing out direct links until it answers/)
  const text = (await callText(example.mcp, 'open_todo_ui')).text
  t.ok(text.length > 0)
  t.equal(warnings(example).length, 1, 'still one line after more calls')
})

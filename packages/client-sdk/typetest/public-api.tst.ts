import { describe, expect, test } from 'tstyche'
import * as api from '@mcp-gw/client-sdk'
import { createGatewayClient, startWebUI } from '@mcp-gw/client-sdk'
import type { ClientState, GatewayClient, SessionLink, WebUIHandle } from '@mcp-gw/client-sdk'

// The SDK's documented functions, pinned: adding or removing an export is a decision, made here.
describe('@mcp-gw/client-sdk exports', () => {
  test('exactly these values', () => {
    expect<keyof typeof api>().type.toBe<
      | 'LINK_CHECK_PATH' | 'LINK_HELPER_PATH' | 'LINK_META_KEY' | 'MCP_APPS_EXTENSION' | 'MCP_APP_MIME_TYPE'
      | 'answerLinkHelper' | 'closeOnExit' | 'createGatewayClient' | 'errors'
      | 'gatewayIdentity' | 'mcpAppBridge' | 'mcpUserId' | 'publicBasePath' | 'startWebUI' | 'stderrLogger' | 'supportsMcpApps'
    >()
  })
})

describe('a server author\'s calls', () => {
  test('createGatewayClient takes its options and refuses ill-typed ones', () => {
    expect(createGatewayClient({ serverName: 'todoodles', gatewayUrl: 'http://127.0.0.1:3082', apiKey: 'k' })).type.toBe<GatewayClient>()
    expect(createGatewayClient).type.not.toBeCallableWith({ serverName: 'todoodles', gatewayUrl: 3082 })
    expect(createGatewayClient).type.not.toBeCallableWith({ gatewayUrl: 'http://127.0.0.1:3082' })
  })

  test('a session link for a user, and the client\'s state', () => {
    const client = createGatewayClient({ serverName: 'todoodles' })
    expect(client.createSession('alice')).type.toBe<Promise<SessionLink>>()
    expect(client.createSession).type.not.toBeCallableWith(42)
    expect(client.state).type.toBe<ClientState>()
    expect<SessionLink['url']>().type.toBe<string>()
  })

  test('startWebUI gives a handle', () => {
    expect(startWebUI).type.toBeCallableWith((_req: unknown, res: { end: () => void }) => { res.end() })
    expect(startWebUI).type.not.toBeCallableWith({ portRange: [1, 2] })
    expect<Awaited<ReturnType<typeof startWebUI>>>().type.toBeAssignableTo<WebUIHandle>()
  })
})

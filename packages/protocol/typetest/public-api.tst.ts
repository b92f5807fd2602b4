import { describe, expect, test } from 'tstyche'
import * as api from '@mcp-gw/protocol'
import { errorBody, registrantProof, verifyRegistrantProof } from '@mcp-gw/protocol'
import type { ErrorBody, ProvenIdentity } from '@mcp-gw/protocol'

// What the gateway, the registry and the SDK agree on, pinned: a change here is a protocol change.
describe('@mcp-gw/protocol exports', () => {
  test('exactly these values', () => {
    expect<keyof typeof api>().type.toBe<
      | 'DEFAULT_SCOPES' | 'DEFAULT_SERVER_TYPE' | 'EMAIL_DOMAIN_PATTERN' | 'FRAME_TICKET_PARAM' | 'IDENTITY_HEADERS' | 'INCARNATION_HEADER'
      | 'INCARNATION_PATTERN' | 'INSTANCE_ID_HEADER' | 'INSTANCE_NAME_PATTERN'
      | 'INSTANCE_PROBE_ANSWER_HEADER' | 'INSTANCE_PROBE_HEADER' | 'INSTANCE_PROBE_PATH' | 'LOGIN_GROUP_PATTERN' | 'LOGIN_TICKET_PARAM' | 'LOGIN_USER_HEADER'
      | 'MAX_AUDIENCE_ENTRIES' | 'MAX_ROTATION_PROOFS' | 'PROOF_MAX_SKEW_SECONDS' | 'REGISTRANT_HEADER' | 'REGISTRANT_ROTATION_HEADER'
      | 'SERVER_NAME_PATTERN' | 'SERVER_SECRET_HEADER' | 'SERVER_SECRET_PATTERN' | 'SESSION_LINK_PARAM' | 'SHARE_LEVELS'
      | 'errorBody' | 'inAudience' | 'instanceProbeProof' | 'isLoopbackHost' | 'isLoopbackIp' | 'readWildcardUrl' | 'registrantProof' | 'registrantRotationProof'
      | 'sessionHostLabel' | 'sessionHostOf' | 'sessionKeyOf' | 'sessionLink' | 'sessionOrigin' | 'shareLevelWithin' | 'urlHost'
      | 'verifyInstanceProbe' | 'verifyRegistrantProof' | 'verifyRegistrantProofs'
    >()
  })

  test('the error body every HTTP answer has', () => {
    expect(errorBody(401, 'MCPGW_PROXY_TOKEN_REVOKED', 'The session was revoked')).type.toBe<ErrorBody>()
    expect<ErrorBody>().type.toBe<{ statusCode: number, code: string, error: string, message: string }>()
  })

  test('registrant proofs', () => {
    const identity: ProvenIdentity = { sessionId: 's', userId: 'u', serverType: 't', scopes: ['view'] }
    expect(registrantProof('key', identity)).type.toBe<string>()
    expect(verifyRegistrantProof('proof', 'key', identity)).type.toBe<boolean>()
    expect(registrantProof).type.not.toBeCallableWith('key', { userId: 'u' })
  })
})

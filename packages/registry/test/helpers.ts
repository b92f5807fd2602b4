import { Registry } from '../src/registry.js'
import type { RegistryConstructorOptions } from '../src/registry.js'
import type { RegistryStore } from '../src/types.js'

/** 32+ bytes: the minimum the registry accepts. Test-only values. */
export const SECRET = 'test-secret-0123456789abcdef0123456789'
export const OTHER_SECRET = 'another-test-secret-9876543210fedcba98'

export interface FakeClock {
  now: () => number
  advance: (ms: number) => void
  set: (ms: number) => void
}

/** Starts at a whole second so JWT second boundaries are exact in tests. */
export function fakeClock (start = Math.floor(Date.now() / 1000) * 1000): FakeClock {
  let now = start
  return {
    now: () => now,
    advance: (ms) => { now += ms },
    set: (ms) => { now = ms }
  }
}

export function makeRegistry (store: RegistryStore, clock: FakeClock, options: RegistryConstructorOptions = {}): Registry {
  // Any host: these tests are about storage; test/backend-policy.test.ts covers the policy.
  return new Registry({ secret: SECRET, now: clock.now, allowedBackends: ['*'], ...options, store, ownsStore: false })
}

/** A compact JWT built by hand, for tokens no honest signer would produce. */
export function craftToken (header: object, payload: object, signature = ''): string {
  const enc = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${enc(header)}.${enc(payload)}.${signature}`
}

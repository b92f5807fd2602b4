import { BlockList, isIP } from 'node:net'
import { BackendNotAllowedError, InvalidOptionError } from './errors.js'

/** Where registrations may point by default: loopback and private networks. */
export const DEFAULT_ALLOWED_BACKENDS: readonly string[] = Object.freeze([
  '127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7', 'localhost'
])

// Never, whatever the configuration: link-local (cloud metadata lives at 169.254.169.254),
// AWS's IPv6 metadata network, and the unspecified addresses, which many stacks treat as
// "this host".
const ALWAYS_DENIED_CIDRS = ['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::/64', '0.0.0.0/8', '::/128']
// Metadata services outside those ranges (Alibaba Cloud, Azure's wire server): refused under
// `*`; an operator may still name them in an explicit list.
const DENIED_UNDER_WILDCARD = ['100.100.100.200', '168.63.129.16']
const ALWAYS_DENIED_NAMES = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal'])

/**
 * Reads an IPv4 address the way inet_aton (and so getaddrinfo) does: one to
 * four parts, each decimal, octal (leading 0) or hex (0x), the last part
 * filling the remaining bytes. `2852039166`, `0xA9FEA9FE`, `0251.0376.0251.0376`
 * and `169.254.43518` are all 169.254.169.254. Returns dotted-quad or null.
 */
export function parseLooseIPv4 (text: string): string | null {
  const parts = text.split('.')
  if (parts.length === 0 || parts.length > 4) return null
  const values: number[] = []
  for (const part of parts) {
    let value: number
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : parseInt(part.slice(2), 16)
    else if (/^0[0-7]*$/.test(part)) value = parseInt(part, 8)
    else if (/^[1-9][0-9]*$/.test(part)) value = Number(part)
    else return null
    if (!Number.isSafeInteger(value)) return null
    values.push(value)
  }
  const last = values.pop()!
  if (values.some((v) => v > 255)) return null
  const lastBytes = 4 - values.length
  if (last >= 2 ** (8 * lastBytes)) return null
  const bytes = [...values]
  for (let i = lastBytes - 1; i >= 0; i--) bytes.push(Math.floor(last / 2 ** (8 * i)) % 256)
  return bytes.join('.')
}

/** The address an IPv4-mapped or -translated IPv6 address stands for, else the input. */
function unmapIPv6 (address: string): string {
  const lower = address.toLowerCase()
  const dotted = /^(?:0{0,4}:){0,5}(?::|0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower) ?? /^::(\d+\.\d+\.\d+\.\d+)$/.exec(lower)
  if (dotted !== null) return dotted[1]!
  const hex = /^(?:0{0,4}:){0,5}(?::|0{0,4}:)?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower)
  if (hex !== null) {
    const hi = parseInt(hex[1]!, 16)
    const lo = parseInt(hex[2]!, 16)
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
  }
  return address
}

export interface CanonicalHost {
  /** What the proxy will connect to: a dotted IPv4, a bare IPv6, or a lower-case name. */
  host: string
  kind: 'ipv4' | 'ipv6' | 'name'
}

/** One spelling per address, so a policy cannot be bypassed by writing it differently. */
export function canonicalHost (input: string): CanonicalHost {
  const bare = input.startsWith('[') && input.endsWith(']') ? input.slice(1, -1) : input
  if (isIP(bare) === 6) {
    const unmapped = unmapIPv6(bare)
    if (isIP(unmapped) === 4) return { host: unmapped, kind: 'ipv4' }
    return { host: new URL(`http://[${bare}]`).hostname.slice(1, -1), kind: 'ipv6' }
  }
  const v4 = parseLooseIPv4(bare)
  if (v4 !== null) return { host: v4, kind: 'ipv4' }
  return { host: bare.toLowerCase().replace(/\.$/, ''), kind: 'name' }
}

export interface BackendPolicy {
  /** Throws MCPGW_REGISTRY_BACKEND_NOT_ALLOWED, or returns the host to store. */
  check (host: string): string
}

/**
 * Builds the registration policy from CIDRs and host names. `*.example.internal`
 * allows the subdomains of example.internal; `*` allows any host. Link-local and
 * cloud-metadata addresses are refused whatever the list says. Names are matched as written and
 * never resolved here: list the names you mean (DNS answers can change after
 * the check; point registrations at addresses where that matters).
 */
export function createBackendPolicy (allowed: readonly string[] = DEFAULT_ALLOWED_BACKENDS): BackendPolicy {
  const allowList = new BlockList()
  const names = new Set<string>()
  const suffixes: string[] = []
  let any = false
  for (const entry of allowed) {
    if (entry === '*') {
      any = true
      continue
    }
    const slash = entry.indexOf('/')
    if (slash !== -1) {
      const { host, kind } = canonicalHost(entry.slice(0, slash))
      const bits = Number(entry.slice(slash + 1))
      if (kind === 'name' || !Number.isInteger(bits) || bits < 0 || bits > (kind === 'ipv4' ? 32 : 128)) {
        throw new InvalidOptionError('allowedBackends', `not a CIDR: ${entry}`)
      }
      allowList.addSubnet(host, bits, kind)
    } else if (entry.startsWith('*.')) {
      suffixes.push(entry.slice(1).toLowerCase())
    } else {
      const { host, kind } = canonicalHost(entry)
      if (kind === 'name') names.add(host)
      else allowList.addAddress(host, kind)
    }
  }
  const denyList = new BlockList()
  for (const cidr of ALWAYS_DENIED_CIDRS) {
    const [net, bits] = cidr.split('/') as [string, string]
    denyList.addSubnet(net, Number(bits), isIP(net) === 6 ? 'ipv6' : 'ipv4')
  }
  if (any) for (const address of DENIED_UNDER_WILDCARD) denyList.addAddress(address, 'ipv4')

  return {
    check (input) {
      const { host, kind } = canonicalHost(input)
      if (kind === 'name') {
        if (ALWAYS_DENIED_NAMES.has(host)) throw new BackendNotAllowedError()
        if (any || names.has(host) || suffixes.some((s) => host.endsWith(s) && host.length > s.length)) return host
        throw new BackendNotAllowedError()
      }
      if (denyList.check(host, kind) || (!any && !allowList.check(host, kind))) throw new BackendNotAllowedError()
      return host
    }
  }
}

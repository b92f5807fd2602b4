import { createHash, randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { INSTANCE_PROBE_ANSWER_HEADER, INSTANCE_PROBE_HEADER, INSTANCE_PROBE_PATH, isLoopbackIp, urlHost, verifyInstanceProbe } from '@mcp-gw/protocol'
import type { Protocol, ServerRegistration } from './types.js'

/**
 * An instance's id: the same for every registration of one identity (server name,
 * owner, the instance name the platform gave), so a restarted process finds its
 * instance, and its sessions, again. A second live process with the same identity
 * gets the id of its own incarnation instead. 22 base64url characters (128 bits).
 */
export function instanceIdOf (serverName: string, ownerHash: string | null, instance: string | null, incarnation?: string): string {
  let material = `mcp-gw instance\0${serverName}\0${ownerHash ?? ''}\0${instance ?? ''}`
  if (incarnation !== undefined) material += `\0${incarnation}`
  return createHash('sha256').update(material).digest('base64url').slice(0, 22)
}

/** The incarnation of a registrant that sends none: its address stands for the process. */
export function addressIncarnation (protocol: Protocol, host: string, port: number): string {
  return `addr:${protocol}://${urlHost(host)}:${port}`
}

/** What a probe of a live instance's address found. */
export type ProbeVerdict =
  /** The incarnation that holds the instance answered with its proof. */
  | 'alive'
  /** Nothing listens there, or another process does (it proved another incarnation). */
  | 'gone'
  /** Something answered without a proof, or nothing answered in time: assume it lives. */
  | 'unknown'

/**
 * `proofKey` is the holder's current proof key; `otherProofKeys` those of the other secrets
 * the gateway accepts (during a rotation the holder may still hold one of them).
 */
export type InstanceProber = (holder: ServerRegistration, proofKey: string, otherProofKeys?: readonly string[]) => Promise<ProbeVerdict>

const PROBE_TIMEOUT_MS = 1000
/** Refusals that mean no process listens at the address (any more). */
const NOBODY_THERE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EADDRNOTAVAIL'])

/**
 * Asks the address a live instance registered whether the incarnation that holds it still
 * serves there: a challenge it must answer with an HMAC keyed by the instance's proof key
 * (INSTANCE_PROBE_PATH; the client SDK answers it). Bounded by one second; never follows
 * a redirect, never reads more than the head.
 */
export const probeInstance: InstanceProber = async (holder, proofKey, otherProofKeys = []) => {
  const challenge = randomBytes(16).toString('base64url')
  const request = holder.protocol === 'https' ? httpsRequest : httpRequest
  return await new Promise<ProbeVerdict>((resolve) => {
    let settled = false
    const settle = (verdict: ProbeVerdict): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.destroy()
      resolve(verdict)
    }
    const req = request({
      host: holder.host,
      port: holder.port,
      path: INSTANCE_PROBE_PATH,
      method: 'GET',
      agent: false,
      // The proof, not the certificate, says who answers.
      rejectUnauthorized: false,
      headers: { [INSTANCE_PROBE_HEADER]: challenge, connection: 'close' }
    }, (res) => {
      const answer = res.headers[INSTANCE_PROBE_ANSWER_HEADER]
      let proved = verifyInstanceProbe(answer, proofKey, challenge, holder.incarnation)
      for (let i = 0; proved === null && i < otherProofKeys.length; i++) proved = verifyInstanceProbe(answer, otherProofKeys[i]!, challenge, holder.incarnation)
      res.resume()
      settle(proved === null ? 'unknown' : proved === 'holder' ? 'alive' : 'gone')
    })
    const timer = setTimeout(() => settle('unknown'), PROBE_TIMEOUT_MS)
    req.on('error', (err: NodeJS.ErrnoException) => settle(NOBODY_THERE.has(err.code ?? '') ? 'gone' : 'unknown'))
    req.end()
  })
}

/** An address the gateway listens on (what `server.address()` and `fastify.addresses()` give). */
export interface ListeningAddress {
  address: string
  port: number
}

function bare (address: string): string {
  const lower = address.toLowerCase()
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower
}

function localAddresses (): Set<string> {
  const out = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.add(bare(i.address))
  return out
}

/**
 * Whether host:port reaches one of the gateway's own listening addresses, resolving a name
 * the way the proxy will. A registration pointing there would send every request back into
 * the gateway, round after round.
 */
export async function pointsAtGateway (host: string, port: number, listening: readonly ListeningAddress[]): Promise<boolean> {
  const onPort = listening.filter((l) => l.port === port)
  if (onPort.length === 0) return false
  let resolved: string[]
  try {
    resolved = isIP(host) !== 0 ? [host] : await resolveBounded(host)
  } catch {
    // Unresolvable, or not within a second: the proxy cannot reach it either (and its own
    // connection refuses a loop by the same check at the next heartbeat).
    return false
  }
  const local = onPort.some((l) => isUnspecified(l.address)) ? localAddresses() : null
  return resolved.map(bare).some((address) =>
    onPort.some((l) => isUnspecified(l.address) ? local!.has(address) || isLoopbackIp(address) : bare(l.address) === address))
}

const LOOKUP_TIMEOUT_MS = 1000

/** A name's addresses, or a rejection after a second: a slow resolver never holds a registration. */
async function resolveBounded (host: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('lookup timed out')), LOOKUP_TIMEOUT_MS) })
  try {
    return (await Promise.race([lookup(host, { all: true }), timeout])).map((r) => r.address)
  } finally {
    clearTimeout(timer)
  }
}

function isUnspecified (address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '::0'
}

import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { FastifyRequest } from 'fastify'
import proxyAddr from 'proxy-addr'

export type TrustFunction = (address: string, hop: number) => boolean

/** Fastify's trustProxy setting as a function, the way Fastify itself reads it. */
export function trustFunction (trustProxy: unknown): TrustFunction {
  if (typeof trustProxy === 'function') return trustProxy as TrustFunction
  if (trustProxy === true) return () => true
  if (typeof trustProxy === 'number') return (_address, hop) => hop < trustProxy
  if (typeof trustProxy === 'string') return proxyAddr.compile(trustProxy.split(',').map((s) => s.trim()))
  if (Array.isArray(trustProxy)) return proxyAddr.compile(trustProxy as string[])
  return () => false
}

export interface ClientFacts {
  /** X-Forwarded-For to send on: trusted hops kept, in order, ending with our peer. */
  forwardedFor: string
  proto: string
  host: string | undefined
}

function firstValue (header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined) return undefined
  const comma = value.indexOf(',')
  return (comma === -1 ? value : value.slice(0, comma)).trim() || undefined
}

/**
 * Who the client is, honouring trust-proxy. One implementation for HTTP requests
 * and WebSocket upgrades (which never reach Fastify's request object).
 */
export function clientFacts (req: IncomingMessage, trust: TrustFunction): ClientFacts {
  const peer = req.socket.remoteAddress ?? ''
  const trustedPeer = trust(peer, 0)
  const chain = trustedPeer ? proxyAddr.all(req, trust) : [peer]
  const encrypted = (req.socket as TLSSocket).encrypted === true
  return {
    forwardedFor: chain.length <= 1 ? peer : [...chain].reverse().join(', '),
    proto: (trustedPeer ? firstValue(req.headers['x-forwarded-proto']) : undefined) ?? (encrypted ? 'https' : 'http'),
    host: (trustedPeer ? firstValue(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host
  }
}

/** The same facts for an HTTP request, from Fastify's own trust-aware accessors. */
export function requestFacts (request: FastifyRequest): ClientFacts {
  // request.ips is [socket peer, ...trusted hops towards the client].
  const ips = request.ips
  const peer = request.socket.remoteAddress ?? ''
  return {
    forwardedFor: ips === undefined || ips.length <= 1 ? peer : [...ips].reverse().join(', '),
    proto: request.protocol,
    host: request.host
  }
}

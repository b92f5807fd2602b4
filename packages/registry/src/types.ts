import type { SessionAudience, ShareLevel } from '@mcp-gw/protocol'
import type { Registry } from './registry.js'

export type Protocol = 'http' | 'https'

/** Times are epoch milliseconds throughout; stores convert at their edge. */
export interface SessionRecord {
  sessionId: string
  /** The JWT id (`jti`) of the token that carries this session. */
  jti: string
  userId: string
  serverName: string
  serverType: string
  /** `userId:serverName:serverType`: at most one live session per key. */
  sessionKey: string
  scopes: string[]
  /** Who may open its link (see SHARE_LEVELS); absent (records written before share levels): `link`. */
  shareLevel?: ShareLevel
  /** On an `authenticated` session: the groups and email domains it is limited to; absent: anyone logged in. */
  audience?: SessionAudience
  /**
   * Present on a share: a credential of its own that opens another session's UI (`from`, its
   * sessionId) for someone else. It lives no longer than that session, and ends with it.
   */
  share?: SessionShare
  createdAt: number
  expiresAt: number
  lastActivityAt: number
  revokedAt: number | null
  metadata: Record<string, unknown>
  /**
   * The `ownerHash` of the registration the session was issued for (through the
   * HTTP API), or null for one issued in-process. The proxy serves it only while
   * that same registrant holds the server name: whoever takes the name after a
   * lapse never receives earlier registrants' sessions.
   */
  ownerHash: string | null
  /**
   * The instance (one process of the server) that minted the session: the proxy
   * routes it to that instance only, never to another instance of the same name.
   */
  instanceId: string
}

/** What makes a session a share of another. */
export interface SessionShare {
  /** The shared session's id. */
  from: string
  /** The one person it opens for (share level `owner`), as the gateway maps logged-in people; null for anyone the level lets in. */
  with: string | null
}

export interface ServerRegistration {
  serverName: string
  /**
   * SHA-256 (hex) of the secret of whoever registered it, or null for a
   * registration made in-process without one. Only that registrant may
   * heartbeat, replace or remove it, or ask for its sessions, until it lapses.
   */
  ownerHash: string | null
  /**
   * Which instance of serverName this is. Derived from the name, the owner and the
   * instance name the process gave (the same across its restarts, so a restarted
   * process takes its sessions back), or, for a second live process with the same
   * identity, from its incarnation too.
   */
  instanceId: string
  /** The instance name the platform gave the process, or null. */
  instance: string | null
  /**
   * The process that holds the instance now: a random value it made at start, or
   * `addr:<protocol>://<host>:<port>` for a registrant that sends none.
   */
  incarnation: string
  host: string
  port: number
  protocol: Protocol
  metadata: Record<string, unknown>
  registeredAt: number
  lastHeartbeatAt: number
  expiresAt: number
}

export type ServerRegistrationInput = Pick<ServerRegistration, 'serverName' | 'host' | 'port' | 'protocol' | 'metadata' | 'ownerHash' | 'instanceId' | 'instance' | 'incarnation'>

/** Which sessions a revocation may reach beyond its selector: one instance's, or some server names'. */
export interface RevokeBounds {
  instanceId?: string
  /** Only sessions of these server names (a registrant key's scope). */
  serverNames?: readonly string[]
}

/** Which sessions a revocation applies to: exactly one of these, optionally bounded. */
export type RevokeFilter =
  | ({ sessionId: string } & RevokeBounds)
  | ({ sessionKey: string } & RevokeBounds)
  | ({ userId: string } & RevokeBounds)
  /** The shares of one session (the registry ends them with it). */
  | ({ sharedFrom: string } & RevokeBounds)

export interface ListSessionsFilter {
  userId?: string
  serverName?: string
  instanceId?: string
  /** Only sessions of these server names (a registrant key's scope). */
  serverNames?: readonly string[]
  /** Only the shares of this session. */
  sharedFrom?: string
  /** At most this many, newest first. */
  limit: number
}

/** What an API key may do: everything (`operator`), or act for some server names (`registrant`). */
export type ApiKeyRole = 'operator' | 'registrant'

/** An API key as the store keeps it: never the key, only its SHA-256. */
export interface ApiKeyRecord {
  /** Public id, the part of the key before the dot (`mcpgw_<keyId>.<secret>`). */
  keyId: string
  /** SHA-256 (hex) of the whole key. */
  hash: string
  role: ApiKeyRole
  /** The server names a registrant key acts for; empty for an operator key. */
  servers: string[]
  /** What the operator called it. */
  label: string
  createdAt: number
  /** When it stops being accepted (a rotation's grace period), or null. */
  expiresAt: number | null
  revokedAt: number | null
}

export interface RegistryStats {
  sessions: {
    /** Live sessions: not expired, not revoked. */
    live: number
    byServer: Record<string, number>
    /** Present only when asked for: it names users. */
    byUser?: Record<string, number>
    /** Live sessions per instanceId. */
    byInstance: Record<string, number>
  }
  servers: {
    live: number
  }
}

export interface StatsOptions {
  /** Include per-user counts (they name users). Default false. */
  byUser?: boolean
}

export interface SweepResult {
  sessions: number
  servers: number
}

export interface CreateSessionResult {
  session: SessionRecord
  /** false when a live session for the key already existed and was returned. */
  created: boolean
}

/**
 * What a registry needs from storage. Every read takes `now` and treats a record
 * whose `expiresAt <= now` as absent, so correctness never waits for a sweeper
 * or a TTL index. Implementations: MemoryStore, MongoStore; both pass the same
 * contract suite (test/store-contract.ts).
 */
/** The store calls a Registry makes, each counted in `registry.storeOperations`. */
export type StoreOperation = Exclude<keyof RegistryStore, 'kind' | 'init' | 'close'>

export interface RegistryStore {
  readonly kind: string
  /** Creates indexes, starts sweepers. Idempotent. */
  init (): Promise<void>
  /**
   * Atomically per sessionKey and instanceId: if a live session exists and `rotate` is
   * false, return it (`created: false`); otherwise store `candidate` in its place.
   */
  createSession (candidate: SessionRecord, options: { rotate: boolean, now: number }): Promise<CreateSessionResult>
  findSessionByJti (jti: string, now: number): Promise<SessionRecord | null>
  findSessionById (sessionId: string, now: number): Promise<SessionRecord | null>
  listSessions (filter: ListSessionsFilter, now: number): Promise<SessionRecord[]>
  /** Marks live, unrevoked sessions revoked; returns how many. */
  revokeSessions (filter: RevokeFilter, now: number): Promise<number>
  touchSession (sessionId: string, at: number): Promise<void>
  /**
   * Extends the live instance `input.instanceId` when it is held by the same owner and
   * incarnation (keeping `registeredAt`, taking the new address and metadata); null otherwise.
   */
  heartbeatInstance (input: ServerRegistrationInput, now: number, expiresAt: number): Promise<ServerRegistration | null>
  /**
   * Atomically per instanceId: insert it (absent or lapsed), heartbeat it (same owner and
   * incarnation), or replace it when `supersede` names the incarnation that holds it now.
   * A live instance of another owner throws MCPGW_REGISTRY_NOT_SERVER_OWNER; one of the
   * same owner held by another incarnation throws InstanceHeldError (with the holder) and
   * is left as it was.
   */
  upsertInstance (input: ServerRegistrationInput, now: number, expiresAt: number, supersede?: string): Promise<ServerRegistration>
  /** Deletes the live instance if it has this owner and incarnation; true when one was deleted. */
  deleteInstance (instanceId: string, ownerHash: string | null, incarnation: string, now: number): Promise<boolean>
  findInstance (instanceId: string, now: number): Promise<ServerRegistration | null>
  /** The live instances of serverName, oldest first. */
  findServer (serverName: string, now: number): Promise<ServerRegistration[]>
  /** Every live instance, by serverName, then oldest first. */
  listServers (now: number): Promise<ServerRegistration[]>
  stats (now: number, options?: StatsOptions): Promise<RegistryStats>
  /** Live, unrevoked sessions of serverName. */
  countSessions (serverName: string, now: number): Promise<number>
  /** Stores a new API key record; keyIds are unique. */
  insertApiKey (record: ApiKeyRecord): Promise<void>
  /** The key with this id, revoked or not; null when none. */
  findApiKey (keyId: string): Promise<ApiKeyRecord | null>
  /** Every key, oldest first. */
  listApiKeys (): Promise<ApiKeyRecord[]>
  /** Marks the key revoked (or, with `at` in the future, lets it lapse then); false when there is no such live key. */
  revokeApiKey (keyId: string, at: number, now: number): Promise<boolean>
  /** Deletes records past expiry; returns how many. */
  sweep (now: number): Promise<SweepResult>
  /** Resolves when the store answers; rejects with MCPGW_REGISTRY_STORE_UNAVAILABLE otherwise. */
  ping (): Promise<void>
  close (): Promise<void>
}

/** Why a token was refused. Stable strings: the proxy maps each to its own error code. */
export type InvalidTokenReason = 'malformed' | 'bad_signature' | 'unknown' | 'expired' | 'revoked'

/** What `Registry.recheck` finds of a session validated before. */
export type RecheckResult =
  | { valid: true, session: SessionRecord }
  | { valid: false, reason: InvalidTokenReason }

export type ValidationResult =
  | { valid: true, session: SessionRecord, claims: SessionClaims }
  | { valid: false, reason: InvalidTokenReason }

/** The claims of a session token. */
export interface SessionClaims {
  sub: string
  serverName: string
  serverType: string
  sid: string
  jti: string
  scopes: string[]
  iat: number
  exp: number
  iss?: string
  aud?: string | string[]
}

export interface Logger {
  warn (obj: object, msg?: string): void
  info (obj: object, msg?: string): void
  debug (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}

declare module 'fastify' {
  interface FastifyInstance {
    mcpRegistry: Registry
  }
}

import fastifyMongo from '@fastify/mongodb'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Db, MongoClient } from 'mongodb'
import type { AuditSink } from './audit.js'
import { InvalidOptionError } from './errors.js'
import { JournalStore } from './journal-store.js'
import { MongoStore } from './mongo-store.js'
import { DEFAULT_MONGO_DB_NAME } from './options.js'
import type { RegistryOptions } from './options.js'
import { Registry } from './registry.js'
import type { Logger, RegistryStore } from './types.js'

export const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 5000

export interface MongoConnectionOptions {
  /** A MongoDB connection string; the plugin opens and closes the client. */
  url?: string
  /** An already connected client the host owns; the plugin never closes it. */
  client?: MongoClient
  /** Default `mcp_webui`. */
  dbName?: string
  /** Default `mcpgw_`. */
  collectionPrefix?: string
  /** How long a request waits for an unreachable server. Default 5000. */
  serverSelectionTimeoutMs?: number
}

export interface RegistryPluginOptions extends RegistryOptions {
  /** Use MongoDB. Without it (and without `store` or `file`) the embedded MemoryStore is used. */
  mongo?: MongoConnectionOptions
  /**
   * The embedded store, kept across restarts in this journal file (JournalStore): one process
   * per file. Opened at registration, closed with the plugin.
   */
  file?: { path: string }
  /** Bring your own store; the plugin does not close it. */
  store?: RegistryStore
  /**
   * The audit trail's sink, or a function that makes one from the registry's database (null on
   * the embedded store), e.g. `({ db }) => new MongoAuditSink({ db: db! })`. Closed with the registry.
   */
  audit?: AuditSink | ((context: { db: Db | null, logger: Logger }) => AuditSink)
}

async function mcpRegistry (fastify: FastifyInstance, options: RegistryPluginOptions): Promise<void> {
  const { mongo, store: givenStore, file, audit, ...registryOptions } = options
  if ([mongo, givenStore, file].filter((o) => o !== undefined).length > 1) throw new InvalidOptionError('mongo', 'give one of mongo, store and file')
  const logger = registryOptions.logger ?? (fastify.log as unknown as Logger)

  let store: RegistryStore | undefined = givenStore
  let ownsStore = false
  if (mongo !== undefined) {
    store = await openMongoStore(fastify, mongo, logger, registryOptions)
    // The client, when we opened it, is closed by @fastify/mongodb's own onClose.
    ownsStore = true
  } else if (file !== undefined) {
    if (typeof file.path !== 'string' || file.path.length === 0) throw new InvalidOptionError('file.path', 'expected a file path')
    store = new JournalStore({
      path: file.path,
      logger,
      ...(registryOptions.maxSessions !== undefined && { maxSessions: registryOptions.maxSessions }),
      ...(registryOptions.maxServers !== undefined && { maxServers: registryOptions.maxServers }),
      ...(registryOptions.sweepIntervalMs !== undefined && { sweepIntervalMs: registryOptions.sweepIntervalMs }),
      ...(registryOptions.now !== undefined && { now: registryOptions.now })
    })
    ownsStore = true
  }

  const sink = typeof audit === 'function' ? audit({ db: store instanceof MongoStore ? store.db : null, logger }) : audit
  const registry = new Registry({
    ...registryOptions,
    ...(sink !== undefined && { audit: sink }),
    logger,
    ...(store !== undefined && { store }),
    ownsStore: store === undefined || ownsStore
  })
  await registry.init()
  fastify.decorate('mcpRegistry', registry)
  // Registrations that would send requests back into this server are refused from here on.
  fastify.addHook('onListen', async function () { registry.setGatewayAddresses(fastify.addresses().filter((a) => typeof a === 'object')) })
  fastify.addHook('onClose', async () => { await registry.close() })
}

async function openMongoStore (
  fastify: FastifyInstance,
  mongo: MongoConnectionOptions,
  logger: Logger,
  options: RegistryOptions
): Promise<MongoStore> {
  const dbName = mongo.dbName ?? DEFAULT_MONGO_DB_NAME
  if (typeof dbName !== 'string' || !/^[A-Za-z0-9_-]{1,63}$/.test(dbName)) {
    throw new InvalidOptionError('mongo.dbName', 'expected 1-63 characters of A-Z a-z 0-9 _ -')
  }
  const storeOptions = {
    collectionPrefix: mongo.collectionPrefix ?? 'mcpgw_',
    logger,
    ...(options.sweepIntervalMs !== undefined && { sweepIntervalMs: options.sweepIntervalMs }),
    ...(options.now !== undefined && { now: options.now })
  }
  if (mongo.client !== undefined) {
    if (mongo.url !== undefined) throw new InvalidOptionError('mongo', 'give either url or client, not both')
    return new MongoStore({ db: mongo.client.db(dbName), ...storeOptions })
  }
  if (typeof mongo.url !== 'string' || mongo.url.length === 0) {
    throw new InvalidOptionError('mongo.url', 'expected a MongoDB connection string')
  }
  let store: MongoStore | undefined
  // In a child context, so the `mongo` decorator stays ours and never clashes with the host's.
  await fastify.register(async (child) => {
    await child.register(fastifyMongo, {
      url: mongo.url,
      forceClose: true,
      serverSelectionTimeoutMS: mongo.serverSelectionTimeoutMs ?? DEFAULT_SERVER_SELECTION_TIMEOUT_MS
    })
    store = new MongoStore({ db: child.mongo.client.db(dbName), ...storeOptions })
  })
  return store!
}

/**
 * Decorates `fastify.mcpRegistry` with a Registry on MongoDB (`mongo`) or the
 * embedded store, and closes on `onClose` only what it opened.
 */
export const mcpRegistryPlugin: FastifyPluginAsync<RegistryPluginOptions> = fp(mcpRegistry, {
  fastify: '5.x',
  name: '@mcp-gw/registry'
})

export default mcpRegistryPlugin

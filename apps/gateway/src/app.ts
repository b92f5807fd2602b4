import { randomBytes } from 'node:crypto'
import { readWildcardUrl } from '@mcp-gw/protocol'
import cors from '@fastify/cors'
import swagger from '@fastify/swagger'
import { gatewayServerOptions, mcpGateway, sendError } from '@mcp-gw/proxy-plugin'
import { apiGuard, apiKeyringFor, FileAuditSink, mcpRegistryApi, mcpRegistryPlugin, MongoAuditSink, secretKeyId, StreamAuditSink } from '@mcp-gw/registry'
import type { Logger, RegistryPluginOptions } from '@mcp-gw/registry'
import Fastify, { LogController } from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { loadConfig, proxyOptionsOf } from './config.js'
import { journalPath, keptSecret } from './data-dir.js'
import type { GatewayConfig } from './config.js'
import { renderMetrics } from './metrics.js'
import { buildDashboard } from './dashboard.js'
import { composeLogins, edgeLogin } from './edge-login.js'
import { gatewayLogin } from './login.js'

export interface BuildOptions {
  /** Where logs go: a pino destination; default stdout. */
  logStream?: NodeJS.WritableStream
  /** Log level; default from DEBUG. */
  logLevel?: string
  /** Pretty logs (DEBUG=true on a terminal). */
  prettyLogs?: boolean
}

const REDACT = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'req.headers["x-mcpgw-server-secret"]', 'res.headers["set-cookie"]', 'token', '*.token', 'secret', '*.secret']

/**
 * Composes the gateway from the packages: the registry (MongoDB or embedded),
 * its HTTP API (with CORS, in its own context), the proxy plugins under the
 * prefix, and the server-level pieces only a host can set: logging, framework
 * errors, OpenAPI and metrics. No proxy or registry logic lives here.
 */
export async function buildGateway (config: GatewayConfig = loadConfig({}), options: BuildOptions = {}): Promise<FastifyInstance> {
  const level = options.logLevel ?? (config.debug ? 'debug' : 'info')
  const logger: FastifyServerOptions['logger'] = options.logStream !== undefined
    ? { level, stream: options.logStream, redact: REDACT }
    : {
        level,
        redact: REDACT,
        ...(options.prettyLogs === true && { transport: { target: 'pino-pretty', options: { destination: 2 } } })
      }
  // The proxy plugin's options, and the Fastify server options they need, exactly as an
  // embedder gets them (rewriteUrl for isolated mode and forward-auth, coded framework
  // errors, token-free request logs).
  const proxy = proxyOptionsOf(config)
  const app = Fastify(gatewayServerOptions(proxy, {
    logger,
    // Two JSON lines per proxied request cost a third of the gateway's throughput
    // (BENCHMARKS.md): opt-in, like the access logs of most proxies.
    logController: new LogController({ disableRequestLogging: !config.accessLog }),
    // Fastify's own reading (proxy-addr), for HTTP requests and WebSocket upgrades alike.
    trustProxy: config.trustProxy,
    http: {
      // Slowloris and connections that never speak: closed once the headers are overdue,
      // checked often enough that the bound holds to within a quarter of itself.
      headersTimeout: config.headersTimeoutMs,
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(config.headersTimeoutMs / 4)))
    }
  }))
  if (config.maxConnections > 0) app.server.maxConnections = config.maxConnections
  // Whatever the framework refuses outside the API and the proxy (a bad content type on an
  // unknown route, say) gets a coded answer too.
  app.setErrorHandler((err, _request, reply) => sendError(reply, err))

  const registry: RegistryPluginOptions = {
    ...(config.allowedBackends !== undefined && { allowedBackends: config.allowedBackends }),
    // Sessions bound to a person need someone to tell who is logged in: the gateway's login.
    logins: config.oidc !== null || config.edgeLogin !== null,
    maxShareLevel: config.maxShareLevel,
    ...(config.mongoUrl !== undefined && { mongo: { url: config.mongoUrl, dbName: config.mongoDbName } })
  }
  // The embedded store kept in the data directory (port 0 has nothing to come back to).
  const keep = config.mongoUrl === undefined && config.dataDir !== null && config.port !== 0 ? config.dataDir : null
  if (keep !== null) registry.file = { path: journalPath(keep, config.port) }
  const audit = config.audit
  if (audit !== null) {
    const logger = app.log as unknown as Logger
    if (audit.sink === 'stdout') registry.audit = new StreamAuditSink({ logger })
    else if (audit.sink === 'file') registry.audit = new FileAuditSink({ path: audit.path, maxBytes: audit.maxBytes, keep: audit.keep, logger })
    else registry.audit = ({ db }) => new MongoAuditSink({ db: db!, retentionMs: audit.retentionDays * 86_400_000, logger })
  }
  if (config.jwtSecret !== undefined) {
    registry.secret = config.jwtSecret
    if (config.jwtPreviousSecrets.length > 0) {
      registry.previousSecrets = config.jwtPreviousSecrets
      // Key ids are fingerprints (secretKeyId), never the secrets: what an operator compares across gateways.
      app.log.info({ signingKid: secretKeyId(config.jwtSecret), previousKids: config.jwtPreviousSecrets.map(secretKeyId) }, 'JWT secret rotation: previous secrets still accepted')
    }
  } else if (keep !== null) {
    registry.secret = keptSecret(keep)
  } else {
    registry.secret = randomBytes(32)
    app.log.warn('MCP_WEB_UI_JWT_SECRET is not set: using a secret generated for this process; sessions end when it stops (set MCP_WEB_UI_DATA_DIR to keep them)')
  }
  if (config.apiKey === undefined) {
    app.log.warn('MCP_WEB_UI_GATEWAY_API_KEY is not set: the registration and session API answers loopback clients only')
  }

  await app.register(swagger, {
    openapi: {
      info: { title: 'mcp-gw gateway', version: '1.0.0', description: 'Registration, sessions and monitoring of the mcp-gw gateway. Session traffic itself is under the proxy prefix.' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } }
    },
    hideUntagged: false
  })
  await app.register(mcpRegistryPlugin, registry)
  await app.register(async function api (context) {
    await context.register(cors, {
      origin: config.corsOrigins.length > 0 ? config.corsOrigins : false,
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type'],
      credentials: false
    })
    await context.register(mcpRegistryApi, {
      ...(config.apiKey !== undefined && { apiKey: config.apiKey }),
      apiKeys: config.registrantKeys,
      quota: { ratePerSecond: config.sessionRatePerSecond, burst: config.sessionBurst, maxSessionsPerServer: config.maxSessionsPerServer },
      ...(config.previousApiKeys.length > 0 && { previousApiKeys: config.previousApiKeys }),
      ...(config.publicUrl !== undefined && { publicUrl: config.publicUrl }),
      ...(config.wildcardUrl !== undefined && { wildcardUrl: config.wildcardUrl }),
      frameAncestors: config.frameAncestors ?? ["'self'"],
      allowedOrigins: config.corsOrigins,
      proxyPrefix: config.prefix
    })
  })
  // Who is logged in, for links bound to a person: the gateway's own login (MCP_WEB_UI_OIDC_ISSUER,
  // with its routes on this origin), and what an identity-aware proxy in front says (MCP_WEB_UI_LOGIN_*).
  const logins = composeLogins(
    config.oidc === null ? undefined : gatewayLogin(app, { oidc: config.oidc, publicUrl: config.publicUrl!, prefix: config.prefix, signingKey: app.mcpRegistry.tokens.proofKey('mcp-gw login'), ...(config.wildcardUrl !== undefined && { wildcard: readWildcardUrl(config.wildcardUrl)! }) }),
    config.edgeLogin === null ? undefined : edgeLogin(config.edgeLogin, config.trustProxy)
  )
  await app.register(mcpGateway, { ...proxy, ...(logins !== undefined && { logins }) })

  // Monitoring and the API description are the operator's: registrant keys get 403.
  const keyring = apiKeyringFor(app.mcpRegistry, {
    ...(config.apiKey !== undefined && { apiKey: config.apiKey }),
    previousApiKeys: config.previousApiKeys,
    apiKeys: config.registrantKeys
  })
  const guard = apiGuard(keyring, { allowedOrigins: config.corsOrigins, operatorOnly: true })
  // The operator's page: a server of its own, for an origin of its own (the CLI listens it on
  // MCP_WEB_UI_DASHBOARD_PORT): path-mode session pages share this origin, and their scripts
  // must never be same-origin with the operator's page.
  const board = buildDashboard(app, {
    trustProxy: config.trustProxy,
    keyring,
    staticOperatorKeys: config.apiKey === undefined ? [] : [config.apiKey, ...config.previousApiKeys],
    openBySession: () => app.mcpGateway.openBySession(),
    figures: () => {
      const { metrics, tunnels, streams } = app.mcpGateway
      return { time: Date.now(), responses: { ...metrics.responses }, latencyBuckets: [...metrics.latencyBuckets], latencyCount: metrics.latencyCount, bucketBoundsMs: metrics.bucketBoundsMs, websockets: tunnels.size, streams: streams.size, errors: { ...metrics.errors } }
    },
    signingKey: app.mcpRegistry.tokens.proofKey('mcp-gw dashboard')
  })
  app.decorate('mcpDashboard', board)
  app.addHook('onClose', async () => { await board.close() })
  app.get('/openapi.json', { onRequest: guard, schema: { hide: true } }, async () => app.swagger())
  app.get('/metrics', { onRequest: guard, schema: { summary: 'Prometheus metrics', security: config.apiKey !== undefined ? [{ bearerAuth: [] }] : [] } }, async (_request, reply) => {
    reply.type('text/plain; version=0.0.4')
    return await renderMetrics(app)
  })
  return app
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The operator's dashboard: a server of its own, for its own port (see the CLI's start). */
    mcpDashboard: FastifyInstance
  }
}

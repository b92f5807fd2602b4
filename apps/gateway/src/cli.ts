#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { JournalStore, parseAuditTime, readAuditFiles } from '@mcp-gw/registry'
import type { AuditEvent, AuditQuery } from '@mcp-gw/registry'
import { buildGateway } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { shutdown } from './shutdown.js'

const HELP: Record<string, string> = {
  main: `mcp-gw: one stable, authenticated endpoint for the web UIs of MCP servers

usage: mcp-gw <command> [options]

commands:
  start              run the gateway (configured by MCP_WEB_UI_* environment variables)
  sessions list      list live sessions of a running gateway
  sessions revoke    revoke sessions of a running gateway
  servers list       list live servers of a running gateway, one row per instance (process)
  keys create        make an API key (a registrant key for some server names, or an operator key)
  keys list          list the API keys made through the API (never the keys themselves)
  keys revoke        revoke an API key, now or after a grace period
  audit              query the audit trail (who registered, minted, opened, revoked what)

Run 'mcp-gw <command> --help' for a command's options; 'mcp-gw --version' for the version.
The commands that talk to a running gateway use MCP_WEB_UI_GATEWAY_URL, else
http://127.0.0.1:<MCP_WEB_UI_GATEWAY_PORT, 3082>, with the key in MCP_WEB_UI_GATEWAY_API_KEY.`,
  start: `usage: mcp-gw start

Runs the gateway in the foreground. Configuration comes from the environment:
  MCP_WEB_UI_GATEWAY_PORT (3082), MCP_WEB_UI_GATEWAY_HOST (127.0.0.1),
  MCP_WEB_UI_DASHBOARD_PORT (the gateway's port + 1; off: no dashboard),
  MCP_WEB_UI_MONGO_URL (absent: embedded store), MCP_WEB_UI_MONGO_DB_NAME (mcp_webui),
  MCP_WEB_UI_DATA_DIR (where the embedded store and its signing secret are kept across
    restarts: ~/.local/state/mcp-gw, or $XDG_STATE_HOME/mcp-gw; off: in memory only),
  MCP_WEB_UI_JWT_SECRET, MCP_WEB_UI_JWT_SECRET_PREVIOUS (rotation: earlier secrets, comma-separated),
  MCP_WEB_UI_PROXY_PREFIX (/mcp), MCP_WEB_UI_GATEWAY_API_KEY,
  MCP_WEB_UI_GATEWAY_API_KEY_PREVIOUS (rotation: earlier keys, comma-separated),
  MCP_WEB_UI_PUBLIC_URL, MCP_WEB_UI_WILDCARD_URL (isolated mode: https://*.apps.example.com),
  MCP_WEB_UI_CORS_ORIGINS, MCP_WEB_UI_ALLOWED_BACKENDS,
  MCP_WEB_UI_TRUST_PROXY, MCP_WEB_UI_DRAIN_TIMEOUT_MS (10000),
  MCP_WEB_UI_HEADERS_TIMEOUT_MS (30000), MCP_WEB_UI_MAX_CONNECTIONS (0: no cap),
  MCP_WEB_UI_MAX_BODY_BYTES (1 GiB; 0: no cap), MCP_WEB_UI_ACCESS_LOG (false),
  MCP_WEB_UI_LOG_FORMAT (pretty on a terminal, json otherwise),
  MCP_WEB_UI_REUSE_PORT (false; with a Mongo store, several processes on one port),
  MCP_WEB_UI_FORWARD_AUTH_KEY (forward-auth for nginx, Caddy, Traefik, Envoy),
  MCP_WEB_UI_AUDIT (off; stdout, file:/path or mongo: the audit trail),
  MCP_WEB_UI_AUDIT_FILE_MAX_BYTES (10 MiB), MCP_WEB_UI_AUDIT_FILE_KEEP (5),
  MCP_WEB_UI_AUDIT_RETENTION_DAYS (30, the Mongo sink), DEBUG=true.
SIGTERM or SIGINT drains and exits 0.`,
  sessions: `usage: mcp-gw sessions list [--user ID] [--server NAME] [--limit N] [--json]
       mcp-gw sessions revoke (--session-id ID | --session-key KEY | --user ID) [--reason TEXT]

Talks to the gateway at MCP_WEB_UI_GATEWAY_URL (http://127.0.0.1:3082) with the key in
MCP_WEB_UI_GATEWAY_API_KEY.`,
  keys: `usage: mcp-gw keys create (--server NAME [--server NAME ...] | --operator) [--label TEXT] [--ttl SECONDS]
       mcp-gw keys list [--json]
       mcp-gw keys revoke KEY_ID [--grace SECONDS]

A registrant key registers instances of its server names, mints their sessions, and lists
and revokes their sessions; nothing else. Give it to the MCP server as its
MCP_WEB_UI_GATEWAY_API_KEY. The key is printed once: the gateway keeps only its SHA-256.
To rotate a key: create a new one with the same servers, hand it out, then revoke the
old one (--grace keeps it working that many seconds more).
Needs an operator key in MCP_WEB_UI_GATEWAY_API_KEY (or none, from this machine, when the
gateway has none). Talks to MCP_WEB_UI_GATEWAY_URL (http://127.0.0.1:3082).`,
  audit: `usage: mcp-gw audit [--user ID] [--server NAME] [--event NAME|PREFIX.] [--since 1h|ISO]
                 [--until 1h|ISO] [--limit N] [--json] [--file PATH]

Events oldest first (the newest --limit, default 100, of those that match). --since and --until
take a duration back from now (90s, 30m, 1h, 7d) or an ISO 8601 time; --event a name such as
session.revoked, or a prefix ending in a dot (session.).

Asks the gateway at MCP_WEB_UI_GATEWAY_URL (http://127.0.0.1:3082) with the operator key in
MCP_WEB_UI_GATEWAY_API_KEY (GET /audit: MCP_WEB_UI_AUDIT=mongo or file:/path). With --file,
reads a file sink's files (PATH, PATH.1 ... PATH.<MCP_WEB_UI_AUDIT_FILE_KEEP>) directly.`,
  servers: `usage: mcp-gw servers list [--json]

Talks to the gateway at MCP_WEB_UI_GATEWAY_URL (http://127.0.0.1:3082) with the key in
MCP_WEB_UI_GATEWAY_API_KEY.`
}

function fail (message: string, code = 1): never {
  process.stderr.write(`mcp-gw: ${message}\n`)
  process.exit(code)
}

/** The running gateway this command talks to: MCP_WEB_UI_GATEWAY_URL, else this machine's at MCP_WEB_UI_GATEWAY_PORT. */
function gatewayUrl (env: NodeJS.ProcessEnv = process.env): string {
  const url = env.MCP_WEB_UI_GATEWAY_URL
  if (url !== undefined && url !== '') return url.replace(/\/+$/, '')
  const port = env.MCP_WEB_UI_GATEWAY_PORT
  return `http://127.0.0.1:${port !== undefined && /^\d{1,5}$/.test(port) ? port : '3082'}`
}

async function api (method: string, path: string, body?: unknown): Promise<unknown> {
  const base = gatewayUrl()
  const key = process.env.MCP_WEB_UI_GATEWAY_API_KEY
  let res: Response
  try {
    res = await fetch(base + path, {
      method,
      headers: { ...(key !== undefined && key !== '' && { authorization: `Bearer ${key}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) })
    })
  } catch (err) {
    fail(`cannot reach the gateway at ${base}: ${(err as Error).message} (set MCP_WEB_UI_GATEWAY_URL, or MCP_WEB_UI_GATEWAY_PORT, to where it listens)`)
  }
  const payload = await res.json().catch(() => null) as { code?: string, message?: string } | null
  if (!res.ok) {
    // What to change on this side, for the refusals a missing or wrong key gets.
    const hint = res.status === 401 ? ` (this command sends the key in MCP_WEB_UI_GATEWAY_API_KEY${key === undefined || key === '' ? ', which is not set' : ''})` : ''
    fail(`${res.status} ${payload?.code ?? ''} ${payload?.message ?? ''}`.trim() + hint)
  }
  return payload
}

function wholeNumber (value: string, what: string): number {
  if (!/^\d{1,9}$/.test(value)) fail(`${what} takes a whole number of seconds`, 64)
  return Number(value)
}

function table (rows: Array<Record<string, unknown>>, columns: string[]): string {
  if (rows.length === 0) return '(none)\n'
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)))
  const fmt = (row: string[]): string => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()
  return [fmt(columns), ...cells.map(fmt)].join('\n') + '\n'
}

async function start (): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 78)
    throw err
  }
  // Lines for people on a terminal (or when asked for), JSON for log collectors.
  const terminal = config.logFormat === undefined ? process.stdout.isTTY === true : config.logFormat === 'pretty'
  let app: Awaited<ReturnType<typeof buildGateway>>
  try {
    app = await buildGateway(config, { prettyLogs: terminal })
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 78)
    fail(bootError(err as Error & { code?: string }, config.mongoUrl), 69)
  }
  try {
    await app.listen({ port: config.port, host: config.host, ...(config.reusePort && { reusePort: true }) })
  } catch (err) {
    await app.close().catch(() => {})
    fail(listenError(err as Error & { code?: string }, config.host, config.port), 69)
  }
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : config.port
  const hostPart = config.host.includes(':') ? `[${config.host}]` : config.host
  const url = config.publicUrl ?? `http://${hostPart}:${port}`
  // The dashboard on a port of its own: an origin no session page shares.
  let dashboardUrl: string | null = null
  if (config.dashboardPort !== 'off') {
    const wanted = config.dashboardPort ?? (port === 65535 ? 0 : port + 1)
    try {
      await app.mcpDashboard.listen({ port: wanted, host: config.host, ...(config.reusePort && { reusePort: true }) })
      const at = app.mcpDashboard.server.address()
      dashboardUrl = `http://${hostPart}:${typeof at === 'object' && at !== null ? at.port : wanted}/dashboard`
    } catch (err) {
      if (config.dashboardPort !== undefined) {
        await app.close().catch(() => {})
        fail(listenError(err as Error & { code?: string }, config.host, wanted).replace('MCP_WEB_UI_GATEWAY_PORT', 'MCP_WEB_UI_DASHBOARD_PORT'), 69)
      }
      app.log.warn({ port: wanted }, `the dashboard did not start: ${(err as Error & { code?: string }).code === 'EADDRINUSE' ? 'its port is taken' : (err as Error).message}; set MCP_WEB_UI_DASHBOARD_PORT to a free port (or off)`)
    }
  }
  const mode = config.wildcardUrl === undefined ? 'path mode' : `isolated mode (${config.wildcardUrl})`
  const store = app.mcpRegistry.store.kind
  const kept = app.mcpRegistry.store instanceof JournalStore ? app.mcpRegistry.store.path : null
  app.log.info({ url, store, ...(kept !== null && { storeFile: kept }), mode, prefix: config.prefix, openapi: `${url}/openapi.json`, dashboard: dashboardUrl }, 'mcp-gw listening')
  if (terminal) {
    // Through the logger, so it comes after the lines logged before it.
    app.log.info([
      `mcp-gw is listening on ${url}: ${mode}, ${kept !== null ? `embedded store, kept in ${kept}` : store === 'memory' ? 'embedded store (forgotten when it stops)' : `${store} store`}`,
      `  Dashboard: ${dashboardUrl ?? 'off (MCP_WEB_UI_DASHBOARD_PORT)'}`,
      `  API: ${url}/servers, /sessions, /create-session ... (OpenAPI document: ${url}/openapi.json)`,
      `  An MCP server registers its UI with MCP_WEB_UI_GATEWAY_URL=${url}${config.apiKey === undefined ? '' : ' and a registrant key of its own in MCP_WEB_UI_GATEWAY_API_KEY (mcp-gw keys create --server <name>)'} (the client SDK's README)`,
      '  Ctrl-C stops it.'
    ].join('\n'))
  }
  let stopping = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      app.log.info({ signal }, 'shutting down')
      shutdown(app, config.drainTimeoutMs).then(() => process.exit(0), (err: Error) => {
        app.log.error({ err: { message: err.message } }, 'shutdown failed')
        process.exit(1)
      })
    })
  }
}

/** A boot failure (the store, most often) in words that say what to check, without credentials. */
function bootError (err: Error & { code?: string }, mongoUrl: string | undefined): string {
  const message = err.message
  if (mongoUrl !== undefined && (/mongo/i.test(err.name) || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|Server selection|getaddrinfo|connect/i.test(message))) {
    const safe = withoutCredentials(mongoUrl)
    return `cannot reach the session store (MongoDB at ${safe}): ${scrub(message, mongoUrl)}. Check that it runs and MCP_WEB_UI_MONGO_URL, or unset MCP_WEB_UI_MONGO_URL to use the embedded store.`
  }
  return mongoUrl === undefined ? message : scrub(message, mongoUrl)
}

/** A Mongo URL without the user and password it may carry. */
function withoutCredentials (url: string): string {
  return url.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1')
}

/** A message with the URL's credentials (should a driver quote them) taken out. */
function scrub (message: string, url: string): string {
  const credentials = /^mongodb(?:\+srv)?:\/\/([^@/]*)@/.exec(url)?.[1]
  return credentials === undefined || credentials === '' ? message : message.split(credentials).join('[redacted]')
}

/** Why the gateway could not listen, and what to change. */
function listenError (err: Error & { code?: string }, host: string, port: number): string {
  switch (err.code) {
    case 'EADDRINUSE': return `port ${port} on ${host} is taken (another gateway, or another program, listens there): stop it, or set MCP_WEB_UI_GATEWAY_PORT to a free port`
    case 'EACCES': return `not allowed to listen on port ${port}: ports below 1024 need privileges; set MCP_WEB_UI_GATEWAY_PORT to 1024 or above`
    case 'EADDRNOTAVAIL': return `${host} is not an address of this machine: set MCP_WEB_UI_GATEWAY_HOST to one (127.0.0.1, or 0.0.0.0 for every interface)`
    default: return `cannot listen on ${host}:${port}: ${err.message}`
  }
}

function version (): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** The fields every row shows; the rest go into `detail`. */
const AUDIT_COLUMNS = ['time', 'event', 'actor', 'userId', 'serverName', 'instanceId', 'sessionId']

async function audit (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      user: { type: 'string' },
      server: { type: 'string' },
      event: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      file: { type: 'string' },
      json: { type: 'boolean' }
    },
    strict: true
  })
  let events: AuditEvent[]
  if (values.file !== undefined) {
    const limit = values.limit === undefined ? 100 : Number(values.limit)
    if (!Number.isInteger(limit) || limit < 1) fail('--limit takes a whole number from 1', 64)
    let query: AuditQuery
    try {
      const now = Date.now()
      query = {
        limit,
        ...(values.user !== undefined && { userId: values.user }),
        ...(values.server !== undefined && { serverName: values.server }),
        ...(values.event !== undefined && { event: values.event }),
        ...(values.since !== undefined && { since: parseAuditTime(values.since, now) }),
        ...(values.until !== undefined && { until: parseAuditTime(values.until, now) })
      }
    } catch (err) {
      fail((err as Error).message, 64)
    }
    const keep = Number(process.env.MCP_WEB_UI_AUDIT_FILE_KEEP ?? 5)
    events = await readAuditFiles(values.file, Number.isInteger(keep) && keep >= 0 ? keep : 5, query)
  } else {
    const query = new URLSearchParams()
    for (const name of ['user', 'server', 'event', 'since', 'until', 'limit'] as const) {
      if (values[name] !== undefined) query.set(name, values[name])
    }
    events = (await api('GET', `/audit${query.size > 0 ? `?${query}` : ''}`) as { events: AuditEvent[] }).events
  }
  if (values.json === true) {
    process.stdout.write(JSON.stringify(events, null, 2) + '\n')
    return
  }
  const rows = events.map((e) => {
    const detail = Object.entries(e).filter(([k]) => !AUDIT_COLUMNS.includes(k) && k !== 'keyId')
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
    return { ...e, actor: e.actor === undefined ? '' : `${String(e.actor)}${e.keyId != null ? `:${String(e.keyId)}` : ''}`, detail }
  })
  process.stdout.write(table(rows, [...AUDIT_COLUMNS, 'detail']))
}

async function main (argv: string[]): Promise<void> {
  const [command, sub, ...rest] = argv
  if (command === undefined) {
    // Nothing asked: the help, where a script sees it is not an answer.
    process.stderr.write(HELP.main + '\n')
    process.exit(64)
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP.main + '\n')
    return
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`mcp-gw ${version()}\n`)
    return
  }
  if (command === 'start') {
    if (argv.includes('--help')) {
      process.stdout.write(HELP.start + '\n')
      return
    }
    return await start()
  }
  if (command === 'keys') {
    if (sub === undefined || sub === '--help' || argv.includes('--help')) {
      process.stdout.write(HELP.keys + '\n')
      return
    }
    const { values, positionals } = parseArgs({
      args: rest,
      options: {
        server: { type: 'string', multiple: true },
        operator: { type: 'boolean' },
        label: { type: 'string' },
        ttl: { type: 'string' },
        grace: { type: 'string' },
        json: { type: 'boolean' }
      },
      allowPositionals: true,
      strict: true
    })
    if (sub === 'create') {
      const servers = values.server ?? []
      if ((servers.length > 0) === (values.operator === true)) fail('give --server NAME (a registrant key; repeat for more names) or --operator', 64)
      const body = {
        role: values.operator === true ? 'operator' : 'registrant',
        ...(servers.length > 0 && { servers }),
        ...(values.label !== undefined && { label: values.label }),
        ...(values.ttl !== undefined && { ttlSeconds: wholeNumber(values.ttl, '--ttl') })
      }
      const made = await api('POST', '/keys', body) as { key: string, keyId: string, role: string, servers: string[] }
      if (values.json === true) process.stdout.write(JSON.stringify(made, null, 2) + '\n')
      else {
        process.stdout.write(`${made.key}\n`)
        process.stderr.write(`created ${made.role} key ${made.keyId}${made.servers.length > 0 ? ` for ${made.servers.join(', ')}` : ''}: shown once, store it now\n`)
      }
      return
    }
    if (sub === 'list') {
      const { keys } = await api('GET', '/keys') as { keys: Array<Record<string, unknown> & { servers: string[] }> }
      process.stdout.write(values.json === true
        ? JSON.stringify(keys, null, 2) + '\n'
        : table(keys.map((k) => ({ ...k, servers: k.servers.join(',') })), ['keyId', 'role', 'servers', 'label', 'createdAt', 'expiresAt', 'revokedAt', 'live']))
      return
    }
    if (sub === 'revoke') {
      const keyId = positionals[0]
      if (keyId === undefined || positionals.length !== 1) fail('give the key id to revoke (mcp-gw keys list shows them)', 64)
      const grace = values.grace === undefined ? '' : `?graceSeconds=${wholeNumber(values.grace, '--grace')}`
      await api('DELETE', `/keys/${encodeURIComponent(keyId)}${grace}`)
      process.stdout.write(values.grace === undefined ? `revoked key ${keyId}\n` : `key ${keyId} stops working in ${values.grace} s\n`)
      return
    }
  }
  if (command === 'audit') {
    if (argv.includes('--help')) {
      process.stdout.write(HELP.audit + '\n')
      return
    }
    return await audit(argv.slice(1))
  }
  if (command === 'sessions' || command === 'servers') {
    if (sub === undefined || sub === '--help' || argv.includes('--help')) {
      process.stdout.write(HELP[command] + '\n')
      return
    }
    const { values } = parseArgs({
      args: rest,
      options: {
        user: { type: 'string' },
        server: { type: 'string' },
        limit: { type: 'string' },
        'session-id': { type: 'string' },
        'session-key': { type: 'string' },
        reason: { type: 'string' },
        json: { type: 'boolean' }
      },
      strict: true
    })
    if (command === 'servers' && sub === 'list') {
      const { servers } = await api('GET', '/servers') as { servers: Array<Record<string, unknown> & { instances?: Array<Record<string, unknown>> }> }
      // One row per instance (one process): a name may have many.
      const rows = servers.flatMap((s) => (s.instances ?? [s]).map((i) => ({ serverName: s.serverName, ...i, since: i.registeredAt })))
      process.stdout.write(values.json === true ? JSON.stringify(servers, null, 2) + '\n' : table(rows, ['serverName', 'instanceId', 'instance', 'host', 'port', 'protocol', 'since', 'sessions', 'expiresAt']))
      return
    }
    if (command === 'sessions' && sub === 'list') {
      const query = new URLSearchParams()
      if (values.user !== undefined) query.set('userId', values.user)
      if (values.server !== undefined) query.set('serverName', values.server)
      if (values.limit !== undefined) query.set('limit', values.limit)
      const { sessions } = await api('GET', `/sessions${query.size > 0 ? `?${query}` : ''}`) as { sessions: Array<Record<string, unknown>> }
      process.stdout.write(values.json === true ? JSON.stringify(sessions, null, 2) + '\n' : table(sessions, ['sessionId', 'sessionKey', 'instanceId', 'scopes', 'expiresAt', 'lastActivityAt']))
      return
    }
    if (command === 'sessions' && sub === 'revoke') {
      const selectors = [['sessionId', values['session-id']], ['sessionKey', values['session-key']], ['userId', values.user]].filter(([, v]) => v !== undefined)
      if (selectors.length !== 1) fail('give exactly one of --session-id, --session-key, --user', 64)
      const { revoked } = await api('POST', '/revoke-session', { ...Object.fromEntries(selectors), ...(values.reason !== undefined && { reason: values.reason }) }) as { revoked: number }
      process.stdout.write(`revoked ${revoked} session${revoked === 1 ? '' : 's'}\n`)
      return
    }
  }
  fail(`unknown command: ${argv.join(' ')} (see mcp-gw --help)`, 64)
}

main(process.argv.slice(2)).catch((err: Error) => fail(err.message))

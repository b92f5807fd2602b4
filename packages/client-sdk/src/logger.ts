/** The few methods the SDK logs with: a pino logger fits. */
export interface Logger {
  warn (obj: object, msg?: string): void
  info (obj: object, msg?: string): void
  debug (obj: object, msg?: string): void
}

/**
 * JSON lines on stderr. Never stdout: a stdio MCP server speaks JSON-RPC there,
 * and one stray line corrupts the protocol.
 */
export const stderrLogger: Logger = {
  warn: (obj, msg) => { process.stderr.write(JSON.stringify({ level: 'warn', name: 'mcp-gw-sdk', ...obj, msg }) + '\n') },
  info: (obj, msg) => { process.stderr.write(JSON.stringify({ level: 'info', name: 'mcp-gw-sdk', ...obj, msg }) + '\n') },
  debug: () => {}
}

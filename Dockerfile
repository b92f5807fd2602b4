# syntax=docker/dockerfile:1
# Two images from one build, both run as the unprivileged `node` user:
#   docker build -t mcp-gw .                          # the gateway (the default, last stage)
#   docker build -t mcp-gw-example --target example . # the example MCP server
FROM node:22-bookworm-slim AS build
WORKDIR /src
RUN npm install -g pnpm@10.34.9
COPY . .
RUN pnpm install --frozen-lockfile \
 && pnpm --filter "@mcp-gw/gateway..." --filter "@mcp-gw/example-todo..." build \
 && pnpm --filter @mcp-gw/gateway deploy --prod --legacy /out/gateway \
 && pnpm --filter @mcp-gw/example-todo deploy --prod --legacy /out/example

FROM node:22-bookworm-slim AS example
ENV NODE_ENV=production MCP_WEB_UI_HOST=0.0.0.0
WORKDIR /app
COPY --from=build --chown=root:root /out/example /app
USER node
# MCP over Streamable HTTP on 3000; the web UI on a port from 12000-13000, registered with the gateway.
EXPOSE 3000
CMD ["node", "dist/main.js", "--http", "3000"]

FROM node:22-bookworm-slim AS gateway
ENV NODE_ENV=production \
    MCP_WEB_UI_GATEWAY_HOST=0.0.0.0 \
    MCP_WEB_UI_GATEWAY_PORT=3082
WORKDIR /app
COPY --from=build --chown=root:root /out/gateway /app
USER node
EXPOSE 3082
HEALTHCHECK --interval=10s --timeout=3s CMD ["node", "-e", "fetch('http://127.0.0.1:3082/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/cli.js", "start"]

# syntax=docker/dockerfile:1
# The prebuilt gateway: built in one stage, run as a non-root user in another.
#   docker build -t mcp-gw .
#   docker run -p 127.0.0.1:3082:3082 -e MCP_WEB_UI_GATEWAY_API_KEY=... mcp-gw
FROM node:22-bookworm-slim AS build
WORKDIR /src
RUN npm install -g pnpm@10.34.9
COPY . .
RUN pnpm install --frozen-lockfile \
 && pnpm --filter "@mcp-gw/gateway..." build \
 && pnpm --filter @mcp-gw/gateway deploy --prod --legacy /out

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    MCP_WEB_UI_GATEWAY_HOST=0.0.0.0 \
    MCP_WEB_UI_GATEWAY_PORT=3082
WORKDIR /app
COPY --from=build --chown=root:root /out /app
USER node
EXPOSE 3082
HEALTHCHECK --interval=10s --timeout=3s CMD ["node", "-e", "fetch('http://127.0.0.1:3082/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/cli.js", "start"]

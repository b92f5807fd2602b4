import type { FastifyInstance } from 'fastify'

function line (name: string, type: string, help: string, samples: Array<[string, number]>): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${samples.map(([labels, value]) => `${name}${labels} ${value}`).join('\n')}\n`
}

/** Prometheus text exposition of what the packages count. */
export async function renderMetrics (app: FastifyInstance): Promise<string> {
  const { metrics, tunnels, streams, authenticator } = app.mcpGateway
  let stats: { sessions: number, servers: number } | null = null
  try {
    const s = await app.mcpRegistry.stats()
    stats = { sessions: s.sessions.live, servers: s.servers.live }
  } catch {
    // A store outage must not take /metrics down with it.
  }
  const buckets: Array<[string, number]> = metrics.bucketBoundsMs.map((le, i) => [`{le="${le}"}`, metrics.latencyBuckets[i]!])
  buckets.push(['{le="+Inf"}', metrics.latencyCount])
  return [
    line('mcpgw_proxy_responses_total', 'counter', 'Proxied responses by status class.',
      Object.entries(metrics.responses).map(([cls, n]) => [`{class="${cls}"}`, n])),
    line('mcpgw_proxy_duration_ms', 'histogram', 'Time to finish proxied responses, in milliseconds.',
      [...buckets.map(([l, v]) => [l, v] as [string, number])]).replace(/^(mcpgw_proxy_duration_ms)\{/gm, '$1_bucket{') +
      `mcpgw_proxy_duration_ms_sum ${metrics.latencySumMs}\nmcpgw_proxy_duration_ms_count ${metrics.latencyCount}\n`,
    line('mcpgw_proxy_errors_total', 'counter', 'The gateway\'s own coded answers on session traffic (refusals, backend failures), by MCPGW_ code.',
      Object.entries(metrics.errors).map(([code, n]) => [`{code="${code}"}`, n])),
    line('mcpgw_forward_auth_answers_total', 'counter', 'Forward-auth answers to an edge proxy: allowed (2xx), or refused or redirected.',
      Object.entries(metrics.forwardAuthAnswers).map(([result, n]) => [`{result="${result}"}`, n])),
    line('mcpgw_websockets_open', 'gauge', 'Open proxied WebSockets.', [['', tunnels.size]]),
    line('mcpgw_sse_streams_open', 'gauge', 'Open proxied Server-Sent Event streams.', [['', streams.size]]),
    line('mcpgw_session_cache_hits_total', 'counter', 'Requests served from the session cache.', [['', authenticator.sessions.hits]]),
    line('mcpgw_session_cache_misses_total', 'counter', 'Requests that waited for the store.', [['', authenticator.sessions.misses]]),
    line('mcpgw_store_operations_total', 'counter', 'Calls to the session store (round trips on MongoDB), by operation.',
      Object.entries(app.mcpRegistry.storeOperations).map(([op, n]) => [`{operation="${op}"}`, n])),
    line('mcpgw_store_up', 'gauge', '1 when the session store answered this scrape.', [['', stats === null ? 0 : 1]]),
    ...(stats === null
      ? []
      : [
          line('mcpgw_sessions_live', 'gauge', 'Live sessions.', [['', stats.sessions]]),
          line('mcpgw_registrations_live', 'gauge', 'Live server registrations.', [['', stats.servers]])
        ])
  ].join('')
}

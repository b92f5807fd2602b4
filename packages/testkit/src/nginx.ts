import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ferretdb.js'
import { untilListening } from './server-process.js'
import type { ServerProcess } from './server-process.js'

/** Debian's nginx, or NGINX_PATH. */
export const NGINX_PATH = process.env.NGINX_PATH ?? '/usr/sbin/nginx'

/** Where nginx's dynamic modules are (Debian's), or NGINX_MODULES_DIR. */
export const NGINX_MODULES_DIR = process.env.NGINX_MODULES_DIR ?? '/usr/lib/nginx/modules'

/** Debian's libnginx-mod-http-lua and the NDK it needs, in load order (for `modules`). */
export const NGINX_LUA_MODULES = ['ndk_http_module.so', 'ngx_http_lua_module.so'] as const

/** nginx in the foreground; `port` is where `{{port}}` in its configuration listens, on 127.0.0.1. */
export type NginxProcess = ServerProcess

export interface StartNginxOptions {
  /** Directives inside `http { }`; every `{{port}}` in them is replaced by the free port chosen. */
  http: string
  /** Worker connections (and file descriptors). Default 256. */
  connections?: number
  /** error_log level. Default warn. */
  logLevel?: string
  /** The port to put for `{{port}}`, when it must be known beforehand. Default: a free one. */
  port?: number
  /** Dynamic modules to load, file names in NGINX_MODULES_DIR (e.g. NGINX_LUA_MODULES). */
  modules?: readonly string[]
}

/**
 * The real nginx in the foreground on loopback, one worker, its temp files in a
 * directory of its own (removed on stop). Resolves once its port accepts TCP.
 */
export async function startNginx (options: StartNginxOptions): Promise<NginxProcess> {
  if (!existsSync(NGINX_PATH)) throw new Error(`nginx not found at ${NGINX_PATH}: install the Debian package nginx (or set NGINX_PATH)`)
  const modules = (options.modules ?? []).map((name) => join(NGINX_MODULES_DIR, name))
  const absent = modules.filter((path) => !existsSync(path))
  if (absent.length > 0) throw new Error(`nginx module not found: ${absent.join(', ')}: install its Debian package (libnginx-mod-http-lua for NGINX_LUA_MODULES) or set NGINX_MODULES_DIR`)
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-nginx-'))
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(dir, sub))
  const port = options.port ?? await freePort()
  const connections = options.connections ?? 256
  await writeFile(join(dir, 'nginx.conf'), `${modules.map((path) => `load_module ${path};\n`).join('')}
worker_processes 1;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log ${options.logLevel ?? 'warn'};
worker_rlimit_nofile ${connections + 10};
events { worker_connections ${connections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${options.http.replaceAll('{{port}}', String(port))}
}
`)
  const child = spawn(NGINX_PATH, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  return await untilListening(child, { name: 'nginx', port, dir, signal: 'SIGQUIT', timeoutMs: 10_000 })
}

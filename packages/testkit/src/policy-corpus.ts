/**
 * One corpus for the policy every carrier of the bytes applies (the gateway alone, and each
 * shipped edge configuration): the same hostile inputs, the same verdicts.
 */

/**
 * Request headers a client may send that no backend may receive: what front proxies and
 * identity-aware proxies (oauth2-proxy, nginx's auth_request, IIS) tell a backend about the
 * user or the original URL, which a backend behind such a proxy believes.
 */
export const SPOOFED_REQUEST_HEADERS: Readonly<Record<string, string>> = {
  'x-forwarded-user': 'root',
  'x-forwarded-email': 'root@example.com',
  'x-forwarded-groups': 'admins',
  'x-forwarded-preferred-username': 'root',
  'x-forwarded-access-token': 'forged',
  'x-forwarded-port': '443',
  'x-original-url': '/admin',
  'x-original-uri': '/admin',
  'x-original-method': 'DELETE',
  'x-rewrite-url': '/admin',
  'x-auth-request-user': 'root',
  'x-auth-request-email': 'root@example.com',
  'x-auth-request-groups': 'admins',
  'x-auth-request-preferred-username': 'root',
  // The gateway's own: who is logged in, on a session bound to a person (none of these is).
  'x-mcpgw-login-user': 'root',
  'remote-user': 'root',
  'x-remote-user': 'root'
}

/**
 * Response headers a backend may send that would make a front proxy act on its behalf: an
 * internal redirect (nginx reaches `internal` locations and the gateway's API through it), a
 * file read, its cache or rate. None may reach a client, or a proxy in front of the carrier.
 * `{{target}}` is where the redirect points.
 */
export const FRONT_PROXY_DIRECTIVES: Readonly<Record<string, string>> = {
  'x-accel-redirect': '{{target}}',
  'x-accel-expires': '3600',
  'x-accel-limit-rate': '1',
  'x-sendfile': '/etc/passwd',
  'x-lighttpd-send-file': '/etc/passwd',
  'x-litespeed-location': '{{target}}',
  'x-accel-charset': 'koi8-r',
  'x-sendfile2': '/etc/passwd 0-',
  'x-litespeed-cache-control': 'public, max-age=3600'
}

import createError from '@fastify/error'

/** A bad setting: the message names the variable, never its value (it may be a secret). The CLI exits 78. */
export const ConfigError = createError<[string]>('MCPGW_GATEWAY_CONFIG', '%s', 500)

/** The dashboard's figures asked for without its cookie. */
export const DashboardSignInError = createError<[]>('MCPGW_DASHBOARD_SIGN_IN', 'The dashboard\'s figures without its cookie: sign in at /dashboard', 401)

/** A login that did not complete: the message says what to do, never what the provider or browser sent. */
export const LoginFailedError = createError<[string, { cause: unknown }?]>('MCPGW_LOGIN_FAILED', 'Login failed: %s', 400)

/** The OpenID provider cannot be reached (discovery failed): logins wait, bearer links work on. */
export const LoginUnavailableError = createError<[{ cause: unknown }?]>('MCPGW_LOGIN_UNAVAILABLE', 'The identity provider cannot be reached right now; try again shortly', 503)

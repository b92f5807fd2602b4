import createError from '@fastify/error'

/** A bad setting: the message names the variable, never its value (it may be a secret). The CLI exits 78. */
export const ConfigError = createError<[string]>('MCPGW_GATEWAY_CONFIG', '%s', 500)

/** The dashboard's figures asked for without its cookie. */
export const DashboardSignInError = createError<[]>('MCPGW_DASHBOARD_SIGN_IN', 'The dashboard\'s figures without its cookie: sign in at /dashboard', 401)

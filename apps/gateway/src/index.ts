export { buildGateway } from './app.js'
export type { GatewayOptions } from './app.js'

export { startTestMongo } from './mongo.js'
export type { TestMongo } from './mongo.js'
export { startFerretDb, ensureFerretDb, ferretDbBinaryPath, freePort, FERRETDB_VERSION } from './ferretdb.js'
export type { FerretDbProcess } from './ferretdb.js'

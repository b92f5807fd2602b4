import { Writable } from 'node:stream'
import Fastify, { LogController } from 'fastify'
import t from 'tap'
import { lazyChildLogger } from '../src/child-logger.js'

function capture (): { stream: Writable, lines: () => Array<Record<string, unknown>> } {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done() } })
  return { stream, lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('request loggers are made only when a request logs, and log as Fastify\'s own would', async (t) => {
  const { stream, lines } = capture()
  const app = Fastify({ logger: { level: 'info', stream }, childLoggerFactory: lazyChildLogger, logController: new LogController({ disableRequestLogging: true }) })
  let children = 0
  const child = app.log.child.bind(app.log)
  app.log.child = ((...args: Parameters<typeof child>) => { children++; return child(...args) }) as typeof child
  app.get('/quiet', async (request) => {
    request.log.debug('below the level: no logger made for it')
    return 'ok'
  })
  app.get('/loud', { logSerializers: { user: (u: { name: string }) => `user:${u.name}` } }, async (request) => {
    request.log.warn({ user: { name: 'alice' } }, 'something to say')
    return 'ok'
  })
  app.get('/verbose', { logLevel: 'debug' }, async (request) => {
    request.log.debug('a route that logs at debug')
    return 'ok'
  })
  t.teardown(() => app.close())
  await app.ready()
  children = 0
  for (let i = 0; i < 5; i++) await app.inject('/quiet')
  t.equal(children, 0, 'five quiet requests, no child logger')
  await app.inject('/loud')
  t.equal(children, 1, 'one request that logs, one child logger')
  const warn = lines().find((l) => l.msg === 'something to say')!
  t.match(warn, { level: 40, user: 'user:alice', reqId: /^req-/ }, 'with the request id and the route\'s serializers')
  await app.inject('/verbose')
  t.match(lines().find((l) => l.msg === 'a route that logs at debug'), { level: 20, reqId: /^req-/ }, 'a route\'s own log level counts')
  t.notOk(lines().some((l) => l.msg === 'below the level: no logger made for it'))
})

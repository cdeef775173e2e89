// Fastify adapter cases the other tests do not reach: per-route options of routes declared before the
// plugin loaded (un-awaited register), found lazily by request.shutdownSignal or at a late request, and
// routes with config.graceful that already have onRequest hooks of their own. Real servers, raw sockets.
import t, { type Test } from 'tap'
import http from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import { graceful } from '@graceful/fastify'
import { captureLogger, deferred, Holds, portOf, type LogEntry } from './helpers/harness.js'
import { get, RawConnection } from './helpers/http-lite.js'
import { settleWithin } from './helpers/bounded.js'

// Proves "does not hang" only; machines are noisy.
const BOUND_MS = 5000

const bounded = <T>(promise: Promise<T>, what: string): Promise<T> => settleWithin(promise, what, BOUND_MS)

/** An app with the plugin registered (not awaited) and a logger that tells when the drain starts. */
function appWith (t: Test, logs: LogEntry[]): { app: FastifyInstance, draining: Promise<void>, holds: Holds } {
  const holds = new Holds()
  const draining = deferred()
  const capture = captureLogger(logs)
  const app = Fastify({ logger: false })
  app.register(graceful, {
    signals: false,
    logger: { ...capture, info: (obj: object, msg?: string) => { capture.info(obj, msg); if (msg === 'graceful: draining') draining.resolve() } }
  })
  app.get<{ Params: { id: string } }>('/hold/:id', async (request) => {
    await holds.hold(request.params.id)
    return `released ${request.params.id}`
  })
  t.teardown(async () => {
    for (const id of ['a', 'b', 'abort']) holds.release(id)
    await app.close()
  })
  return { app, draining: draining.promise, holds }
}

/** Resolves when the server has received a request for `url`. */
function arrival (server: http.Server, url: string): Promise<void> {
  return new Promise((resolve) => {
    server.on('request', function onRequest (req: http.IncomingMessage) {
      if (req.url !== url) return
      server.removeListener('request', onRequest)
      resolve()
    })
  })
}

t.test('request.shutdownSignal applies config.graceful of a route declared before the plugin loaded', async (t) => {
  const logs: LogEntry[] = []
  const { app, holds } = appWith(t, logs)
  app.get('/abort', { config: { graceful: { abortOnDrain: true } } }, async (request) => {
    // Read before the drain: this is what tells the core the route is abortOnDrain.
    await holds.hold('abort', request.shutdownSignal)
    const signal = request.shutdownSignal
    return { aborted: signal.aborted, code: (signal.reason as { code?: string } | undefined)?.code }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const c = new RawConnection(portOf(app.server))
  t.teardown(() => c.destroy())
  c.write(get('/abort'))
  await holds.entered('abort')
  const signal = holds.signals.get('abort') as AbortSignal
  t.equal(signal.aborted, false)
  const closing = app.close()
  await bounded(new Promise((resolve) => signal.addEventListener('abort', resolve)), 'the signal aborting at the drain start')
  t.equal((signal.reason as { code?: string }).code, 'GRACEFUL_DRAINING')
  holds.release('abort')
  const [res] = await c.responses(1)
  t.same(JSON.parse(res?.body ?? '{}'), { aborted: true, code: 'GRACEFUL_DRAINING' })
  await bounded(closing, 'app.close()')
})

t.test('bad config.graceful on a route declared before the plugin loaded is logged and the defaults apply during the drain', async (t) => {
  const logs: LogEntry[] = []
  const { app, draining, holds } = appWith(t, logs)
  app.get('/bad', { config: { graceful: { serveDuringDrain: 'yes' } as unknown as { serveDuringDrain: boolean } } }, async () => 'bad')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const c = new RawConnection(portOf(app.server))
  t.teardown(() => c.destroy())
  c.write(get('/bad'))
  const [before] = await c.responses(1)
  t.equal(before?.body, 'bad', 'the route is served normally before the shutdown')
  c.write(get('/hold/a'))
  await holds.entered('a')
  const closing = app.close()
  await draining
  const arrived = arrival(app.server, '/bad')
  c.write(get('/bad'))
  await arrived
  holds.release('a')
  const [, , late] = await c.responses(3)
  t.equal(late?.status, 503, 'the late request gets the default: 503')
  const error = logs.find((l) => l.level === 'error')
  t.match(error?.msg, /^graceful: bad per-route options ignored/)
  t.match(error?.obj, { err: { code: 'GRACEFUL_ERR_ROUTE_OPTION' } })
  await bounded(closing, 'app.close()')
})

for (const shape of ['a function', 'an array'] as const) {
  t.test(`a route with config.graceful and onRequest as ${shape} keeps its own hooks and its drain options`, async (t) => {
    const logs: LogEntry[] = []
    const { app, draining, holds } = appWith(t, logs)
    await app.after()
    const own = async (_request: unknown, reply: { header: (k: string, v: string) => void }) => { reply.header('x-own', 'yes') }
    const second = async (_request: unknown, reply: { header: (k: string, v: string) => void }) => { reply.header('x-second', 'yes') }
    app.get('/health', {
      config: { graceful: { serveDuringDrain: true } },
      onRequest: shape === 'a function' ? own : [own, second]
    }, async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })
    const c = new RawConnection(portOf(app.server))
    t.teardown(() => c.destroy())
    c.write(get('/hold/a'))
    await holds.entered('a')
    const closing = app.close()
    await draining
    const arrived = arrival(app.server, '/health')
    c.write(get('/health'))
    await arrived
    holds.release('a')
    const [, health] = await c.responses(2)
    t.equal(health?.status, 200, 'the serveDuringDrain route is served during the drain')
    t.equal(health?.headers['x-own'], 'yes', "the route's own onRequest hook ran")
    if (shape === 'an array') t.equal(health?.headers['x-second'], 'yes', 'and every hook of the array')
    await bounded(closing, 'app.close()')
  })
}

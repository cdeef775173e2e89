// Fastify adapter cases the other tests do not reach: per-route options of routes declared before the
// plugin loaded (un-awaited register), found lazily by request.shutdownSignal or at a late request, and
// routes with config.graceful that already have onRequest hooks of their own. Real servers, raw sockets.
import t, { type Test } from 'tap'
import http from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import { graceful } from '@graceful/fastify'
import { captureLogger, deferred, Holds, portOf, type LogEntry } from './helpers/harness.js'
import { get, RawConnection, type RawRes } from './helpers/http-lite.js'
import { settleWithin } from './helpers/bounded.js'
import { until } from './helpers/drain.js'

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

t.test('app.close() from an afterDrain hook (as NestJS does) closes Fastify at once, and the shutdown ends cleanly', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(graceful, { signals: false, logger: false })
  let onClose = false
  app.addHook('onClose', async () => { onClose = true })
  app.graceful.afterDrain(() => app.close(), { name: 'nest.close' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const report = await bounded(app.graceful.shutdown(), 'shutdown()')
  t.equal(onClose, true, 'Fastify\'s onClose hooks ran')
  t.match(report, { exitCode: 0 })
  t.same(report.hooks.map((h) => [h.name, h.error]), [['nest.close', undefined], ['fastify.close', undefined]])
})

/**
 * Sends each of `ask` as a late request during the drain, each on a connection of its own that holds a
 * request (`GET /hold/<n>`) from before, so it arrives on an open connection; resolves with their answers.
 * The app has the `/hold/:id` route on `holds`, and `draining` resolves as the drain starts.
 */
async function lateAnswers (t: Test, app: FastifyInstance, holds: Holds, draining: Promise<void>, ask: string[]): Promise<Array<RawRes | undefined>> {
  const ids = ask.map((_, i) => `late-${i}`)
  t.teardown(() => { for (const id of ids) holds.release(id) })
  const connections = ask.map(() => new RawConnection(portOf(app.server)))
  t.teardown(() => { for (const c of connections) c.destroy() })
  for (const [i, c] of connections.entries()) c.write(get(`/hold/${ids[i] as string}`))
  for (const id of ids) await holds.entered(id)
  const shutdown = app.graceful.shutdown()
  await draining
  for (const [i, c] of connections.entries()) c.write(ask[i] as string)
  // Each pipelined behind its held request: read before the held ones end, so they are answered.
  await until(() => app.graceful.stats().inFlight === 2 * ask.length, 'the late requests arriving')
  for (const id of ids) holds.release(id)
  const answers = await Promise.all(connections.map(async (c) => (await c.responses(2))[1]))
  await bounded(shutdown, 'shutdown()')
  return answers
}

t.test('late requests find their route\'s options the way Fastify routes them: constraints, trailing-slash twins', async (t) => {
  const logs: LogEntry[] = []
  const draining = deferred()
  const capture = captureLogger(logs)
  const holds = new Holds()
  const app = Fastify({ logger: false })
  await app.register(graceful, { signals: false, logger: { ...capture, info: (obj: object, msg?: string) => { capture.info(obj, msg); if (msg === 'graceful: draining') draining.resolve() } } })
  const serve = { config: { graceful: { serveDuringDrain: true } } }
  app.get('/hold/:id', async (request) => { await holds.hold((request.params as { id: string }).id); return 'released' })
  app.get('/host', { ...serve, constraints: { host: 'admin.local' } }, async () => 'admin')
  app.get('/host', async () => 'anyone')
  app.get('/twin', serve, async () => 'twin')
  app.get('/twin/', async () => 'twin with a slash')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  // The last: a URL find-my-way cannot decode (a bad escape in a parameter) is no route's, so it gets the defaults.
  const answers = await lateAnswers(t, app, holds, draining.promise,
    ['GET /host HTTP/1.1\r\nHost: admin.local\r\n\r\n', 'GET /host HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', get('/twin'), get('/hold/%zz')])
  t.same(answers.map((r) => [r?.status, r?.body]), [[200, 'admin'], [503, answers[1]?.body], [200, 'twin'], [503, answers[3]?.body]],
    'the host-constrained route is served for its host only; the first of two trailing-slash twins decides; a bad URL gets the defaults')
})

t.test('custom constraint strategies: a synchronous one decides late requests as Fastify routes them; an asynchronous one is left out of the lookup', async (t) => {
  const strategy = (name: string, async: boolean) => ({
    name,
    mustMatchWhenDerived: false,
    validate () {},
    storage () {
      const handlers = new Map<string, unknown>()
      return { get: (value: string) => handlers.get(value) ?? null, set: (value: string, handler: unknown) => { handlers.set(value, handler) } }
    },
    deriveConstraint: async
      ? (req: http.IncomingMessage, _ctx: unknown, done: (err: Error | null, value?: string) => void) => { done(null, req.headers['x-slow'] as string) }
      : (req: http.IncomingMessage) => req.headers['x-tenant'] as string
  })
  const draining = deferred()
  const holds = new Holds()
  const app = Fastify({ logger: false, routerOptions: { constraints: { tenant: strategy('tenant', false), slow: strategy('slow', true) } as never } })
  await app.register(graceful, { signals: false, logger: { info: (_o: object, msg?: string) => { if (msg === 'graceful: draining') draining.resolve() }, warn () {}, error () {} } })
  const serve = { config: { graceful: { serveDuringDrain: true } } }
  app.get('/hold/:id', async (request) => { await holds.hold((request.params as { id: string }).id); return 'released' })
  app.get('/t', { ...serve, constraints: { tenant: 'a' } }, async () => 'tenant a')
  app.get('/t', async () => 'other tenants')
  app.get('/slow', { ...serve, constraints: { slow: 'x' } }, async () => 'slow x')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const answers = await lateAnswers(t, app, holds, draining.promise,
    ['GET /t HTTP/1.1\r\nHost: x\r\nX-Tenant: a\r\n\r\n', 'GET /t HTTP/1.1\r\nHost: x\r\nX-Tenant: b\r\n\r\n', 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: x\r\n\r\n'])
  t.same(answers.map((r) => r?.status), [200, 503, 200])
  t.equal(answers[2]?.body, 'slow x')
})

// Fastify-only behaviour of @graceful/fastify: app.close() runs the drain, onClose hooks, the decorations,
// Fastify's own return503OnClosing, the probe routes, multi-address listen, and close before ready.
// Real servers on port 0, real sockets; every wait is on an event.
import t, { type Test } from 'tap'
import dns from 'node:dns'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import { Graceful as CoreGraceful, type GracefulOptions, type RouteOptions } from '@graceful/core'
import { graceful, Graceful } from '@graceful/fastify'
import { deferred, Holds, portOf, type Deferred, type LogEntry } from './helpers/harness.js'
import { get, probe, RawConnection, send, type RawRes } from './helpers/http-lite.js'
import { settleWithin } from './helpers/bounded.js'

// Proves "does not hang" only; machines are noisy.
const BOUND_MS = 5000

interface Built {
  app: FastifyInstance
  holds: Holds
  logs: LogEntry[]
  /** Resolves the moment the drain starts (the core logs 'graceful: draining' right after closing listeners). */
  draining: Promise<void>
  port: number
  agent: http.Agent
  /** Resolves once a request for `url` has reached the server (its 'request' event). */
  arrived (url: string): Promise<void>
}

interface BuildOptions {
  options?: GracefulOptions
  routes?: Record<string, RouteOptions>
  /** Add hooks/routes before listen. */
  before?: (app: FastifyInstance) => void
  listen?: boolean
  host?: string
}

async function build (t: Test, o: BuildOptions = {}): Promise<Built> {
  const holds = new Holds()
  const logs: LogEntry[] = []
  const draining = deferred()
  const at = (level: LogEntry['level']) => (obj: object, msg?: string) => {
    logs.push({ level, msg, obj: obj as Record<string, unknown> })
    if (msg === 'graceful: draining') draining.resolve()
  }
  const app = Fastify({ logger: false })
  await app.register(graceful, { signals: false, logger: { info: at('info'), warn: at('warn'), error: at('error') }, ...o.options })
  const arrivals = new Map<string, Deferred>()
  const arrival = (url: string): Deferred => {
    let d = arrivals.get(url)
    if (d === undefined) arrivals.set(url, d = deferred())
    return d
  }
  app.server.on('request', (req: http.IncomingMessage) => { arrival(req.url ?? '').resolve() })
  const config = (path: string) => o.routes?.[path] === undefined ? {} : { config: { graceful: o.routes[path] } }
  app.get('/', config('/'), async () => 'hello')
  app.get('/health', config('/health'), async () => 'ok')
  app.get<{ Params: { id: string } }>('/hold/:id', config('/hold/:id'), async (request) => {
    await holds.hold(request.params.id, request.shutdownSignal)
    return `released ${request.params.id}`
  })
  o.before?.(app)
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(async () => {
    agent.destroy()
    for (const id of ['a', 'b', '0', '1']) holds.release(id)
    // A test whose onClose hook fails on purpose sees app.close() reject; that is asserted there.
    await app.close().catch(() => {})
  })
  let port = 0
  if (o.listen !== false) {
    await app.listen({ port: 0, host: o.host ?? '127.0.0.1' })
    port = portOf(app.server)
  }
  return { app, holds, logs, draining: draining.promise, port, agent, arrived: (url) => arrival(url).promise }
}

/** Rejects if `promise` takes longer than BOUND_MS: proves "no hang" without asserting timings. */
const bounded = <T>(promise: Promise<T>, what: string): Promise<T> => settleWithin(promise, what, BOUND_MS)

t.test('app.close() drains a held request, then runs afterDrain hooks, then Fastify onClose hooks', async (t) => {
  const order: string[] = []
  const { app, holds, port, agent, draining } = await build(t, {
    before (app) {
      app.addHook('onResponse', async (request) => { order.push(`response ${request.url}`) })
      app.addHook('onClose', async () => { order.push('onClose') })
    }
  })
  app.graceful.afterDrain(() => { order.push('afterDrain') }, { name: 'pool' })

  const held = send({ port, agent, path: '/hold/a' })
  await holds.entered('a')
  let closed = false
  const closing = app.close().then(() => { closed = true })
  await draining
  t.equal(app.graceful.phase, 'draining')
  t.equal(await probe(port), 'refused', 'the listener is closed during the drain')
  t.equal(closed, false, 'close waits for the held request')
  t.same(order, [], 'no hook ran while the request is in flight')

  holds.release('a')
  const res = await held
  t.equal(res.status, 200)
  t.equal(res.body, 'released a')
  t.equal(res.headers.connection, 'close', 'the in-flight response says Connection: close')
  await bounded(closing, 'app.close()')
  t.same(order, ['response /hold/a', 'afterDrain', 'onClose'])
  t.equal(app.graceful.phase, 'closed')

  const report = await app.graceful.shutdown()
  t.match(report, { reason: 'close', inFlightAtStart: 1, completed: 1, rejected: 0, aborted: 0, exitCode: 0 })
  t.same(report.hooks.map((h) => h.name), ['pool', 'fastify.close'])
})

t.test('app.close(callback) drains, runs onClose hooks, and calls back once without an error', async (t) => {
  const order: string[] = []
  const { app, holds, port, agent, draining } = await build(t, {
    before (app) { app.addHook('onClose', async () => { order.push('onClose') }) }
  })
  const held = send({ port, agent, path: '/hold/a' })
  await holds.entered('a')

  const done = deferred<{ err: unknown, phase: string, calls: number }>()
  let calls = 0
  const returned = app.close((err?: Error) => {
    calls++
    order.push('callback')
    done.resolve({ err, phase: app.graceful.phase, calls })
  })
  t.equal(returned, app, 'the callback form returns the instance')
  await draining
  holds.release('a')
  t.equal((await held).status, 200)
  const result = await bounded(done.promise, 'app.close(callback)')
  t.notOk(result.err, 'no error')
  t.equal(result.phase, 'closed')
  t.same(order, ['onClose', 'callback'])
  t.equal(calls, 1)
})

t.test('delay: 0: a request that arrives a tick after app.close() is a lame-duck one, served keep-alive (the quiet end of the lame-duck time); the request that answer invites is served during the drain, with Connection: close', async (t) => {
  const { app, port, draining } = await build(t, { options: { delay: 0 } })
  const conn = new RawConnection(port)
  t.teardown(() => { conn.destroy() })
  await conn.connected()
  conn.write(get('/'))
  await bounded(conn.responses(1), 'the first answer')
  const closed = app.close()
  // Written now, read in the next poll phase: before the check phase in which the drain closes the listener.
  conn.write(get('/'))
  const [, tick] = await bounded(conn.responses(2), 'the answer a tick after app.close()') as [unknown, RawRes]
  t.equal(tick.status, 200)
  t.equal(tick.headers.connection, 'keep-alive', 'not told to close: a reconnect now could land in the accept queue as the listener closes')
  await bounded(draining, 'the drain')
  t.equal(await probe(port), 'refused', 'the drain has begun')
  conn.write(get('/'))
  const [, , invited] = await bounded(conn.responses(3), 'the invited request') as [unknown, unknown, RawRes]
  t.equal(invited.status, 200, 'served, not 503: the keep-alive answer invited it')
  t.equal(invited.headers.connection, 'close')
  await bounded(conn.ended(), 'the connection ending after it (Node ends it after a close response)')
  await bounded(closed, 'app.close()')
  t.match(await app.graceful.shutdown(), { exitCode: 0, timedOut: false })
})

t.test('app.close() twice resolves both with one drain', async (t) => {
  const { app } = await build(t)
  const first = app.close()
  const second = app.close()
  await bounded(Promise.all([first, second]), 'two app.close() calls')
  const report = await app.graceful.shutdown()
  t.equal(report.reason, 'close')
  t.same(report.hooks.map((h) => h.name), ['fastify.close'], 'Fastify closed once')
})

t.test('app.graceful is the instance and request.shutdownSignal is an AbortSignal', async (t) => {
  const seen: unknown[] = []
  const { app, port, agent } = await build(t, {
    before (app) {
      app.get('/signal', async (request) => {
        const signal = request.shutdownSignal
        seen.push(signal)
        return { abortSignal: signal instanceof AbortSignal, aborted: signal.aborted, stable: signal === request.shutdownSignal }
      })
    }
  })
  t.type(app.graceful, Graceful)
  t.type(app.graceful, CoreGraceful, 'the same class as @graceful/core')
  t.equal(app.graceful.phase, 'serving')
  t.equal(typeof app.graceful.beforeDrain, 'function')
  t.equal(typeof app.graceful.afterDrain, 'function')
  const res = await send({ port, agent, path: '/signal' })
  t.same(JSON.parse(res.body), { abortSignal: true, aborted: false, stable: true })
  const again = await send({ port, agent, path: '/signal' })
  t.equal(again.status, 200)
  t.not(seen[0], seen[1], 'each request has a signal of its own')
  const promise = app.graceful.shutdown('test')
  t.equal(app.graceful.shutdown(), promise, 'shutdown() returns the same promise')
  await bounded(promise, 'shutdown()')
})

t.test("Fastify's return503OnClosing does not answer a serveDuringDrain route; the plugin's 503s carry Retry-After", async (t) => {
  const { app, holds, port, draining, arrived } = await build(t, { routes: { '/health': { serveDuringDrain: true } } })
  const a = new RawConnection(port)
  const b = new RawConnection(port)
  t.teardown(() => { a.destroy(); b.destroy() })
  a.write(get('/hold/a'))
  b.write(get('/hold/b'))
  await holds.entered('a')
  await holds.entered('b')

  const closing = app.close()
  await draining
  // Pipelined behind the held requests, so they arrive on open connections during the drain.
  a.write(get('/health'))
  b.write(get('/'))
  // Release only once the server has read them: a request it has not seen cannot stop the held
  // response from closing the connection.
  await arrived('/health')
  await arrived('/')
  holds.release('a')
  holds.release('b')

  const [[heldA, health], [heldB, rejected]] = await Promise.all([a.responses(2), b.responses(2)])
  t.equal(heldA?.status, 200)
  t.equal(heldA?.body, 'released a')
  t.equal(health?.status, 200, 'the serveDuringDrain route is served, not 503')
  t.equal(health?.body, 'ok')
  t.equal(health?.headers.connection, 'close')

  t.equal(heldB?.status, 200)
  t.equal(rejected?.status, 503, 'any other route is answered 503')
  t.equal(rejected?.headers['retry-after'], '1', 'with Retry-After')
  t.equal(rejected?.headers.connection, 'close', 'and Connection: close')
  t.match(JSON.parse(rejected?.body ?? '{}'), { statusCode: 503, error: 'Service Unavailable' })

  await a.ended()
  await b.ended()
  await bounded(closing, 'app.close()')
  const report = await app.graceful.shutdown()
  t.match(report, { inFlightAtStart: 2, rejected: 1, exitCode: 0 })
})

t.test('the 503s leave out Retry-After with retryAfter: false', async (t) => {
  const { app, holds, port, draining, arrived } = await build(t, { options: { retryAfter: false } })
  const a = new RawConnection(port)
  t.teardown(() => a.destroy())
  a.write(get('/hold/a'))
  await holds.entered('a')
  const closing = app.close()
  await draining
  a.write(get('/'))
  await arrived('/')
  holds.release('a')
  const [, rejected] = await a.responses(2)
  t.equal(rejected?.status, 503)
  t.equal(rejected?.headers['retry-after'], undefined)
  await bounded(closing, 'app.close()')
})

t.test('the readiness and liveness routes registered by the plugin answer HEAD too', async (t) => {
  const hookEntered = deferred()
  const hookRelease = deferred()
  const { app, port, agent } = await build(t, { options: { readiness: {}, liveness: { path: '/alive' } } })
  app.graceful.beforeDrain(async () => {
    hookEntered.resolve()
    await hookRelease.promise
  })

  const headReady = await send({ port, agent, path: '/readyz', method: 'HEAD' })
  t.equal(headReady.status, 200, 'HEAD /readyz while serving')
  t.equal(headReady.body, '', 'HEAD has no body')
  t.equal(headReady.headers['cache-control'], 'no-store')
  const getReady = await send({ port, agent, path: '/readyz?verbose=1' })
  t.equal(getReady.status, 200, 'GET /readyz with a query string')
  t.same(JSON.parse(getReady.body), { status: 'ready', phase: 'serving' })
  const headLive = await send({ port, agent, path: '/alive', method: 'HEAD' })
  t.equal(headLive.status, 200, 'HEAD on the liveness path')

  // The lame-duck phase lasts until the beforeDrain hook ends: readiness says 503, liveness 200.
  const closing = app.close()
  await hookEntered.promise
  t.equal(app.graceful.phase, 'lameduck')
  const headNotReady = await send({ port, agent, path: '/readyz', method: 'HEAD' })
  t.equal(headNotReady.status, 503, 'HEAD /readyz in the lame-duck phase')
  t.equal(headNotReady.body, '')
  const getNotReady = await send({ port, agent, path: '/readyz' })
  t.equal(getNotReady.status, 503)
  t.same(JSON.parse(getNotReady.body), { status: 'unavailable', phase: 'lameduck' })
  const headStillLive = await send({ port, agent, path: '/alive', method: 'HEAD' })
  t.equal(headStillLive.status, 200, 'HEAD liveness in the lame-duck phase')
  hookRelease.resolve()
  await bounded(closing, 'app.close()')
})

/** Whether ::1 can be bound here (no IPv6 in some containers). */
async function hasIPv6 (): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(0, '::1', () => server.close(() => resolve(true)))
  })
}

t.test("listen({ host: 'localhost' }) drains connections to every listening address", async (t) => {
  const ipv6 = await hasIPv6()
  const resolved = await dns.promises.lookup('localhost', { all: true })
  if (ipv6 && !resolved.some((a) => a.address === '::1')) {
    // This machine's localhost is IPv4 only, but ::1 exists: answer Fastify's lookup as a dual-stack host
    // does, so it binds a second server on ::1 (Fastify resolves 'localhost' with { all: true }).
    const original = dns.lookup
    const patched = function lookup (this: unknown, hostname: string, options: unknown, callback?: unknown) {
      if (hostname === 'localhost' && typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true) {
        process.nextTick(callback as (err: null, addresses: dns.LookupAddress[]) => void, null,
          [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }])
        return
      }
      return (original as (...args: unknown[]) => unknown).call(this, hostname, options, callback)
    }
    dns.lookup = patched as unknown as typeof dns.lookup
    t.teardown(() => { dns.lookup = original })
  }

  const { app, holds, draining } = await build(t, { host: 'localhost' })
  const addresses = app.addresses().filter((a): a is net.AddressInfo => typeof a === 'object')
  const v4 = addresses.find((a) => a.family === 'IPv4')
  const v6 = addresses.find((a) => a.family === 'IPv6')
  t.ok(v4, 'listens on IPv4')
  const targets = [v4, v6].filter((a) => a !== undefined)
  if (v6 === undefined) t.comment('no IPv6 address on this machine: the IPv6 part is skipped')
  else t.equal(v6.address, '::1')

  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  const held = targets.map((a, i) => send({ host: a.address, port: a.port, agent, path: `/hold/${i}` }))
  for (let i = 0; i < targets.length; i++) await holds.entered(String(i))

  const closing = app.close()
  await draining
  for (const a of targets) t.equal(await probe(a.port, a.address), 'refused', `${a.address} refuses new connections`)
  for (let i = 0; i < targets.length; i++) holds.release(String(i))
  const responses = await Promise.all(held)
  for (const [i, res] of responses.entries()) {
    t.equal(res.status, 200, `the request on ${targets[i]?.address} completes`)
    t.equal(res.body, `released ${i}`)
    t.equal(res.headers.connection, 'close')
  }
  await bounded(closing, 'app.close()')
  const report = await app.graceful.shutdown()
  t.match(report, { inFlightAtStart: targets.length, completed: targets.length, aborted: 0, exitCode: 0 })
})

t.test('app.close() before ready() or listen still resolves', async (t) => {
  t.test('with the plugin registered but not loaded', async (t) => {
    const app = Fastify({ logger: false })
    app.register(graceful, { signals: false, logger: false })
    await bounded(app.close(), 'app.close()')
    t.equal(app.graceful.phase, 'closed')
  })
  t.test('with the plugin loaded, before ready()', async (t) => {
    const app = Fastify({ logger: false })
    await app.register(graceful, { signals: false, logger: false })
    await bounded(app.close(), 'app.close()')
    t.equal(app.graceful.phase, 'closed')
  })
  t.test('after ready(), without listen', async (t) => {
    const app = Fastify({ logger: false })
    await app.register(graceful, { signals: false, logger: false })
    await app.ready()
    let onClose = false
    app.addHook('onClose', async () => { onClose = true })
    await bounded(app.close(), 'app.close()')
    t.equal(app.graceful.phase, 'closed')
    t.equal(onClose, true)
  })
})

t.test("a Fastify onClose hook that throws is recorded in report.hooks as 'fastify.close', makes app.close() reject like plain Fastify's, and does not hang", async (t) => {
  let second = false
  const { app, logs } = await build(t, {
    before (app) {
      app.addHook('onClose', async () => { throw new Error('onClose boom') })
      app.addHook('onClose', async () => { second = true })
    }
  })
  let after = false
  app.graceful.afterDrain(() => { after = true })
  await t.rejects(bounded(app.close(), 'app.close()'), { message: 'onClose boom' }, 'app.close() rejects with the hook\'s error')
  const viaCallback = await new Promise<Error | undefined>((resolve) => { (app.close as unknown as (cb: (err?: Error) => void) => void)((err) => resolve(err)) })
  t.match(viaCallback, { message: 'onClose boom' }, 'and so does its callback form')
  const report = await bounded(app.graceful.shutdown(), 'shutdown()')
  t.equal(after, true)
  const close = report.hooks.find((h) => h.name === 'fastify.close')
  t.ok(close, "a 'fastify.close' entry")
  t.match(close?.error, /onClose boom/)
  t.equal(report.exitCode, 1)
  t.equal(app.graceful.phase, 'closed')
  t.equal(second, true, 'the next onClose hook still ran')
  t.ok(logs.some((l) => l.level === 'error' && l.obj.hook === 'fastify.close'), 'the failure is logged')
})

t.test('applies config.graceful to routes declared right after an un-awaited register', async (t) => {
  const holds = new Holds()
  const draining = deferred()
  const app = Fastify({ logger: false })
  const log = (_obj: object, msg?: string) => { if (msg === 'graceful: draining') draining.resolve() }
  app.register(graceful, { signals: false, logger: { info: log, warn: log, error: log } })
  app.get('/health', { config: { graceful: { serveDuringDrain: true } } }, async () => 'ok')
  app.get<{ Params: { id: string } }>('/hold/:id', async (request) => {
    await holds.hold(request.params.id)
    return 'released'
  })
  const arrived = deferred()
  app.server.on('request', (req: http.IncomingMessage) => { if (req.url === '/health') arrived.resolve() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const a = new RawConnection(portOf(app.server))
  t.teardown(async () => {
    a.destroy()
    holds.release('a')
    await app.close()
  })
  a.write(get('/hold/a'))
  await holds.entered('a')
  const closing = app.close()
  await draining.promise
  a.write(get('/health'))
  await arrived.promise
  holds.release('a')
  const [, health] = await a.responses(2)
  t.equal(health?.status, 200, 'the serveDuringDrain route is served during the drain')
  await bounded(closing, 'app.close()')
})

t.test('app.close() leaves a server from serverFactory that the app listened on itself listening, as plain Fastify does', async (t) => {
  const server = http.createServer()
  const app = Fastify({ logger: false, serverFactory: (handler) => server.on('request', handler) })
  await app.register(graceful, { signals: false, logger: false })
  app.get('/', async () => 'hello')
  await app.ready()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const address = server.address()
  const report = await bounded(app.graceful.shutdown(), 'shutdown()')
  await bounded(app.close(), 'app.close()')
  t.equal(server.listening, true, 'still listening')
  t.same(server.address(), address)
  t.match(report, { exitCode: 0, timedOut: false })
})

t.test('a logger that throws (a pino destination that has ended) never stops the shutdown', async (t) => {
  // What pino does once its SonicBoom destination is destroyed: every write throws.
  let destroyed = false
  const app = Fastify({ logger: { level: 'info', stream: { write () { if (destroyed) throw new Error('SonicBoom destroyed') } } } })
  await app.register(graceful, { signals: false })
  app.get('/', async () => 'hello')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const warned = once(process, 'warning') as Promise<[Error & { code?: string }]>
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  await send({ port: (app.server.address() as AddressInfo).port, agent, path: '/' })
  destroyed = true
  const report = await bounded(app.graceful.shutdown(), 'shutdown()')
  t.match(report, { exitCode: 0, timedOut: false })
  t.equal(app.graceful.phase, 'closed')
  t.equal(app.server.listening, false, 'the listener is closed')
  const [warning] = await bounded(warned, 'the process warning')
  t.equal(warning.code, 'GRACEFUL_LOGGER_THREW', 'said once, as a process warning')
})

// Express-only behaviour of @graceful/express: auto-wiring to the server app.listen() makes, attach() for
// http.createServer(app), the `routes` option's matching, the probe paths the middleware answers itself,
// the instance getters, the console logger and req.shutdownSignal. Real servers on port 0, real sockets.
import t, { type Test } from 'tap'
import express, { type Express } from 'express'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { Graceful, type GracefulOptions, type RouteOptions } from '@graceful/core'
import { graceful, type GracefulMiddleware } from '@graceful/express'
import { deferred, Holds, portOf, type Deferred, type LogEntry } from './helpers/harness.js'
import { get, post, probe, RawConnection, send } from './helpers/http-lite.js'
import { settleWithin } from './helpers/bounded.js'

// Proves "does not hang" only; machines are noisy.
const BOUND_MS = 5000

const bounded = <T>(promise: Promise<T>, what: string): Promise<T> => settleWithin(promise, what, BOUND_MS)

/** A silent logger that tells when the drain starts (the core logs 'graceful: draining' at that moment). */
function drainLogger (): { logger: { info: (o: object, m?: string) => void, warn: () => void, error: () => void }, draining: Promise<void> } {
  const d = deferred()
  const noop = (): void => {}
  return { logger: { info: (_o, msg) => { if (msg === 'graceful: draining') d.resolve() }, warn: noop, error: noop }, draining: d.promise }
}

/** The app every test uses, around middleware `g`. */
function appWith (g: GracefulMiddleware, holds: Holds): Express {
  const app = express()
  app.use(g)
  app.get('/', (_req, res) => { res.send('hello') })
  app.get('/health', (_req, res) => { res.send('ok') })
  app.get('/x', (_req, res) => { res.send('x') })
  app.get('/users', (_req, res) => { res.send('users') })
  app.get('/users/:id', (req, res) => { res.send(`user ${req.params.id}`) })
  app.get('/users/:id/posts', (req, res) => { res.send(`posts of ${req.params.id}`) })
  app.get('/upload', (_req, res) => { res.send('upload form') })
  app.post('/upload', (req, res) => {
    let bytes = 0
    req.on('data', (chunk: Buffer) => { bytes += chunk.length })
    req.on('end', () => res.send(`got ${bytes}`))
  })
  app.get('/hold/:id', (req, res, next) => {
    holds.hold(req.params.id, req.shutdownSignal).then(() => res.send(`released ${req.params.id}`), next)
  })
  app.get('/signal', (req, res) => {
    const signal = req.shutdownSignal
    res.json({ abortSignal: signal instanceof AbortSignal, aborted: signal.aborted, stable: signal === req.shutdownSignal })
  })
  return app
}

interface Built {
  g: GracefulMiddleware
  server: http.Server
  port: number
  holds: Holds
  logs: LogEntry[]
  agent: http.Agent
  /** Resolves the moment the drain starts (logged right after the listeners close). */
  draining: Promise<void>
  /** Resolves once a request `METHOD url` has reached the server. */
  arrived (key: string): Promise<void>
}

async function build (t: Test, o: { options?: GracefulOptions, routes?: Record<string, RouteOptions> } = {}): Promise<Built> {
  const holds = new Holds()
  const logs: LogEntry[] = []
  const draining = deferred()
  const at = (level: LogEntry['level']) => (obj: object, msg?: string) => {
    logs.push({ level, msg, obj: obj as Record<string, unknown> })
    if (msg === 'graceful: draining') draining.resolve()
  }
  const g = graceful({
    signals: false,
    logger: { info: at('info'), warn: at('warn'), error: at('error') },
    ...o.options,
    ...(o.routes === undefined ? {} : { routes: o.routes })
  })
  const app = appWith(g, holds)
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const arrivals = new Map<string, Deferred>()
  const arrival = (key: string): Deferred => {
    let d = arrivals.get(key)
    if (d === undefined) arrivals.set(key, d = deferred())
    return d
  }
  server.on('request', (req: http.IncomingMessage) => { arrival(`${req.method} ${req.url}`).resolve() })
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(async () => {
    agent.destroy()
    await g.shutdown()
  })
  return { g, server, port: portOf(server), holds, logs, agent, draining: draining.promise, arrived: (key) => arrival(key).promise }
}

t.test('auto-wiring: app.listen() with no request ever made', async (t) => {
  t.test('g.shutdown() closes the listener and resolves', async (t) => {
    const g = graceful({ signals: false, logger: false })
    const app = express()
    app.use(g)
    app.get('/', (_req, res) => { res.send('hello') })
    const server = app.listen(0, '127.0.0.1')
    t.teardown(() => { server.close() })
    await once(server, 'listening')
    const port = portOf(server)
    t.equal(await probe(port), 'accepted', 'accepting before the shutdown')

    const report = await bounded(g.shutdown(), 'g.shutdown()')
    t.equal(server.listening, false, 'the listener is closed')
    t.equal(await probe(port), 'refused', 'a new connection is refused')
    t.match(report, { inFlightAtStart: 0, completed: 0, exitCode: 0, timedOut: false })
  })

  t.test('idle keep-alive connections (and one that never sent a byte) are closed and the drain ends promptly', async (t) => {
    const g = graceful({ signals: false, logger: false })
    const app = express()
    app.use(g)
    app.get('/', (_req, res) => { res.send('hello') })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = portOf(server)

    const keepAlive = [new RawConnection(port), new RawConnection(port)]
    const silent = net.connect({ port, host: '127.0.0.1' })
    silent.on('error', () => {})
    t.teardown(() => {
      for (const c of keepAlive) c.destroy()
      silent.destroy()
      server.close()
    })
    for (const c of keepAlive) c.write(get('/'))
    for (const c of keepAlive) {
      const [res] = await c.responses(1)
      t.equal(res?.status, 200)
      t.not(res?.headers.connection, 'close', 'kept alive while serving')
    }
    if (silent.connecting) await once(silent, 'connect')

    const silentClosed = once(silent, 'close')
    const report = await bounded(g.shutdown(), 'g.shutdown() with idle connections')
    await bounded(Promise.all([...keepAlive.map((c) => c.ended()), silentClosed]), 'the idle connections closing')
    t.equal(await probe(port), 'refused')
    t.match(report, { inFlightAtStart: 0, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
  })
})

t.test('g.attach(server) for http.createServer(app)', async (t) => {
  t.test('after listen: drains a held request and closes the listener', async (t) => {
    const holds = new Holds()
    const { logger, draining } = drainLogger()
    const g = graceful({ signals: false, logger })
    const server = http.createServer(appWith(g, holds))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.equal(g.attach(server), g, 'attach returns the middleware')
    const port = portOf(server)
    const agent = new http.Agent({ keepAlive: true })
    t.teardown(() => {
      agent.destroy()
      holds.release('a')
      server.close()
    })

    const held = send({ port, agent, path: '/hold/a' })
    await holds.entered('a')
    const shutdown = g.shutdown()
    await draining
    t.equal(await probe(port), 'refused', 'a new connection is refused during the drain')
    holds.release('a')
    const res = await held
    t.equal(res.status, 200)
    t.equal(res.headers.connection, 'close')
    const report = await bounded(shutdown, 'g.shutdown()')
    t.match(report, { inFlightAtStart: 1, completed: 1, exitCode: 0 })
  })

  t.test('before listen, on a server whose handler wraps the app (nothing to auto-detect)', async (t) => {
    const g = graceful({ signals: false, logger: false })
    const app = appWith(g, new Holds())
    const server = http.createServer((req, res) => { app(req, res) })
    t.teardown(() => { server.close() })
    g.attach(server)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = portOf(server)
    await bounded(g.shutdown(), 'g.shutdown()')
    t.equal(server.listening, false)
    t.equal(await probe(port), 'refused')
  })

  t.test('is idempotent: attaching twice tracks every request once', async (t) => {
    const holds = new Holds()
    const { logger, draining } = drainLogger()
    const g = graceful({ signals: false, logger })
    const server = http.createServer(appWith(g, holds))
    t.equal(g.attach(server), g)
    t.equal(g.attach(server), g, 'a second attach is a no-op')
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.equal(g.attach(server), g, 'and after listen too')
    const agent = new http.Agent({ keepAlive: true })
    t.teardown(() => {
      agent.destroy()
      holds.release('a')
      server.close()
    })
    const held = send({ port: portOf(server), agent, path: '/hold/a' })
    await holds.entered('a')
    t.equal(g.instance.inFlight, 1, 'one request in flight, not two')
    const shutdown = g.shutdown()
    await draining
    holds.release('a')
    const res = await held
    t.equal(res.status, 200)
    t.equal(res.headers.connection, 'close')
    const report = await bounded(shutdown, 'g.shutdown()')
    t.match(report, { inFlightAtStart: 1, completed: 1, exitCode: 0 })
  })

  t.test('a second graceful instance attaching the same server throws GRACEFUL_ERR_ALREADY_ATTACHED', async (t) => {
    const g1 = graceful({ signals: false, logger: false })
    const g2 = graceful({ signals: false, logger: false })
    const server = http.createServer()
    g1.attach(server)
    const err = t.throws(() => g2.attach(server), { code: 'GRACEFUL_ERR_ALREADY_ATTACHED' })
    t.type(err, Error)
    t.doesNotThrow(() => g1.attach(server), 'the owner may attach again')
    await g1.shutdown()
    await g2.shutdown()
  })

  t.test('attach() of something that is not a server throws GRACEFUL_ERR_SERVER', async (t) => {
    const g = graceful({ signals: false, logger: false })
    const err = t.throws(() => g.attach({} as never), { code: 'GRACEFUL_ERR_SERVER' })
    t.type(err, TypeError)
    await g.shutdown()
  })
})

interface Check {
  name: string
  request: string
  /** `METHOD url` as the server sees it. */
  key: string
  status: number
  body?: string
}

const ROUTES: Record<string, RouteOptions> = {
  'POST /upload': { serveDuringDrain: true },
  '/users/:id': { serveDuringDrain: true },
  'GET /x': { serveDuringDrain: true },
  '/Health': { serveDuringDrain: true }
}

const CHECKS: Check[] = [
  { name: "POST /upload is served ('POST /upload')", request: post('/upload', 'hello'), key: 'POST /upload', status: 200, body: 'got 5' },
  { name: "GET /upload gets 503 ('POST /upload' is POST only)", request: get('/upload'), key: 'GET /upload', status: 503 },
  { name: "GET /users/42 is served ('/users/:id')", request: get('/users/42'), key: 'GET /users/42', status: 200, body: 'user 42' },
  { name: "GET /users/42?tab=1 is served (the query string is not part of the path)", request: get('/users/42?tab=1'), key: 'GET /users/42?tab=1', status: 200, body: 'user 42' },
  { name: "GET /users/42/posts gets 503 ('/users/:id' matches the whole path)", request: get('/users/42/posts'), key: 'GET /users/42/posts', status: 503 },
  { name: "GET /users gets 503 ('/users/:id' needs the id)", request: get('/users'), key: 'GET /users', status: 503 },
  { name: "GET /x is served ('GET /x')", request: get('/x'), key: 'GET /x', status: 200, body: 'x' },
  { name: "HEAD /x is served ('GET /x' also matches HEAD)", request: get('/x', 'HEAD'), key: 'HEAD /x', status: 200, body: '' },
  { name: "POST /x gets 503 ('GET /x' is GET and HEAD only)", request: post('/x', 'a'), key: 'POST /x', status: 503 },
  { name: "GET /health is served ('/Health': paths are case-insensitive, like Express)", request: get('/health'), key: 'GET /health', status: 200, body: 'ok' },
  { name: 'GET /HEALTH is served (case-insensitive)', request: get('/HEALTH'), key: 'GET /HEALTH', status: 200, body: 'ok' },
  { name: 'GET /health/ is served (a trailing slash, like Express)', request: get('/health/'), key: 'GET /health/', status: 200, body: 'ok' },
  { name: 'GET / gets 503 (no per-route options)', request: get('/'), key: 'GET /', status: 503 }
]

t.test('routes: which requests a drain serves', async (t) => {
  const { g, port, holds, draining, arrived } = await build(t, { routes: ROUTES })
  const connections = CHECKS.map(() => new RawConnection(port))
  t.teardown(() => { for (const c of connections) c.destroy() })
  // One connection per check, each holding a request, so each check arrives on an open connection
  // during the drain.
  for (const [i, c] of connections.entries()) c.write(get(`/hold/${i}`))
  for (let i = 0; i < CHECKS.length; i++) await holds.entered(String(i))

  const shutdown = g.shutdown()
  await draining
  for (const [i, check] of CHECKS.entries()) connections[i]?.write(check.request)
  for (const check of CHECKS) await arrived(check.key)
  for (let i = 0; i < CHECKS.length; i++) holds.release(String(i))
  const results = await Promise.all(connections.map((c) => c.responses(2)))

  for (const [i, check] of CHECKS.entries()) {
    t.test(check.name, async (t) => {
      const [held, res] = results[i] ?? []
      t.equal(held?.status, 200, 'the held request completes')
      t.equal(res?.status, check.status)
      t.equal(res?.headers.connection, 'close', 'with Connection: close')
      if (check.body !== undefined) t.equal(res?.body, check.body)
      if (check.status === 503) t.equal(res?.headers['retry-after'], '1', 'a 503 carries Retry-After')
    })
  }
  const report = await bounded(shutdown, 'g.shutdown()')
  t.equal(report.rejected, CHECKS.filter((c) => c.status === 503).length, 'the report counts the 503s')
})

t.test('the middleware itself answers the readiness and liveness paths', async (t) => {
  const hookEntered = deferred()
  const hookRelease = deferred()
  const { g, port, agent, holds, draining, arrived } = await build(t, { options: { readiness: {}, liveness: {} } })
  g.beforeDrain(async () => {
    hookEntered.resolve()
    await hookRelease.promise
  })

  const ready = await send({ port, agent, path: '/readyz' })
  t.equal(ready.status, 200, 'GET /readyz while serving (no such route in the app)')
  t.same(JSON.parse(ready.body), { status: 'ready', phase: 'serving' })
  t.equal(ready.headers['cache-control'], 'no-store')
  const headReady = await send({ port, agent, path: '/readyz', method: 'HEAD' })
  t.equal(headReady.status, 200, 'HEAD /readyz')
  t.equal(headReady.body, '')
  t.equal((await send({ port, agent, path: '/readyz?from=lb' })).status, 200, 'with a query string')
  const live = await send({ port, agent, path: '/livez' })
  t.equal(live.status, 200)
  t.same(JSON.parse(live.body), { status: 'alive', phase: 'serving' })
  const headLive = await send({ port, agent, path: '/livez?x=1', method: 'HEAD' })
  t.equal(headLive.status, 200, 'HEAD /livez with a query string')
  t.equal(headLive.body, '')

  // Two connections hold requests so probes can arrive on them during the drain.
  const a = new RawConnection(port)
  const b = new RawConnection(port)
  t.teardown(() => { a.destroy(); b.destroy() })
  a.write(get('/hold/a'))
  b.write(get('/hold/b'))
  await holds.entered('a')
  await holds.entered('b')

  const shutdown = g.shutdown()
  await hookEntered.promise
  t.equal(g.phase, 'lameduck')
  const notReady = await send({ port, agent, path: '/readyz' })
  t.equal(notReady.status, 503, 'readiness is 503 from the first moment of shutdown')
  t.same(JSON.parse(notReady.body), { status: 'unavailable', phase: 'lameduck' })
  t.equal((await send({ port, agent, path: '/readyz', method: 'HEAD' })).status, 503, 'HEAD too')
  t.equal((await send({ port, agent, path: '/livez', method: 'HEAD' })).status, 200, 'liveness stays 200')
  hookRelease.resolve()

  await draining
  a.write(get('/readyz?x=1'))
  b.write(get('/livez?during=drain', 'HEAD'))
  await arrived('GET /readyz?x=1')
  await arrived('HEAD /livez?during=drain')
  holds.release('a')
  holds.release('b')
  const [[, drainReady], [, drainLive]] = await Promise.all([a.responses(2), b.responses(2)])
  t.equal(drainReady?.status, 503, 'readiness during the drain')
  t.same(JSON.parse(drainReady?.body ?? '{}'), { status: 'unavailable', phase: 'draining' })
  t.equal(drainReady?.headers.connection, 'close')
  t.equal(drainLive?.status, 200, 'HEAD liveness during the drain')
  t.equal(drainLive?.headers.connection, 'close')
  const report = await bounded(shutdown, 'g.shutdown()')
  t.equal(report.rejected, 0, 'probe answers are not counted as rejected')
})

t.test('readiness answers 503 while serving when its check fails', async (t) => {
  let healthy = false
  const { port, agent } = await build(t, { options: { readiness: { path: '/ready', check: () => healthy } } })
  t.equal((await send({ port, agent, path: '/ready' })).status, 503)
  healthy = true
  t.equal((await send({ port, agent, path: '/ready' })).status, 200)
})

t.test('g.phase follows the shutdown and g.instance is the core instance', async (t) => {
  const hookEntered = deferred()
  const hookRelease = deferred()
  const { g, port, agent, holds, draining } = await build(t)
  t.type(g.instance, Graceful)
  t.equal(g.phase, 'serving')
  t.equal(g.instance.phase, g.phase)
  const phases: string[] = []
  t.equal(g.beforeDrain(async () => {
    phases.push(g.phase)
    hookEntered.resolve()
    await hookRelease.promise
  }), g, 'beforeDrain returns the middleware')
  t.equal(g.afterDrain(() => { phases.push(g.phase) }), g, 'afterDrain returns the middleware')

  const held = send({ port, agent, path: '/hold/a' })
  await holds.entered('a')
  const shutdown = g.shutdown()
  t.equal(g.shutdown(), shutdown, 'a second shutdown() returns the same promise')
  await hookEntered.promise
  t.equal(g.phase, 'lameduck')
  hookRelease.resolve()
  await draining
  t.equal(g.phase, 'draining')
  t.equal(g.instance.phase, 'draining')
  holds.release('a')
  await held
  await bounded(shutdown, 'g.shutdown()')
  t.equal(g.phase, 'closed')
  t.same(phases, ['lameduck', 'cleanup'])
})

t.test('req.shutdownSignal is an AbortSignal on Express requests', async (t) => {
  const { port, agent } = await build(t)
  const res = await send({ port, agent, path: '/signal' })
  t.equal(res.status, 200)
  t.same(JSON.parse(res.body), { abortSignal: true, aborted: false, stable: true })
})

/** Each console call is one readable line: one string argument, 'graceful: <what> {json}'. */
function checkLines (t: Test, calls: Array<{ args: unknown[] }>, what: string): string[] {
  const lines: string[] = []
  for (const call of calls) {
    t.equal(call.args.length, 1, `${what}: one argument`)
    const line = call.args[0]
    t.equal(typeof line, 'string', `${what}: a string`)
    if (typeof line !== 'string') continue
    lines.push(line)
    t.notOk(line.includes('\n'), `${what}: one line`)
    t.notOk(line.includes('[object Object]'), `${what}: no [object Object]`)
    t.match(line, /^graceful: [^{]+ \{.*\}$/, `${what}: 'graceful: <message> {json}'`)
    t.doesNotThrow(() => JSON.parse(line.slice(line.indexOf('{'))), `${what}: the fields are JSON`)
  }
  return lines
}

for (const how of ['logger: console', 'the default logger'] as const) {
  t.test(`${how} writes one readable line per event`, async (t) => {
    const info = t.capture(console, 'info')
    const warn = t.capture(console, 'warn')
    const error = t.capture(console, 'error')
    const g = graceful(how === 'logger: console' ? { signals: false, logger: console } : { signals: false })
    const app = express()
    app.use(g)
    const server = app.listen(0, '127.0.0.1')
    t.teardown(() => { server.close() })
    await once(server, 'listening')
    g.afterDrain(function closePool () { throw new Error('pool boom') })
    const report = await bounded(g.shutdown('test'), 'g.shutdown()')
    t.equal(report.exitCode, 1)

    const infoLines = checkLines(t, info.calls, 'info')
    t.ok(infoLines.some((l) => l.startsWith('graceful: shutdown started ') && l.includes('"reason":"test"')), 'shutdown started')
    t.ok(infoLines.some((l) => l.startsWith('graceful: draining ')), 'draining')
    const errorLines = checkLines(t, error.calls, 'error')
    t.ok(errorLines.some((l) => l.startsWith('graceful: hook failed ') && l.includes('pool boom') && l.includes('closePool')),
      'the failed hook, its name and its error')
    const warnLines = checkLines(t, warn.calls, 'warn')
    const done = warnLines.find((l) => l.startsWith('graceful: shutdown complete'))
    t.ok(done, 'the report line')
    t.match(JSON.parse(done?.slice(done.indexOf('{')) ?? '{}'), { report: { reason: 'test', exitCode: 1 } })
  })
}

t.test('a logger that throws never stops the shutdown', async (t) => {
  let broken = false
  const write = (): void => { if (broken) throw new Error('the log destination has ended') }
  const g = graceful({ signals: false, logger: { info: write, warn: write, error: write } })
  const app = express()
  app.use(g)
  app.get('/', (_req, res) => { res.send('hello') })
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const warned = once(process, 'warning') as Promise<[Error & { code?: string }]>
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => { agent.destroy() })
  await send({ port: portOf(server), agent, path: '/' })
  broken = true
  const report = await settleWithin(g.shutdown(), 'shutdown()', 5000)
  t.match(report, { exitCode: 0, timedOut: false })
  t.equal(g.phase, 'closed')
  t.equal(server.listening, false, 'the listener is closed')
  const [warning] = await settleWithin(warned, 'the process warning', 5000)
  t.equal(warning.code, 'GRACEFUL_LOGGER_THREW')
})

// routeTable() and probe(): the core's helpers for plain request listeners (node:http, Koa, Hono), in process
// on real servers.
import t, { type Test } from 'tap'
import http, { type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { Graceful, consoleLogger, probe, routeTable, type ErrorCode, type GracefulOptions, type RouteOf } from '@graceful/core'
import { HOST, request } from './helpers/client.js'
import { deferred, portOf } from './helpers/harness.js'

function req (method: string, url: string): IncomingMessage {
  return { method, url } as IncomingMessage
}

t.test('routeTable matches method and raw path', async (t) => {
  const metrics = { serveDuringDrain: true }
  const user = { timeout: 100 }
  const files = { abortOnDrain: true }
  const post = { timeout: 5000 }
  const root = { serveDuringDrain: true, timeout: 1 }
  const routeOf = routeTable({
    'GET /metrics': metrics,
    '/users/:id': user,
    'ALL /files/*': files,
    'post /upload': post,
    'HEAD /': root
  })
  const cases: Array<[string, string, object | undefined]> = [
    ['GET', '/metrics', { serveDuringDrain: true, abortOnDrain: false, timeout: null }],
    ['HEAD', '/metrics', { serveDuringDrain: true }],
    ['GET', '/metrics?format=text', { serveDuringDrain: true }],
    ['GET', '/Metrics/', { serveDuringDrain: true }],
    ['POST', '/metrics', undefined],
    ['GET', '/metrics/x', undefined],
    ['GET', '/metricsx', undefined],
    ['DELETE', '/users/42', { timeout: 100 }],
    ['GET', '/users/', undefined],
    ['GET', '/users/42/posts', undefined],
    ['GET', '/users//', undefined],
    ['PUT', '/files/a', { abortOnDrain: true }],
    ['GET', '/files/a/b/c.txt', { abortOnDrain: true }],
    ['GET', '/files', undefined],
    ['GET', '/files/', undefined],
    ['GET', '/files//a', undefined],
    ['POST', '/upload', { timeout: 5000 }],
    ['PUT', '/upload', undefined],
    ['HEAD', '/', { serveDuringDrain: true, timeout: 1 }],
    ['GET', '/', undefined],
    ['GET', '/nothing', undefined]
  ]
  for (const [method, url, want] of cases) {
    const got = routeOf(req(method, url))
    if (want === undefined) t.equal(got, undefined, `${method} ${url}: no route`)
    else t.match(got, want, `${method} ${url}`)
  }
  t.equal(routeOf(req('GET', '/metrics')), routeOf(req('HEAD', '/metrics')), 'one resolved object per route')
})

t.test('routeTable: the first key that matches wins', async (t) => {
  const routeOf = routeTable({ '/api/health': { serveDuringDrain: true }, '/api/*': { timeout: 50 } })
  t.match(routeOf(req('GET', '/api/health')), { serveDuringDrain: true, timeout: null })
  t.match(routeOf(req('GET', '/api/orders')), { serveDuringDrain: false, timeout: 50 })
  t.equal(routeTable({})(req('GET', '/')), undefined, 'an empty table matches nothing')
})

t.test('routeTable checks every key and value at start-up', async (t) => {
  const bad: Array<[unknown, ErrorCode, RegExp]> = [
    [null, 'GRACEFUL_ERR_ROUTES', /instead got 'null'/],
    [[], 'GRACEFUL_ERR_ROUTES', /instead got '\[\]'/],
    [{ metrics: {} }, 'GRACEFUL_ERR_ROUTE_TABLE_KEY', /bad key 'metrics': the path must start with \//],
    [{ 'GET metrics': {} }, 'GRACEFUL_ERR_ROUTE_TABLE_KEY', /bad key 'GET metrics'/],
    [{ '/a/*/b': {} }, 'GRACEFUL_ERR_ROUTE_TABLE_KEY', /\* may only be the last segment/],
    [{ '/users/:': {} }, 'GRACEFUL_ERR_ROUTE_TABLE_KEY', /':' is not a :name segment/],
    [{ '/users/{id}': {} }, 'GRACEFUL_ERR_ROUTE_TABLE_KEY', /'\{id\}' is not a literal segment/],
    [{ '/a//b': {} }, 'GRACEFUL_ERR_ROUTE_TABLE_KEY', /'' is not a literal segment/],
    [{ '/x': { serveDuringDrian: true } }, 'GRACEFUL_ERR_ROUTE_OPTION', /'serveDuringDrian' for route '\/x' is unknown/],
    [{ '/x': { timeout: -1 } }, 'GRACEFUL_ERR_ROUTE_OPTION', /'timeout' for route '\/x' must be/],
    [{ '/x': true }, 'GRACEFUL_ERR_ROUTE_OPTION', /for route '\/x' must be an object, instead got 'true'/]
  ]
  for (const [routes, code, message] of bad) {
    const err = t.throws(() => routeTable(routes as Record<string, never>)) as Error & { code?: string }
    t.ok(err instanceof TypeError, `${code} is a TypeError`)
    t.equal(err.code, code)
    t.match(err.message, message)
  }
})

interface Plain {
  graceful: Graceful
  port: number
  server: http.Server
}

/** A plain node:http server drained by the core, answering probes first, as the README shows it. */
async function plainServer (t: Test, options: GracefulOptions, routeOf?: RouteOf, handler?: http.RequestListener): Promise<Plain> {
  const graceful = new Graceful({ signals: false, logger: false, ...options }, routeOf === undefined ? {} : { routeOf })
  const server = http.createServer((req, res) => {
    if (probe(graceful, req, res)) return
    if (handler !== undefined) return handler(req, res)
    res.end('app')
  })
  graceful.attach(server)
  server.listen(0, HOST)
  await once(server, 'listening')
  t.teardown(async () => {
    await graceful.shutdown()
    server.close()
  })
  return { graceful, port: portOf(server), server }
}

t.test('probe answers readiness and liveness while serving, and nothing else', async (t) => {
  let checked = true
  const { port } = await plainServer(t, { readiness: { path: '/readyz', check: () => checked }, liveness: { path: '/livez' } })
  const ready = await request(port, false, { path: '/readyz' })
  t.match(ready, { status: 200, body: '{"status":"ready","phase":"serving"}' })
  t.equal(ready.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(ready.headers['cache-control'], 'no-store')
  t.match(await request(port, false, { path: '/readyz?full=1' }), { status: 200 }, 'the query string is not part of the path')
  t.match(await request(port, false, { path: '/livez' }), { status: 200, body: '{"status":"alive","phase":"serving"}' })
  t.match(await request(port, false, { path: '/livez', method: 'HEAD' }), { status: 200, body: '' }, 'HEAD: no body')
  t.match(await request(port, false, { path: '/' }), { status: 200, body: 'app' }, 'other paths reach the app')
  t.match(await request(port, false, { path: '/readyz/x' }), { status: 200, body: 'app' })
  checked = false
  t.match(await request(port, false, { path: '/readyz' }), { status: 503, body: '{"status":"unavailable","phase":"serving"}' }, 'check failing: 503')
})

t.test('probe: readiness turns 503 from the first moment of the shutdown, liveness stays 200', async (t) => {
  const { graceful, port } = await plainServer(t, { readiness: {}, liveness: {} })
  // The lame duck lasts until the beforeDrain hooks have settled: this one holds it while we probe.
  const lameDuck = deferred()
  graceful.beforeDrain(() => lameDuck.promise)
  const shutdown = graceful.shutdown()
  t.equal(graceful.phase, 'lameduck')
  t.match(await request(port, false, { path: '/readyz' }), { status: 503, body: '{"status":"unavailable","phase":"lameduck"}' })
  t.match(await request(port, false, { path: '/livez' }), { status: 200, body: '{"status":"alive","phase":"lameduck"}' })
  t.match(await request(port, false, { path: '/' }), { status: 200, body: 'app' }, 'the app is still served in the lame duck')
  lameDuck.resolve()
  t.match(await shutdown, { exitCode: 0 })
})

t.test('probe does nothing when no probe is configured', async (t) => {
  const { port } = await plainServer(t, {})
  t.match(await request(port, false, { path: '/readyz' }), { status: 200, body: 'app' })
  t.match(await request(port, false, { path: '/livez' }), { status: 200, body: 'app' })
})

t.test('the drain takes a request\'s options from routeTable: abortOnDrain aborts its shutdownSignal at the drain start', async (t) => {
  const aborted = deferred<unknown>()
  const started = deferred()
  const { graceful, port } = await plainServer(t, {}, routeTable({ 'GET /events': { abortOnDrain: true } }), (req, res) => {
    const signal = graceful.signalFor(req)
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('event: hello\n\n')
    started.resolve()
    signal.addEventListener('abort', () => {
      aborted.resolve(signal.reason)
      res.end('event: bye\n\n')
    })
  })
  const answer = request(port, false, { path: '/events' })
  await started.promise
  const report = graceful.shutdown()
  t.match(await aborted.promise, { name: 'AbortError', code: 'GRACEFUL_DRAINING' })
  t.match(await answer, { status: 200, body: 'event: hello\n\nevent: bye\n\n' })
  t.match(await report, { inFlightAtStart: 1, completed: 1, aborted: 0, exitCode: 0 })
})

t.test('the drain takes a request\'s options from routeTable: a route timeout cuts only that route', async (t) => {
  const held = deferred()
  const both = { n: 0, done: deferred() }
  const { graceful, port } = await plainServer(t, { timeout: 60_000 }, routeTable({ '/stuck': { timeout: 0 } }), (req, res) => {
    if (++both.n === 2) both.done.resolve()
    if (req.url === '/stuck') return // never answers: cut at its own deadline
    held.promise.then(() => res.end('slow'))
  })
  const stuck = request(port, false, { path: '/stuck' })
  const slow = request(port, false, { path: '/slow' })
  await both.done.promise
  const report = graceful.shutdown()
  await t.rejects(stuck, 'the stuck request is cut at its route timeout')
  held.resolve()
  t.match(await slow, { status: 200, body: 'slow' }, 'the other finishes')
  t.match(await report, { inFlightAtStart: 2, completed: 1, aborted: 1, timedOut: false, exitCode: 1 })
})

t.test('consoleLogger prints one line per entry: the message, then its fields as JSON', async (t) => {
  const lines: Array<[string, string]> = []
  for (const level of ['info', 'warn', 'error'] as const) {
    const original = console[level]
    console[level] = (line: string) => { lines.push([level, line]) }
    t.teardown(() => { console[level] = original })
  }
  const log = consoleLogger()
  log.info({ inFlight: 2 }, 'graceful: draining')
  log.warn({ report: { exitCode: 1 } }, 'graceful: shutdown complete, not clean')
  const err = new Error('boom')
  log.error({ err })
  t.same(lines.slice(0, 2), [
    ['info', 'graceful: draining {"inFlight":2}'],
    ['warn', 'graceful: shutdown complete, not clean {"report":{"exitCode":1}}']
  ])
  t.equal(lines[2]?.[0], 'error')
  t.same(JSON.parse((lines[2]?.[1] as string).slice(1)), { err: { name: 'Error', message: 'boom', stack: err.stack } }, 'an error keeps its name, message and stack')
})

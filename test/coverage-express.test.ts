// Express adapter cases the other tests do not reach: finding the middleware at listen time inside
// mounted routers (and not too deep), Express 4's `_router`, servers without a request listener, two
// graceful middlewares on one app, servers alternating on one middleware, the console logger's output,
// and isReady(). Real servers on port 0 at 127.0.0.1.
import t, { type Test } from 'tap'
import express, { type Express } from 'express'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { graceful, type GracefulMiddleware } from '@graceful/express'
import { captureLogger, portOf, type LogEntry } from './helpers/harness.js'
import { get, probe, RawConnection } from './helpers/http-lite.js'
import { settleWithin } from './helpers/bounded.js'

// Proves "does not hang" only; machines are noisy.
const BOUND_MS = 5000

const bounded = <T>(promise: Promise<T>, what: string): Promise<T> => settleWithin(promise, what, BOUND_MS)

/** app.listen() on port 0, with the server closed and `g` shut down at teardown. */
async function listen (t: Test, app: Express | http.RequestListener, g: GracefulMiddleware): Promise<http.Server> {
  const server = typeof (app as Express).listen === 'function'
    ? (app as Express).listen(0, '127.0.0.1')
    : http.createServer(app).listen(0, '127.0.0.1')
  t.teardown(async () => {
    server.closeAllConnections()
    await g.shutdown()
    if (server.listening) server.close()
  })
  await once(server, 'listening')
  return server
}

t.test('app.listen() finds the middleware inside a mounted router, past handlers without a stack', async (t) => {
  const g = graceful({ signals: false, logger: false })
  const router = express.Router()
  router.use(g)
  router.get('/', (_req, res) => { res.send('from router') })
  const app = express()
  app.use(function before (_req, _res, next) { next() })
  app.use(router)
  const server = await listen(t, app, g)
  const port = portOf(server)
  // No request yet: only the listen-time discovery can have attached the server.
  await bounded(g.shutdown(), 'shutdown')
  t.equal(server.listening, false, 'the server was attached at listen time, so the shutdown closed its listener')
  t.equal(await probe(port), 'refused')
})

t.test('app.listen() does not look deeper than 8 nested routers', async (t) => {
  const g = graceful({ signals: false, logger: false })
  let inner = express.Router()
  inner.use(g)
  for (let i = 0; i < 9; i++) {
    const outer = express.Router()
    outer.use(inner)
    inner = outer
  }
  const app = express()
  app.use(inner)
  app.get('/', (_req, res) => { res.send('ok') })
  const server = await listen(t, app, g)
  await bounded(g.shutdown(), 'shutdown')
  t.equal(server.listening, true, 'the server was not found at listen time, so the shutdown did not close it')
})

t.test("a server whose listener keeps an Express 4 style '_router' is found at listen time", async (t) => {
  const g = graceful({ signals: false, logger: false })
  const app = express()
  app.use(g)
  app.get('/', (_req, res) => { res.send('ok') })
  // Express 4 keeps its router on `_router`; this wrapper shows only that shape.
  const express4 = Object.assign(function express4App (req: http.IncomingMessage, res: http.ServerResponse) { app(req, res) }, {
    _router: { stack: [{ handle: g }] }
  })
  const server = await listen(t, express4, g)
  const c = new RawConnection(portOf(server))
  t.teardown(() => c.destroy())
  c.write(get('/'))
  const [res] = await c.responses(1)
  t.equal(res?.body, 'ok')
  await bounded(g.shutdown(), 'shutdown')
  t.equal(server.listening, false, 'the server was attached, so the shutdown closed its listener')
})

t.test('a listening server without a request listener is left alone', async (t) => {
  const g = graceful({ signals: false, logger: false })
  const server = net.createServer((socket) => { socket.end() })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { if (server.listening) server.close() })
  await bounded(g.shutdown(), 'shutdown')
  t.equal(server.listening, true, 'a net server is not adopted')
})

t.test('a second graceful middleware on the same server logs an error and serves requests instead of failing them', async (t) => {
  const errors = t.capture(console, 'error')
  t.capture(console, 'info')
  const logs: LogEntry[] = []
  const first = graceful({ signals: false, logger: captureLogger(logs) })
  // No logger option: the console logger, which renders the error with its name and message.
  const second = graceful({ signals: false })
  const app = express()
  app.use(first)
  app.use(second)
  app.get('/signal', (req, res) => { res.json({ aborted: req.shutdownSignal.aborted, isSignal: req.shutdownSignal instanceof AbortSignal }) })
  const server = await listen(t, app, first)
  const c = new RawConnection(portOf(server))
  t.teardown(() => c.destroy())
  c.write(get('/signal') + get('/signal'))
  const [a, b] = await c.responses(2)
  t.equal(a?.status, 200, 'requests are served')
  t.equal(b?.status, 200)
  t.same(JSON.parse(a?.body ?? '{}'), { aborted: false, isSignal: true }, 'req.shutdownSignal still works')
  const calls = errors().map((r) => String(r.args[0]))
  t.equal(calls.length, 1, 'the conflict is logged once, not per request')
  t.match(calls[0], /^graceful: this server is drained by another graceful instance; this middleware will not drain it \{"err":\{"name":"\w*Error","message":"[^"]+","stack":"/)
  t.equal(logs.filter((l) => l.level === 'error').length, 0, 'the first middleware logs no error: it drains the server')
  await bounded(first.shutdown(), 'shutdown')
  t.equal(server.listening, false, 'the first middleware drains the server')
  await bounded(second.shutdown(), 'shutdown of the second')
})

t.test('requests alternating between two servers on one middleware are all served, and both are drained', async (t) => {
  const g = graceful({ signals: false, logger: false })
  const app = express()
  app.use(g)
  app.get('/', (_req, res) => { res.send('ok') })
  const one = http.createServer(app)
  const two = http.createServer(app)
  g.attach(one).attach(two)
  for (const s of [one, two]) {
    s.listen(0, '127.0.0.1')
    await once(s, 'listening')
  }
  const c1 = new RawConnection(portOf(one))
  const c2 = new RawConnection(portOf(two))
  t.teardown(async () => {
    c1.destroy()
    c2.destroy()
    await g.shutdown()
  })
  const bodies: string[] = []
  for (const [c, n] of [[c1, 1], [c2, 1], [c1, 2], [c2, 2]] as const) {
    c.write(get('/'))
    bodies.push((await c.responses(n))[n - 1]?.body ?? '')
  }
  t.same(bodies, ['ok', 'ok', 'ok', 'ok'])
  await bounded(g.shutdown(), 'shutdown')
  t.equal(one.listening, false)
  t.equal(two.listening, false)
})

t.test('the console logger prints a line without a message as the object alone', async (t) => {
  const infos = t.capture(console, 'info')
  const g = graceful({ signals: false, logger: console })
  t.teardown(() => g.shutdown())
  g.instance.log.info({ inFlight: 0 })
  t.same(infos().map((r) => r.args[0]), [' {"inFlight":0}'])
})

t.test('isReady() is true while serving and false once the shutdown has started', async (t) => {
  const g = graceful({ signals: false, logger: false })
  t.equal(await g.isReady(), true)
  const shutdown = g.shutdown()
  t.equal(await g.isReady(), false)
  await bounded(shutdown, 'shutdown')
})

t.test('called on a plain node:http request (no Express), the middleware still gives it a shutdownSignal', async (t) => {
  const g = graceful({ signals: false, logger: false })
  const server = await listen(t, (req: http.IncomingMessage, res: http.ServerResponse) => {
    g(req, res, () => { res.end(String((req as unknown as { shutdownSignal: unknown }).shutdownSignal instanceof AbortSignal)) })
  }, g)
  const answer = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: portOf(server), path: '/', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => resolve(body))
    }).on('error', reject)
  })
  t.equal(answer, 'true')
})

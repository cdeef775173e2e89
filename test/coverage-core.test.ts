// Core engine cases the contract tests do not reach: the signal registry wiring, hooks added or failing
// oddly, TLS and HTTP/2 servers, servers attached mid-drain, per-route options set by hand, the idle
// sweep's and the drain deadline's rarer branches, and pipelined responses that already say close.
// Real servers on port 0 at 127.0.0.1, raw sockets as clients.
import t, { type Test } from 'tap'
import http from 'node:http'
import https from 'node:https'
import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { CHANNELS, Graceful, resolveRouteOptions, type GracefulOptions, type PhaseMessage, type Integration, type RouteOptions, type ShutdownReport } from '@graceful/core'
import { captureLogger, deferred, Holds, portOf, UPGRADE_RESPONSE, type LogEntry } from './helpers/harness.js'
import { get, probe, RawConnection } from './helpers/http-lite.js'
import { settleWithin } from './helpers/bounded.js'
import { CERT, KEY } from './helpers/tls.js'

// Proves "does not hang" only; machines are noisy.
const BOUND_MS = 5000

const bounded = <T>(promise: Promise<T>, what: string): Promise<T> => settleWithin(promise, what, BOUND_MS)

interface Started {
  g: Graceful
  server: http.Server
  port: number
  holds: Holds
  logs: LogEntry[]
  /** Resolves when the drain starts (the core logs 'graceful: draining' then). */
  draining: Promise<void>
  /** Resolves when the drain deadline passes with work left. */
  deadline: Promise<void>
}

/**
 * A plain node:http app on a core instance: /hold/:id waits for its release (answering 'released <id>'),
 * anything else answers 'ok <path>'; during the drain it admits or rejects like an adapter does.
 * `routes` maps a path prefix to per-route options, given to the core through `Integration.routeOf`.
 */
async function start (t: Test, options: GracefulOptions = {}, routes: Record<string, RouteOptions> = {},
  handle?: (req: http.IncomingMessage, res: http.ServerResponse, s: Started) => boolean,
  pre?: (req: http.IncomingMessage, s: Started) => void): Promise<Started> {
  const logs: LogEntry[] = []
  const draining = deferred()
  const deadline = deferred()
  const capture = captureLogger(logs)
  const logger = {
    info: (obj: object, msg?: string) => { capture.info(obj, msg); if (msg === 'graceful: draining') draining.resolve() },
    warn: (obj: object, msg?: string) => { capture.warn(obj, msg); if (msg?.startsWith('graceful: drain deadline passed') === true) deadline.resolve() },
    error: capture.error
  }
  const resolved = Object.entries(routes).map(([prefix, r]) => [prefix, resolveRouteOptions(r, prefix)] as const)
  const integration: Integration = {
    routeOf: (req) => resolved.find(([prefix]) => req.url?.startsWith(prefix) === true)?.[1]
  }
  const g = new Graceful({ signals: false, logger, ...options }, integration)
  const holds = new Holds()
  const s = { g, holds, logs, draining: draining.promise, deadline: deadline.promise } as Started
  const server = http.createServer((req, res) => {
    pre?.(req, s)
    if (g.closing && !g.admit(req, res)) return g.reject(req, res)
    if (handle?.(req, res, s) === true) return
    const m = /^\/hold\/([^/?]+)/.exec(req.url ?? '')
    if (m !== null) {
      const id = m[1] as string
      holds.hold(id, g.signalFor(req)).then(() => { if (!res.destroyed) res.end(`released ${id}`) }, () => {})
      return
    }
    res.end(`ok ${req.url ?? ''}`)
  })
  g.attach(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  s.server = server
  s.port = portOf(server)
  t.teardown(async () => {
    for (const id of ['a', 'b', 'c', 'own', 'plain', 'slow']) holds.release(id)
    server.closeAllConnections()
    await g.shutdown()
    if (server.listening) server.close()
  })
  return s
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

/** A raw connection whose socket the server has adopted (its 'connection' event has fired). */
async function connect (t: Test, s: Started): Promise<RawConnection> {
  const accepted = once(s.server, 'connection')
  const c = new RawConnection(s.port)
  t.teardown(() => c.destroy())
  await c.connected()
  await accepted
  return c
}

t.test('an instance with signals registers one process handler and removes it when its shutdown ends', async (t) => {
  const before = process.listenerCount('SIGUSR2')
  const g = new Graceful({ signals: ['SIGUSR2'], exit: false, logger: false })
  t.teardown(() => g.shutdown())
  t.same(g.signals, ['SIGUSR2'], 'signals getter reflects the option')
  t.equal(g.exit, false, 'exit getter reflects the option')
  t.equal(process.listenerCount('SIGUSR2'), before + 1, 'one SIGUSR2 listener was installed')
  const report = await bounded(g.shutdown(), 'shutdown')
  t.equal(report.exitCode, 0)
  t.equal(process.listenerCount('SIGUSR2'), before, 'the SIGUSR2 listener is gone after the shutdown')
  t.equal(new Graceful({ signals: false }).exit, true, 'exit defaults to true')
})

t.test('afterDrain() throws GRACEFUL_ERR_SHUTTING_DOWN from the cleanup phase and once closed', async (t) => {
  const g = new Graceful({ signals: false, logger: false })
  let fromCleanup: unknown
  let phaseSeen = ''
  g.afterDrain(() => {
    phaseSeen = g.phase
    try {
      g.afterDrain(() => {})
    } catch (err) {
      fromCleanup = err
    }
  })
  const report = await bounded(g.shutdown(), 'shutdown')
  t.equal(phaseSeen, 'cleanup')
  t.match(fromCleanup, { code: 'GRACEFUL_ERR_SHUTTING_DOWN' }, 'adding a hook during cleanup throws')
  t.equal(report.hooks.length, 1, 'the hook added during cleanup never ran')
  t.throws(() => g.afterDrain(() => {}), { code: 'GRACEFUL_ERR_SHUTTING_DOWN' }, 'adding a hook once closed throws')
})

t.test('a hook that throws or rejects with a non-Error value is recorded with that value described', async (t) => {
  const g = new Graceful({ signals: false, logger: false })
  const ran: string[] = []
  g.afterDrain(() => { ran.push('first'); throw 'plain string' }) // eslint-disable-line no-throw-literal
  g.afterDrain(async () => { ran.push('second'); return Promise.reject(42) }) // eslint-disable-line prefer-promise-reject-errors
  g.afterDrain(() => { ran.push('third') })
  const report = await bounded(g.shutdown(), 'shutdown')
  t.same(ran, ['first', 'second', 'third'], 'a failing hook does not stop the next ones')
  t.equal(report.hooks[0]?.error, '"plain string"')
  t.equal(report.hooks[1]?.error, '42')
  t.equal(report.hooks[2]?.error, undefined)
  t.equal(report.exitCode, 1, 'a failed hook makes the shutdown not clean')
})

t.test('a TLS server: a connection whose handshake completes during the drain is tracked, answered 503 and closed', async (t) => {
  const logs: LogEntry[] = []
  const draining = deferred()
  const capture = captureLogger(logs)
  const g = new Graceful({ signals: false, logger: { ...capture, info: (o: object, m?: string) => { capture.info(o, m); if (m === 'graceful: draining') draining.resolve() } } })
  const holds = new Holds()
  const server = https.createServer({ key: KEY, cert: CERT }, (req, res) => {
    if (g.closing && !g.admit(req, res)) return g.reject(req, res)
    if (req.url === '/hold') {
      holds.hold('a').then(() => res.end('released a'), () => {})
      return
    }
    res.end('ok')
  })
  g.attach(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = portOf(server)
  const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false })
  let raw: net.Socket | undefined
  t.teardown(async () => {
    holds.release('a')
    raw?.destroy()
    agent.destroy()
    server.closeAllConnections()
    await g.shutdown()
  })
  // A request held over TLS keeps the drain open.
  const held = new Promise<{ status: number, body: string, connection: string | undefined }>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/hold', agent }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }))
    }).on('error', reject)
  })
  await holds.entered('a')
  t.equal(g.inFlight, 1, 'the request over TLS is tracked')
  // A TCP connection accepted before the drain, whose TLS handshake has not started yet.
  const rawAccepted = once(server, 'connection')
  raw = net.connect({ port, host: '127.0.0.1' })
  raw.on('error', () => {})
  await once(raw, 'connect')
  await rawAccepted
  const shutdown = g.shutdown()
  await draining.promise
  const secure = tls.connect({ socket: raw, rejectUnauthorized: false })
  await once(secure, 'secureConnect')
  let text = ''
  secure.on('data', (c: Buffer) => { text += c.toString('latin1') })
  secure.write(get('/late'))
  await once(secure, 'close')
  t.match(text, /^HTTP\/1\.1 503 /, 'the request on the late TLS connection is answered 503')
  t.match(text, /\r\nconnection: close\r\n/i, 'with Connection: close')
  holds.release('a')
  const a = await held
  t.same(a, { status: 200, body: 'released a', connection: 'close' }, 'the held request is served with Connection: close')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { inFlightAtStart: 1, completed: 1, rejected: 1, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
})

t.test('attach() during the drain stops the server listening and tracks connections it already had', async (t) => {
  const s = await start(t)
  const other = http.createServer((req, res) => {
    if (s.g.closing && !s.g.admit(req, res)) return s.g.reject(req, res)
    res.end('other')
  })
  other.listen(0, '127.0.0.1')
  await once(other, 'listening')
  const otherPort = portOf(other)
  t.teardown(() => { other.closeAllConnections(); if (other.listening) other.close() })
  // A keep-alive connection to the other server, made before it is attached.
  const before = new RawConnection(otherPort)
  t.teardown(() => before.destroy())
  before.write(get('/'))
  const [first] = await before.responses(1)
  t.equal(first?.body, 'other')

  const a = await connect(t, s)
  a.write(get('/hold/a'))
  await s.holds.entered('a')
  const shutdown = s.g.shutdown()
  await s.draining
  s.g.attach(other)
  t.equal(other.listening, true, 'closed a turn later, after its own \'listening\' listeners could run')
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.equal(other.listening, false, 'a server attached during the drain stops listening')
  t.equal(await probe(otherPort), 'refused', 'new connections are refused')
  before.write(get('/late'))
  const [, late] = await before.responses(2)
  t.equal(late?.status, 503, 'a request on a connection the server had before attach() is rejected')
  t.equal(late?.headers.connection, 'close')
  await before.ended()
  s.holds.release('a')
  const [held] = await a.responses(1)
  t.equal(held?.body, 'released a')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { completed: 1, rejected: 1, destroyedSockets: 0, timedOut: false, exitCode: 0 })
})

t.test('an upgrade on a connection made before attach() is tracked and holds the drain until the deadline', async (t) => {
  const upgraded: net.Socket[] = []
  const server = http.createServer((_req, res) => { res.end('ok') })
  server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
    upgraded.push(socket)
    socket.write(UPGRADE_RESPONSE)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const g = new Graceful({ signals: false, logger: false, timeout: 200 })
  t.teardown(async () => {
    for (const u of upgraded) u.destroy()
    await g.shutdown()
    if (server.listening) server.close()
  })
  const accepted = once(server, 'connection')
  const c = net.connect({ port: portOf(server), host: '127.0.0.1' })
  c.on('error', () => {})
  c.resume()
  t.teardown(() => c.destroy())
  await once(c, 'connect')
  await accepted
  // Attached after the connection was accepted: the engine first sees this socket at its upgrade.
  g.attach(server)
  const upgrading = once(server, 'upgrade')
  c.write('GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n')
  await upgrading
  const closed = once(c, 'close')
  const report = await bounded(g.shutdown(), 'shutdown')
  await bounded(closed, 'the upgraded connection closing')
  t.equal(upgraded[0]?.destroyed, true, 'the upgraded socket was destroyed')
  t.match(report, { timedOut: true, destroyedSockets: 1, exitCode: 1 }, 'it was cut at the deadline, as a tracked upgrade')
})

t.test('setRoute(req, undefined) makes a request use the defaults instead of the integration route', async (t) => {
  const s = await start(t, {}, { '/route': { serveDuringDrain: true } }, undefined, (req, s) => {
    if (req.url === '/route/plain') s.g.setRoute(req, undefined)
  })
  // Each late request rides behind a held one on its own connection, so no idle sweep can race it.
  const a = await connect(t, s)
  const b = await connect(t, s)
  a.write(get('/hold/a'))
  b.write(get('/hold/b'))
  await s.holds.entered('a')
  await s.holds.entered('b')
  // setRoute() before admit() decides the route the core sees for the request, as the Fastify adapter does.
  const shutdown = s.g.shutdown()
  await s.draining
  const arrived = Promise.all([arrival(s.server, '/route/served'), arrival(s.server, '/route/plain')])
  a.write(get('/route/served'))
  b.write(get('/route/plain'))
  await arrived
  s.holds.release('a')
  s.holds.release('b')
  const [, served] = await a.responses(2)
  const [, plain] = await b.responses(2)
  t.equal(served?.status, 200, 'the integration route (serveDuringDrain) is served')
  t.equal(served?.body, 'ok /route/served')
  t.equal(plain?.status, 503, 'the request whose route was set to undefined is rejected with the defaults')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { rejected: 1, exitCode: 0 })
})

t.test("shutdownSignal first read during the drain on an abortOnDrain route is already aborted with 'GRACEFUL_DRAINING'", async (t) => {
  const s = await start(t, {}, { '/abort': { abortOnDrain: true, serveDuringDrain: true } }, (req, res, s) => {
    if (req.url !== '/abort') return false
    const signal = s.g.signalFor(req)
    res.end(JSON.stringify({ aborted: signal.aborted, code: (signal.reason as { code?: string } | undefined)?.code, same: signal === s.g.signalFor(req) }))
    return true
  })
  const a = await connect(t, s)
  a.write(get('/hold/a'))
  await s.holds.entered('a')
  const shutdown = s.g.shutdown()
  await s.draining
  const arrived = arrival(s.server, '/abort')
  a.write(get('/abort'))
  await arrived
  s.holds.release('a')
  const [, late] = await a.responses(2)
  t.equal(late?.status, 200, 'the late request is served')
  t.same(JSON.parse(late?.body ?? '{}'), { aborted: true, code: 'GRACEFUL_DRAINING', same: true })
  await bounded(shutdown, 'shutdown')
})

t.test('a late request on a serveDuringDrain route with its own timeout is cut at that timeout, not the global one', async (t) => {
  const s = await start(t, { timeout: 30_000 }, { '/hold/slow': { serveDuringDrain: true, timeout: 150 } })
  const b = await connect(t, s)
  b.write(get('/hold/b'))
  await s.holds.entered('b')
  const shutdown = s.g.shutdown()
  await s.draining
  b.write(get('/hold/slow'))
  await s.holds.entered('slow')
  s.holds.release('b')
  const [first] = await b.responses(1)
  t.equal(first?.body, 'released b')
  const signal = s.holds.signals.get('slow') as AbortSignal
  await bounded(once(signal, 'abort'), 'the route deadline')
  t.equal((signal.reason as { code?: string }).code, 'GRACEFUL_DEADLINE')
  await bounded(b.ended(), 'the connection being cut')
  const report = await bounded(shutdown, 'shutdown (well before the 30 s global timeout)')
  t.match(report, { completed: 1, aborted: 1, destroyedSockets: 1, timedOut: false, exitCode: 1 })
})

t.test('the global deadline cuts requests without a route timeout and leaves those with their own', async (t) => {
  const s = await start(t, { timeout: 200 }, { '/hold/own': { timeout: 20_000 } })
  const plain = await connect(t, s)
  const own = await connect(t, s)
  plain.write(get('/hold/plain'))
  own.write(get('/hold/own'))
  await s.holds.entered('plain')
  await s.holds.entered('own')
  const shutdown = s.g.shutdown()
  await bounded(s.deadline, 'the global deadline')
  const warn = s.logs.find((l) => l.msg?.startsWith('graceful: drain deadline passed') === true)
  t.same(warn?.obj, { requests: 1, connections: 1 }, 'one request and its connection are cut')
  t.equal(s.holds.signals.get('plain')?.aborted, true, 'the request without a route timeout is aborted')
  t.equal((s.holds.signals.get('plain')?.reason as { code?: string }).code, 'GRACEFUL_DEADLINE')
  t.equal(s.holds.signals.get('own')?.aborted, false, 'the request with its own timeout is not')
  await bounded(plain.ended(), 'the cut connection closing')
  s.holds.release('own')
  const [res] = await own.responses(1)
  t.equal(res?.body, 'released own', 'the request with its own timeout is still served')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { inFlightAtStart: 2, completed: 1, aborted: 1, destroyedSockets: 1, timedOut: true, exitCode: 1 })
})

t.test('a global deadline with only route-timeout work left closes idle connections and does not time out', async (t) => {
  // The deadline (20 ms) passes before the idle grace (100 ms): the deadline itself closes the idle one.
  const s = await start(t, { timeout: 20 }, { '/hold/own': { timeout: 20_000 } })
  const idle = await connect(t, s)
  const own = await connect(t, s)
  own.write(get('/hold/own'))
  await s.holds.entered('own')
  const shutdown = s.g.shutdown()
  await bounded(idle.ended(), 'the idle connection closing')
  t.equal(s.holds.signals.get('own')?.aborted, false, 'the request with its own timeout is not aborted')
  s.holds.release('own')
  const [res] = await own.responses(1)
  t.equal(res?.body, 'released own')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { completed: 1, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
  t.notOk(s.logs.some((l) => l.msg?.startsWith('graceful: drain deadline passed') === true), 'nothing was cut')
})

t.test('a partial request head on a keep-alive connection is cut at the deadline', async (t) => {
  const s = await start(t, { timeout: 300 })
  const c = await connect(t, s)
  c.write(get('/first'))
  const [first] = await c.responses(1)
  t.equal(first?.body, 'ok /first')
  // Written before the drain, so the server reads it well within the idle grace.
  c.write('GET /second HTTP/1.1\r\nHost: localhost\r\n')
  const shutdown = s.g.shutdown()
  await bounded(c.ended(), 'the connection being cut')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { completed: 0, aborted: 0, destroyedSockets: 1, timedOut: true, exitCode: 1 })
})

t.test('the idle sweep does not close a connection while the server still has bytes queued for it', async (t) => {
  const SIZE = 32 * 1024 * 1024
  let serverSocket: net.Socket | undefined
  const s = await start(t, {}, {}, (req, res) => {
    if (req.url !== '/stream') return false
    serverSocket = req.socket
    // After its response, the app writes raw bytes the slow client has not read yet.
    res.end('ok', () => { req.socket.write(Buffer.alloc(SIZE, 'x')) })
    return true
  })
  const slow = net.connect({ port: s.port, host: '127.0.0.1' })
  t.teardown(() => slow.destroy())
  let received = 0
  let slowClosed = false
  slow.on('close', () => { slowClosed = true })
  const firstChunk = deferred()
  let paused = false
  slow.on('data', (c: Buffer) => {
    received += c.length
    if (!paused) {
      paused = true
      slow.pause()
      firstChunk.resolve()
    }
  })
  await once(slow, 'connect')
  slow.write(get('/stream'))
  await firstChunk.promise
  // An idle connection made after the slow one: both go idle at the drain start, the slow one first.
  const idle = await connect(t, s)
  t.ok((serverSocket?.writableLength ?? 0) > 0, 'the server has bytes queued for the slow client')
  const shutdown = s.g.shutdown()
  await bounded(idle.ended(), 'the idle connection being swept')
  t.equal(slowClosed, false, 'the connection with queued bytes survived the sweep that closed the idle one')
  t.equal(serverSocket?.destroyed, false)
  const allRead = deferred()
  slow.on('data', () => { if (received >= SIZE) allRead.resolve() })
  slow.resume()
  await bounded(allRead.promise, 'reading the queued bytes')
  await bounded(once(slow, 'close'), 'the slow connection closing once flushed')
  t.ok(received >= SIZE, 'the client received every queued byte')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { destroyedSockets: 0, timedOut: false, exitCode: 0 })
})

t.test('the drain ends once the sweep has closed the last idle connection, without waiting for its close event', async (t) => {
  // With thousands of idle connections, their 'close' events come a loop phase after the sweep closed their
  // fds; waiting for them made a big drain ~100 ms longer. A connection with nothing pending is gone once closed.
  let serverSocket: net.Socket | undefined
  const s = await start(t, {}, {}, (req) => { serverSocket = req.socket; return false })
  const c = await connect(t, s)
  c.write(get('/first'))
  const [first] = await c.responses(1)
  t.equal(first?.body, 'ok /first')
  const socket = serverSocket as net.Socket
  let closeEmitted = false
  socket.once('close', () => { closeEmitted = true })
  let atCleanup: { destroyed: boolean, closeEmitted: boolean } | undefined
  const onPhase = (message: unknown): void => {
    const m = message as PhaseMessage
    if (m.instance === s.g && m.phase === 'cleanup') atCleanup = { destroyed: socket.destroyed, closeEmitted }
  }
  subscribe(CHANNELS.phase, onPhase)
  t.teardown(() => unsubscribe(CHANNELS.phase, onPhase))
  const report = await bounded(s.g.shutdown(), 'shutdown')
  t.same(atCleanup, { destroyed: true, closeEmitted: false }, 'the cleanup began with the idle connection closed, before its close event')
  await bounded(c.ended(), 'the client seeing its connection closed')
  t.match(report, { completed: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
})

t.test('a connection upgraded behind a pipelined request is not swept as idle when that request ends', async (t) => {
  const s = await start(t, { timeout: 300 })
  const upgraded: net.Socket[] = []
  s.server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => { upgraded.push(socket) })
  const upgrading = once(s.server, 'upgrade')
  const c = await connect(t, s)
  c.write(get('/hold/a') + 'GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n')
  await s.holds.entered('a')
  await upgrading
  const shutdown = s.g.shutdown()
  await s.draining
  s.holds.release('a')
  const [res] = await c.responses(1)
  t.equal(res?.body, 'released a', 'the request ahead of the upgrade is answered')
  await bounded(c.ended(), 'the upgraded connection being cut')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { completed: 1, timedOut: true, destroyedSockets: 1 }, 'it stayed open until the deadline cut it')
  t.equal(upgraded[0]?.destroyed, true)
})

t.test('a handler that destroys its own connection when its request is cut is not counted as a destroyed socket', async (t) => {
  const s = await start(t, { timeout: 20_000 }, { '/self': { timeout: 100 } }, (req, res, s) => {
    if (req.url !== '/self') return false
    const signal = s.g.signalFor(req)
    signal.addEventListener('abort', () => { res.destroy() })
    s.holds.hold('self').catch(() => {})
    return true
  })
  const c = await connect(t, s)
  c.write(get('/self'))
  await s.holds.entered('self')
  const shutdown = s.g.shutdown()
  await bounded(c.ended(), 'the handler closing its connection')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { aborted: 1, destroyedSockets: 0, timedOut: false, exitCode: 1 })
})

t.test('a queued pipelined response that already says Connection: close is left as it is', async (t) => {
  const s = await start(t, {}, {}, (req, res) => {
    if (req.url !== '/close') return false
    res.setHeader('connection', 'close')
    res.end('closing')
    return true
  })
  const c = await connect(t, s)
  // The second response is built and queued behind the held one before the drain starts.
  const queued = arrival(s.server, '/close')
  c.write(get('/hold/a') + get('/close'))
  await s.holds.entered('a')
  await queued
  const shutdown = s.g.shutdown()
  await s.draining
  s.holds.release('a')
  const [first, second] = await c.responses(2)
  t.equal(first?.body, 'released a')
  t.equal(second?.body, 'closing')
  t.equal(second?.headers.connection, 'close')
  t.equal((second?.raw.match(/connection:/gi) ?? []).length, 1, 'one Connection header')
  await bounded(c.ended(), 'the connection closing after the last response')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { completed: 2, destroyedSockets: 0, timedOut: false, exitCode: 0 })
})

t.test('an HTTP/2 server (allowHTTP1): sessions get GOAWAY at the drain start, open streams finish, the drain ends cleanly', async (t) => {
  const draining = deferred()
  const g = new Graceful({ signals: false, timeout: 5000, logger: { info: (_o, m) => { if (m === 'graceful: draining') draining.resolve() }, warn: () => {}, error: () => {} } })
  const holds = new Holds()
  const server = http2.createSecureServer({ key: KEY, cert: CERT, allowHTTP1: true }, (req, res) => {
    const rq = req as unknown as http.IncomingMessage
    const rs = res as unknown as http.ServerResponse
    if (g.closing && !g.admit(rq, rs)) return g.reject(rq, rs)
    if (req.url === '/hold') {
      holds.hold('a', g.signalFor(rq)).then(() => res.end('released a'), () => {})
      return
    }
    res.end('ok')
  })
  g.attach(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const session = http2.connect(`https://127.0.0.1:${portOf(server as unknown as http.Server)}`, { rejectUnauthorized: false })
  session.on('error', () => {})
  t.teardown(async () => {
    holds.release('a')
    session.destroy()
    await g.shutdown()
  })
  const request = (path: string) => new Promise<{ status: number, headers: http2.IncomingHttpHeaders, body: string }>((resolve, reject) => {
    const stream = session.request({ ':path': path })
    let headers: http2.IncomingHttpHeaders = {}
    let body = ''
    stream.on('response', (h) => { headers = h })
    stream.on('data', (c: Buffer) => { body += c.toString() })
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body }))
    stream.on('error', reject)
    stream.end()
  })
  t.equal((await request('/')).body, 'ok')
  const held = request('/hold')
  await holds.entered('a')
  const goaway = once(session, 'goaway')
  const shutdown = g.shutdown()
  await draining.promise
  await bounded(goaway, 'the client being told to go away')
  t.equal(holds.signals.get('a')?.aborted, false, 'the open stream is not cut')
  holds.release('a')
  t.equal((await held).body, 'released a', 'the open stream is served to its end')
  const report: ShutdownReport = await bounded(shutdown, 'shutdown')
  t.match(report, { inFlightAtStart: 1, completed: 1, destroyedSockets: 0, timedOut: false, exitCode: 0 })
})

/** An HTTP/2 server drained by a fresh instance; resolves `draining` when the drain starts. */
async function h2Server (t: Test, timeout: number, handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, g: Graceful) => void) {
  const draining = deferred()
  const g = new Graceful({ signals: false, timeout, logger: { info: (_o, m) => { if (m === 'graceful: draining') draining.resolve() }, warn: () => {}, error: () => {} } })
  const server = http2.createSecureServer({ key: KEY, cert: CERT }, (req, res) => handler(req, res, g))
  g.attach(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => g.shutdown())
  return { g, server, draining: draining.promise, port: portOf(server as unknown as http.Server) }
}

t.test('an HTTP/2 stream still open at the deadline has its signal aborted, then is cut', async (t) => {
  let signal: AbortSignal | undefined
  const s = await h2Server(t, 200, (req, _res, g) => { signal = g.signalFor(req as unknown as http.IncomingMessage) })
  const session = http2.connect(`https://127.0.0.1:${s.port}`, { rejectUnauthorized: false })
  session.on('error', () => {})
  t.teardown(() => session.destroy())
  const stream = session.request({ ':path': '/hang' })
  stream.on('error', () => {})
  stream.end()
  await bounded(once(s.server, 'stream'), 'the stream reaching the server')
  const closed = new Promise<void>((resolve) => { stream.on('close', resolve) })
  const report = await bounded(s.g.shutdown(), 'shutdown')
  await bounded(closed, 'the stream being cut')
  t.equal(stream.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR, 'the client sees a reset with an error, not the end of a response')
  t.equal(signal?.aborted, true, 'its shutdownSignal aborted')
  t.match(report, { inFlightAtStart: 1, aborted: 1, timedOut: true, exitCode: 1 })
})

t.test('an HTTP/2 session that starts during the drain is told to go away at once', async (t) => {
  const s = await h2Server(t, 5000, (_req, res) => { res.end('ok') })
  // The TCP connection is accepted before the drain; its TLS handshake, and so its session, come after.
  const raw = net.connect(s.port, '127.0.0.1')
  await once(raw, 'connect')
  const shutdown = s.g.shutdown()
  await s.draining
  const session = http2.connect(`https://127.0.0.1:${s.port}`, {
    createConnection: () => tls.connect({ socket: raw, ALPNProtocols: ['h2'], rejectUnauthorized: false })
  })
  session.on('error', () => {})
  t.teardown(() => session.destroy())
  await bounded(once(session, 'goaway'), 'GOAWAY for the new session')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { destroyedSockets: 0, timedOut: false, exitCode: 0 })
})

t.test('a deadline shorter than the idle grace closes what holds no work without counting it: an HTTP/2 session its client keeps open, a TLS handshake', async (t) => {
  const g = new Graceful({ signals: false, logger: false, timeout: 200 })
  const h2 = http2.createServer((_req, res) => { res.end('ok') })
  const secure = https.createServer({ key: KEY, cert: CERT }, (_req, res) => { res.end('ok') })
  for (const server of [h2, secure]) {
    g.attach(server)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
  }
  const session = http2.connect(`http://127.0.0.1:${portOf(h2 as never)}`)
  session.on('error', () => {})
  const unread = session.request({ ':path': '/' })
  unread.on('error', () => {})
  unread.pause()
  await once(unread, 'response')
  const raw = net.connect(portOf(secure), '127.0.0.1')
  raw.on('error', () => {})
  await once(raw, 'connect')
  t.teardown(() => { session.destroy(); raw.destroy() })
  const rawClosed = once(raw, 'close')
  const report = await bounded(g.shutdown(), 'shutdown')
  t.match(report, { destroyedSockets: 0, timedOut: false, exitCode: 0 })
  await bounded(rawClosed, 'the handshake closed')
})

t.test('an HTTP/2 app that answers \'stream\' events itself is drained by its sessions: GOAWAY, the stream ends, the drain ends', async (t) => {
  const g = new Graceful({ signals: false, logger: false, timeout: 10_000 })
  const ended = deferred()
  const server = http2.createServer()
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 })
    stream.write('first ')
    ended.promise.then(() => stream.end('last'), () => {})
  })
  g.attach(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const session = http2.connect(`http://127.0.0.1:${portOf(server as never)}`)
  session.on('error', () => {})
  t.teardown(() => session.destroy())
  const stream = session.request({ ':path': '/' })
  let body = ''
  stream.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
  await once(stream, 'response')
  const shutdown = g.shutdown()
  ended.resolve()
  await bounded(once(stream, 'end'), 'the stream ending')
  t.equal(body, 'first last')
  t.match(await bounded(shutdown, 'shutdown'), { destroyedSockets: 0, timedOut: false, exitCode: 0 })
})

t.test('a restart drain logs the lame-duck time it takes: none, whatever `delay` says', async (t) => {
  const logs: LogEntry[] = []
  const g = new Graceful({ signals: false, logger: captureLogger(logs), delay: 1000 })
  const report = await bounded(g.restartDrain(), 'the restart drain')
  t.match(logs.find((l) => l.msg === 'graceful: shutdown started')?.obj, { reason: 'restart', delay: 0 })
  t.equal(report.reason, 'restart')
})

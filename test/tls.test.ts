// HTTPS and HTTP/2 through the adapters: Fastify with `https` and with `http2: true` (TLS), Express on
// https.createServer() with attach(). In-process for the branches, then one forked process per kind for
// SIGTERM and the exit. Real servers on port 0 at 127.0.0.1, Node's own https/http2/tls clients.
import t, { type Test } from 'tap'
import express from 'express'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import net, { type AddressInfo, type Server } from 'node:net'
import tls from 'node:tls'
import { graceful as fastifyGraceful } from '@graceful/fastify'
import { graceful as expressGraceful } from '@graceful/express'
import type { GracefulOptions, ShutdownReport } from '@graceful/core'
import { captureLogger, deferred, Holds, type GracefulLike, type LogEntry } from './helpers/harness.js'
import { connectError, get, RawClient } from './helpers/client.js'
import { settleWithin } from './helpers/bounded.js'
import { until } from './helpers/drain.js'
import { FIXTURE_EXEC_ARGV, fixtureEnv } from './helpers/fork.js'
import { CERT, KEY } from './helpers/tls.js'
import type { FixtureConfig, ReadyMessage } from './fixtures/fixture-common.js'

// Proves "does not hang" only; machines are noisy.
const BOUND_MS = 5000
const bounded = <T>(promise: Promise<T>, what: string, ms = BOUND_MS): Promise<T> => settleWithin(promise, what, ms)

interface SecureApp {
  port: number
  graceful: GracefulLike
  holds: Holds
  logs: LogEntry[]
  /** Resolves when the drain starts (the core logs 'graceful: draining' then). */
  draining: Promise<void>
  /** Resolves when the drain deadline passes with work left (the core logs it). */
  deadline: Promise<void>
}

type Kind = 'fastify https' | 'express https' | 'fastify http2'

/** Route options of /long/:id, /mid/:id, /late/:id: timeouts of their own, longer than the tests' global ones. */
const LONG = { timeout: 5000 }
const MID = { timeout: 600 }
const LATE = { timeout: 1200 }

/**
 * An app over TLS: GET / answers 'hello', GET /hold/:id, /long/:id, /mid/:id and /late/:id wait for
 * their release and answer 'released <id>' (the last three with the route timeouts above). Shut down at teardown.
 */
async function start (t: Test, kind: Kind, options: GracefulOptions = {}): Promise<SecureApp> {
  const logs: LogEntry[] = []
  const holds = new Holds()
  const draining = deferred()
  const deadline = deferred()
  const capture = captureLogger(logs)
  const logger = {
    ...capture,
    info (obj: object, msg?: string) { capture.info(obj, msg); if (msg === 'graceful: draining') draining.resolve() },
    warn (obj: object, msg?: string) { capture.warn(obj, msg); if (msg?.startsWith('graceful: drain deadline passed') === true) deadline.resolve() }
  }
  const opts: GracefulOptions = { signals: false, logger, ...options }
  let server: Server
  let g: GracefulLike
  if (kind === 'express https') {
    const mw = expressGraceful({ ...opts, routes: { '/long/:id': LONG, '/mid/:id': MID, '/late/:id': LATE } })
    const app = express()
    app.use(mw)
    app.get('/', (_req, res) => { res.send('hello') })
    app.get(['/hold/:id', '/long/:id', '/mid/:id', '/late/:id'], (req, res, next) => {
      const id = req.params.id as string
      holds.hold(id, req.shutdownSignal).then(() => res.send(`released ${id}`), next)
    })
    server = https.createServer({ key: KEY, cert: CERT }, app)
    mw.attach(server)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    g = mw
  } else {
    // One set of routes for both: typed as the default instance, which is what they use of it.
    const app = (kind === 'fastify https'
      ? Fastify({ logger: false, https: { key: KEY, cert: CERT } })
      : Fastify({ logger: false, http2: true, https: { key: KEY, cert: CERT } })) as unknown as FastifyInstance
    await app.register(fastifyGraceful, opts)
    app.get('/', async () => 'hello')
    const hold = async (request: FastifyRequest<{ Params: { id: string } }>) => {
      await holds.hold(request.params.id, request.shutdownSignal)
      return `released ${request.params.id}`
    }
    app.get('/hold/:id', hold)
    app.get('/long/:id', { config: { graceful: LONG } }, hold)
    app.get('/mid/:id', { config: { graceful: MID } }, hold)
    app.get('/late/:id', { config: { graceful: LATE } }, hold)
    await app.listen({ port: 0, host: '127.0.0.1' })
    server = app.server
    g = app.graceful
  }
  t.teardown(async () => {
    for (const id of holds.signals.keys()) holds.release(id)
    await g.shutdown()
  })
  return { port: (server.address() as AddressInfo).port, graceful: g, holds, logs, draining: draining.promise, deadline: deadline.promise }
}

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** An HTTPS GET; rejects when the connection fails before a complete response. */
function httpsGet (port: number, path: string, agent: https.Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        if (!res.complete) return reject(new Error('response ended before it was complete'))
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

/** A raw TLS connection (HTTP/1.1 only), for exact bytes and for telling a FIN from a reset. */
async function tlsClient (t: Test, port: number): Promise<RawClient> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  t.teardown(() => socket.destroy())
  await once(socket, 'secureConnect')
  return new RawClient(socket)
}

interface H2Answer {
  status: number
  headers: http2.IncomingHttpHeaders
  body: string
}

/** One HTTP/2 GET on `session`; rejects when the stream fails or is cut before it ends. */
function h2Get (session: http2.ClientHttp2Session, path: string): { stream: http2.ClientHttp2Stream, answer: Promise<H2Answer> } {
  const stream = session.request({ ':path': path })
  const answer = new Promise<H2Answer>((resolve, reject) => {
    let headers: http2.IncomingHttpHeaders = {}
    let body = ''
    stream.setEncoding('utf8')
    stream.on('response', (h) => { headers = h })
    stream.on('data', (chunk: string) => { body += chunk })
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body }))
    stream.on('error', reject)
    stream.on('close', () => reject(new Error(`stream closed before its end (RST_STREAM code ${stream.rstCode ?? 'none'})`)))
  })
  stream.end()
  return { stream, answer }
}

/**
 * Tries a new stream on a session that got GOAWAY: the error code it fails with. Node 20 and 22 throw
 * from request(); Node 24 returns the stream and fails it on the next tick.
 */
function newStream (session: http2.ClientHttp2Session): Promise<string> {
  try {
    const stream = session.request({ ':path': '/' })
    return new Promise((resolve) => {
      stream.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
      stream.on('response', () => resolve('a response'))
    })
  } catch (err) {
    return Promise.resolve((err as NodeJS.ErrnoException).code ?? String(err))
  }
}

function h2Connect (t: Test, port: number): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false })
  session.on('error', () => {})
  t.teardown(() => session.destroy())
  return session
}

for (const kind of ['fastify https', 'express https'] as const) {
  t.test(kind, async (t) => {
    t.test('a request in flight at the drain start completes with Connection: close; new connections are refused', async (t) => {
      const app = await start(t, kind)
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false })
      t.teardown(() => agent.destroy())
      const first = await httpsGet(app.port, '/', agent)
      t.same([first.status, first.body, first.headers.connection], [200, 'hello', 'keep-alive'], 'served over TLS with keep-alive before the shutdown')
      const held = httpsGet(app.port, '/hold/a', agent)
      await app.holds.entered('a')
      const shutdown = app.graceful.shutdown()
      await app.draining
      t.equal((await connectError(app.port)).code, 'ECONNREFUSED', 'a new connection is refused')
      t.equal(app.holds.signals.get('a')?.aborted, false, 'the request in flight is not told to stop')
      app.holds.release('a')
      const a = await bounded(held, 'the held request')
      t.same([a.status, a.body, a.headers.connection], [200, 'released a', 'close'], 'the request in flight completes, with Connection: close')
      const report = await bounded(shutdown, 'shutdown')
      t.match(report, { inFlightAtStart: 1, completed: 1, rejected: 0, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('a request that arrives on an open TLS connection during the drain is answered 503 with Connection: close and Retry-After', async (t) => {
      const app = await start(t, kind)
      const client = await tlsClient(t, app.port)
      await client.write(get('/'))
      t.equal((await client.response()).status, 200)
      // Half a request head before the drain: the connection is busy, not idle, and the request is
      // complete (and answered) only once the drain has started.
      await client.write('GET /late HTTP/1.1\r\nHost: 127.0.0.1\r\n')
      const shutdown = app.graceful.shutdown()
      await app.draining
      await client.write('\r\n')
      const late = await bounded(client.response(), 'the late response')
      t.equal(late.status, 503)
      t.equal(late.headers.connection, 'close')
      t.equal(late.headers['retry-after'], '1')
      t.match(JSON.parse(late.body.toString()), { statusCode: 503 })
      t.match(await bounded(client.closed, 'the connection closing'), { fin: true, reset: false }, 'then the server closes the connection in order')
      const report = await bounded(shutdown, 'shutdown')
      t.match(report, { inFlightAtStart: 0, rejected: 1, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('an idle keep-alive TLS connection is closed in order at the drain, long before the timeout', async (t) => {
      const app = await start(t, kind, { timeout: 10_000 })
      const client = await tlsClient(t, app.port)
      await client.write(get('/'))
      t.equal((await client.response()).headers.connection, 'keep-alive')
      const report = await bounded(app.graceful.shutdown(), 'shutdown')
      t.match(await bounded(client.closed, 'the connection closing'), { fin: true, reset: false }, 'a FIN, not a reset')
      t.ok(report.durationMs < BOUND_MS, `the drain ends without waiting for the timeout (${report.durationMs} ms)`)
      t.match(report, { destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('a request still in flight at the deadline is aborted and its connection destroyed, within delay + timeout', async (t) => {
      const app = await start(t, kind, { delay: 100, timeout: 300 })
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false })
      t.teardown(() => agent.destroy())
      const held = httpsGet(app.port, '/hold/a', agent)
      const failed = held.then(() => 'answered', (err: NodeJS.ErrnoException) => err.code ?? err.message)
      await app.holds.entered('a')
      const began = performance.now()
      const report = await bounded(app.graceful.shutdown(), 'shutdown', 100 + 300 + BOUND_MS)
      t.ok(performance.now() - began < 100 + 300 + BOUND_MS, 'the shutdown ends within delay + timeout (and a margin)')
      t.equal(app.holds.signals.get('a')?.aborted, true, 'the request\'s shutdownSignal aborted')
      t.equal(await bounded(failed, 'the client seeing the cut'), 'ECONNRESET', 'the client sees its connection cut')
      t.match(report, { inFlightAtStart: 1, completed: 0, aborted: 1, destroyedSockets: 1, timedOut: true, exitCode: 1 })
    })
  })
}

// The first bytes of a TLS ClientHello (record header and part of the handshake header): a client that stalls
// mid-handshake.
const HALF_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03])

for (const kind of ['fastify https', 'express https', 'fastify http2'] as const) {
  t.test(`${kind}: a connection still in its TLS handshake at the drain start (silent, or half a ClientHello) is closed once quiet for the grace and holds nothing up`, async (t) => {
    const app = await start(t, kind, { timeout: 10_000 })
    const silent = net.connect(app.port, '127.0.0.1')
    const half = net.connect(app.port, '127.0.0.1')
    for (const socket of [silent, half]) {
      socket.on('error', () => {})
      t.teardown(() => socket.destroy())
      await once(socket, 'connect')
    }
    half.write(HALF_CLIENT_HELLO)
    await until(() => app.graceful.stats().connections === 2, 'the server holding both handshakes')
    const closed = Promise.all([once(silent, 'close'), once(half, 'close')])
    const report = await bounded(app.graceful.shutdown(), 'shutdown')
    await bounded(closed, 'both connections closing')
    t.match(report, { inFlightAtStart: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    t.ok(report.hooks.every((h) => h.error === undefined), `every hook passed (${JSON.stringify(report.hooks)})`)
  })
}

t.test('fastify http2', async (t) => {
  t.test('a stream in flight completes; the session gets GOAWAY at the drain start, so no new stream and no new connection', async (t) => {
    const app = await start(t, 'fastify http2', { timeout: 10_000 })
    const session = h2Connect(t, app.port)
    const first = await h2Get(session, '/').answer
    t.same([first.status, first.body], [200, 'hello'], 'served over HTTP/2 before the shutdown')
    const held = h2Get(session, '/hold/a')
    await app.holds.entered('a')
    const goaway = once(session, 'goaway') as Promise<[number, number]>
    const closed = once(session, 'close')
    const shutdown = app.graceful.shutdown()
    await app.draining
    const [code] = await bounded(goaway, 'GOAWAY')
    t.equal(code, http2.constants.NGHTTP2_NO_ERROR, 'a graceful GOAWAY (NO_ERROR), not an error')
    t.equal(await bounded(newStream(session), 'a new stream failing'), 'ERR_HTTP2_GOAWAY_SESSION', 'the client opens no new stream on the session')
    t.equal((await connectError(app.port)).code, 'ECONNREFUSED', 'a new connection is refused')
    t.equal(app.holds.signals.get('a')?.aborted, false, 'the open stream is not told to stop')
    app.holds.release('a')
    const a = await bounded(held.answer, 'the held stream')
    t.same([a.status, a.body], [200, 'released a'], 'the stream in flight is served to its end')
    t.equal(a.headers.connection, undefined, 'no Connection header on HTTP/2')
    await bounded(closed, 'the session closing once its last stream ended')
    const report = await bounded(shutdown, 'shutdown')
    t.ok(report.durationMs < BOUND_MS, 'without waiting for the timeout or the session timeout')
    t.match(report, { inFlightAtStart: 1, completed: 1, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
  })

  t.test('an idle session is closed at the drain start, long before the deadline', async (t) => {
    const app = await start(t, 'fastify http2', { timeout: 10_000 })
    const session = h2Connect(t, app.port)
    t.equal((await h2Get(session, '/').answer).body, 'hello')
    const goaway = once(session, 'goaway')
    const closed = once(session, 'close')
    const report = await bounded(app.graceful.shutdown(), 'shutdown')
    await bounded(goaway, 'GOAWAY')
    await bounded(closed, 'the idle session closing')
    t.ok(report.durationMs < BOUND_MS, `the drain ends without waiting for the timeout (${report.durationMs} ms)`)
    t.match(report, { inFlightAtStart: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
  })

  t.test('a stream still open at the deadline has its shutdownSignal aborted and is cut; the report says so', async (t) => {
    const app = await start(t, 'fastify http2', { delay: 100, timeout: 300 })
    const session = h2Connect(t, app.port)
    const hung = h2Get(session, '/hold/a')
    const cut = hung.answer.then(() => 'answered', () => 'cut')
    await app.holds.entered('a')
    const began = performance.now()
    const report = await bounded(app.graceful.shutdown(), 'shutdown', 100 + 300 + BOUND_MS)
    t.ok(performance.now() - began < 100 + 300 + BOUND_MS, 'the shutdown ends within delay + timeout (and a margin)')
    t.equal(app.holds.signals.get('a')?.aborted, true, 'the stream\'s shutdownSignal aborted')
    t.equal(await bounded(cut, 'the client seeing the cut'), 'cut', 'the client\'s stream ends without a response')
    t.match(report, { inFlightAtStart: 1, completed: 0, aborted: 1, timedOut: true, exitCode: 1 })
    t.ok(report.destroyedSockets >= 1, 'the cut stream is counted as destroyed')
    t.ok(app.logs.some((l) => l.level === 'warn' && l.msg === 'graceful: drain deadline passed, cutting what is left'), 'the deadline is logged')
  })

  t.test('three streams of one connection cut at the deadline count as one destroyed connection', async (t) => {
    const app = await start(t, 'fastify http2', { timeout: 200 })
    const session = h2Connect(t, app.port)
    const cut = ['a', 'b', 'c'].map((id) => h2Get(session, `/hold/${id}`).answer.then(() => 'answered', () => 'cut'))
    await Promise.all(['a', 'b', 'c'].map((id) => app.holds.entered(id)))
    const report = await bounded(app.graceful.shutdown(), 'shutdown')
    t.same(await Promise.all(cut), ['cut', 'cut', 'cut'])
    t.match(report, { inFlightAtStart: 3, aborted: 3, destroyedSockets: 1, timedOut: true, exitCode: 1 })
  })

  t.test('a stream with a longer route timeout outlives the global deadline that cuts another stream of its session', async (t) => {
    const app = await start(t, 'fastify http2', { timeout: 200 })
    const session = h2Connect(t, app.port)
    const short = h2Get(session, '/hold/short')
    const shortCut = short.answer.then(() => 'answered', () => 'cut')
    const long = h2Get(session, '/long/long')
    await Promise.all([app.holds.entered('short'), app.holds.entered('long')])
    const shutdown = app.graceful.shutdown()
    await bounded(app.deadline, 'the global deadline')
    t.equal(await bounded(shortCut, 'the short stream being cut'), 'cut', 'the stream on the global timeout is cut')
    t.equal(app.holds.signals.get('long')?.aborted, false, 'the stream on its own longer timeout is not told to stop')
    app.holds.release('long')
    const answer = await bounded(long.answer, 'the long stream')
    t.same([answer.status, answer.body], [200, 'released long'], 'and is served to its end on the same session')
    t.match(await bounded(shutdown, 'shutdown'), { inFlightAtStart: 2, completed: 1, aborted: 1, timedOut: true, exitCode: 1 })
  })

  t.test('past the global deadline, the connection kept for streams with longer route timeouts is cut with the last of them', async (t) => {
    const app = await start(t, 'fastify http2', { timeout: 200 })
    const session = h2Connect(t, app.port)
    const closed = once(session, 'close')
    const outcome = (path: string) => h2Get(session, path).answer.then(() => 'answered', () => 'cut')
    const streams = [outcome('/hold/a'), outcome('/mid/b'), outcome('/late/c')]
    await Promise.all(['a', 'b', 'c'].map((id) => app.holds.entered(id)))
    const report = await bounded(app.graceful.shutdown(), 'shutdown', LATE.timeout + BOUND_MS)
    t.same(await Promise.all(streams), ['cut', 'cut', 'cut'], 'each stream is cut at its own deadline')
    t.same(['a', 'b', 'c'].map((id) => app.holds.signals.get(id)?.aborted), [true, true, true], 'each stream\'s shutdownSignal aborted')
    await bounded(closed, 'the session closing')
    t.match(report, { inFlightAtStart: 3, completed: 0, aborted: 3, timedOut: true, exitCode: 1 })
  })

  t.test('an HTTP/1.1 client of an allowHTTP1 server gets Connection: close on its request in flight', async (t) => {
    const holds = new Holds()
    const draining = deferred()
    const app = Fastify({ logger: false, http2: true, https: { key: KEY, cert: CERT, allowHTTP1: true } })
    await app.register(fastifyGraceful, { signals: false, logger: { info (_o, msg) { if (msg === 'graceful: draining') draining.resolve() }, warn () {}, error () {} } })
    app.get('/hold', async (request) => {
      await holds.hold('a', request.shutdownSignal)
      return 'released'
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => { holds.release('a'); await app.close() })
    const client = await tlsClient(t, (app.server.address() as AddressInfo).port)
    await client.write(get('/hold'))
    await holds.entered('a')
    const shutdown = app.graceful.shutdown()
    await draining.promise
    holds.release('a')
    const res = await bounded(client.response(), 'the held response')
    t.same([res.status, res.body.toString(), res.headers.connection], [200, 'released', 'close'])
    t.match(await bounded(client.closed, 'the connection closing'), { fin: true, reset: false })
    t.match(await bounded(shutdown, 'shutdown'), { completed: 1, destroyedSockets: 0, timedOut: false, exitCode: 0 })
  })
})

// ---- SIGTERM to a forked process ------------------------------------------------------------------

interface Child {
  ready: Promise<ReadyMessage>
  entered (what: string): Promise<void>
  exited: Promise<{ code: number | null, output: string }>
  kill (signal: NodeJS.Signals): void
}

function forkSecure (t: Test, kind: 'fastify-h2' | 'express-https', config: FixtureConfig): Child {
  const proc = fork(new URL('./fixtures/secure-app.ts', import.meta.url), [kind], {
    execArgv: FIXTURE_EXEC_ARGV,
    env: fixtureEnv({ GRACEFUL_FIXTURE: JSON.stringify(config) }),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  let output = ''
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const messages = new Map<string, () => void>()
  const seen = new Set<string>()
  let readyResolve!: (m: ReadyMessage) => void
  const ready = new Promise<ReadyMessage>((resolve) => { readyResolve = resolve })
  proc.on('message', (m: { port?: number, entered?: string }) => {
    if (m.port !== undefined) readyResolve(m as ReadyMessage)
    if (m.entered !== undefined) {
      seen.add(m.entered)
      messages.get(m.entered)?.()
    }
  })
  const exited = new Promise<{ code: number | null, output: string }>((resolve) => {
    // 'close' comes after the output has ended.
    proc.on('close', (code) => resolve({ code, output }))
  })
  return {
    ready: Promise.race([ready, exited.then(({ output }) => { throw new Error(`fixture ended before it listened:\n${output}`) })]),
    entered: (what) => seen.has(what) ? Promise.resolve() : new Promise((resolve) => { messages.set(what, resolve) }),
    exited,
    kill: (signal) => { proc.kill(signal) }
  }
}

/** The report of the 'graceful: shutdown complete' log line (pino JSON or the Express console line). */
function reportOf (output: string): ShutdownReport | undefined {
  for (const line of output.split('\n')) {
    if (line.startsWith('{')) {
      const entry = JSON.parse(line) as { msg?: string, report?: ShutdownReport }
      if (entry.msg?.startsWith('graceful: shutdown complete') === true) return entry.report
    }
    const m = /^graceful: shutdown complete(?:, not clean)? (\{.*\})$/.exec(line)
    if (m !== null) return (JSON.parse(m[1] as string) as { report: ShutdownReport }).report
  }
  return undefined
}

// A forked child compiles TypeScript on a loaded machine: only proves "no hang".
const CHILD_BOUND_MS = 30_000

t.test('SIGTERM to a Fastify HTTP/2 process: GOAWAY, the stream in flight completes, the hung one is cut at the deadline, exit 1 in time', async (t) => {
  const child = forkSecure(t, 'fastify-h2', { options: { timeout: 500 }, releaseOnDrain: true })
  const { port } = await bounded(child.ready, 'the fixture listening', CHILD_BOUND_MS)
  const session = h2Connect(t, port)
  const hold = h2Get(session, '/hold')
  const hang = h2Get(session, '/hang')
  const cut = hang.answer.then(() => 'answered', () => 'cut')
  await bounded(Promise.all([child.entered('hold'), child.entered('hang')]), 'both streams reaching their handlers', CHILD_BOUND_MS)
  const goaway = once(session, 'goaway')
  const began = performance.now()
  child.kill('SIGTERM')
  await bounded(goaway, 'GOAWAY')
  const held = await bounded(hold.answer, 'the held stream')
  t.same([held.status, held.body], [200, 'released'], 'the stream in flight is served to its end')
  t.equal(await bounded(cut, 'the hung stream being cut'), 'cut')
  const exit = await bounded(child.exited, 'the exit', CHILD_BOUND_MS)
  t.ok(performance.now() - began < 500 + CHILD_BOUND_MS, 'exits without hanging')
  t.equal(exit.code, 1, 'exit code 1: a stream was cut')
  t.match(reportOf(exit.output), { reason: 'SIGTERM', inFlightAtStart: 2, completed: 1, aborted: 1, timedOut: true, exitCode: 1 })
})

t.test('SIGTERM to an Express HTTPS process: the request in flight completes with Connection: close, exit 0', async (t) => {
  const child = forkSecure(t, 'express-https', { options: { timeout: 10_000 }, releaseOnDrain: true })
  const { port } = await bounded(child.ready, 'the fixture listening', CHILD_BOUND_MS)
  const agent = new https.Agent({ keepAlive: true, maxSockets: 2, rejectUnauthorized: false })
  t.teardown(() => agent.destroy())
  // Two connections: one carries the request held over the drain start, the other is left idle.
  t.same((await Promise.all([httpsGet(port, '/', agent), httpsGet(port, '/', agent)])).map((r) => r.body), ['hello', 'hello'])
  const held = httpsGet(port, '/hold', agent)
  await bounded(child.entered('hold'), 'the request reaching its handler', CHILD_BOUND_MS)
  child.kill('SIGTERM')
  const res = await bounded(held, 'the held request', CHILD_BOUND_MS)
  t.same([res.status, res.body, res.headers.connection], [200, 'released', 'close'])
  const exit = await bounded(child.exited, 'the exit', CHILD_BOUND_MS)
  t.equal(exit.code, 0)
  const report = reportOf(exit.output)
  t.match(report, { reason: 'SIGTERM', inFlightAtStart: 1, completed: 1, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
  t.ok((report?.durationMs ?? Infinity) < BOUND_MS, 'the idle keep-alive connection does not hold the drain')
})

// Cleartext HTTP/2 (`http2: true` without `https`): drained like HTTP/2 over TLS.
t.test('fastify h2c: a stream in flight completes, and a session whose client keeps it open after GOAWAY (an unread response) holds nothing up', async (t) => {
  const holds = new Holds()
  const app = Fastify({ logger: false, http2: true })
  await app.register(fastifyGraceful, { signals: false, logger: false, timeout: 10_000 })
  app.get('/', async () => 'hello')
  app.get<{ Params: { id: string } }>('/hold/:id', async (request) => {
    await holds.hold(request.params.id, request.shutdownSignal)
    return `released ${request.params.id}`
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as AddressInfo).port
  const lazy = http2.connect(`http://127.0.0.1:${port}`)
  const busy = http2.connect(`http://127.0.0.1:${port}`)
  for (const session of [lazy, busy]) {
    session.on('error', () => {})
    t.teardown(() => session.destroy())
  }
  // A client that never reads its answer keeps its stream, and so its session, open after GOAWAY.
  const unread = lazy.request({ ':path': '/' })
  unread.on('error', () => {})
  unread.pause()
  await once(unread, 'response')
  const held = h2Get(busy, '/hold/a')
  await holds.entered('a')
  const shutdown = app.graceful.shutdown()
  await until(() => app.graceful.phase === 'draining', 'the drain start')
  holds.release('a')
  const answer = await bounded(held.answer, 'the held stream')
  t.same([answer.status, answer.body], [200, 'released a'], 'the stream in flight is served to its end')
  const report = await bounded(shutdown, 'shutdown')
  t.match(report, { inFlightAtStart: 1, completed: 1, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
})

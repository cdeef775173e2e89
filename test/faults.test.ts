// Faults, process by process: real signals to forked fixture apps (test/fixtures/*-app.ts) for what is about
// the process (uncaught errors, a signal before listen, a hook that blocks the loop, 1,000 connections), and
// in-process servers for what is about the engine (a client that reads slowly). In each: nothing that was
// accepted is lost, and the exit code says what happened.
import t, { type Test } from 'tap'
import express from 'express'
import Fastify from 'fastify'
import { once } from 'node:events'
import http, { Agent, request, type IncomingHttpHeaders } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { Graceful, type ShutdownReport } from '@graceful/core'
import { graceful as expressGraceful } from '@graceful/express'
import { graceful as fastifyGraceful } from '@graceful/fastify'
import type { FixtureConfig, ReadyMessage } from './fixtures/fixture-common.js'
import { forkFixture, type Child } from './helpers/child.js'
import { RawClient, get as rawGet, type Closed, type RawResponse } from './helpers/client.js'
import { probe } from './helpers/http-lite.js'
import { settleWithin } from './helpers/bounded.js'

type Adapter = 'fastify' | 'express'
const ADAPTERS: Adapter[] = ['fastify', 'express']
// Generous: a forked child compiles TypeScript on a loaded 2-core machine. Only proves "no hang".
const BOUND_MS = 20_000
const JOBS = 3
t.setTimeout(300_000)

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** A GET on a connection of its own; rejects on a reset or an incomplete response. */
function get (port: number, path: string, agent: Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        if (!res.complete) return reject(new Error('response ended before it was complete'))
        resolve({ status: res.statusCode as number, headers: res.headers, body })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const entered = (m: object): m is { entered: string } => 'entered' in m
const waiting = (m: object): m is { waiting: true } => 'waiting' in m
const isReady = (m: object): m is ReadyMessage => 'port' in m

async function start (t: Test, adapter: Adapter, config: FixtureConfig): Promise<{ child: Child, port: number }> {
  const child = forkFixture(t, `${adapter}-app.ts`, config)
  const ready = await child.message(isReady)
  return { child, port: ready.port }
}

async function exitOf (t: Test, child: Child, code: number): Promise<void> {
  const exit = await child.exited
  t.same({ code: exit.code, signal: exit.signal }, { code, signal: null }, `exits with code ${code}`)
  t.ok(exit.ms < BOUND_MS, `exits without hanging (${Math.round(exit.ms)} ms)`)
}

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: uncaught errors`, { jobs: JOBS }, async (t) => {
    for (const kind of ['exception', 'rejection'] as const) {
      t.test(`an uncaught ${kind} during the drain: the request in flight still completes, then the process exits 1`, async (t) => {
        const { child, port } = await start(t, adapter, { releaseOnDrain: true, errorDuringDrain: kind })
        const answer = get(port, '/hold')
        await child.message(entered)
        child.kill('SIGTERM')
        const res = await answer
        t.equal(res.status, 200)
        t.equal(res.body, 'answered after the error', 'answered in a timer after the error: the process survived it')
        t.equal(res.headers.connection, 'close')
        await exitOf(t, child, 1)
        t.match(child.reports(), [{ reason: 'SIGTERM', inFlightAtStart: 1, completed: 1, aborted: 0, exitCode: 0 }], 'the drain itself was clean')
        t.match(child.processReports(), [{ reason: 'SIGTERM', instances: 1, completed: 1, uncaughtErrors: 1, exitCode: 1 }],
          'one process line says why the exit code is 1')
        const errors = child.logged('graceful: uncaught error during the shutdown')
        t.equal(errors.length, 1, 'the error is logged once')
        t.match(errors[0], kind === 'exception' ? /thrown during the drain/ : /rejected during the drain/)
        t.ok(child.lines().includes('process.exit called with 1'))
      })
    }

    for (const [kind, path, reason] of [['exception', '/throw', 'uncaughtException'], ['rejection', '/reject', 'unhandledRejection']] as const) {
      t.test(`an uncaught ${kind} while serving starts a shutdown (reason ${reason}) that lets the request in flight finish, exit 1`, async (t) => {
        const { child, port } = await start(t, adapter, { releaseOnDrain: true })
        const held = get(port, '/hold')
        await child.message(entered)
        child.mark()
        t.equal((await get(port, path)).status, 200)
        const res = await held
        t.same([res.status, res.body], [200, 'released'])
        await exitOf(t, child, 1)
        t.match(child.reports(), [{ reason, inFlightAtStart: 1, completed: 1, aborted: 0, exitCode: 1 }])
        t.same(child.processReports(), [], 'the one report already says 1')
        const errors = child.logged('graceful: uncaught error, shutting down')
        t.equal(errors.length, 1)
        t.match(errors[0], kind === 'exception' ? /fixture: boom/ : /fixture: rejected/)
      })
    }
  })

  t.test(`${adapter}: a signal before listen`, { jobs: JOBS }, async (t) => {
    if (adapter === 'express') {
      t.test('SIGTERM while the start-up is under way: the process exits 0 at once and never listens', async (t) => {
        const child = forkFixture(t, 'express-app.ts', { delayListen: true })
        await child.message(waiting)
        child.kill('SIGTERM')
        await exitOf(t, child, 0)
        t.match(child.reports(), [{ reason: 'SIGTERM', inFlightAtStart: 0, exitCode: 0 }])
        t.notOk(child.messages.some(isReady), 'never listened')
      })
    } else {
      t.test('SIGTERM while a plugin is still loading: Fastify closes once the plugin is done, the process exits 0 and never listens', async (t) => {
        const child = forkFixture(t, 'fastify-app.ts', { delayListen: true })
        await child.message(waiting)
        child.kill('SIGTERM')
        // Nothing to drain; Fastify's own close waits for the plugin that is still loading.
        await child.waitFor(/graceful: drained/)
        t.equal(child.reports().length, 0, 'the shutdown waits for Fastify\'s close')
        child.send({ go: true })
        await exitOf(t, child, 0)
        const [report] = child.reports()
        t.match(report, { reason: 'SIGTERM', inFlightAtStart: 0, exitCode: 0 })
        t.same(report?.hooks.map((h) => [h.name, h.error]), [['fastify.close', undefined]])
        t.notOk(child.messages.some(isReady), 'never listened')
      })

      t.test('a plugin that never finishes loading holds the shutdown only until hookTimeout, then exit 1', async (t) => {
        const child = forkFixture(t, 'fastify-app.ts', { delayListen: true, options: { hookTimeout: 300 } })
        await child.message(waiting)
        child.kill('SIGTERM')
        await exitOf(t, child, 1)
        const [report] = child.reports()
        t.match(report, { reason: 'SIGTERM', exitCode: 1 })
        t.match(report?.hooks, [{ name: 'fastify.close', error: /did not settle within 300 ms/ }])
      })
    }

    t.test('with exit: false, a listen() that completes after the shutdown is closed at once, and the process ends on its own with 0', async (t) => {
      const child = forkFixture(t, `${adapter}-app.ts`, { delayListen: true, options: { exit: false } })
      await child.message(waiting)
      child.kill('SIGTERM')
      if (adapter === 'fastify') await child.waitFor(/graceful: drained/)
      else await child.waitFor(/graceful: shutdown complete/)
      child.send({ go: true })
      const { port } = await child.message(isReady)
      await child.waitFor(/a server started listening after the shutdown began; closed it/)
      t.equal(await probe(port), 'refused', 'the late listener is closed')
      await exitOf(t, child, 0)
      t.match(child.reports(), [{ reason: 'SIGTERM', exitCode: 0 }])
      t.notOk(child.lines().some((l) => l.startsWith('process.exit called')), 'exit: false: graceful never calls process.exit')
      t.notOk(child.lines().some((l) => l.includes('listen failed')))
    })
  })

  t.test(`${adapter}: a hook that blocks the event loop for a second`, { jobs: JOBS }, async (t) => {
    for (const hook of ['beforeDrain', 'afterDrain'] as const) {
      t.test(`in ${hook}, within hookTimeout: the request in flight completes, the shutdown ends, exit 0`, async (t) => {
        const { child, port } = await start(t, adapter, { releaseOnDrain: true, blockHook: hook, blockMs: 1000 })
        const held = get(port, '/hold')
        await child.message(entered)
        child.kill('SIGTERM')
        const res = await held
        t.same([res.status, res.body, res.headers.connection], [200, 'released', 'close'])
        await exitOf(t, child, 0)
        const [report] = child.reports()
        t.match(report, { reason: 'SIGTERM', inFlightAtStart: 1, completed: 1, aborted: 0, exitCode: 0 })
        const block = report?.hooks.find((h) => h.name === 'blockTheLoop')
        t.ok(block !== undefined && block.ms >= 1000, `the hook is recorded with its time (${String(block?.ms)} ms)`)
        t.equal(block?.error, undefined)
        t.ok(child.lines().includes('app1 hook after the block ran'), 'the next hook runs')
      })

      t.test(`in ${hook}, past hookTimeout (300 ms): recorded as failed though the timer could not fire, the next hook runs, exit 1`, async (t) => {
        const { child, port } = await start(t, adapter, { releaseOnDrain: true, blockHook: hook, blockMs: 1000, options: { hookTimeout: 300 } })
        const held = get(port, '/hold')
        await child.message(entered)
        child.kill('SIGTERM')
        const res = await held
        t.same([res.status, res.body], [200, 'released'])
        await exitOf(t, child, 1)
        const [report] = child.reports()
        t.match(report, { reason: 'SIGTERM', inFlightAtStart: 1, completed: 1, aborted: 0, timedOut: false, exitCode: 1 })
        const names = report?.hooks.map((h) => h.name) ?? []
        const block = report?.hooks[names.indexOf('blockTheLoop')]
        const after = report?.hooks[names.indexOf('afterBlock')]
        t.match(block, { error: /did not settle within 300 ms/ })
        t.ok((block?.ms ?? 0) >= 1000, `its real time is recorded (${String(block?.ms)} ms)`)
        t.ok(after !== undefined && after.error === undefined, 'the next hook runs and passes')
        t.ok(names.indexOf('afterBlock') > names.indexOf('blockTheLoop'))
      })
    }
  })

  t.test(`${adapter}: 1,000 connections at SIGTERM (600 with a request in flight, 400 idle keep-alive)`, async (t) => {
    const BUSY = 600
    const IDLE = 400
    const { child, port } = await start(t, adapter, { releaseOnDrain: true, resources: true })
    const clients: RawClient[] = []
    t.teardown(() => { for (const c of clients) c.destroy() })
    // In batches: the listen backlog is 511, and the machine is busy.
    async function open (n: number): Promise<RawClient[]> {
      const opened: RawClient[] = []
      for (let i = 0; i < n; i += 100) {
        const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => RawClient.connect(port)))
        clients.push(...batch)
        opened.push(...batch)
      }
      return opened
    }
    const idle = await open(IDLE)
    const first = await Promise.all(idle.map(async (c) => {
      await c.write(rawGet('/'))
      return c.response()
    }))
    t.ok(first.every((r) => r.status === 200 && r.headers.connection !== 'close'), 'the idle ones were served with keep-alive')
    const busy = await open(BUSY)
    const answers: Array<Promise<RawResponse>> = busy.map((c) => c.write(rawGet('/hold')).then(() => c.response()))
    await child.messageCount(entered, BUSY)

    child.kill('SIGTERM')
    const responses = await Promise.all(answers)
    const closed: Closed[] = await Promise.all(clients.map((c) => c.closed))
    await exitOf(t, child, 0)

    t.equal(responses.filter((r) => r.status === 200 && r.body.toString() === 'released' && r.headers.connection === 'close').length, BUSY,
      'every request in flight is answered 200 with Connection: close')
    t.equal(closed.filter((c) => c.fin && !c.reset).length, IDLE + BUSY, 'every connection ends with a FIN, none is reset')
    const [report] = child.reports()
    t.match(report, { reason: 'SIGTERM', inFlightAtStart: BUSY, completed: BUSY, rejected: 0, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    const resources = child.lines().find((l) => l.startsWith('app1 resources '))
    const counts = JSON.parse(resources?.slice('app1 resources '.length) ?? 'null') as Record<string, number> | null
    t.ok(counts !== null, 'the fixture printed its resources after the drain')
    t.equal(counts?.TCPSocketWrap, undefined, `no TCP connection is left open (${resources ?? ''})`)
    t.equal(counts?.TCPServerWrap, undefined, 'no listener is left open')
  })
}

// ---- a client that reads its response very slowly: the engine, in-process -------------------------------

const BIG = 32 * 1024 * 1024
const payload = Buffer.alloc(BIG, 'a')

interface BigServer {
  port: number
  graceful: { readonly inFlight: number, shutdown (): Promise<ShutdownReport> }
  /** Resolves once the drain has started. */
  draining: Promise<void>
}

/** A server whose GET /big sends 32 MB: more than the kernel's socket buffers on both ends can hold. */
async function bigServer (t: Test, adapter: Adapter, timeout: number): Promise<BigServer> {
  let drained!: () => void
  const draining = new Promise<void>((resolve) => { drained = resolve })
  const logger = { info: (_o: object, msg?: string) => { if (msg === 'graceful: draining') drained() }, warn () {}, error () {} }
  if (adapter === 'fastify') {
    const app = Fastify({ logger: false })
    await app.register(fastifyGraceful, { signals: false, logger, timeout })
    app.get('/big', async (_request, reply) => {
      reply.header('content-type', 'application/octet-stream')
      return payload
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    return { port: (app.server.address() as AddressInfo).port, graceful: app.graceful, draining }
  }
  const g = expressGraceful({ signals: false, logger, timeout })
  const app = express()
  app.use(g)
  app.get('/big', (_req, res) => { res.type('application/octet-stream').send(payload) })
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => g.shutdown())
  return { port: (server.address() as AddressInfo).port, graceful: g.instance, draining }
}

/** Counts the bytes of one response, read as slowly as asked; settles when it is complete or the connection ends. */
class SlowReader {
  readonly socket: Socket
  received = 0
  /** Head plus Content-Length, once the head has arrived. */
  expected = Infinity
  #head = Buffer.alloc(0)
  readonly done: Promise<{ received: number, expected: number, complete: boolean }>
  readonly started: Promise<void>

  constructor (port: number) {
    this.socket = connect({ host: '127.0.0.1', port })
    this.socket.on('error', () => {})
    let started!: () => void
    this.started = new Promise((resolve) => { started = resolve })
    this.done = new Promise((resolve) => {
      const finish = (): void => resolve({ received: this.received, expected: this.expected, complete: this.received === this.expected })
      this.socket.on('data', (chunk: Buffer) => {
        this.received += chunk.length
        if (this.expected === Infinity) {
          this.#head = Buffer.concat([this.#head, chunk])
          const end = this.#head.indexOf('\r\n\r\n')
          if (end !== -1) {
            const length = /\r\ncontent-length: *(\d+)/i.exec(this.#head.subarray(0, end).toString('latin1'))
            this.expected = end + 4 + Number(length?.[1] ?? NaN)
            started()
          }
        }
        if (this.received >= this.expected) finish()
      })
      this.socket.on('close', finish)
    })
    this.socket.write(rawGet('/big'))
  }

  /** Stops reading: the kernel buffers fill up and the server can no longer write. */
  pause (): void {
    this.socket.pause()
  }

  /** Reads again, one chunk at a time, a millisecond apart. */
  trickle (): void {
    this.socket.on('data', () => {
      this.socket.pause()
      setTimeout(() => this.socket.resume(), 1)
    })
    this.socket.resume()
  }
}

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: a client that reads a 32 MB response very slowly`, async (t) => {
    t.test('with a drain timeout longer than it needs, the drain waits and the response arrives whole', async (t) => {
      const s = await bigServer(t, adapter, 60_000)
      const reader = new SlowReader(s.port)
      t.teardown(() => reader.socket.destroy())
      await reader.started
      reader.pause()
      let settled = false
      const shutdown = s.graceful.shutdown()
      void shutdown.then(() => { settled = true })
      await s.draining
      t.equal(s.graceful.inFlight, 1, 'the response is still being written')
      t.equal(settled, false, 'the drain waits for it: the client has not read it yet')
      reader.trickle()
      const read = await settleWithin(reader.done, 'the slow read', 60_000)
      t.ok(read.complete, `every byte arrives (${read.received} of ${read.expected})`)
      t.ok(read.expected > BIG)
      const report = await settleWithin(shutdown, 'the shutdown', 10_000)
      t.match(report, { inFlightAtStart: 1, completed: 1, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('with a shorter drain timeout, it is cut at the deadline and the report says so', async (t) => {
      const s = await bigServer(t, adapter, 300)
      const reader = new SlowReader(s.port)
      t.teardown(() => reader.socket.destroy())
      await reader.started
      reader.pause()
      const report = await settleWithin(s.graceful.shutdown(), 'the shutdown', 10_000)
      t.match(report, { inFlightAtStart: 1, completed: 0, aborted: 1, destroyedSockets: 1, timedOut: true, exitCode: 1 })
      reader.trickle()
      const read = await settleWithin(reader.done, 'the rest of the read', 60_000)
      t.notOk(read.complete, `the response is cut short (${read.received} of ${read.expected} bytes)`)
      t.ok(read.received < read.expected)
    })
  })
}

// ---- in-process: the engine's side of a late listen() and a blocking hook --------------------------------

interface Logged { level: string, msg: string | undefined }

function recorder (): { logs: Logged[], logger: { info (o: object, m?: string): void, warn (o: object, m?: string): void, error (o: object, m?: string): void } } {
  const logs: Logged[] = []
  const at = (level: string) => (_o: object, msg?: string) => { logs.push({ level, msg }) }
  return { logs, logger: { info: at('info'), warn: at('warn'), error: at('error') } }
}

const LATE = 'graceful: a server started listening after the shutdown began; closed it'

t.test('in-process: a listen() that completes after the shutdown began', async (t) => {
  t.test('core: a server attached before listen() and listening only after the drain started is closed right after \'listening\'', async (t) => {
    const { logs, logger } = recorder()
    const g = new Graceful({ signals: false, logger })
    const server = http.createServer((_req, res) => res.end('x'))
    g.attach(server)
    t.teardown(() => { if (server.listening) server.close() })
    const report = await settleWithin(g.shutdown(), 'shutdown', 10_000)
    t.equal(report.exitCode, 0)
    const seen: Array<string | null> = []
    // A listener that reads the address, as Fastify's own does: it must still see one.
    server.on('listening', () => { seen.push(JSON.stringify(server.address())) })
    server.listen(0, '127.0.0.1')
    await once(server, 'close')
    t.equal(seen.length, 1)
    t.notSame(seen[0], 'null', 'the \'listening\' listeners ran while it was still listening')
    t.same(logs.filter((l) => l.msg === LATE).map((l) => l.level), ['warn'])
  })

  t.test('Fastify: app.listen() after app.close() resolves, and the server is closed right after', async (t) => {
    const { logs, logger } = recorder()
    const app = Fastify({ logger: false })
    await app.register(fastifyGraceful, { signals: false, logger })
    app.get('/', async () => 'x')
    await app.ready()
    await settleWithin(app.close(), 'close', 10_000)
    // Fastify's own 'listening' listener reads server.address(): closing inside that event threw there.
    await app.listen({ port: 0, host: '127.0.0.1' })
    if (app.server.listening) await once(app.server, 'close')
    t.equal(app.server.listening, false)
    t.same(logs.filter((l) => l.msg === LATE).map((l) => l.level), ['warn'])
  })

  t.test('Express: the first app.listen() after the instance closed is closed at once; the listen callback still runs', async (t) => {
    const { logs, logger } = recorder()
    const g = expressGraceful({ signals: false, logger })
    const app = express()
    app.use(g)
    app.get('/', (_req, res) => { res.send('x') })
    await settleWithin(g.shutdown(), 'shutdown', 10_000)
    let called = false
    const server = app.listen(0, '127.0.0.1', () => { called = true })
    t.teardown(() => { if (server.listening) server.close() })
    await once(server, 'close')
    t.equal(called, true, 'the listen callback ran before the close')
    t.same(logs.filter((l) => l.msg === LATE).map((l) => l.level), ['warn'])
    // That listen was the last one watched: a later server of this app is not the closed instance's business.
    const next = app.listen(0, '127.0.0.1')
    t.teardown(() => { if (next.listening) next.close() })
    await once(next, 'listening')
    await new Promise<void>((resolve) => setImmediate(resolve))
    t.equal(next.listening, true)
  })
})

t.test('in-process: a hook that blocks the event loop past its timeout is recorded as failed, and the next hook runs', async (t) => {
  const g = new Graceful({ signals: false, logger: false, hookTimeout: 50 })
  g.beforeDrain(function blockTheLoop () {
    const end = performance.now() + 200
    while (performance.now() < end) { /* the timeout timer cannot fire */ }
  })
  let next = false
  g.beforeDrain(function after () { next = true })
  const report = await settleWithin(g.shutdown(), 'shutdown', 10_000)
  const [blocked, after] = report.hooks
  t.match(blocked, { name: 'blockTheLoop', error: /did not settle within 50 ms/ })
  t.ok((blocked?.ms ?? 0) >= 200, `its real time is recorded (${String(blocked?.ms)} ms)`)
  t.same(after, { name: 'after', ms: after?.ms })
  t.equal(next, true)
  t.equal(report.exitCode, 1)
})

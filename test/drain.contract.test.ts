// The drain with real clients: slow and busy keep-alive clients, pipelining, resets, late connections. Every case
// runs unchanged against each adapter's harness.
import type { IncomingMessage, ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { CHANNELS, IDLE_GRACE_MS, type PhaseMessage } from '@graceful/core'
import { RawClient, get, keepAliveAgent, request } from './helpers/client.js'
import { assertClosedWithFin, idleConnection, start, until, within } from './helpers/drain.js'
import { harnesses } from './helpers/harnesses.js'
import { startLoad } from './helpers/load.js'

/** The longest pause between two requests a keep-alive client may take and still be answered (the SPEC's second, less a margin). */
const CLIENT_PAUSE_MS = 900

for (const h of harnesses) {
  t.test(h.name, async (t) => {
    t.test('keep-alive clients that pause up to 900 ms between requests lose no request at a shutdown', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const load = startLoad({ port: s.app.port, clients: 16, maxRequests: 100_000, maxMs: 20_000, pause: () => Math.random() * CLIENT_PAUSE_MS })
      t.teardown(() => load.stop())
      await within(load.reached(2), 'every client getting 200s', 20_000)
      const { report } = await s.drain()
      const result = await within(load.done, 'the load ending', 25_000)
      t.same(result.failures, [], 'no request failed')
      t.ok(result.clients.every((c) => c.stop === 'rejected' || c.stop === 'refused'),
        `every client was turned away with a 503 or a refused connection (${[...new Set(result.clients.map((c) => c.stop))].join(', ')})`)
      t.match(await within(report, 'the report'), { aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('a client that sends its next request 900 ms after its last answer, the drain begun meanwhile, gets 503 with Connection: close', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const c = await idleConnection(s)
      const answered = performance.now()
      const { report } = await s.drain()
      // The client's pause is the scenario: a busy proxy or caller that takes its time.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, answered + CLIENT_PAUSE_MS - performance.now())))
      await c.write(get('/'))
      const res = await within(c.response(), 'the answer')
      t.equal(res.status, 503)
      t.equal(res.headers.connection, 'close')
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      t.match(await report, { rejected: 1, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('closes a connection its client leaves idle once it has been quiet for longer than the grace, with a FIN', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const c = await idleConnection(s)
      const answered = performance.now()
      const { report } = await s.drain()
      assertClosedWithFin(t, await within(c.closed, 'the idle connection closing'), 'the idle connection')
      t.ok(performance.now() - answered >= IDLE_GRACE_MS, `not before the grace (${Math.round(performance.now() - answered)} ms)`)
      t.match(await report, { destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('serves requests during the lame-duck delay with Connection: close, so keep-alive clients move to a new connection', async (t) => {
      const s = await start(t, h, { options: { delay: 2000, timeout: 30_000 } })
      const agent = keepAliveAgent()
      t.teardown(() => agent.destroy())
      const before = await request(s.app.port, agent)
      t.equal(before.headers.connection, 'keep-alive', 'keep-alive while serving')
      const report = s.app.graceful.shutdown()
      t.equal(s.app.graceful.phase, 'lameduck')
      const during = await within(request(s.app.port, agent), 'a request in the lame-duck time')
      t.equal(during.status, 200, 'served as usual')
      t.equal(during.reusedSocket, true, 'on the connection opened before')
      t.equal(during.headers.connection, 'close', 'told to close it')
      const next = await within(request(s.app.port, agent), 'the next request')
      t.equal(next.status, 200)
      t.equal(next.reusedSocket, false, 'on a new connection, still accepted during the delay')
      t.equal(next.headers.connection, 'close')
      t.match(await within(report, 'the report'), { exitCode: 0 })
    })

    t.test('does not serve a request pipelined behind a response that has already said close, counts it rejected and ends the drain', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 }, routes: { '/stream/:id': { serveDuringDrain: true } } })
      const witness = await idleConnection(s)
      const { report } = await s.drain()
      // A late request to a serveDuringDrain stream: served, its head saying close goes out at once.
      await witness.write(get('/stream/s'))
      await s.app.entered('s')
      await until(() => witness.buffer.includes('first\n'), 'the stream\'s head and first chunk')
      // The client pipelines another request on the connection that is to close; the server parses it.
      await witness.write(get('/'))
      await until(() => s.app.graceful.stats().inFlight === 2, 'the pipelined request arriving')
      s.app.release('s')
      const res = await within(witness.response(), 'the stream')
      t.equal(res.status, 200)
      t.equal(res.headers.connection, 'close')
      t.equal(res.body.toString(), 'first\nlast\n')
      assertClosedWithFin(t, await within(witness.closed, 'the connection closing'), 'the connection')
      t.equal(witness.buffer.length, 0, 'no answer to the request pipelined behind it: the client sends it again')
      t.match(await within(report, 'the report'), { completed: 1, rejected: 1, timedOut: false, exitCode: 0 })
    })

    t.test('each request pipelined during the drain takes the Connection: close over from the one before it, even one whose answer is already written and queued', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 }, routes: { '/health': { serveDuringDrain: true } } })
      const c = await s.connect()
      await c.write(get('/hold/a'))
      await s.app.entered('a')
      const { report } = await s.drain()
      await c.write(get('/health'))
      await until(() => s.app.graceful.stats().inFlight === 2, 'the first pipelined request')
      await c.write(get('/health'))
      await until(() => s.app.graceful.stats().inFlight === 3, 'the second pipelined request')
      s.app.release('a')
      const res = await within(c.responses(3), 'the three answers')
      t.same(res.map((r) => [r.status, r.headers.connection]), [[200, 'keep-alive'], [200, 'keep-alive'], [200, 'close']])
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      t.match(await within(report, 'the report'), { inFlightAtStart: 1, completed: 3, rejected: 0, exitCode: 0 })
    })

    t.test('two requests pipelined in one packet during the drain are both answered 503, only the second with Connection: close', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const c = await idleConnection(s)
      const { report } = await s.drain()
      await c.write(get('/') + get('/'))
      const [first, second] = await within(c.responses(2), 'both answers')
      t.same([first?.status, first?.headers.connection], [503, 'keep-alive'])
      t.same([second?.status, second?.headers.connection], [503, 'close'])
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      t.match(await within(report, 'the report'), { rejected: 2, exitCode: 0 })
    })

    t.test('a connection the kernel accepts at the very end of the lame-duck time, just before the listener closes, has its request answered, not reset', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      let late: Promise<RawClient> | undefined
      const onPhase = (m: unknown): void => {
        // A timer queued now fires in the timers phase that ends the lame-duck time (delay 0), just before it:
        // the handshake completes in the kernel, the next poll phase takes it, then the listener closes.
        if ((m as PhaseMessage).phase === 'lameduck') setTimeout(() => { late = RawClient.connect(s.app.port) }, 0)
      }
      subscribe(CHANNELS.phase, onPhase)
      t.teardown(() => { unsubscribe(CHANNELS.phase, onPhase) })
      const { report } = await s.drain()
      const c = await within(late as Promise<RawClient>, 'the connection')
      t.teardown(() => c.destroy())
      await c.write(get('/'))
      const res = await within(c.response(), 'its answer')
      t.same([res.status, res.headers.connection], [503, 'close'], 'a request after the drain began, on a connection open before')
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      t.match(await within(report, 'the report'), { rejected: 1, exitCode: 0 })
    })

    t.test('a response of the quiet end of the lame-duck time goes out keep-alive, and the request it invited is served during the drain, with Connection: close', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const c = await idleConnection(s)
      // delay 0: the whole lame-duck time is its quiet end (QUIET_TAIL_MS).
      const report = s.app.graceful.shutdown()
      await c.write(get('/'))
      const first = await within(c.response(), 'the lame-duck answer')
      t.same([first.status, first.headers.connection], [200, 'keep-alive'], 'no Connection: close just before the listener closes')
      await until(() => s.app.graceful.phase === 'draining', 'the drain start')
      await c.write(get('/'))
      const next = await within(c.response(), 'the invited answer')
      t.same([next.status, next.headers.connection], [200, 'close'], 'served, not 503: the keep-alive answer invited it')
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      t.match(await within(report, 'the report'), { completed: 1, rejected: 0, exitCode: 0 })
    })

    t.test('a pipelined request on a connection the client resets leaves nothing in flight behind (no phantom holds the drain)', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      for (const id of ['a', 'b', 'c']) {
        const c = await RawClient.connect(s.app.port)
        await c.write(get(`/hold/${id}`) + get('/'))
        await s.app.entered(id)
        c.socket.resetAndDestroy()
        await within(c.closed, 'the reset connection closing')
        s.app.release(id)
      }
      await until(() => s.app.graceful.stats().inFlight === 0, 'Node forgetting the reset connections')
      let afterDrain = false
      s.app.graceful.afterDrain(() => { afterDrain = true })
      const { report } = await s.drain()
      const r = await within(report, 'the report')
      t.ok(r.durationMs < 5000, `the drain did not wait for its timeout (${r.durationMs} ms)`)
      t.equal(afterDrain, true, 'the afterDrain hook ran')
      t.match(r, { inFlightAtStart: 0, aborted: 0, timedOut: false, exitCode: 0 })
    })

    t.test('counts a request whose connection Node destroys for a malformed request behind it as interrupted, not completed', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const c = await s.connect()
      await c.write(get('/hold/a'))
      await s.app.entered('a')
      const { report } = await s.drain()
      // Garbage pipelined behind the held request: Node's parser fails and its clientError handling destroys
      // the connection, cutting the held response.
      await c.write('NOT HTTP\r\n\r\n').catch(() => {})
      await within(c.closed, 'Node closing the connection')
      s.app.release('a')
      t.match(await within(report, 'the report'), { inFlightAtStart: 1, completed: 0, interrupted: 1, aborted: 0, timedOut: false })
    })

    /**
     * A POST with `Expect: <expectation>` through the app's own `event` listener, Node's documented way to take
     * such requests over: served while serving, answered 503 during the drain.
     */
    const expecting = async (t: Test, event: 'checkContinue' | 'checkExpectation', expectation: string): Promise<void> => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const app = s.app.server.listeners('request')[0] as (req: IncomingMessage, res: ServerResponse) => void
      const continues = event === 'checkContinue'
      s.app.server.on(event, (req: IncomingMessage, res: ServerResponse) => {
        if (continues) res.writeContinue()
        app(req, res)
      })
      // A 100-continue client waits for the 100 Continue before it sends its body; any other sends it at once.
      const head = `POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\nExpect: ${expectation}\r\n\r\n`
      const upload = (c: RawClient) => c.write(continues ? head : `${head}abcd`)
      const served = await s.connect()
      await upload(served)
      if (continues) {
        t.equal((await within(served.response(), 'the 100 Continue')).status, 100)
        await served.write('abcd')
      }
      const ok = await within(served.response(), 'the upload\'s answer')
      t.same([ok.status, JSON.parse(ok.body.toString())], [200, { bytes: 4 }])
      t.not(ok.headers.connection, 'close', 'kept alive while serving')

      const { report } = await s.drain()
      await upload(served)
      const rejected = await within(served.response(), 'the answer during the drain')
      t.equal(rejected.status, 503, continues ? 'answered 503 without a 100 Continue' : 'answered 503 once the body is in')
      t.equal(rejected.headers.connection, 'close')
      assertClosedWithFin(t, await within(served.closed, 'the connection closing'), 'the connection')
      t.match(await within(report, 'the report'), { rejected: 1, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    }

    t.test('serves a request sent with Expect: 100-continue through the app\'s checkContinue listener, and answers one during the drain 503', async (t) => {
      await expecting(t, 'checkContinue', '100-continue')
    })

    t.test('serves a request with another expectation through the app\'s checkExpectation listener, and answers one during the drain 503 once its body is in', async (t) => {
      // Without a listener Node answers 417 itself; with one, the app meets the expectation.
      await expecting(t, 'checkExpectation', 'x-audit')
    })

    t.test('stats() counts requests in flight and open connections while serving and during the drain', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const g = s.app.graceful
      await idleConnection(s)
      const c = await s.connect()
      await c.write(get('/hold/a'))
      await s.app.entered('a')
      t.same(g.stats(), { phase: 'serving', inFlight: 1, connections: 2 })
      const { report } = await s.drain()
      t.same(g.stats(), { phase: 'draining', inFlight: 1, connections: 2 })
      s.app.release('a')
      await within(report, 'the report')
      t.same(g.stats(), { phase: 'closed', inFlight: 0, connections: 0 })
    })
  })
}

// The connection-level contract: what a drain does to each kind of connection, seen from real clients on
// real sockets. Every case runs unchanged against each adapter's harness.
import { once } from 'node:events'
import type { Socket } from 'node:net'
import t from 'tap'
import { IDLE_GRACE_MS } from '@graceful/core'
import { connectError, get, keepAliveAgent, request } from './helpers/client.js'
import { assertClosedWithFin, idleConnection, start, until, within, type Started } from './helpers/drain.js'
import { harnesses } from './helpers/harnesses.js'
import { startLoad } from './helpers/load.js'

const UPGRADE_REQUEST = `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n`

for (const h of harnesses) {
  t.test(h.name, async (t) => {
    t.test('completes a request in flight at the drain start with 200 and Connection: close', async (t) => {
      const s = await start(t, h)
      const c = await s.connect()
      await c.write(get('/hold/a'))
      await s.app.entered('a')
      const { report } = await s.drain()
      t.equal(s.app.graceful.phase, 'draining')
      s.app.release('a')
      const res = await within(c.response(), 'the held response')
      t.equal(res.status, 200)
      t.equal(res.body.toString(), 'released a')
      t.equal(res.headers.connection, 'close')
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      t.match(await report, {
        inFlightAtStart: 1, completed: 1, rejected: 0, aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0
      })
    })

    t.test('refuses new connections from the drain start instead of accepting and resetting them', async (t) => {
      const s = await start(t, h)
      const c = await s.connect()
      await c.write(get('/hold/a'))
      await s.app.entered('a')
      const { report } = await s.drain()
      const err = await within(connectError(s.app.port), 'the refused connection')
      t.equal(err.code, 'ECONNREFUSED')
      // The drain is still on: the held request keeps it open while connections are refused.
      t.equal(s.app.graceful.phase, 'draining')
      s.app.release('a')
      t.equal((await within(c.response(), 'the held response')).status, 200)
      t.match(await report, { inFlightAtStart: 1, completed: 1, exitCode: 0 })
    })

    t.test('closes an idle keep-alive connection promptly, with a FIN', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const c = await s.connect()
      await c.write(get('/'))
      const res = await c.response()
      t.equal(res.status, 200)
      t.not(res.headers.connection, 'close', 'the connection was kept alive')
      const { report } = await s.drain()
      assertClosedWithFin(t, await within(c.closed, 'the idle connection closing'), 'the idle connection')
      t.equal(c.buffer.length, 0, 'nothing was sent before the FIN')
      const r = await report
      t.ok(r.durationMs < 5000, `the drain did not wait for its timeout (${r.durationMs} ms)`)
      t.match(r, { inFlightAtStart: 0, completed: 0, rejected: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('closes a connection idle for longer than the grace at once, and one that just went idle only after its grace', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const old = await idleConnection(s)
      // Ageing the connection is the point of this case, not a wait for something to settle.
      await new Promise((resolve) => setTimeout(resolve, IDLE_GRACE_MS + 50))
      const fresh = await idleConnection(s)
      const order: string[] = []
      void old.closed.then(() => order.push('old'))
      void fresh.closed.then(() => order.push('fresh'))
      const { report } = await s.drain()
      assertClosedWithFin(t, await within(old.closed, 'the long-idle connection closing'), 'the long-idle connection')
      t.same(order, ['old'], 'the long-idle connection closed while the fresh one still had its grace')
      assertClosedWithFin(t, await within(fresh.closed, 'the fresh connection closing'), 'the fresh connection')
      t.same(order, ['old', 'fresh'])
      t.match(await report, { destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('closes a connection that never sent a byte promptly, with a FIN', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const { client: c } = await s.accepted()
      const { report } = await s.drain()
      assertClosedWithFin(t, await within(c.closed, 'the silent connection closing'), 'the silent connection')
      t.equal(c.buffer.length, 0, 'nothing was sent before the FIN')
      const r = await report
      t.ok(r.durationMs < 5000, `the drain did not wait for its timeout (${r.durationMs} ms)`)
      t.match(r, { inFlightAtStart: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('closes a connection that becomes idle later in the drain, then ends the drain', async (t) => {
      const s = await start(t, h, { options: { timeout: 30_000 } })
      const c = await s.connect()
      await c.write(get('/stream/s'))
      // The handler has written the head (keep-alive, chunked) and a first chunk before the drain starts.
      await s.app.entered('s')
      const { report } = await s.drain()
      s.app.release('s')
      const res = await within(c.response(), 'the streamed response')
      t.equal(res.status, 200)
      t.equal(res.framing, 'chunked')
      t.equal(res.body.toString(), 'first\nlast\n')
      t.not(res.headers.connection, 'close', 'the head went out before the drain, keep-alive')
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      const r = await report
      t.ok(r.durationMs < 5000, `the drain did not wait for its timeout (${r.durationMs} ms)`)
      t.match(r, { inFlightAtStart: 1, completed: 1, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    const retryCases: Array<{ retryAfter: number | false | undefined, header: string | undefined }> = [
      { retryAfter: undefined, header: '1' },
      { retryAfter: false, header: undefined },
      { retryAfter: 5, header: '5' }
    ]
    for (const { retryAfter, header } of retryCases) {
      const name = retryAfter === undefined ? 'by default' : `with retryAfter: ${String(retryAfter)}`
      t.test(`answers a request on an open keep-alive connection during the drain with 503, Connection: close and Retry-After ${header ?? 'absent'} (${name})`, async (t) => {
        const s = await start(t, h, { options: retryAfter === undefined ? {} : { retryAfter } })
        const agent = keepAliveAgent()
        t.teardown(() => agent.destroy())
        const first = await request(s.app.port, agent)
        t.equal(first.status, 200)
        // A held request on another connection keeps the drain going.
        const held = await s.connect()
        await held.write(get('/hold/a'))
        await s.app.entered('a')
        const { report } = await s.drain()

        const res = await within(request(s.app.port, agent), 'the 503')
        t.equal(res.reusedSocket, true, 'sent on the connection opened before the drain')
        t.equal(res.status, 503)
        t.equal(res.headers.connection, 'close')
        t.equal(res.headers['retry-after'], header)
        t.match(res.headers['content-type'], /^application\/json/)
        t.match(JSON.parse(res.body), { statusCode: 503, error: 'Service Unavailable' })

        s.app.release('a')
        t.equal((await within(held.response(), 'the held response')).status, 200)
        t.match(await report, { inFlightAtStart: 1, completed: 1, rejected: 1, aborted: 0, exitCode: 0 })
      })
    }

    t.test('answers pipelined requests sent before the drain in order, only the last with Connection: close, then closes with a FIN', async (t) => {
      const s = await start(t, h)
      const c = await s.connect()
      await c.write(get('/hold/a') + get('/') + get('/'))
      await s.app.entered('a')
      const { report } = await s.drain()
      s.app.release('a')
      const res = await within(c.responses(3), 'the three responses')
      t.same(res.map((r) => [r.status, r.body.toString()]), [[200, 'released a'], [200, 'hello'], [200, 'hello']])
      t.same(res.slice(0, 2).map((r) => r.headers.connection), ['keep-alive', 'keep-alive'], 'the earlier responses keep the connection')
      // Node hands pipelined requests to the app as it parses them, so the two GET / handlers ran, and
      // their heads were stored (keep-alive), before the drain began.
      t.equal(res[2]?.headers.connection, 'close', 'the last response says close')
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      t.equal(c.buffer.length, 0, 'nothing after the third response')
      t.match(await report, { inFlightAtStart: 3, completed: 3, rejected: 0, exitCode: 0 })
    })

    t.test('answers a request whose head is still arriving at the drain start with 503, never a reset', async (t) => {
      const s = await start(t, h)
      const { client: c, server } = await s.accepted()
      const head = get('/')
      const half = head.slice(0, 20)
      await c.write(half)
      await until(() => server.bytesRead === half.length, 'the server reading the first half')
      const { report } = await s.drain()
      await c.write(head.slice(20))
      const res = await within(c.response(), 'the response')
      t.equal(res.status, 503)
      t.equal(res.headers.connection, 'close')
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      t.match(await report, { inFlightAtStart: 0, rejected: 1, destroyedSockets: 0, exitCode: 0 })
    })

    t.test('keeps a connection whose request head is half received through an idle sweep', async (t) => {
      const s = await start(t, h)
      const witness = await idleConnection(s)
      const { client: c, server } = await s.accepted()
      const head = get('/')
      const half = head.slice(0, 20)
      await c.write(half)
      await until(() => server.bytesRead === half.length, 'the server reading the first half')
      const { report } = await s.drain()
      // The idle connection closing shows a sweep has run; the half-received head must have survived it.
      await within(witness.closed, 'the idle sweep')
      await c.write(head.slice(20)).catch(() => {})
      const res = await within(c.response(), 'the response').catch((err: Error) => err)
      t.notOk(res instanceof Error, `a response, not ${res instanceof Error ? res.message : ''}`)
      if (!(res instanceof Error)) {
        t.equal(res.status, 503)
        t.equal(res.headers.connection, 'close')
      }
      t.match(await report, { destroyedSockets: 0, exitCode: 0 })
    })

    t.test('completes a slow upload that is still arriving when the drain starts', async (t) => {
      const s = await start(t, h)
      const witness = await idleConnection(s)
      const c = await s.connect()
      const chunk = Buffer.alloc(1000, 'x')
      const requested = once(s.app.server, 'request')
      await c.write(`POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${4 * chunk.length}\r\n\r\n`)
      await c.write(chunk)
      await within(requested, 'the upload reaching the server')
      const { report } = await s.drain()
      await c.write(chunk)
      // A quiet upload is not an idle connection: it must survive the idle sweep.
      await within(witness.closed, 'the idle sweep')
      await c.write(chunk)
      await c.write(chunk)
      const res = await within(c.response(), 'the upload response')
      t.equal(res.status, 200)
      t.same(JSON.parse(res.body.toString()), { bytes: 4000 })
      t.equal(res.headers.connection, 'close')
      assertClosedWithFin(t, await within(c.closed, 'the connection closing'), 'the connection')
      t.match(await report, { inFlightAtStart: 1, completed: 1, destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('holds the drain for an upgraded connection and destroys it at the deadline', async (t) => {
      const s = await start(t, h, { upgrade: true, options: { timeout: 300 } })
      const c = await s.connect()
      await c.write(UPGRADE_REQUEST)
      const res = await within(c.response(), 'the 101')
      t.equal(res.status, 101)
      t.equal(s.app.upgraded.length, 1)
      const { report } = await s.drain()
      let ended = false
      void report.then(() => { ended = true })
      // Still open and working once the drain has begun (the deadline destroys it one turn after it fires,
      // so even a stalled event loop reads these bytes first).
      s.app.upgraded[0]?.write('ping')
      t.equal((await within(c.bytes(4), 'data over the upgraded connection')).toString(), 'ping')
      t.equal(ended, false, 'the drain has not ended while the upgraded connection is open')
      const r = await within(report, 'the report')
      t.ok(r.destroyedSockets >= 1, `destroyedSockets ${r.destroyedSockets}`)
      t.match(r, { inFlightAtStart: 0, timedOut: true, exitCode: 1 })
      await within(c.closed, 'the upgraded connection closing')
      t.equal(s.app.upgraded[0]?.destroyed, true)
    })

    t.test('ends the drain cleanly when the client closes its upgraded connection', async (t) => {
      const s = await start(t, h, { upgrade: true, options: { timeout: 30_000 } })
      const witness = await idleConnection(s)
      const c = await s.connect()
      await c.write(UPGRADE_REQUEST)
      t.equal((await within(c.response(), 'the 101')).status, 101)
      // Like a WebSocket server, the app closes its side when the client closes.
      const upgraded = s.app.upgraded[0] as Socket
      upgraded.on('end', () => upgraded.end())
      const { report } = await s.drain()
      await within(witness.closed, 'the idle sweep')
      t.equal(c.ended, false, 'the upgraded connection outlives the idle sweep')
      c.socket.end()
      assertClosedWithFin(t, await within(c.closed, 'the upgraded connection closing'), 'the upgraded connection')
      const r = await within(report, 'the report')
      t.ok(r.durationMs < 5000, `the drain did not wait for its timeout (${r.durationMs} ms)`)
      t.match(r, { destroyedSockets: 0, timedOut: false, exitCode: 0 })
    })

    t.test('aborts a hung request\'s shutdownSignal before destroying its connection at the deadline', async (t) => {
      const s = await start(t, h, { options: { timeout: 200 } })
      const c = await s.connect()
      await c.write(get('/hold/h'))
      await s.app.entered('h')
      const signal = s.app.signals.get('h')
      if (signal === undefined) throw new Error('no shutdownSignal recorded')
      const order: string[] = []
      signal.addEventListener('abort', () => order.push('abort'), { once: true })
      void c.closed.then(() => order.push('close'))
      const { report } = await s.drain()
      const r = await within(report, 'the report')
      await within(c.closed, 'the connection closing')
      t.same(order, ['abort', 'close'])
      t.equal(signal.aborted, true)
      t.equal((signal.reason as Error).name, 'AbortError')
      await t.rejects(c.response(), 'no response on the destroyed connection')
      t.match(r, { inFlightAtStart: 1, completed: 0, aborted: 1, destroyedSockets: 1, timedOut: true, exitCode: 1 })
    })

    t.test('gives a connection that goes idle just before an idle sweep the full grace', async (t) => {
      // One connection is idle at the drain start, so the engine arms its sweep timer then. A streamed
      // response (head sent before the drain, keep-alive) is released by a timer armed in the same turn
      // with the same delay, so it ends in the same timers phase as the sweep timer fires, just before the
      // sweep itself runs. The two timers may be armed a millisecond apart: blocking the loop from just
      // before they are due until just after makes both due in the same turn, every time.
      const s: Started = await start(t, h, {
        options: { timeout: 30_000 },
        onDraining: () => {
          setTimeout(function blockPastTheSweepTimer () {
            const end = performance.now() + 15
            while (performance.now() < end);
          }, IDLE_GRACE_MS - 10)
          setTimeout(() => s.app.release('s'), IDLE_GRACE_MS)
        }
      })
      const witness = await idleConnection(s)
      const c = await s.connect()
      await c.write(get('/stream/s'))
      await s.app.entered('s')
      const { report } = await s.drain()
      const res = await within(c.response(), 'the streamed response')
      t.equal(res.status, 200)
      t.not(res.headers.connection, 'close')
      // A keep-alive client sends its next request at once; it must get an answer, not a reset.
      await c.write(get('/')).catch(() => {})
      const next = await within(c.response(), 'the next response').catch((err: Error) => err)
      t.notOk(next instanceof Error, `an answer, not ${next instanceof Error ? next.message : ''}`)
      if (!(next instanceof Error)) {
        t.equal(next.status, 503)
        t.equal(next.headers.connection, 'close')
      }
      await within(witness.closed, 'the idle connection closing')
      t.match(await report, { exitCode: 0 })
    })

    t.test('fails no request of 32 keep-alive clients under load', async (t) => {
      for (let round = 1; round <= 3; round++) {
        t.test(`round ${round}`, async (t) => {
          const s = await start(t, h, { options: { timeout: 30_000 } })
          const load = startLoad({ port: s.app.port, clients: 32, maxRequests: 100_000, maxMs: 20_000 })
          t.teardown(() => load.stop())
          await within(load.reached(3), 'every client getting 200s', 20_000)
          const { report } = await s.drain()
          const result = await within(load.done, 'the load ending', 25_000)
          t.same(result.failures, [], 'no request failed')
          t.equal(result.timedOut, false)
          t.ok(result.ok >= 32 * 3, `many 200s (${result.ok})`)
          t.ok(result.clients.every((c) => c.stop === 'rejected' || c.stop === 'refused'),
            `every client was turned away (${[...new Set(result.clients.map((c) => c.stop))].join(', ')})`)
          const r = await within(report, 'the report')
          t.equal(r.rejected, result.rejected, 'the report counts the 503s the clients got')
          t.match(r, { aborted: 0, destroyedSockets: 0, timedOut: false, exitCode: 0 })
        })
      }
    })
  })
}

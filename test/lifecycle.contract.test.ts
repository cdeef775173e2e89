// The shutdown lifecycle, run unchanged against every adapter: phases, the lame-duck delay, readiness and
// liveness, hooks (order, errors, timeouts, names), the report, per-route options and the hook API's errors.
//
// The drain start is observed through the contract itself: a request held on an `abortOnDrain` route has its
// `shutdownSignal` aborted the moment the drain starts. Raw keep-alive connections opened before the drain
// carry the requests that must reach the server during it (new connections are refused by then).
import t, { type Test } from 'tap'
import { inspect } from 'node:util'
import type { HookContext, HookFn, HookOptions, ShutdownReport } from '@graceful/core'
import { harnesses } from './helpers/harnesses.js'
import { deferred, type Harness, type LogEntry, type StartOptions, type TestApp } from './helpers/harness.js'
import { aborted, get, RawConnection, type Response } from './helpers/lifecycle-client.js'

const REPORT_FIELDS = ['aborted', 'completed', 'destroyedSockets', 'durationMs', 'exitCode', 'hooks', 'inFlightAtStart',
  'interrupted', 'reason', 'rejected', 'timedOut']

async function start (t: Test, h: Harness, opts?: StartOptions): Promise<TestApp> {
  const app = await h.start(opts)
  t.teardown(async () => {
    for (const id of app.signals.keys()) app.release(id)
    await app.close()
  })
  return app
}

async function connect (t: Test, app: TestApp): Promise<RawConnection> {
  const conn = await RawConnection.open(app.port)
  t.teardown(() => conn.destroy())
  return conn
}

/** A request whose connection may be cut: never rejects, so a test can assert how it ended. */
function attempt (p: Promise<Response>): Promise<Response | Error> {
  return p.catch((err: unknown) => err instanceof Error ? err : new Error(String(err)))
}

/** A few turns of the event loop: makes a hook take time without sleeping. */
async function turns (n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

function caught (fn: () => unknown): Error & { code?: string } {
  try {
    fn()
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a throw')
}

function mentions (entry: LogEntry, text: string): boolean {
  return `${entry.msg ?? ''} ${inspect(entry.obj, { depth: 6 })}`.includes(text)
}

/** The hooks the user registered: Fastify appends its own close as a last entry. */
function userHooks (app: TestApp, report: ShutdownReport): ShutdownReport['hooks'] {
  return app.adapter === 'fastify' ? report.hooks.slice(0, -1) : report.hooks
}

for (const h of harnesses) {
  t.test(h.name, async (t) => {
    // ---- 1. phases ------------------------------------------------------------------------------------

    t.test('moves through serving, lameduck, draining, cleanup and closed', async (t) => {
      const app = await start(t, h, { routes: { '/hold/:id': { abortOnDrain: true } } })
      const g = app.graceful
      t.equal(g.phase, 'serving')
      let inBeforeDrain = ''
      let inAfterDrain = ''
      g.beforeDrain(() => { inBeforeDrain = g.phase })
      g.afterDrain(() => { inAfterDrain = g.phase })

      const held = get(app.port, '/hold/a')
      await app.entered('a')
      const done = g.shutdown('test')
      t.equal(g.phase, 'lameduck', 'lameduck from the call on')
      await aborted(app.signals.get('a'))
      t.equal(g.phase, 'draining', 'draining once the drain has started')
      t.equal(inAfterDrain, '', 'no afterDrain hook while the request is in flight')
      app.release('a')
      t.equal((await held).status, 200)
      await done
      t.equal(inBeforeDrain, 'lameduck', 'a beforeDrain hook sees lameduck')
      t.equal(inAfterDrain, 'cleanup', 'an afterDrain hook sees cleanup')
      t.equal(g.phase, 'closed', 'closed once the promise has resolved')
    })

    // ---- 2. shutdown() and the report ---------------------------------------------------------------

    t.test('returns the very same promise from every shutdown() call', async (t) => {
      const app = await start(t, h)
      const first = app.graceful.shutdown('first')
      t.equal(app.graceful.shutdown('second'), first, 'a second call during the shutdown')
      const report = await first
      t.equal(app.graceful.shutdown('third'), first, 'a call after it has finished')
      t.equal(report.reason, 'first', 'the first call names the reason')
    })

    t.test('resolves with a report that has every field of ShutdownReport, typed', async (t) => {
      const app = await start(t, h)
      app.graceful.afterDrain(function fine () {})
      app.graceful.afterDrain(function broken () { throw new Error('broken hook') })
      const report = await app.graceful.shutdown('typed')
      t.same(Object.keys(report).sort(), REPORT_FIELDS)
      t.equal(report.reason, 'typed')
      t.type(report.durationMs, 'number')
      t.ok(Number.isFinite(report.durationMs) && report.durationMs >= 0, 'durationMs is a finite number >= 0')
      for (const key of ['inFlightAtStart', 'completed', 'rejected', 'aborted', 'interrupted', 'destroyedSockets'] as const) {
        t.ok(Number.isInteger(report[key]) && report[key] >= 0, `${key} is a whole number >= 0`)
      }
      t.type(report.timedOut, 'boolean')
      t.equal(report.exitCode, 1, 'a failed hook makes the exit code 1')
      t.ok(Array.isArray(report.hooks), 'hooks is an array')
      for (const hook of report.hooks) {
        t.type(hook.name, 'string')
        t.type(hook.ms, 'number')
        if ('error' in hook) t.type(hook.error, 'string', 'error is a string (the report is logged as JSON)')
      }
      const [fine, broken] = report.hooks
      t.same(Object.keys(fine ?? {}).sort(), ['ms', 'name'], 'no error key for a hook that passed')
      t.same(Object.keys(broken ?? {}).sort(), ['error', 'ms', 'name'])
    })

    // ---- 3. lame-duck delay, readiness, liveness ----------------------------------------------------

    t.test('serves requests and answers readiness 503 during the delay, and drains only after it', async (t) => {
      const DELAY = 400
      const app = await start(t, h, {
        options: { delay: DELAY, readiness: { path: '/readyz' } },
        routes: { '/hold/:id': { abortOnDrain: true } }
      })
      t.equal((await get(app.port, '/readyz')).status, 200, 'ready while serving')
      const held = get(app.port, '/hold/probe')
      await app.entered('probe')

      const started = performance.now()
      const done = app.graceful.shutdown('test')
      // The listener closes in the check phase right after the drain start (after a poll phase has emptied its
      // accept queue): one setImmediate after the abort, queued behind the engine's, sees it closed.
      const drain = aborted(app.signals.get('probe'))
        .then(() => performance.now() - started)
        .then(async (after) => {
          await new Promise((resolve) => setImmediate(resolve))
          return { after, listening: app.server.listening }
        })
      const hello = await get(app.port, '/')
      const ready = await get(app.port, '/readyz')
      t.equal(app.graceful.phase, 'lameduck', 'the requests were made during the delay')
      t.equal(app.server.listening, true, 'the listener stays open during the delay')
      t.equal(hello.status, 200)
      t.equal(hello.body, 'hello')
      t.equal(ready.status, 503, 'readiness answers 503')

      const { after, listening } = await drain
      t.ok(after >= DELAY - 5, `the drain started ${Math.round(after)} ms after the shutdown (delay ${DELAY})`)
      t.equal(listening, false, 'the listener is closed as the drain starts')
      app.release('probe')
      t.equal((await held).status, 200)
      t.equal((await done).exitCode, 0)
    })

    t.test('answers readiness 200 while serving and check passes, 503 when it fails or throws', async (t) => {
      let mode: 'pass' | 'fail' | 'throw' | 'async-fail' | 'async-pass' = 'pass'
      const check = (): boolean | Promise<boolean> => {
        if (mode === 'throw') throw new Error('database unreachable')
        if (mode === 'async-fail') return Promise.resolve(false)
        if (mode === 'async-pass') return Promise.resolve(true)
        return mode === 'pass'
      }
      const app = await start(t, h, { options: { readiness: { path: '/readyz', check } } })
      const status = async () => (await get(app.port, '/readyz')).status

      t.equal(await status(), 200, 'check returns true')
      mode = 'fail'
      t.equal(await status(), 503, 'check returns false')
      mode = 'async-fail'
      t.equal(await status(), 503, 'check resolves to false')
      mode = 'async-pass'
      t.equal(await status(), 200, 'check resolves to true')
      t.equal(app.logs.filter((e) => e.level === 'warn').length, 0, 'no warning so far')
      mode = 'throw'
      t.equal(await status(), 503, 'check throws')
      const warnings = app.logs.filter((e) => e.level === 'warn')
      t.equal(warnings.length, 1, 'one warning for the throwing check')
      t.ok(warnings[0] !== undefined && mentions(warnings[0], 'database unreachable'), 'the warning carries the error')
      mode = 'pass'
      t.equal(await status(), 200, 'ready again once check passes')
    })

    t.test('answers readiness 503 from the first moment of shutdown', async (t) => {
      const app = await start(t, h, { options: { readiness: { path: '/readyz' } } })
      const gate = deferred()
      const inHook = deferred()
      app.graceful.beforeDrain(async function deregister () {
        inHook.resolve()
        await gate.promise
      })
      t.equal((await get(app.port, '/readyz')).status, 200)
      const done = app.graceful.shutdown('test')
      t.equal((await get(app.port, '/readyz')).status, 503, 'right after shutdown()')
      await inHook.promise
      t.equal((await get(app.port, '/readyz')).status, 503, 'while beforeDrain hooks run')
      t.equal((await get(app.port, '/')).status, 200, 'other routes are still served')
      gate.resolve()
      t.equal((await done).exitCode, 0)
    })

    t.test('answers liveness 200 while serving, during the lame-duck time and during the drain', async (t) => {
      const app = await start(t, h, {
        options: { liveness: { path: '/livez' }, readiness: { path: '/readyz' } },
        routes: { '/hold/:id': { abortOnDrain: true } }
      })
      const gate = deferred()
      const inHook = deferred()
      app.graceful.beforeDrain(async function deregister () {
        inHook.resolve()
        await gate.promise
      })

      t.equal((await get(app.port, '/livez')).status, 200, 'while serving')
      const live = await connect(t, app)
      const ready = await connect(t, app)
      const first = await live.send('/livez')
      t.equal(first.status, 200)
      t.not(first.headers.connection, 'close', 'keep-alive while serving')
      t.equal((await ready.send('/readyz')).status, 200)
      const held = get(app.port, '/hold/probe')
      await app.entered('probe')

      const done = app.graceful.shutdown('test')
      await inHook.promise
      t.equal((await get(app.port, '/livez')).status, 200, 'during the lame-duck time')
      gate.resolve()

      await aborted(app.signals.get('probe'))
      const [duringDrain, readyDuringDrain] = await Promise.all([live.send('/livez'), ready.send('/readyz')])
      t.equal(duringDrain.status, 200, 'during the drain')
      t.equal(duringDrain.headers.connection, 'close', 'with Connection: close during the drain')
      t.equal(readyDuringDrain.status, 503, 'readiness still 503 during the drain')
      await live.closed
      app.release('probe')
      t.equal((await held).status, 200)
      t.equal((await done).exitCode, 0)
    })

    // ---- 4. hook order ------------------------------------------------------------------------------

    t.test('runs beforeDrain hooks in the lame-duck time, in order, before the drain starts', async (t) => {
      const app = await start(t, h, { routes: { '/hold/:id': { abortOnDrain: true } } })
      const g = app.graceful
      const events: string[] = []
      g.beforeDrain(async function first () {
        events.push(`first:start:${g.phase}:listening=${String(app.server.listening)}`)
        await turns(3)
        events.push('first:end')
      })
      g.beforeDrain(function second () {
        events.push(`second:${g.phase}:listening=${String(app.server.listening)}`)
      })
      const held = get(app.port, '/hold/probe')
      await app.entered('probe')
      const done = g.shutdown('test')
      await aborted(app.signals.get('probe'))
      events.push('drain started')
      app.release('probe')
      await held
      await done
      t.same(events, [
        'first:start:lameduck:listening=true',
        'first:end',
        'second:lameduck:listening=true',
        'drain started'
      ])
    })

    t.test('runs afterDrain hooks only after every in-flight request has finished', async (t) => {
      const app = await start(t, h, { routes: { '/hold/:id': { abortOnDrain: true } } })
      const events: string[] = []
      app.graceful.afterDrain(function closePool () { events.push('afterDrain') })
      const conn = await connect(t, app)
      t.equal((await conn.send('/')).status, 200)
      const a = get(app.port, '/hold/a')
      const b = get(app.port, '/hold/b')
      await Promise.all([app.entered('a'), app.entered('b')])

      const done = app.graceful.shutdown('test')
      await aborted(app.signals.get('a'))
      // A round trip through the server during the drain gives an eager hook every chance to run.
      t.equal((await conn.send('/')).status, 503)
      events.push('release a')
      app.release('a')
      t.equal((await a).body, 'released a')
      events.push('release b')
      app.release('b')
      t.equal((await b).body, 'released b')
      const report = await done
      t.same(events, ['release a', 'release b', 'afterDrain'])
      t.equal(report.exitCode, 0)
    })

    t.test('runs afterDrain hooks in registration order, one at a time', async (t) => {
      const app = await start(t, h)
      const events: string[] = []
      app.graceful.afterDrain(async function first () {
        events.push('first:start')
        await turns(3)
        events.push('first:end')
      })
      app.graceful.afterDrain(function second () {
        events.push('second:start')
        events.push('second:end')
      })
      app.graceful.afterDrain(async function third () {
        events.push('third:start')
        await turns(1)
        events.push('third:end')
      })
      const report = await app.graceful.shutdown('test')
      t.same(events, ['first:start', 'first:end', 'second:start', 'second:end', 'third:start', 'third:end'])
      t.same(userHooks(app, report).map((hook) => hook.name), ['first', 'second', 'third'])
      t.equal(report.exitCode, 0)
    })

    // ---- 5. hook failures, timeouts, context and names ----------------------------------------------

    t.test('records a hook that throws, sync or async, and still runs the next one', async (t) => {
      const app = await start(t, h)
      const ran: string[] = []
      app.graceful.beforeDrain(function failsBefore () { throw new Error('before boom') })
      app.graceful.beforeDrain(function runsBefore () { ran.push('runsBefore') })
      app.graceful.afterDrain(function syncThrows () { throw new Error('sync boom') })
      app.graceful.afterDrain(async function asyncThrows () {
        await turns(1)
        throw new Error('async boom')
      })
      app.graceful.afterDrain(function runsAfter () { ran.push('runsAfter') })
      const report = await app.graceful.shutdown('test')

      t.same(ran, ['runsBefore', 'runsAfter'], 'the hooks after a failing one still ran')
      const hooks = userHooks(app, report)
      t.equal(hooks.length, 5)
      t.match(hooks[0], { name: 'failsBefore', error: /before boom/ })
      t.match(hooks[1], { name: 'runsBefore' })
      t.notOk(hooks[1] !== undefined && 'error' in hooks[1], 'no error for a hook that passed')
      t.match(hooks[2], { name: 'syncThrows', error: /sync boom/ })
      t.match(hooks[3], { name: 'asyncThrows', error: /async boom/ })
      t.notOk(hooks[4] !== undefined && 'error' in hooks[4], 'no error for a hook that passed')
      t.equal(report.exitCode, 1)
      const problems = app.logs.filter((e) => e.level !== 'info')
      for (const name of ['failsBefore', 'syncThrows', 'asyncThrows']) {
        t.ok(problems.some((e) => mentions(e, name)), `the failure of ${name} is logged`)
      }
    })

    t.test('cuts a hook that never settles at hookTimeout, aborting its signal, and runs the next', async (t) => {
      const app = await start(t, h, { options: { hookTimeout: 100 } })
      const events: string[] = []
      let context: HookContext | undefined
      app.graceful.afterDrain(function neverSettles (ctx) {
        context = ctx
        events.push(`start:aborted=${String(ctx.signal.aborted)}`)
        ctx.signal.addEventListener('abort', () => events.push('signal aborted'), { once: true })
        return new Promise(() => {})
      })
      app.graceful.afterDrain(function next () { events.push('next') })
      const report = await app.graceful.shutdown('deploy')

      t.same(events, ['start:aborted=false', 'signal aborted', 'next'], 'the signal aborts at the timeout, before the next hook')
      t.equal(context?.reason, 'deploy', 'the context has the reason')
      t.ok(context?.signal instanceof AbortSignal, 'the context has an AbortSignal')
      const [cut, next] = userHooks(app, report)
      t.match(cut, { name: 'neverSettles', error: String })
      t.ok((cut?.ms ?? 0) >= 90, `cut after about 100 ms (${String(cut?.ms)} ms)`)
      t.match(next, { name: 'next' })
      t.notOk(next !== undefined && 'error' in next)
      t.ok(report.durationMs < 4000, 'long before the default hookTimeout')
      t.equal(report.exitCode, 1)
    })

    t.test('cuts a hook at its own timeout option', async (t) => {
      const app = await start(t, h, { options: { hookTimeout: 10000 } })
      const events: string[] = []
      app.graceful.beforeDrain(function stuck ({ signal }) {
        signal.addEventListener('abort', () => events.push('signal aborted'), { once: true })
        return new Promise(() => {})
      }, { timeout: 100 })
      app.graceful.beforeDrain(function next () { events.push('next') })
      const report = await app.graceful.shutdown('test')
      t.same(events, ['signal aborted', 'next'])
      const [cut, next] = report.hooks
      t.match(cut, { name: 'stuck', error: String })
      t.ok((cut?.ms ?? 0) >= 90, `cut after about 100 ms (${String(cut?.ms)} ms)`)
      t.notOk(next !== undefined && 'error' in next)
      t.ok(report.durationMs < 5000, `long before hookTimeout (${report.durationMs} ms)`)
      t.equal(report.exitCode, 1)
    })

    t.test('names hooks by their name option, else the function name, else kind#position', async (t) => {
      const app = await start(t, h)
      app.graceful.beforeDrain(() => {})
      app.graceful.afterDrain(function closePool () {}, { name: 'postgres pool' })
      app.graceful.afterDrain(() => {})
      app.graceful.afterDrain(async function flushQueue () {})
      const report = await app.graceful.shutdown('test')
      t.same(report.hooks.map((hook) => hook.name), [
        'beforeDrain#1',
        'postgres pool',
        'afterDrain#2',
        'flushQueue',
        ...(h.name === 'fastify' ? ['fastify.close'] : [])
      ])
    })

    if (h.name === 'fastify') {
      t.test('ends report.hooks with Fastify\'s own close', async (t) => {
        const app = await start(t, h)
        app.graceful.afterDrain(function closePool () {})
        const report = await app.graceful.shutdown('test')
        t.equal(report.hooks.length, 2)
        const last = report.hooks.at(-1)
        t.equal(last?.name, 'fastify.close')
        t.same(Object.keys(last ?? {}).sort(), ['ms', 'name'], 'it passed')
        t.equal(report.exitCode, 0)
      })
    }

    // ---- 6. report counts and the final log line ----------------------------------------------------

    t.test('counts in-flight, completed and rejected requests, and logs the report once at the end', async (t) => {
      const app = await start(t, h, { routes: { '/hold/:id': { abortOnDrain: true } } })
      const conn = await connect(t, app)
      t.equal((await conn.send('/')).status, 200)
      const a = get(app.port, '/hold/a')
      const b = get(app.port, '/hold/b')
      await Promise.all([app.entered('a'), app.entered('b')])

      const done = app.graceful.shutdown('counted')
      await aborted(app.signals.get('a'))
      const rejected = await conn.send('/')
      t.equal(rejected.status, 503, 'a new request on an open connection gets 503 during the drain')
      t.equal(rejected.headers.connection, 'close')
      t.equal(rejected.headers['retry-after'], '1')
      app.release('a')
      app.release('b')
      t.equal((await a).status, 200)
      t.equal((await b).status, 200)
      const report = await done

      t.match(report, {
        reason: 'counted',
        inFlightAtStart: 2,
        completed: 2,
        rejected: 1,
        aborted: 0,
        destroyedSockets: 0,
        timedOut: false,
        exitCode: 0
      })
      t.ok(typeof report.durationMs === 'number' && report.durationMs >= 0, 'durationMs is a number >= 0')
      const withReport = app.logs.filter((e) => 'report' in e.obj)
      t.equal(withReport.length, 1, 'one log entry carries the report')
      const last = app.logs.at(-1)
      t.equal(last?.level, 'info')
      t.equal(last?.msg, 'graceful: shutdown complete')
      t.strictSame(last?.obj.report, report, 'the logged report is the returned one')
    })

    // ---- 7. per-route options -----------------------------------------------------------------------

    t.test('serves a serveDuringDrain route with Connection: close while other routes get 503', async (t) => {
      const app = await start(t, h, { routes: { '/health': { serveDuringDrain: true }, '/hold/:id': { abortOnDrain: true } } })
      const healthConn = await connect(t, app)
      const otherConn = await connect(t, app)
      t.equal((await healthConn.send('/')).status, 200)
      t.equal((await otherConn.send('/')).status, 200)
      const held = get(app.port, '/hold/probe')
      await app.entered('probe')

      const done = app.graceful.shutdown('test')
      await aborted(app.signals.get('probe'))
      const [health, other] = await Promise.all([healthConn.send('/health'), otherConn.send('/')])
      t.equal(health.status, 200)
      t.equal(health.body, 'ok')
      t.equal(health.headers.connection, 'close')
      t.equal(other.status, 503)
      t.equal(other.headers.connection, 'close')
      await Promise.all([healthConn.closed, otherConn.closed])
      app.release('probe')
      t.equal((await held).status, 200)
      const report = await done
      t.equal(report.rejected, 1)
      t.equal(report.exitCode, 0)
    })

    t.test('cuts a request at its route timeout, long before the global one', async (t) => {
      const app = await start(t, h, { options: { timeout: 10000 }, routes: { '/hold/:id': { timeout: 150 } } })
      const held = attempt(get(app.port, '/hold/slow'))
      await app.entered('slow')
      const report = await app.graceful.shutdown('test')
      t.ok(report.durationMs >= 140, `not before its timeout (${report.durationMs} ms)`)
      t.ok(report.durationMs < 5000, `long before the global timeout (${report.durationMs} ms)`)
      t.equal(report.inFlightAtStart, 1)
      t.equal(report.aborted, 1)
      t.equal(report.destroyedSockets, 1)
      t.equal(report.completed, 0)
      t.equal(report.exitCode, 1)
      t.equal(app.signals.get('slow')?.aborted, true, 'its shutdownSignal aborted')
      t.type(await held, Error, 'the client sees its connection cut')
    })

    t.test('ends an abortOnDrain SSE stream politely at the drain start', async (t) => {
      const app = await start(t, h, { options: { timeout: 10000 }, routes: { '/sse': { abortOnDrain: true } } })
      const conn = await connect(t, app)
      conn.socket.write('GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
      let received = ''
      const hello = deferred()
      conn.socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('utf8')
        if (received.includes('data: hello')) hello.resolve()
      })
      await hello.promise
      const report = await app.graceful.shutdown('test')
      await conn.closed
      t.match(received, /^HTTP\/1\.1 200 /)
      t.match(received, /event: bye\r?\ndata: reconnect/, 'the stream said bye')
      t.match(received, /\r\n0\r\n\r\n$/, 'the chunked body ended properly')
      t.equal(report.inFlightAtStart, 1)
      t.equal(report.completed, 1)
      t.equal(report.aborted, 0)
      t.equal(report.timedOut, false)
      t.equal(report.exitCode, 0, 'it ended on its own')
      t.ok(report.durationMs < 5000, `the drain did not wait for the timeout (${report.durationMs} ms)`)
    })

    t.test('aborts the shutdownSignal of an unconfigured request at the deadline, not at the drain start', async (t) => {
      const app = await start(t, h, { options: { timeout: 200 }, routes: { '/stream/:id': { abortOnDrain: true } } })
      // Held first, so a drain start that wrongly aborted every signal would reach it before the probe.
      const held = attempt(get(app.port, '/hold/plain'))
      await app.entered('plain')
      const probe = get(app.port, '/stream/probe')
      await app.entered('probe')
      const signal = app.signals.get('plain')
      t.equal(signal?.aborted, false, 'not aborted while serving')

      const done = app.graceful.shutdown('test')
      await aborted(app.signals.get('probe'))
      const drainStart = performance.now()
      t.equal(signal?.aborted, false, 'not aborted at the drain start')
      app.release('probe')
      t.equal((await probe).body, 'first\nlast\n')
      await aborted(signal)
      const after = performance.now() - drainStart
      t.ok(after >= 150, `aborted at the deadline (${Math.round(after)} ms after the drain start)`)
      const report = await done
      t.type(await held, Error, 'the request was cut')
      t.equal(report.aborted, 1)
      t.equal(report.destroyedSockets, 1)
      t.equal(report.completed, 1)
      t.equal(report.timedOut, true)
      t.equal(report.exitCode, 1)
    })

    t.test('aborts the shutdownSignal of an abortOnDrain request at the drain start', async (t) => {
      const app = await start(t, h, { options: { timeout: 10000 }, routes: { '/hold/:id': { abortOnDrain: true } } })
      const held = get(app.port, '/hold/poll')
      await app.entered('poll')
      const signal = app.signals.get('poll')
      t.equal(signal?.aborted, false, 'not aborted while serving')
      const done = app.graceful.shutdown('test')
      await aborted(signal)
      t.equal(app.graceful.phase, 'draining', 'aborted when the drain started')
      app.release('poll')
      const res = await held
      t.equal(res.status, 200)
      t.equal(res.body, 'released poll')
      const report = await done
      t.equal(report.completed, 1)
      t.equal(report.aborted, 0)
      t.equal(report.exitCode, 0)
    })

    // ---- 8. hook API errors -------------------------------------------------------------------------

    t.test('throws GRACEFUL_ERR_HOOK for a hook that is not a function', async (t) => {
      const app = await start(t, h)
      for (const bad of ['x', undefined, null, 42, {}]) {
        for (const kind of ['beforeDrain', 'afterDrain'] as const) {
          const err = caught(() => app.graceful[kind](bad as unknown as HookFn))
          t.ok(err instanceof TypeError, `${kind}(${inspect(bad)}) throws a TypeError`)
          t.equal(err.code, 'GRACEFUL_ERR_HOOK')
          t.match(err.message, kind, 'the message names the method')
        }
      }
    })

    t.test('throws GRACEFUL_ERR_HOOK_OPTIONS for bad hook options', async (t) => {
      const app = await start(t, h)
      const bad: unknown[] = [{ timeout: -1 }, { timeout: Number.NaN }, { timeout: Infinity }, { timeout: '100' },
        { timeout: 2 ** 31 }, { name: 42 }, { name: '' }, { nmae: 'typo' }, 'fast', null, []]
      for (const options of bad) {
        for (const kind of ['beforeDrain', 'afterDrain'] as const) {
          const err = caught(() => app.graceful[kind](() => {}, options as HookOptions))
          t.ok(err instanceof TypeError, `${kind}(fn, ${inspect(options)}) throws a TypeError`)
          t.equal(err.code, 'GRACEFUL_ERR_HOOK_OPTIONS')
        }
      }
      const report = await app.graceful.shutdown('test')
      t.same(userHooks(app, report), [], 'no rejected hook was registered')
    })

    t.test('throws GRACEFUL_ERR_SHUTTING_DOWN for beforeDrain once the shutdown has started', async (t) => {
      const app = await start(t, h)
      const done = app.graceful.shutdown('test')
      const during = caught(() => app.graceful.beforeDrain(function tooLate () {}))
      t.equal(during.code, 'GRACEFUL_ERR_SHUTTING_DOWN', 'during the lame-duck time')
      const report = await done
      const after = caught(() => app.graceful.beforeDrain(function tooLate () {}))
      t.equal(after.code, 'GRACEFUL_ERR_SHUTTING_DOWN', 'once closed')
      t.notOk(report.hooks.some((hook) => hook.name === 'tooLate'), 'the hook never ran')
    })

    t.test('accepts and runs an afterDrain hook added during the lame-duck time', async (t) => {
      const app = await start(t, h)
      const ran: string[] = []
      app.graceful.beforeDrain(function addsOne () {
        app.graceful.afterDrain(function fromHook () { ran.push('fromHook') })
      })
      const done = app.graceful.shutdown('test')
      t.equal(app.graceful.phase, 'lameduck')
      app.graceful.afterDrain(function fromCaller () { ran.push('fromCaller') })
      const report = await done
      t.same(ran.sort(), ['fromCaller', 'fromHook'])
      t.same(userHooks(app, report).map((hook) => hook.name).sort(), ['addsOne', 'fromCaller', 'fromHook'])
      t.equal(report.exitCode, 0)
    })
  })
}

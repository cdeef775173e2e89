// The in-process drain harness of the contract suites: an app from either adapter's harness, started so the
// test acts at the exact point in the event loop where the drain has begun.
import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { Test } from 'tap'
import type { ShutdownReport } from '@graceful/core'
import { RawClient, get, type Closed } from './client.js'
import { deferred, type Harness, type StartOptions, type TestApp } from './harness.js'
import { settleWithin } from './bounded.js'

/** A bound that only proves "no hang": far above what any case takes, far below tap's own timeout. */
export const NO_HANG_MS = 10_000

/** Fails with a clear message instead of hanging when `promise` does not settle in `ms`. */
export const within = <T>(promise: Promise<T>, what: string, ms = NO_HANG_MS): Promise<T> => settleWithin(promise, what, ms)

/** Resolves once `condition()` holds, checking once per event-loop turn (after each poll for I/O). */
export async function until (condition: () => boolean, what: string): Promise<void> {
  const start = performance.now()
  while (!condition()) {
    if (performance.now() - start > NO_HANG_MS) throw new Error(`${what}: not within ${NO_HANG_MS} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

export interface Started {
  app: TestApp
  /** Starts the shutdown; resolves once the phase is 'draining', with the promise of the report. */
  drain (reason?: string): Promise<{ report: Promise<ShutdownReport> }>
  /** A raw connection, closed at teardown. */
  connect (): Promise<RawClient>
  /** A raw connection, resolved once the server has accepted it (and handed us its side). */
  accepted (): Promise<{ client: RawClient, server: Socket }>
}

export interface Start extends StartOptions {
  /** Called synchronously the moment the drain starts (from the engine's 'draining' log line). */
  onDraining?: () => void
}

/**
 * Starts an app whose logger tells us, synchronously, when the phase becomes 'draining': the engine logs
 * once the drain has begun (listener closed, idle connections marked), so the test acts at that exact
 * point in the event loop, with no sleep and no polling.
 */
export async function start (t: Test, h: Harness, opts: Start = {}): Promise<Started> {
  let app: TestApp | undefined
  const draining = deferred()
  let seen = false
  const watch = (): void => {
    if (seen || app?.graceful.phase !== 'draining') return
    seen = true
    opts.onDraining?.()
    draining.resolve()
  }
  const { onDraining: _, ...startOptions } = opts
  app = await h.start({ ...startOptions, options: { logger: { info: watch, warn: watch, error: watch }, ...opts.options } })
  const started = app
  const clients: RawClient[] = []
  t.teardown(async () => {
    for (const id of ['a', 'b', 'c', 'h', 's']) started.release(id)
    for (const c of clients) c.destroy()
    for (const s of started.upgraded) s.destroy()
    await started.close()
  })
  const connect = async (): Promise<RawClient> => {
    const c = await RawClient.connect(started.port)
    clients.push(c)
    return c
  }
  return {
    app: started,
    async drain (reason) {
      const report = started.graceful.shutdown(reason)
      await within(Promise.race([
        draining.promise,
        report.then(() => { throw new Error('the shutdown ended without a drain phase being seen') })
      ]), 'the drain start')
      // Wrapped: an async function returning the report's promise would wait for the whole shutdown.
      return { report }
    },
    connect,
    async accepted () {
      const server = once(started.server, 'connection') as Promise<[Socket]>
      const client = await connect()
      const [socket] = await within(server, 'the server accepting the connection')
      return { client, server: socket }
    }
  }
}

/** An idle keep-alive connection (one request answered, kept open): its close tells us an idle sweep ran. */
export async function idleConnection (s: Started): Promise<RawClient> {
  const c = await s.connect()
  await c.write(get('/'))
  const res = await c.response()
  if (res.status !== 200 || res.headers.connection === 'close') throw new Error(`unexpected witness response ${res.head}`)
  return c
}

export function assertClosedWithFin (t: Test, closed: Closed, what: string): void {
  t.equal(closed.reset, false, `${what}: not reset (${closed.error?.code ?? 'no error'})`)
  t.equal(closed.fin, true, `${what}: closed with a FIN`)
}


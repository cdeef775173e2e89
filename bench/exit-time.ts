// Rows 2 and 4, exit time and memory. Each measurement forks a fresh server (it exits) and a client
// process that holds the connections (so this process only waits for the exit); the kinds take turns, in
// an order rotated by one per round, and each figure is the median over the rounds.
// - idle: N keep-alive connections that have each made one request (so every library tracks them), quiet
//   for IDLE_QUIET_MS, then SIGTERM → the server's 'exit'. Before the signal the server's heap is taken (after gc) with only a
//   warm-up's connections open and again with all N: (after − before) / N is the heap per connection.
//   The bare frameworks are measured the same way, and each library's figure less its framework's in the
//   same round is what the library adds per connection.
// - busy: M connections each holding a request the server answers 100 ms after the last one arrived; the
//   signal goes out the moment they are all in, so each ends within 100 ms of it.
// A library that waits out its own timeout does so every time: it is not measured again in later rounds.
import { setTimeout as sleep } from 'node:timers/promises'
import { KINDS, CONTENDERS, bareOf, type Kind } from './lib/kinds.js'
import { median, rotation, startHolder, startServer, within, type Exit, type Server } from './lib/child.js'

export interface ExitTimeOptions {
  rounds: number
  idleConnections: number
  busyConnections: number
  /** ms to wait for an exit before calling it a timeout (and killing the process). */
  capMs: number
  /** The libraries' own timeout (BENCH_TIMEOUT), ms: an exit this late means they waited it out. */
  libraryTimeout: number
}

export interface ExitSample {
  /** ms from SIGTERM to the 'exit' event; Infinity when it did not exit within the cap; NaN if not signalled. */
  exitMs: number
  exit: Exit | undefined
  /** Connections still open at the moment of the signal (a check that the load was really there). */
  openAtSignal: number
  /** Connections that ended in an error (a reset) rather than a close. */
  errors: number
  /** Busy runs: requests answered 200. */
  ok: number
}

export interface ExitTimeRow {
  kind: Kind
  idle: ExitSample[]
  busy: ExitSample[]
  /** Median bytes of heap per open connection, this kind. */
  heapPerConnection: number
  /** Median over rounds of (this kind's heap per connection − the bare framework's in the same round). */
  heapAdded: number
}

const WARM_CONNECTIONS = 100
/**
 * How long the idle connections have been quiet at the signal: longer than graceful's idle grace (IDLE_GRACE_MS,
 * 1 s, plus its slack), so they are idle in every library's sense. A connection that answered within the last
 * second gets graceful's grace instead (its client may be about to send its next request).
 */
export const IDLE_QUIET_MS = 1500

async function signalAndWait (s: Server, capMs: number): Promise<{ exitMs: number, exit: Exit | undefined }> {
  const start = performance.now()
  s.child.kill('SIGTERM')
  try {
    const exit = await within(s.exited, 'exit', capMs)
    return { exitMs: performance.now() - start, exit }
  } catch {
    await s.kill()
    return { exitMs: Infinity, exit: undefined }
  }
}

interface IdleResult { sample: ExitSample, heapPerConnection: number }

async function idleRun (k: Kind, options: ExitTimeOptions): Promise<IdleResult> {
  const s = await startServer(k.id)
  const warm = await startHolder()
  const holder = await startHolder()
  try {
    await warm.hold({ port: s.port, n: WARM_CONNECTIONS, mode: 'idle' })
    const before = await s.ask('heap')
    const opened = await holder.hold({ port: s.port, n: options.idleConnections, mode: 'idle' })
    const openedAt = performance.now()
    if (opened.closedWhileOpening > 0) throw new Error(`${k.id}: ${opened.closedWhileOpening} connections closed while opening`)
    const after = await s.ask('heap')
    const heapPerConnection = (after - before) / options.idleConnections
    const openAtSignal = (await warm.stats()).open + (await holder.stats()).open
    if (k.role === 'bare') return { sample: { exitMs: NaN, exit: undefined, openAtSignal, errors: 0, ok: 0 }, heapPerConnection }
    await sleep(Math.max(0, IDLE_QUIET_MS - (performance.now() - openedAt)))
    const { exitMs, exit } = await signalAndWait(s, options.capMs)
    const errors = (await warm.stats()).errors + (await holder.stats()).errors
    return { sample: { exitMs, exit, openAtSignal, errors, ok: 0 }, heapPerConnection }
  } finally {
    await s.kill()
    await warm.close()
    await holder.close()
  }
}

async function busyRun (k: Kind, options: ExitTimeOptions): Promise<ExitSample> {
  const s = await startServer(k.id)
  const holder = await startHolder()
  try {
    const n = options.busyConnections
    s.send({ gate: n })
    const gated = new Promise<void>((resolve) => {
      s.child.on('message', (msg: unknown) => { if (typeof msg === 'object' && msg !== null && 'gated' in msg) resolve() })
    })
    await holder.hold({ port: s.port, n, mode: 'busy' })
    await within(gated, `${k.id}: ${n} requests in`, 60_000)
    const { exitMs, exit } = await signalAndWait(s, options.capMs)
    const stats = await holder.stats()
    // Every connection was open when the requests went in; those still open at the signal are not
    // counted separately (the signal follows the last request at once).
    return { exitMs, exit, openAtSignal: n, errors: stats.errors, ok: stats.ok }
  } finally {
    await s.kill()
    await holder.close()
  }
}

/** The library waited out its own timeout (or our cap): the same would happen in every round. */
const waitedOut = (x: ExitSample, options: ExitTimeOptions): boolean => x.exitMs >= options.libraryTimeout * 0.9

export async function exitTime (options: ExitTimeOptions, log: (line: string) => void): Promise<ExitTimeRow[]> {
  // The bare frameworks are in the idle runs for the memory baseline only.
  const idle = new Map<Kind, IdleResult[]>(KINDS.map((k) => [k, []]))
  const busy = new Map<Kind, ExitSample[]>(CONTENDERS.map((k) => [k, []]))
  for (let r = 0; r < options.rounds; r++) {
    for (const k of rotation(KINDS, r)) {
      const result = await idleRun(k, options)
      ;(idle.get(k) as IdleResult[]).push(result)
      log(`exit-time idle ${k.id} round ${r + 1}/${options.rounds}: exit ${fmt(result.sample.exitMs)} ms, ` +
        `${Math.round(result.heapPerConnection)} B/connection, ${result.sample.openAtSignal} open at the signal`)
    }
    for (const k of rotation(CONTENDERS, r)) {
      const mine = busy.get(k) as ExitSample[]
      if (mine.some((x) => waitedOut(x, options))) continue
      const sample = await busyRun(k, options)
      mine.push(sample)
      log(`exit-time busy ${k.id} round ${r + 1}/${options.rounds}: exit ${fmt(sample.exitMs)} ms, ` +
        `${sample.ok}/${options.busyConnections} answered 200, exit ${JSON.stringify(sample.exit)}`)
    }
  }
  return KINDS.map((k) => {
    const mine = idle.get(k) as IdleResult[]
    const bare = idle.get(bareOf(k)) as IdleResult[]
    return {
      kind: k,
      idle: mine.map((x) => x.sample),
      busy: busy.get(k) ?? [],
      heapPerConnection: median(mine.map((x) => x.heapPerConnection)),
      heapAdded: median(mine.map((x, i) => x.heapPerConnection - (bare[i]?.heapPerConnection ?? NaN)))
    }
  })
}

const fmt = (ms: number): string => Number.isFinite(ms) ? String(Math.round(ms)) : (Number.isNaN(ms) ? '-' : '> cap')

// A Run's state as the CheckResult: absolute times become ms from the signals, failures get their causes,
// and the verdict is drawn.
import type { Run } from './check.js'
import { emptyTotals, type RawFailure } from './tally.js'
import type { Traffic } from './traffic.js'
import type { CheckResult, ConnectionEnd, Failure, Timeline } from './types.js'
import { causeOf, causes, notes, type VerdictContext } from './verdict.js'

/** ms from `zero` to `at`; null when `at` is 0 (not seen). */
const rel = (at: number, zero: number): number | null => at === 0 ? null : Math.round(at - zero)

/** What the verdict rules know of the app's end. */
function context (run: Run, traffic: Traffic): VerdictContext {
  const m = traffic.tally.marks
  return {
    exitAt: run.exit === null ? null : run.exit.at,
    exitKnown: run.exit !== null && run.exit.known,
    lastResponseAt: m.lastResponse === 0 ? null : m.lastResponse,
    listenerClosedAt: run.listenerClosedAt === 0 ? null : run.listenerClosedAt
  }
}

/** A failure as the result shows it: times from the signal it came after (before any: from the load's start). */
export function toFailure (run: Run, f: RawFailure): Failure {
  const traffic = run.traffic as Traffic
  const r = f.record
  const signals = traffic.tally.signals
  let signal = 0
  signals.forEach((at, i) => { if (at <= r.endAt) signal = i + 1 })
  const zero = signal === 0 ? run.loadStart : signals[signal - 1] as number
  return {
    class: f.class,
    kind: r.kind,
    client: r.client,
    request: r.n,
    signal,
    atMs: Math.round(r.endAt - zero),
    sentMs: Math.round(r.sentAt - zero),
    quietMs: r.quietMs,
    fresh: r.fresh,
    detail: f.detail,
    cause: causeOf(f, context(run, traffic))
  }
}

/**
 * Idle connections held the exit: it came more than a second after the last answer, and within 150 ms of
 * the server closing an idle (or preconnected) connection that had stayed open meanwhile.
 */
export function heldExit (exitMs: number | null, lastResponseMs: number | null, connections: ConnectionEnd[]): { held: boolean | null, closed: ConnectionEnd | null } {
  if (exitMs === null) return { held: null, closed: null }
  const last = lastResponseMs ?? 0
  const ended = connections.filter((c) => (c.ended === 'fin' || c.ended === 'reset') && (c.atMs as number) <= exitMs)
  const closed = ended.sort((a, b) => (b.atMs as number) - (a.atMs as number))[0] ?? null
  const at = closed === null ? 0 : closed.atMs as number
  const held = closed !== null && exitMs - last > 1000 && at - last >= 1000 && exitMs - at <= 150
  return { held, closed }
}

export function result (run: Run): CheckResult {
  const o = run.o
  const base = {
    schema: 1 as const,
    error: run.error,
    app: {
      command: o.command,
      pid: run.app.pid <= 0 ? null : run.app.pid,
      url: run.endpoint === null ? null : run.endpoint.url,
      portFrom: run.endpoint === null ? null : run.endpoint.from,
      output: [...run.app.output]
    },
    scenario: {
      signal: o.signal,
      restart: o.restart,
      durationMs: o.duration,
      timeoutMs: o.timeout,
      path: o.path,
      postPath: o.postPath,
      slow: o.slow,
      stream: o.stream,
      readiness: o.readiness,
      clients: o.clients
    },
    signals: run.signals,
    restarts: run.restarts
  }
  const traffic = run.traffic
  if (traffic === null) {
    // The check never got to load the app: nothing was counted.
    return {
      ...base, ok: false, totals: emptyTotals(), kinds: {}, failures: [], timeline: null, exit: null, connections: [],
      heldExit: null, stream: null, readiness: null, verdict: { lost: 0, causes: [], notes: [] }
    }
  }
  const tally = traffic.tally
  const signals = tally.signals
  const zero = tally.finalAt !== 0 ? tally.finalAt : signals[signals.length - 1] ?? run.loadStart
  const raw = tally.failures
  const failures = raw.map((f) => toFailure(run, f))
  const m = tally.marks
  const exit = run.exit === null
    ? null
    : { pid: run.servingPid, code: run.exit.code, signal: run.exit.signal, known: run.exit.known, atMs: Math.round(run.exit.at - zero) }
  const timeline: Timeline | null = run.signals.length === 0
    ? null
    : {
        signal: (run.signals[run.signals.length - 1] as { signal: string }).signal,
        readinessMs: rel(m.readinessFlip, zero),
        first503Ms: rel(m.first503, zero),
        firstCloseMs: rel(m.firstClose, zero),
        lastResponseMs: rel(m.lastResponse, zero),
        last2xxMs: rel(m.last2xx, zero),
        listenerClosedMs: rel(run.listenerClosedAt, zero),
        exitMs: exit === null ? null : exit.atMs
      }
  const lastResponseMs = rel(m.lastResponse, zero)
  const connections = traffic.watched.map((w) => w.result(zero))
  const held = heldExit(exit === null ? null : exit.atMs, lastResponseMs, connections)
  const readiness = o.readiness === null
    ? null
    : {
        path: o.readiness,
        polls: tally.readiness.polls,
        flipMs: rel(m.readinessFlip, zero),
        flipStatus: m.readinessFlip === 0 ? null : m.readinessStatus,
        notReadyBefore: tally.readiness.notReadyBefore
      }
  const stream = traffic.stream === null ? null : traffic.stream.result(zero)
  const stillOpen = [
    ...connections.filter((c) => c.ended === 'open').map((c) => c.kind === 'idle' ? 'the idle keep-alive connection' : 'the preconnect'),
    ...(stream !== null && stream.ended === 'open' ? [`the stream ${stream.path}`] : [])
  ]
  const noteList = notes({
    totals: tally.totals,
    restart503: tally.restart503,
    signal: o.signal,
    finalSent: run.finalSent,
    readiness,
    listenerClosedMs: rel(run.listenerClosedAt, zero),
    lastResponseMs,
    exit,
    timeout: o.timeout,
    heldExit: held.held,
    heldBy: held.closed,
    stillOpen,
    restarts: run.restarts,
    restartsWanted: o.restart === null ? 0 : o.restart.times
  })
  return {
    ...base,
    ok: run.error === null && failures.length === 0 && !noteList.some((n) => n.problem),
    totals: tally.totals,
    kinds: Object.fromEntries(tally.kinds),
    failures,
    timeline,
    exit,
    connections,
    heldExit: held.held,
    stream,
    readiness,
    verdict: { lost: failures.length, causes: causes(raw, failures.map((f) => f.cause), o.timeout, run.restarts), notes: noteList }
  }
}

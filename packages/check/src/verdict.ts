// The verdict: for each failure its likely cause, from its class, its kind of connection and when it
// happened next to what was seen of the app (its exit, its listener closing, its last answer); then each
// cause in plain words with what fixes it, and the notes that are not losses.
import type { Kind } from './options.js'
import type { RawFailure } from './tally.js'
import type { Cause, CauseId, ConnectionEnd, ExitRecord, FailureClass, Note, RestartRecord, StatusCounts } from './types.js'

export interface VerdictContext {
  /** Absolute ms: the app's exit after the final signal, its last answer (any status) since the latest signal, the first refused connect after it. */
  exitAt: number | null
  /** The exit came from our child's exit event (else from polling another process). */
  exitKnown: boolean
  lastResponseAt: number | null
  listenerClosedAt: number | null
}

/**
 * A failure seen this soon before the exit (or a little after), with nothing answered after it, was cut by
 * the exit: the kernel closes the sockets as the process ends, and our child's exit event follows at once.
 * Another process's exit is seen by polling, up to a poll (20 ms) late.
 */
export const EXIT_BEFORE_MS = 10
export const EXIT_BEFORE_POLLED_MS = 30
export const EXIT_AFTER_MS = 10

/** A refused-after-accept this close to the listener's close came from the accept queue. */
export const ACCEPT_QUEUE_WINDOW_MS = 150
/**
 * A reused connection that fails this soon after its request went out was closed as the request was
 * reaching it (generous: on a loaded machine the client sees the close late). Not for slow requests,
 * which are in flight by design.
 */
export const RACE_MS = 250
/** Quiet for at least this long before the request: the client had paused, its connection looked idle. */
export const PAUSE_MS = 20

export function causeOf (f: RawFailure, ctx: VerdictContext): CauseId {
  const r = f.record
  if (f.class === 'refused') return 'unserved'
  if (f.class === 'serverError') return 'serverError'
  if (f.class === 'timeout') return 'timeout'
  if (r.behind === true) return 'pipelineDropped'
  const race = !r.fresh && (f.class === 'hangUp' || f.class === 'reset') && r.kind !== 'slow' && r.endAt - r.sentAt <= RACE_MS
  // An idle connection closed, whether by the drain or by the exit: the fix is the same.
  if (race && r.quietMs !== null && r.quietMs >= PAUSE_MS) return 'idleClose'
  const before = ctx.exitKnown ? EXIT_BEFORE_MS : EXIT_BEFORE_POLLED_MS
  const exitCut = ctx.exitAt !== null && r.endAt >= ctx.exitAt - before && r.endAt <= ctx.exitAt + EXIT_AFTER_MS &&
    r.sentAt < ctx.exitAt && !(ctx.lastResponseAt !== null && ctx.lastResponseAt > r.endAt)
  if (exitCut) return 'exitInFlight'
  if (f.class === 'truncated') return r.kind === 'stream' ? 'streamCut' : 'truncated'
  if (f.class === 'refusedAfterAccept') {
    return ctx.listenerClosedAt !== null && Math.abs(r.endAt - ctx.listenerClosedAt) <= ACCEPT_QUEUE_WINDOW_MS ? 'acceptQueue' : 'listenerOpen'
  }
  return race ? 'closeRace' : 'inFlightCut'
}

const range = (xs: number[]): string => {
  const lo = Math.min(...xs)
  const hi = Math.max(...xs)
  return lo === hi ? `${lo} ms` : `${lo}–${hi} ms`
}

const IDLE_FIX = 'from the start of the shutdown, answer with `Connection: close` so that clients close their connections themselves, and close ' +
  'a keep-alive connection only once it has been quiet for longer than clients pause between requests (a second or more). ' +
  'A client may retry such a request, but not a POST'

/** The cause in plain words, and its fix, given the failures it explains. */
export function explain (id: CauseId, failures: RawFailure[], timeout: number, restarts: RestartRecord[]): { text: string, fix: string } {
  switch (id) {
    case 'closeRace': return {
      text: 'keep-alive connections were closed the instant they looked idle, racing the next request the client had already sent ' +
        "(server.closeIdleConnections(), Fastify's forceCloseConnections: 'idle', or server.close() on Node 19+ do this)",
      fix: IDLE_FIX
    }
    case 'idleClose': {
      const quiet = failures.map((f) => f.record.quietMs as number)
      return {
        text: `idle keep-alive connections were closed while clients were about to reuse them: the requests went out on connections that had been quiet for ${range(quiet)} (a client pausing between requests), and met the server's close`,
        fix: IDLE_FIX
      }
    }
    case 'exitInFlight': return {
      text: 'the process exited with requests in flight: they had been accepted and were never answered',
      fix: 'exit only once the server has closed and every request has ended (no process.exit() straight from the signal handler), with any deadline longer than the slowest request'
    }
    case 'acceptQueue': return {
      text: 'new connections that the kernel had accepted, but the app had not taken yet, were reset when the listener closed (its accept queue)',
      fix: 'stop new connections coming before the listener closes: a lame-duck delay with readiness answering 503 first, and a proxy that retries connections that were never answered'
    }
    case 'listenerOpen': return {
      text: 'the listener stayed open while the app was shutting down: new connections were accepted, then closed or reset without an answer',
      fix: 'close the listener (server.close()) when the drain starts, so new connections are refused and go elsewhere, or answer them 503 with Connection: close'
    }
    case 'inFlightCut': return {
      text: 'requests in flight were cut: their connections were closed before the answer',
      fix: 'let requests in flight finish; destroy connections only at a deadline longer than the slowest request'
    }
    case 'truncated': return {
      text: 'responses were cut short: connections were destroyed while a response was being written',
      fix: 'let responses finish before closing their connections; destroy them only at a deadline longer than the slowest response'
    }
    case 'streamCut': return {
      text: 'the stream was cut without its end: a response that never ends held the shutdown until its connection was destroyed',
      fix: 'end long responses when the drain starts, with a last event that tells the client to reconnect elsewhere (graceful: abortOnDrain and shutdownSignal)'
    }
    case 'timeout': return {
      text: `requests were accepted and never answered within ${timeout} ms`,
      fix: 'find what holds them: a handler waiting on something the shutdown closed (a database pool?), or a process that hangs'
    }
    case 'unserved': {
      const windows = restarts.filter((r) => r.refused > 0).map((r) => `restart #${r.n}: ${r.refused} refused connects from +${r.refusedFromMs ?? 0} to +${r.refusedToMs ?? 0} ms`)
      return {
        text: 'new connections were refused while the address should have stayed served' + (windows.length > 0 ? ` (${windows.join('; ')})` : ''),
        fix: 'hand the listening socket over: the new process must be listening before the old one closes (graceful: restart on SIGHUP, or graceful-cluster)'
      }
    }
    case 'serverError': return {
      text: 'requests were answered 5xx after the signal, where they had been answered otherwise before it: something they need was closed before they finished',
      fix: 'close pools and clients only after the drain (graceful: afterDrain hooks)'
    }
    default: return {
      text: 'the server answered the first of two pipelined requests and closed the connection, dropping the second',
      fix: 'answer every request already received on a connection before closing it (Node closes the connection right after a response that says Connection: close)'
    }
  }
}

/** The causes, most failures first. */
export function causes (failures: RawFailure[], ids: CauseId[], timeout: number, restarts: RestartRecord[]): Cause[] {
  const groups = new Map<CauseId, RawFailure[]>()
  failures.forEach((f, i) => {
    const id = ids[i] as CauseId
    groups.set(id, [...groups.get(id) ?? [], f])
  })
  return [...groups].sort((a, b) => b[1].length - a[1].length).map(([id, fs]) => ({
    id,
    count: fs.length,
    classes: [...new Set(fs.map((f) => f.class))] as FailureClass[],
    kinds: [...new Set(fs.map((f) => f.record.kind))] as Kind[],
    ...explain(id, fs, timeout, restarts)
  }))
}

export interface NotesInput {
  totals: StatusCounts
  /** 503s answered during the restarts. */
  restart503: number
  signal: string | null
  finalSent: boolean
  readiness: { path: string, flipMs: number | null, notReadyBefore: number } | null
  listenerClosedMs: number | null
  lastResponseMs: number | null
  exit: ExitRecord | null
  timeout: number
  heldExit: boolean | null
  /** The idle connection (or preconnect) whose close came right before the exit, for heldExit. */
  heldBy: ConnectionEnd | null
  /** What of ours was still open when the process should have exited (for noExit). */
  stillOpen: string[]
  restarts: RestartRecord[]
  restartsWanted: number
}

export function notes (i: NotesInput): Note[] {
  const out: Note[] = []
  const t = i.totals
  const keep = t.unavailableKeep
  if (keep > 0) out.push({ id: 'noClose503', problem: false, text: `${keep} 503s kept their connection open (no Connection: close): the client's next request on it races the connection's close` })
  const unavailable = t.unavailableClose + t.unavailableKeep
  if (unavailable > t.retryAfter) out.push({ id: 'noRetryAfter', problem: false, text: `${unavailable - t.retryAfter} of ${unavailable} 503s had no Retry-After header` })
  if (i.restart503 > 0) {
    out.push({ id: 'restart503', problem: false, text: `${i.restart503} requests were answered 503 during the restarts, while a new process was serving: the old one could have served them (with Connection: close)` })
  }
  for (const r of i.restarts) if (r.error !== null) out.push({ id: 'restartFailed', problem: true, text: `restart #${r.n} (${r.signal} to pid ${r.from}) failed: ${r.error}` })
  const done = i.restarts.filter((r) => r.error === null).length
  if (i.restarts.length > 0 && i.restarts.length < i.restartsWanted && done === i.restarts.length) {
    out.push({ id: 'restartFailed', problem: true, text: `only ${done} of ${i.restartsWanted} restarts ran: the app had gone` })
  }
  if (i.readiness !== null && i.restarts.length > 0 && i.readiness.notReadyBefore > 0) {
    out.push({ id: 'readinessDuringRestart', problem: false, text: `readiness ${i.readiness.path} answered other than 2xx ${i.readiness.notReadyBefore} times before the final signal: a load balancer would have taken the instance out during the restarts` })
  }
  if (i.signal !== null && !i.finalSent) out.push({ id: 'noSignal', problem: true, text: `${i.signal} was not sent: the app had already gone` })
  if (!i.finalSent || i.signal === null) return out
  const r = i.readiness
  if (r !== null && (r.flipMs === null || (i.listenerClosedMs !== null && r.flipMs >= i.listenerClosedMs - 5))) {
    out.push({ id: 'noLameDuck', problem: false, text: `readiness ${r.path} did not answer 503 before the listener closed: a load balancer keeps sending new connections until its next probe fails, and they are refused. A lame-duck delay (readiness 503 for a few probe periods before the listener closes) prevents that` })
  }
  if (i.exit === null) {
    const open = i.stillOpen.length > 0 ? `; still open then: ${i.stillOpen.join(', ')}` : ''
    out.push({ id: 'noExit', problem: true, text: `the process did not exit within ${i.timeout} ms of ${i.signal}: something holds it open (connections server.close() waits for, a timer, an open handle)${open}` })
    return out
  }
  if (i.heldExit === true) {
    const by = i.heldBy as ConnectionEnd
    const what = by.kind === 'idle' ? 'the idle keep-alive connection' : 'the preconnect (connected, nothing sent)'
    out.push({
      id: 'heldExit',
      problem: false,
      text: `the process exited ${(i.exit.atMs - (i.lastResponseMs ?? 0)).toLocaleString('en-US')} ms after its last answer, right after ${what} was closed at +${(by.atMs as number).toLocaleString('en-US')} ms: ` +
        'idle connections held the exit (server.close() waits for them: until their keep-alive timeout, or forever for one that never sent a request)'
    })
  }
  if (i.exit.signal === i.signal) {
    out.push({ id: 'killedBySignal', problem: false, text: `the process was killed by ${i.signal} itself: it has no handler for it, so nothing was drained` })
  } else if (i.exit.code !== null && i.exit.code !== 0) {
    out.push({ id: 'exitCode', problem: false, text: `the process exited with code ${i.exit.code}` })
  }
  return out
}

// The shapes graceful-check produces: what one request looked like on the wire, the failures and their
// classes, and the result (`--json` prints it as is: docs/check.md documents it, `schema` versions it).
import type { Clients, Kind } from './options.js'

/** What a client saw of one request, in absolute ms (performance.timeOrigin + performance.now()). */
export interface RequestRecord {
  kind: Kind
  client: number
  /** The client's request number, from 1. */
  n: number
  sentAt: number
  endAt: number
  /** Sent on a connection opened for it (else one that had carried an earlier response). */
  fresh: boolean
  /** The TCP connection was established (a refused connect never is). */
  connected: boolean
  /** On a reused connection: ms since its previous response ended, when the request went out. */
  quietMs: number | null
  /** The response head arrived. */
  started: boolean
  /** The whole response arrived. */
  complete: boolean
  status: number
  /** The response said `Connection: close`. */
  close: boolean
  retryAfter: boolean
  /** The server's FIN had arrived on the connection when the request failed. */
  fin: boolean
  timedOut: boolean
  /** The error's code (ECONNRESET, EPIPE, ECONNREFUSED, …) and message, when it failed. */
  code: string
  message: string
  /** Pipelined behind a request this connection answered (the second of a pair whose first was answered). */
  behind?: boolean
}

/**
 * - reset: the connection was reset (ECONNRESET, EPIPE) under a request on a reused connection;
 * - hangUp: the server closed a reused connection (FIN) without answering the request;
 * - refusedAfterAccept: a new connection was accepted, then reset or closed without an answer;
 * - truncated: the response began, and its body was cut short;
 * - timeout: no complete answer within the timeout;
 * - refused: a new connection was refused while the address should have been served (before the final
 *   signal: during a restart);
 * - serverError: answered 5xx (not 503) after a signal, where that kind of request had not been before.
 */
export const FAILURE_CLASSES = ['reset', 'hangUp', 'refusedAfterAccept', 'truncated', 'timeout', 'refused', 'serverError'] as const
export type FailureClass = (typeof FAILURE_CLASSES)[number]

export const CAUSES = ['closeRace', 'idleClose', 'exitInFlight', 'acceptQueue', 'listenerOpen', 'inFlightCut', 'truncated', 'streamCut',
  'timeout', 'unserved', 'serverError', 'pipelineDropped'] as const
export type CauseId = (typeof CAUSES)[number]

export interface Failure {
  class: FailureClass
  kind: Kind
  client: number
  request: number
  /** The signal it came after (1 is the first; 0: before any). */
  signal: number
  /** ms from that signal (from the first one when `signal` is 0: negative) to the failure. */
  atMs: number
  /** ms from that signal to when the request was sent. */
  sentMs: number
  /** On a reused connection: how long it had been quiet when the request went out. */
  quietMs: number | null
  /** On a new connection. */
  fresh: boolean
  /** What the client saw: the error, the status. */
  detail: string
  /** The likely cause, by the verdict's rules. */
  cause: CauseId
}

export interface StatusCounts {
  /** Requests sent (a refused connect carried none, and is not counted). */
  sent: number
  /** Complete responses. */
  answered: number
  ok: number
  /** 2xx that said Connection: close. */
  okClose: number
  /** 503 with Connection: close. */
  unavailableClose: number
  /** 503 that kept the connection open. */
  unavailableKeep: number
  /** 503 with a Retry-After header. */
  retryAfter: number
  /** Other statuses, by code. */
  other: Record<string, number>
  /** New connections refused after the final signal: the listener had closed (not lost). */
  refused: number
  lost: number
}

export interface Totals extends StatusCounts {
  lostByClass: Record<FailureClass, number>
}

export interface SignalRecord {
  n: number
  signal: string
  pid: number
  /** ms from the start of the load. */
  atMs: number
  /** The final signal (the one whose drain is watched to the exit), else a restart's. */
  final: boolean
}

export interface RestartRecord {
  n: number
  signal: string
  from: number
  /** The process that serves after it (the same pid for a graceful-cluster roll). */
  to: number | null
  /** in-place: a new process took over and the old one exited; roll: a supervisor replaced its workers. */
  mode: 'in-place' | 'roll' | null
  /** ms from the signal to the successor being found (the pid file, or a new process on the socket). */
  successorMs: number | null
  /** ms from the signal to the restart being complete (the old process gone, or every worker replaced). */
  doneMs: number | null
  /** Why it did not complete. */
  error: string | null
  /** New connections refused during it, and the window they span, ms from the signal. */
  refused: number
  refusedFromMs: number | null
  refusedToMs: number | null
}

/** How an idle or preconnected connection ended, ms from the final signal. */
export interface ConnectionEnd {
  kind: 'idle' | 'preconnect'
  /** fin: the server closed it; reset: it reset it; open: still open when the check ended. */
  ended: 'fin' | 'reset' | 'open' | 'never-opened'
  atMs: number | null
}

export interface StreamResult {
  path: string
  status: number
  events: number
  bytes: number
  /** complete: the response ended properly; truncated: cut without its end; open: still open at the end. */
  ended: 'complete' | 'truncated' | 'open' | 'failed'
  /** ms from the final signal (or the first) to its end. */
  atMs: number | null
  detail: string
}

export interface ReadinessResult {
  path: string
  polls: number
  /** ms from the final signal to its first answer other than 2xx (null: never). */
  flipMs: number | null
  /** The status it flipped to (0: no answer, the connection refused or failed). */
  flipStatus: number | null
  /** Polls not answered 2xx before the final signal (during restarts, say). */
  notReadyBefore: number
}

/** Times from the final signal (a restart-only check: from the last restart's signal), ms. */
export interface Timeline {
  signal: string
  readinessMs: number | null
  first503Ms: number | null
  firstCloseMs: number | null
  lastResponseMs: number | null
  last2xxMs: number | null
  /** The first new connection refused: the listener had closed. */
  listenerClosedMs: number | null
  exitMs: number | null
}

export interface ExitRecord {
  pid: number
  code: number | null
  signal: string | null
  /** false: the process was not our child, so its exit code could not be read. */
  known: boolean
  /** ms from the final signal. */
  atMs: number
}

export interface Cause {
  id: CauseId
  count: number
  classes: FailureClass[]
  kinds: Kind[]
  /** The likely cause, in plain words. */
  text: string
  /** What fixes it. */
  fix: string
}

export interface Note {
  id: 'noClose503' | 'noRetryAfter' | 'restart503' | 'noLameDuck' | 'readinessDuringRestart' | 'heldExit' | 'noExit' |
    'killedBySignal' | 'exitCode' | 'restartFailed' | 'noSignal'
  /** A problem fails the check (exit code 1) even with nothing lost. */
  problem: boolean
  text: string
}

export interface CheckResult {
  schema: 1
  /** Nothing lost, and the scenario ran to its end (every restart done, the process exited after the signal). */
  ok: boolean
  /** Set when the app could not be checked at all (it never listened, say): then ok is false. */
  error: { code: string, message: string } | null
  app: {
    command: string[] | null
    /** The process first signalled. */
    pid: number | null
    url: string | null
    /** Where the port came from: the url or port option, or the process's first listening socket. */
    portFrom: 'url' | 'port' | 'proc' | null
    /** The app's last lines of output (50 at most). */
    output: string[]
  }
  scenario: {
    signal: string | null
    restart: { signal: string, times: number, pidFile: string | null } | null
    durationMs: number
    timeoutMs: number
    path: string
    postPath: string
    slow: string | null
    stream: string | null
    readiness: string | null
    clients: Required<Clients>
  }
  /** Every request but the readiness polls. */
  totals: Totals
  /** By kind of connection, the kinds in the workload only. */
  kinds: Partial<Record<Kind, StatusCounts>>
  failures: Failure[]
  signals: SignalRecord[]
  restarts: RestartRecord[]
  timeline: Timeline | null
  exit: ExitRecord | null
  connections: ConnectionEnd[]
  /** Idle connections held the exit: it came long after the last response, right after they closed. */
  heldExit: boolean | null
  stream: StreamResult | null
  readiness: ReadinessResult | null
  verdict: { lost: number, causes: Cause[], notes: Note[] }
}

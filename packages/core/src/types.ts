import type { HookResult } from './hooks.js'

export type Phase = 'serving' | 'lameduck' | 'draining' | 'cleanup' | 'closed'

export interface ShutdownReport {
  /** What started it: a signal name, `'shutdown'` (from code), `'close'` (Fastify `app.close()`), … */
  reason: string
  /** ms from the start of the shutdown to `closed`. */
  durationMs: number
  /** Requests in flight when the drain started (a pipelined one queued then is counted once it is found). */
  inFlightAtStart: number
  /** Requests whose response finished during the drain without being cut (rejected ones not included). */
  completed: number
  /**
   * Requests turned away unprocessed during the drain: answered 503, or — pipelined behind a response that
   * had already told the client to close — left for the client to send again.
   */
  rejected: number
  /** Requests cut at their deadline (their `shutdownSignal` aborted, then their connection destroyed). */
  aborted: number
  /**
   * Requests whose connection ended during the drain before their response was complete, not by the drain:
   * the client went away, or Node's own error handling (`clientError`) destroyed the connection.
   */
  interrupted: number
  /** Connections destroyed while they still held work: a request, a partial request or an upgrade. */
  destroyedSockets: number
  hooks: HookResult[]
  /** The drain deadline passed with work still open. */
  timedOut: boolean
  /** 0 when everything ended on its own and every hook passed, 1 otherwise. */
  exitCode: 0 | 1
}

/** A live view of one instance. */
export interface Stats {
  phase: Phase
  /** Requests in flight: responses being written, HTTP/2 streams open (while serving, read from Node's own lists). */
  inFlight: number
  /** Open connections: HTTP/1 (TLS ones still in their handshake included), HTTP/2 sessions, upgraded sockets. */
  connections: number
}

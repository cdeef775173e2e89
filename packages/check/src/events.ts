// What the check reports while it runs (check()'s onEvent): the CLI prints them as its live lines.
import type { Failure, RestartRecord } from './types.js'

/** The phase of the app as seen from outside, from what its answers and its sockets say. */
export type OutsidePhase = 'starting' | 'serving' | 'signalled' | 'lame duck' | 'draining' | 'listener closed' | 'exited' |
  'restarting' | 'successor up'

export interface Progress {
  /** ms since the load started. */
  elapsedMs: number
  sent: number
  inFlight: number
  ok: number
  unavailable: number
  lost: number
  phase: OutsidePhase
}

export type CheckEvent =
  | { type: 'started', pid: number, command: string[] | null }
  | { type: 'listening', url: string, from: 'url' | 'port' | 'proc', note: string | null }
  | { type: 'load', connections: number }
  | { type: 'signal', n: number, signal: string, pid: number, final: boolean }
  /** Something seen from outside, ms from the latest signal. */
  | { type: 'seen', atMs: number, phase: OutsidePhase, text: string }
  | { type: 'lost', failure: Failure }
  | { type: 'restarted', restart: RestartRecord }
  | { type: 'progress', progress: Progress }

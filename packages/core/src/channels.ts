import { channel } from 'node:diagnostics_channel'
import type { Graceful, Phase, ShutdownReport } from './graceful.js'
import type { HookResult } from './hooks.js'

/**
 * The lifecycle on `node:diagnostics_channel`, the way APM agents hook into Node libraries. Every
 * publisher checks `hasSubscribers` first: with nobody subscribed, nothing is built or published.
 *
 *   import { subscribe } from 'node:diagnostics_channel'
 *   subscribe('graceful:phase', ({ phase, previous, reason }) => …)
 */
export const CHANNELS = {
  /** A phase change of one instance: {@link PhaseMessage}. */
  phase: 'graceful:phase',
  /** One hook has settled: {@link HookMessage}. */
  hook: 'graceful:hook',
  /** A shutdown's report, as it is logged: {@link ReportMessage}. */
  report: 'graceful:report',
  /** In-place restarts and graceful-cluster rolls: {@link RestartMessage}. */
  restart: 'graceful:restart'
} as const

export interface PhaseMessage {
  /** The instance (Express: `middleware.instance`; Fastify: `app.graceful`). */
  instance: Graceful
  phase: Phase
  previous: Phase
  /** What started the shutdown: a signal name, `'shutdown'`, `'close'`, `'restart'`, … */
  reason: string
  /** Requests in flight at the change (counted from what Node knows; see `stats()`). */
  inFlight: number
  /** Open connections at the change. */
  connections: number
}

export interface HookMessage {
  instance: Graceful
  kind: 'beforeDrain' | 'afterDrain' | 'close'
  hook: HookResult
}

export interface ReportMessage {
  instance: Graceful
  /** The same object `shutdown()` resolves with. */
  report: ShutdownReport
}

export interface RestartMessage {
  /**
   * `requested` (the signal arrived), `refused` (`reason` says why), `spawned` (`successor` is its pid),
   * `ready` (the successor took the sockets over), `failed` (`reason`), `draining` (this process starts its
   * restart drain). graceful-cluster's supervisor publishes `roll-started`, `roll-done` and `roll-failed`.
   */
  event: 'requested' | 'refused' | 'spawned' | 'ready' | 'failed' | 'draining' | 'roll-started' | 'roll-done' | 'roll-failed'
  /** The publishing process. */
  pid: number
  successor?: number
  reason?: string
}

export const phaseChannel = channel(CHANNELS.phase)
export const hookChannel = channel(CHANNELS.hook)
export const reportChannel = channel(CHANNELS.report)
export const restartChannel = channel(CHANNELS.restart)

/** Publishes a restart event when someone listens. */
export function publishRestart (event: RestartMessage['event'], extra?: Omit<RestartMessage, 'event' | 'pid'>): void {
  if (!restartChannel.hasSubscribers) return
  restartChannel.publish({ event, pid: process.pid, ...extra } satisfies RestartMessage)
}

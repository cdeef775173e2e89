import closeWithGrace from 'close-with-grace'
import { SIGNALS, type Logger } from './options.js'
import type { ShutdownReport } from './graceful.js'

/** What the process-wide signal handler needs from one instance. */
export interface SignalMember {
  readonly signals: readonly NodeJS.Signals[]
  readonly exit: boolean
  readonly log: Logger
  shutdown (reason?: string): Promise<ShutdownReport>
}

type CloseWithGrace = (options: closeWithGrace.Options, fn: closeWithGrace.CloseWithGraceAsyncCallback) => { close (): void, uninstall (): void }

/** The parts of `process` the registry uses. */
export interface ProcessLike {
  on (event: 'uncaughtException' | 'unhandledRejection', listener: (err: unknown) => void): unknown
  removeListener (event: 'uncaughtException' | 'unhandledRejection', listener: (err: unknown) => void): unknown
  exit (code: number): void
  exitCode?: number | string | null | undefined
}

export interface SignalRegistry {
  register (member: SignalMember): void
  unregister (member: SignalMember): void
}

/** The process's outcome when one signal or error shut several instances down (or its code differs from the one report). */
export interface ProcessReport {
  /** The signal name, `'uncaughtException'` or `'unhandledRejection'`. */
  reason: string
  /** Instances that shut down. */
  instances: number
  /** ms from the signal to the last instance closed. */
  durationMs: number
  inFlightAtStart: number
  completed: number
  rejected: number
  aborted: number
  interrupted: number
  destroyedSockets: number
  /** Hooks that threw or passed their timeout, over every instance. */
  failedHooks: number
  timedOut: boolean
  /** Uncaught exceptions and unhandled rejections, the one that started the shutdown included. */
  uncaughtErrors: number
  /** The highest of the instances' exit codes; 1 after any uncaught error. */
  exitCode: 0 | 1
}

const ERROR_EVENTS = ['uncaughtException', 'unhandledRejection'] as const

/**
 * One close-with-grace handler for every instance in the process. `install` and `proc` are parameters so
 * the registry's logic can be exercised without signalling the test process itself.
 */
export function createSignalRegistry (install: CloseWithGrace, proc: ProcessLike): SignalRegistry {
  const members = new Set<SignalMember>()
  let handle: ReturnType<CloseWithGrace> | null = null
  let key = ''
  let fired = false
  /** The error event that started the shutdown, if one did. */
  let cause: string | null = null
  let uncaughtErrors = 0
  /** Logs process-level lines once, through the first instance, not once per instance. */
  let lead: SignalMember | undefined
  const log = (level: 'info' | 'warn' | 'error', obj: object, msg: string): void => {
    (lead ?? members.values().next().value)?.log[level](obj, msg)
  }
  const listeners = ERROR_EVENTS.map((event) => [event, (err: unknown) => onError(event, err)] as const)
  const listen = (on: boolean): void => {
    for (const [event, fn] of listeners) on ? proc.on(event, fn) : proc.removeListener(event, fn)
  }

  function sync (): void {
    const wanted = new Set<NodeJS.Signals>()
    for (const m of members) for (const s of m.signals) wanted.add(s)
    const next = [...wanted].sort().join(',')
    if (next === key) return
    const installed = handle !== null
    handle?.uninstall()
    handle = null
    key = next
    if (wanted.size === 0) return listen(false)
    if (!installed) listen(true)
    handle = install({
      // Each instance bounds its own shutdown (delay + timeout + hooks); a second kill timer here would
      // only fire before ours when an instance was configured with longer limits.
      delay: null,
      logger: { error: (err: unknown) => log('error', { err }, 'graceful: shutdown failed') },
      // Uncaught errors are ours (below): close-with-grace exits at once on one during the shutdown, which
      // would cut every request still in flight. beforeExit would turn a process that ends on its own into
      // a second shutdown; SIGHUP and the others stay Node's unless asked for.
      skip: [...SIGNALS.filter((s) => !wanted.has(s)), ...ERROR_EVENTS, 'beforeExit'] as closeWithGrace.AllEvents[],
      onSecondSignal: (signal) => log('error', { signal }, 'graceful: second signal, exiting now with code 1')
    }, onClose)
  }

  function onError (event: string, err: unknown): void {
    uncaughtErrors++
    if (fired) {
      log('error', { err, event }, 'graceful: uncaught error during the shutdown; the drain goes on, the exit code will be 1')
      return
    }
    cause = event
    log('error', { err, event }, 'graceful: uncaught error, shutting down')
    // Through close-with-grace, so that a signal from now on is a second signal. We listen only while it
    // is installed.
    const installed = handle as ReturnType<CloseWithGrace>
    installed.close()
  }

  async function onClose ({ signal }: { signal?: NodeJS.Signals }): Promise<void> {
    fired = true
    const start = performance.now()
    const reason = cause ?? signal as string
    const targets = [...members].filter((m) => cause !== null || m.signals.includes(signal as NodeJS.Signals))
    const exiting = targets.some((m) => m.exit)
    // process.exit ends every instance: those that do not listen for this signal are drained too, first.
    const instances = exiting ? [...members] : targets
    lead = instances[0]
    const reports = await Promise.all(instances.map((m) => m.shutdown(reason)))
    const exitCode = uncaughtErrors > 0 || reports.some((r) => r.exitCode === 1) ? 1 : 0
    if (reports.length > 1 || exitCode !== reports[0]?.exitCode) logProcessReport(reason, start, reports, exitCode)
    if (exiting) return proc.exit(exitCode)
    // exit: false. Errors from now on are Node's again (it prints them and exits 1); one we caught during the
    // shutdown still makes the exit code 1 when the process ends on its own.
    listen(false)
    if (uncaughtErrors > 0) proc.exitCode = 1
    // close-with-grace exits as soon as we settle, so we never do.
    return new Promise<void>(() => {})
  }

  function logProcessReport (reason: string, start: number, reports: ShutdownReport[], exitCode: 0 | 1): void {
    const sum = (field: 'inFlightAtStart' | 'completed' | 'rejected' | 'aborted' | 'interrupted' | 'destroyedSockets') =>
      reports.reduce((n, r) => n + r[field], 0)
    const report: ProcessReport = {
      reason,
      instances: reports.length,
      durationMs: Math.round(performance.now() - start),
      inFlightAtStart: sum('inFlightAtStart'),
      completed: sum('completed'),
      rejected: sum('rejected'),
      aborted: sum('aborted'),
      interrupted: sum('interrupted'),
      destroyedSockets: sum('destroyedSockets'),
      failedHooks: reports.reduce((n, r) => n + r.hooks.filter((h) => h.error !== undefined).length, 0),
      timedOut: reports.some((r) => r.timedOut),
      uncaughtErrors,
      exitCode
    }
    if (exitCode === 0) log('info', { report }, 'graceful: process shutdown complete')
    else log('warn', { report }, 'graceful: process shutdown complete, not clean')
  }

  return {
    register (member) {
      members.add(member)
      sync()
    },
    unregister (member) {
      members.delete(member)
      // Once a signal has started the shutdown, close-with-grace must keep its second-signal handlers.
      if (!fired) sync()
    }
  }
}

// The ESM and CommonJS builds may both be loaded in one process (dual package hazard); a global keeps
// them on one registry, so the process still has exactly one close-with-grace handler.
const GLOBAL = Symbol.for('graceful.signal-registry')
const store = globalThis as Record<symbol, SignalRegistry | undefined>
const registry = store[GLOBAL] ?? (store[GLOBAL] = createSignalRegistry(closeWithGrace, process))

export const register = (member: SignalMember): void => registry.register(member)
export const unregister = (member: SignalMember): void => registry.unregister(member)

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

type CloseWithGrace = (options: closeWithGrace.Options, fn: closeWithGrace.CloseWithGraceAsyncCallback) => { uninstall (): void }

export interface SignalRegistry {
  register (member: SignalMember): void
  unregister (member: SignalMember): void
}

/**
 * One close-with-grace handler for every instance in the process. `install` and `exit` are parameters so
 * the registry's logic can be exercised without signalling the test process itself.
 */
export function createSignalRegistry (install: CloseWithGrace, exit: (code: number) => void): SignalRegistry {
  const members = new Set<SignalMember>()
  let handle: { uninstall (): void } | null = null
  let key = ''
  let fired = false

  function sync (): void {
    const wanted = new Set<NodeJS.Signals>()
    for (const m of members) for (const s of m.signals) wanted.add(s)
    const next = [...wanted].sort().join(',')
    if (next === key) return
    handle?.uninstall()
    handle = null
    key = next
    if (wanted.size === 0) return
    const log = (level: 'error', obj: object, msg: string) => { for (const m of members) m.log[level](obj, msg) }
    handle = install({
      // Each instance bounds its own shutdown (delay + timeout + hooks); a second kill timer here would
      // only fire before ours when an instance was configured with longer limits.
      delay: null,
      logger: { error: (err: unknown) => log('error', { err }, 'graceful: shutdown failed') },
      // beforeExit would turn a process that ends on its own into a second shutdown; SIGHUP and the
      // others stay Node's unless asked for.
      skip: [...SIGNALS.filter((s) => !wanted.has(s)), 'beforeExit'] as closeWithGrace.AllEvents[],
      onSecondSignal: (signal) => log('error', { signal }, 'graceful: second signal, exiting now with code 1'),
      onSecondError: (err) => log('error', { err }, 'graceful: error during shutdown, exiting now with code 1')
    }, onClose)
  }

  async function onClose ({ signal, err }: { signal?: NodeJS.Signals, err?: Error }): Promise<void> {
    fired = true
    const targets = [...members].filter((m) => err !== undefined || m.signals.includes(signal as NodeJS.Signals))
    const reason = err !== undefined ? 'uncaughtException' : signal as string
    if (err !== undefined) for (const m of targets) m.log.error({ err }, 'graceful: uncaught error, shutting down')
    const reports = await Promise.all(targets.map((m) => m.shutdown(reason)))
    if (targets.some((m) => m.exit)) return exit(Math.max(0, ...reports.map((r) => r.exitCode)))
    // exit: false. close-with-grace exits as soon as we settle, so we never do; the process ends on its
    // own once nothing holds it, which is what the user asked for.
    return new Promise<void>(() => {})
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
const registry = store[GLOBAL] ?? (store[GLOBAL] = createSignalRegistry(closeWithGrace, (code) => process.exit(code)))

export const register = (member: SignalMember): void => registry.register(member)
export const unregister = (member: SignalMember): void => registry.unregister(member)

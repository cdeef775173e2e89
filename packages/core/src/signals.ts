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

interface Registry {
  members: Set<SignalMember>
  handle: { uninstall (): void } | null
  key: string
  fired: boolean
}

// The ESM and CommonJS builds may both be loaded in one process (dual package hazard); a global keeps
// them on one registry, so the process still has exactly one close-with-grace handler.
const REGISTRY = Symbol.for('graceful.signal-registry')
const registry: Registry = ((globalThis as Record<symbol, unknown>)[REGISTRY] as Registry | undefined) ??
  ((globalThis as Record<symbol, unknown>)[REGISTRY] = { members: new Set(), handle: null, key: '', fired: false } as Registry)

export function register (member: SignalMember): void {
  registry.members.add(member)
  sync()
}

export function unregister (member: SignalMember): void {
  registry.members.delete(member)
  // Once a signal has started the shutdown, close-with-grace must keep its second-signal handlers.
  if (!registry.fired) sync()
}

function sync (): void {
  const wanted = new Set<NodeJS.Signals>()
  for (const m of registry.members) for (const s of m.signals) wanted.add(s)
  const key = [...wanted].sort().join(',')
  if (key === registry.key) return
  registry.handle?.uninstall()
  registry.handle = null
  registry.key = key
  if (wanted.size === 0) return
  const first = registry.members.values().next().value as SignalMember
  registry.handle = closeWithGrace({
    // Each instance bounds its own shutdown (delay + timeout + hooks); a second kill timer here would
    // only fire before ours when an instance was configured with longer limits.
    delay: null,
    logger: { error: (msg: unknown) => first.log.error({ err: msg }, 'graceful: shutdown failed') },
    // beforeExit would turn a process that ends on its own into a second shutdown; SIGHUP and friends
    // stay Node's unless asked for.
    skip: [...SIGNALS.filter((s) => !wanted.has(s)), 'beforeExit'] as closeWithGrace.AllEvents[],
    onSecondSignal (signal) {
      for (const m of registry.members) m.log.error({ signal }, 'graceful: second signal, exiting now with code 1')
    },
    onSecondError (err) {
      for (const m of registry.members) m.log.error({ err }, 'graceful: error during shutdown, exiting now with code 1')
    }
  }, onClose)
}

async function onClose ({ signal, err }: { signal?: NodeJS.Signals, err?: Error }): Promise<void> {
  registry.fired = true
  const members = [...registry.members].filter((m) => err !== undefined || (signal !== undefined && m.signals.includes(signal)))
  const reason = signal ?? (err !== undefined ? 'uncaughtException' : 'shutdown')
  if (err !== undefined) for (const m of members) m.log.error({ err }, 'graceful: uncaught error, shutting down')
  const reports = await Promise.all(members.map((m) => m.shutdown(reason)))
  const code = err !== undefined ? 1 : Math.max(0, ...reports.map((r) => r.exitCode))
  if (members.some((m) => m.exit)) process.exit(code)
  // exit: false. close-with-grace exits as soon as we settle, so we never do; the process ends on its
  // own once nothing holds it, which is what the user asked for.
  return new Promise<void>(() => {})
}

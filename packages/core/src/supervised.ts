import cluster from 'node:cluster'
import { subscribe } from 'node:diagnostics_channel'
import type { Server as NetServer } from 'node:net'
import type { Logger } from './options.js'
import type { ShutdownReport } from './graceful.js'

/** Set by graceful-cluster in its workers' environment: the instances here are supervised. */
export const ENV_CLUSTER = 'GRACEFUL_CLUSTER'
/** How long a drained worker waits for the supervisor's go-ahead to exit (it answers at once, unless it is gone). */
const EXIT_HANDSHAKE_MS = 5000

/** What the worker side of graceful-cluster needs from one instance. */
export interface SupervisedMember {
  readonly log: Logger
  readonly phase: string
  shutdown (reason?: string): Promise<ShutdownReport>
  restartDrain (): Promise<ShutdownReport>
}

interface Entry {
  servers: Set<NetServer>
  /** The adapter reports when its listen() has finished (Fastify binds 'localhost' address by address). */
  waitsForListened: boolean
  listened: boolean
}

interface State {
  /** This process is a graceful-cluster worker. */
  active: boolean
  members: Map<SupervisedMember, Entry>
  /** Servers whose listen() has been called and has not finished yet, anywhere in the process. */
  pending: Set<unknown>
  check: NodeJS.Immediate | null
  announced: boolean
  /** Ends the wait for the supervisor's go-ahead to exit. */
  release: (() => void) | null
}

// One state per process, even with the ESM and CommonJS builds both loaded.
const GLOBAL = Symbol.for('graceful.supervised')
const store = globalThis as Record<symbol, State | undefined>
const state: State = store[GLOBAL] ?? (store[GLOBAL] = boot())

/** Is this process a worker of graceful-cluster? */
export function isSupervised (): boolean {
  return state.active
}

function boot (): State {
  const active = cluster.isWorker && process.env[ENV_CLUSTER] === '1'
  const s: State = { active, members: new Map(), pending: new Set(), check: null, announced: false, release: null }
  if (!active) return s
  // Every listen() in the process, graceful's servers or not: an app that listens on a second server right
  // after the first (`await once(server, 'listening')`, then listen again) is not ready in between.
  const started = (message: unknown): void => { s.pending.add((message as { server: unknown }).server) }
  const ended = (message: unknown): void => {
    s.pending.delete((message as { server: unknown }).server)
    schedule(s)
  }
  subscribe('tracing:net.server.listen:asyncStart', started)
  subscribe('tracing:net.server.listen:asyncEnd', ended)
  subscribe('tracing:net.server.listen:error', ended)

  process.on('message', function gracefulSupervisorMessage (message: unknown) {
    const m = message as { graceful?: unknown, reason?: unknown } | null
    if (m?.graceful === 'drain') void stop(s, true, 'restart')
    else if (m?.graceful === 'shutdown') void stop(s, false, typeof m.reason === 'string' ? m.reason : 'shutdown')
    else if (m?.graceful === 'exit') s.release?.()
  })
  // A terminal that hangs up signals the whole process group. The supervisor rolls the workers on SIGHUP;
  // Node's default action would kill this one.
  process.on('SIGHUP', function gracefulIgnoreHangup () {
    for (const m of s.members.keys()) m.log.info({ supervisor: process.ppid }, 'graceful: SIGHUP ignored in a graceful-cluster worker; the supervisor rolls the workers')
  })
  return s
}

/**
 * The logger a supervised instance logs through: every line names the process and the worker (node:cluster's
 * id, as the supervisor's own lines do), so the reports of workers that share one stdout can be told apart.
 * Outside graceful-cluster it is `log` itself. A field of the line's own with the same name wins.
 */
export function supervisedLogger (log: Logger): Logger {
  if (!state.active) return log
  const tags = { pid: process.pid, worker: (cluster.worker as NonNullable<typeof cluster.worker>).id }
  const at = (level: keyof Logger) => (obj: object, msg?: string): void => { log[level]({ ...tags, ...obj }, msg) }
  return { info: at('info'), warn: at('warn'), error: at('error') }
}

/** A graceful instance was created in this process. */
export function joinSupervisor (member: SupervisedMember, waitsForListened: boolean): void {
  if (!state.active) return
  state.members.set(member, { servers: new Set(), waitsForListened, listened: false })
}

/** An instance drains `server`: the worker is ready once it listens. */
export function supervisedServer (member: SupervisedMember, server: NetServer): void {
  if (!state.active) return
  state.members.get(member)?.servers.add(server)
  schedule(state)
}

/** The adapter's listen() has finished on every address. */
export function supervisedListened (member: SupervisedMember): void {
  if (!state.active) return
  const entry = state.members.get(member)
  if (entry !== undefined) entry.listened = true
  schedule(state)
}

/**
 * Checks readiness one turn later: a listen() the app makes right after a 'listening' event (one await
 * away) has started by then, and an adapter has attached the server it found at listen time.
 */
function schedule (s: State): void {
  if (s.announced || s.check !== null) return
  s.check = setImmediate(() => {
    s.check = null
    if (!ready(s)) return
    s.announced = true
    process.send?.({ graceful: 'ready' })
  })
}

/** Every instance that serves listens on every server it drains, and no listen() is on its way. */
function ready (s: State): boolean {
  if (s.pending.size > 0) return false
  let serving = 0
  for (const [member, entry] of s.members) {
    if (member.phase !== 'serving') continue
    serving++
    if (entry.servers.size === 0 || (entry.waitsForListened && !entry.listened)) return false
    for (const server of entry.servers) if (!server.listening) return false
  }
  return serving > 0
}

/**
 * Told by the supervisor: drain as for a restart (what reaches us is served, with `Connection: close`) or
 * shut down as for a signal; then exit with the report's code. A second message joins the first.
 */
async function stop (s: State, drain: boolean, reason: string): Promise<void> {
  const reports = await Promise.all([...s.members.keys()].map((m) =>
    drain && m.phase === 'serving' ? m.restartDrain() : m.shutdown(reason)))
  const code = Math.max(0, ...reports.map((r) => r.exitCode))
  // The shutdown is over and has taken its signal handlers along: a SIGINT or SIGTERM now (the terminal's
  // Ctrl+C, whose message from the supervisor came first) would kill us by default and make a clean exit
  // look like a crash. We are exiting: it has nothing left to do.
  const ignore = (signal: NodeJS.Signals): void => {
    for (const m of s.members.keys()) m.log.info({ signal }, 'graceful: signal ignored, the shutdown is over and this worker exits')
  }
  process.on('SIGINT', ignore)
  process.on('SIGTERM', ignore)
  // The primary may have handed us connections before it saw our listeners close; they are still on their
  // way down the IPC channel, and Node's cluster hands them to another worker only once we have refused
  // them. Exiting first would leave them hanging. The channel is ordered: once the supervisor has answered
  // this message, every connection it sent us has arrived and been refused.
  await new Promise<void>((resolve) => {
    s.release = resolve
    setTimeout(resolve, EXIT_HANDSHAKE_MS)
    process.send?.({ graceful: 'drained', code })
  })
  process.exit(code)
}

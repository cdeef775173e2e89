import cluster, { type Worker } from 'node:cluster'
import { channel } from 'node:diagnostics_channel'
import { EventEmitter } from 'node:events'
import { CHANNELS, type Logger, type RestartMessage } from '@graceful/core'
import { resolveSuperviseOptions, type ResolvedSuperviseOptions, type SuperviseOptions } from './options.js'

/** Set in every worker's environment; @graceful/core then reports ready and drains when told. */
export const ENV_CLUSTER = 'GRACEFUL_CLUSTER'

/** A crashed worker is replaced after this many ms, doubled for each crash in a row, up to the maximum. */
export const BACKOFF_MIN_MS = 100
export const BACKOFF_MAX_MS = 10_000
/** A worker that ran at least this long before it crashed starts the backoff over. */
export const BACKOFF_RESET_MS = 10_000

// The supervisor's environment is the workers', but a worker is no in-place restart successor and owns
// no socket-activation descriptors.
const NOT_INHERITED = ['GRACEFUL_RESTART_FDS', 'GRACEFUL_RESTART_PARENT', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']
const SIGNALS = ['SIGHUP', 'SIGTERM', 'SIGINT'] as const

// The channel @graceful/core publishes in-place restarts on: one place to watch both kinds of restart.
const restartChannel = channel(CHANNELS.restart)

/** Publishes a roll event when someone listens; with nobody subscribed, nothing is built. */
function publishRoll (event: 'roll-started' | 'roll-done' | 'roll-failed', reason?: string): void {
  if (!restartChannel.hasSubscribers) return
  const message: RestartMessage = { event, pid: process.pid }
  if (reason !== undefined) message.reason = reason
  restartChannel.publish(message)
}

/** `starting` until it reports ready; `draining` once told to drain or shut down (or stopped before it was ready). */
export type WorkerState = 'starting' | 'ready' | 'draining'

export interface WorkerInfo {
  /** node:cluster's worker id: 1, 2, … for the life of the supervisor. */
  id: number
  pid: number
  state: WorkerState
}

export interface RollResult {
  /** Every old worker was replaced by a new one that was ready first. */
  ok: boolean
  /** Why the roll failed, or was refused. */
  reason?: string
  /** Old workers drained and replaced. */
  replaced: number
  ms: number
}

interface Exit {
  code: number | null
  signal: string | null
}

type Role = 'first' | 'roll' | 'replacement'

interface Member {
  readonly worker: Worker
  readonly id: number
  readonly pid: number
  readonly role: Role
  readonly forkedAt: number
  state: WorkerState
  readyAt: number | null
  /** Told to drain or shut down, or stopped: its exit is no crash. */
  told: boolean
  /** Its exit counts towards the supervisor's exit code at shutdown (it was serving). */
  counts: boolean
  killed: boolean
  exit: Exit | null
  readonly ready: Promise<void>
  readonly exited: Promise<Exit>
  killTimer: NodeJS.Timeout | null
}

/**
 * A stable-PID supervisor on node:cluster: keeps `workers` copies of the app running, rolls them one at a
 * time on `roll()` (SIGHUP), drains them all on `shutdown()` (SIGTERM, SIGINT), replaces crashed ones.
 * Events: `'fork'` (info, worker), `'ready'` (info), `'exit'` (info, code, signal).
 */
export class Supervisor extends EventEmitter {
  readonly options: ResolvedSuperviseOptions
  /** true once the first workers are all ready; false if one of them failed (the supervisor then shuts down with code 1). */
  readonly ready: Promise<boolean>
  /** The exit code, once every worker is gone after a shutdown: 0 when each one that was serving exited 0 on its own. */
  readonly closed: Promise<number>

  #log: Logger
  #members = new Set<Member>()
  #timers = new Set<NodeJS.Timeout>()
  #handlers = new Map<NodeJS.Signals, () => void>()
  #crashes = 0
  #started = false
  #rolling: Promise<RollResult> | null = null
  #closing: string | null = null
  #failed = false
  #unclean = false
  #resolveClosed!: (code: number) => void

  constructor (options: SuperviseOptions) {
    super()
    this.options = resolveSuperviseOptions(options)
    this.#log = this.options.logger
    this.closed = new Promise((resolve) => { this.#resolveClosed = resolve })
    // Round-robin: the supervisor owns each listening socket and hands every connection to a worker, so a
    // draining worker that closes its listener only stops getting new ones, and none is refused while
    // another worker listens. Node's default except on Windows; cluster freezes it at the first fork.
    cluster.schedulingPolicy = cluster.SCHED_RR
    if (this.options.signals) this.#listen()
    this.#log.info({ workers: this.options.workers, exec: this.options.exec }, 'graceful-cluster: started')
    // Next tick: listeners added right after supervise() see the first workers' events too.
    this.ready = new Promise<void>((resolve) => process.nextTick(resolve)).then(() => {
      if (this.#closing !== null) return false
      return this.#startUp(Array.from({ length: this.options.workers }, () => this.#fork('first')))
    })
  }

  /** The workers running now, draining ones included. */
  get workers (): WorkerInfo[] {
    return [...this.#members].map(info)
  }

  /**
   * Replaces every ready worker, one at a time: fork a new one, wait until it is ready, tell one old one to
   * drain, wait until it has exited. A new worker that exits or is not ready within `readyTimeout` stops
   * the roll; the old workers keep serving. One roll at a time.
   */
  roll (trigger = 'roll'): Promise<RollResult> {
    let refused: string | null = null
    if (this.#closing !== null) refused = 'the supervisor is shutting down'
    else if (this.#rolling !== null) refused = 'a roll is already in progress'
    else if (!this.#started) refused = 'the first workers are not ready yet'
    if (refused !== null) {
      this.#log.warn({ trigger, reason: refused }, 'graceful-cluster: roll refused')
      return Promise.resolve({ ok: false, reason: refused, replaced: 0, ms: 0 })
    }
    const rolling = this.#roll(trigger).finally(() => {
      this.#rolling = null
      // Workers that crashed during the roll were not replaced meanwhile.
      this.#replenish()
    })
    this.#rolling = rolling
    return rolling
  }

  /**
   * Tells every ready worker to shut down (its lame-duck delay, readiness 503, drain), stops workers that
   * are not ready yet, and resolves with the exit code once all are gone. Later calls return the same.
   */
  shutdown (reason = 'shutdown'): Promise<number> {
    if (this.#closing !== null) return this.closed
    this.#closing = reason
    this.#cancelTimers()
    this.#log.info({ reason, workers: this.#members.size }, 'graceful-cluster: shutting down')
    for (const m of this.#members) {
      if (m.told) continue
      if (m.state === 'ready') {
        m.counts = true
        void this.#tell(m, { graceful: 'shutdown', reason }, reason)
      } else {
        void this.#stop(m, reason)
      }
    }
    if (this.#members.size === 0) this.#finish()
    return this.closed
  }

  /** Kills every worker now (SIGKILL): what a second signal does. The exit code is 1. */
  kill (reason = 'kill'): Promise<number> {
    this.#failed = true
    if (this.#closing === null) this.shutdown(reason)
    this.#log.error({ reason, workers: this.#members.size }, 'graceful-cluster: killing every worker')
    for (const m of this.#members) {
      m.killed = true
      m.worker.process.kill('SIGKILL')
    }
    return this.closed
  }

  #listen (): void {
    for (const signal of SIGNALS) {
      const handler = (): void => {
        if (signal === 'SIGHUP') void this.roll(signal)
        else if (this.#closing === null) void this.shutdown(signal)
        else void this.kill(`second signal ${signal}`)
      }
      this.#handlers.set(signal, handler)
      process.on(signal, handler)
    }
  }

  #fork (role: Role): Member {
    const o = this.options
    cluster.setupPrimary({ exec: o.exec, args: o.args, execArgv: o.execArgv, silent: o.silent })
    const env: Record<string, string | undefined> = { ...o.env, [ENV_CLUSTER]: '1' }
    // Undefined values are left out of the child's environment.
    for (const key of NOT_INHERITED) env[key] = undefined
    const worker = cluster.fork(env)
    let resolveReady!: () => void
    let rejectReady!: (err: Error) => void
    let resolveExited!: (exit: Exit) => void
    const m: Member = {
      worker,
      id: worker.id,
      pid: worker.process.pid as number,
      role,
      forkedAt: performance.now(),
      state: 'starting',
      readyAt: null,
      told: false,
      counts: false,
      killed: false,
      exit: null,
      ready: new Promise<void>((resolve, reject) => {
        resolveReady = resolve
        rejectReady = reject
      }),
      exited: new Promise<Exit>((resolve) => { resolveExited = resolve }),
      killTimer: null
    }
    // Each waiter handles the rejection it cares about; nobody may be left with an unhandled one.
    m.ready.catch(() => {})
    this.#members.add(m)

    const readyTimer = setTimeout(() => {
      rejectReady(new Error(`worker ${m.id} (pid ${m.pid}) was not ready within ${o.readyTimeout} ms ` +
        '(ready: every @graceful instance in it drains a server, and all of them listen)'))
      // A replacement that hangs counts as a crash: stopped (told stays false), then replaced with backoff.
      if (role === 'replacement' && !m.told) {
        this.#log.warn({ worker: m.id, workerPid: m.pid, readyTimeout: o.readyTimeout }, 'graceful-cluster: worker not ready in time, stopping it')
        this.#signal(m, 'SIGTERM')
        this.#armKill(m)
      }
    }, o.readyTimeout)

    worker.on('message', (message: { graceful?: unknown } | null) => {
      // Drained: by now it has refused any connection we handed it after it closed its listeners (the
      // channel is ordered), so it may exit. See @graceful/core's supervised.ts.
      if (message?.graceful === 'drained') return void worker.send({ graceful: 'exit' })
      if (message?.graceful !== 'ready' || m.state !== 'starting') return
      clearTimeout(readyTimer)
      m.state = 'ready'
      m.readyAt = performance.now()
      this.#log.info({ worker: m.id, workerPid: m.pid, ms: Math.round(m.readyAt - m.forkedAt) }, 'graceful-cluster: worker ready')
      resolveReady()
      this.emit('ready', info(m))
    })
    // A message to a worker that has just died fails with EPIPE or ERR_IPC_CHANNEL_CLOSED; its exit follows.
    worker.on('error', (err: Error) => {
      this.#log.warn({ worker: m.id, workerPid: m.pid, error: err.message }, 'graceful-cluster: worker channel error')
    })
    worker.once('exit', (code: number | null, signal: string | null) => {
      clearTimeout(readyTimer)
      m.exit = { code, signal }
      rejectReady(new Error(`worker ${m.id} (pid ${m.pid}) exited (${signal ?? `code ${String(code)}`}) before it was ready`))
      resolveExited(m.exit)
      this.#exited(m)
    })
    this.#log.info({ worker: m.id, workerPid: m.pid, role }, 'graceful-cluster: worker started')
    this.emit('fork', info(m), worker)
    return m
  }

  async #startUp (first: Member[]): Promise<boolean> {
    const failure = await new Promise<string | null>((resolve) => {
      let left = first.length
      for (const m of first) {
        m.ready.then(() => { if (--left === 0) resolve(null) }, (err: Error) => resolve(err.message))
      }
    })
    if (failure === null && this.#closing === null) {
      this.#started = true
      this.#log.info({ workers: first.length }, 'graceful-cluster: ready')
      return true
    }
    this.#startFailed(failure ?? 'the supervisor shut down before the first workers were ready')
    return false
  }

  /** The first workers did not all come up: the app cannot start, as `node app.js` would have shown. */
  #startFailed (reason: string): void {
    if (this.#closing !== null) return
    this.#failed = true
    this.#log.error({ reason }, 'graceful-cluster: start-up failed')
    void this.shutdown('start-up failed')
  }

  async #roll (trigger: string): Promise<RollResult> {
    const start = performance.now()
    // The roll starts a new worker for each old one; pending replacements are made up for at its end.
    this.#cancelTimers()
    const old = [...this.#members].filter((m) => m.state === 'ready')
    this.#log.info({ trigger, workers: old.length }, 'graceful-cluster: roll started')
    publishRoll('roll-started')
    let replaced = 0
    const fail = (reason: string): RollResult => {
      const ms = Math.round(performance.now() - start)
      this.#log.error({ reason, replaced, ms }, 'graceful-cluster: roll failed')
      publishRoll('roll-failed', reason)
      return { ok: false, reason, replaced, ms }
    }
    for (const previous of old) {
      if (this.#closing !== null) return fail('the supervisor is shutting down')
      const next = this.#fork('roll')
      let failure = await next.ready.then(() => null, (err: Error) => err.message)
      if (this.#closing !== null) failure = 'the supervisor is shutting down'
      if (failure !== null) {
        // Unless the shutdown has already told it to go.
        await (next.told ? this.#waitExit(next) : this.#stop(next, 'roll failed'))
        return fail(failure)
      }
      // The old worker may have crashed meanwhile: the new one replaces it all the same.
      if (!previous.told && previous.exit === null) await this.#tell(previous, { graceful: 'drain' }, 'roll')
      else await this.#waitExit(previous)
      replaced++
    }
    const ms = Math.round(performance.now() - start)
    this.#log.info({ replaced, ms }, 'graceful-cluster: roll done')
    publishRoll('roll-done')
    return { ok: true, replaced, ms }
  }

  /** Sends a drain or shutdown message; resolves once the worker has exited (killed after `killTimeout`). */
  #tell (m: Member, message: { graceful: string, reason?: string }, reason: string): Promise<void> {
    m.told = true
    m.counts = true
    m.state = 'draining'
    if (m.worker.isConnected()) m.worker.send(message)
    this.#log.info({ worker: m.id, workerPid: m.pid, reason }, 'graceful-cluster: worker draining')
    return this.#waitExit(m)
  }

  /**
   * Stops a worker that is not ready (it may have partly started): SIGTERM, which its graceful instance, if
   * it has one yet, answers with a shutdown. Its exit does not count towards the exit code.
   */
  #stop (m: Member, reason: string): Promise<void> {
    if (m.exit !== null) return Promise.resolve()
    m.told = true
    m.state = 'draining'
    this.#log.info({ worker: m.id, workerPid: m.pid, reason }, 'graceful-cluster: stopping a worker that is not ready')
    this.#signal(m, 'SIGTERM')
    return this.#waitExit(m)
  }

  async #waitExit (m: Member): Promise<void> {
    this.#armKill(m)
    await m.exited
  }

  #armKill (m: Member): void {
    if (m.killTimer !== null || m.exit !== null) return
    m.killTimer = setTimeout(() => {
      m.killed = true
      this.#log.warn({ worker: m.id, workerPid: m.pid, killTimeout: this.options.killTimeout }, 'graceful-cluster: worker did not exit in time, killed')
      this.#signal(m, 'SIGKILL')
    }, this.options.killTimeout)
  }

  #signal (m: Member, signal: NodeJS.Signals): void {
    m.worker.process.kill(signal)
  }

  #exited (m: Member): void {
    this.#members.delete(m)
    if (m.killTimer !== null) clearTimeout(m.killTimer)
    const { code, signal } = m.exit as Exit
    const fields: Record<string, unknown> = { worker: m.id, workerPid: m.pid, code, signal }
    if (m.told || this.#closing !== null) {
      const clean = code === 0 && !m.killed
      if (this.#closing !== null && m.counts && !clean) this.#unclean = true
      this.#log[clean ? 'info' : 'warn'](fields, 'graceful-cluster: worker exited')
    } else {
      // Nobody asked it to go: a crash.
      fields.unexpected = true
      const delay = this.#backoff(m)
      if (!this.#started) {
        this.#log.error(fields, 'graceful-cluster: worker exited')
        this.#startFailed(`worker ${m.id} (pid ${m.pid}) exited (${signal ?? `code ${String(code)}`}) during start-up`)
      } else if (this.#rolling !== null) {
        // The roll forks a new worker for each old one; a new one that crashed is made up for at its end.
        this.#log.error(fields, 'graceful-cluster: worker exited')
      } else {
        fields.restartInMs = delay
        this.#log.error(fields, 'graceful-cluster: worker exited')
        this.#replenish()
      }
    }
    this.emit('exit', info(m), code, signal)
    if (this.#closing !== null && this.#members.size === 0) this.#finish()
  }

  /** The delay before replacing `m`, which crashed: doubles with each crash in a row. */
  #backoff (m: Member): number {
    this.#crashes = performance.now() - m.forkedAt >= BACKOFF_RESET_MS ? 1 : this.#crashes + 1
    return this.#delay()
  }

  #delay (): number {
    return this.#crashes === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this.#crashes - 1))
  }

  /** Schedules forks until `workers` are running or on their way. */
  #replenish (): void {
    if (this.#closing !== null || this.#rolling !== null) return
    const live = [...this.#members].filter((m) => !m.told).length
    const delay = this.#delay()
    for (let n = live + this.#timers.size; n < this.options.workers; n++) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer)
        this.#fork('replacement')
      }, delay)
      this.#timers.add(timer)
    }
  }

  #cancelTimers (): void {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
  }

  /** Once: after the shutdown started, the last worker's exit (or none to begin with) and no fork follows. */
  #finish (): void {
    for (const [signal, handler] of this.#handlers) process.removeListener(signal, handler)
    const code = this.#failed || this.#unclean ? 1 : 0
    this.#log[code === 0 ? 'info' : 'warn']({ exitCode: code }, 'graceful-cluster: stopped')
    this.#resolveClosed(code)
  }
}

function info (m: Member): WorkerInfo {
  return { id: m.id, pid: m.pid, state: m.state }
}

/** Starts the workers; see `Supervisor`. Options are checked first: a bad one throws a TypeError with a code. */
export function supervise (options: SuperviseOptions): Supervisor {
  return new Supervisor(options)
}

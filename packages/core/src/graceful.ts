import type { IncomingMessage, ServerResponse } from 'node:http'
import { Server as NetServer } from 'node:net'
import { hookChannel, phaseChannel, reportChannel } from './channels.js'
import { createError, describe } from './errors.js'
import { createHook, runHook, type Hook, type HookFn, type HookOptions, type HookResult } from './hooks.js'
import { safeLogger } from './log.js'
import { resolveOptions, type GracefulOptions, type Logger, type ResolvedOptions, type ResolvedRouteOptions } from './options.js'
import { firstListening, registerRestart, restartShutdown, unregisterRestart } from './restart.js'
import { register, unregister } from './signals.js'
import { joinSupervisor, supervisedListened, supervisedLogger, supervisedServer } from './supervised.js'
import { Tracker, abortError } from './tracker.js'
import type { Phase, ShutdownReport, Stats } from './types.js'

export type { Phase, ShutdownReport, Stats } from './types.js'
export { IDLE_GRACE_MS } from './tracker.js'

/** What an adapter hands the core: the framework's own close, and how to find a request's route. */
export interface Integration {
  /** Option names the adapter handles itself (Express `routes`): allowed, not checked here. */
  allow?: readonly string[]
  /** Logger when the user gave none (`logger` option undefined). */
  logger?: Logger
  /** The framework's own close hooks, run after `afterDrain` as one recorded hook. */
  close?: { name: string, fn: () => Promise<unknown> }
  /** Is this server's listener closed at the drain start? @default every attached server's is */
  closesListener?: (server: NetServer) => boolean
  /** Per-route options of a request, or undefined for the defaults. Called only during a shutdown. */
  routeOf?: (req: IncomingMessage) => ResolvedRouteOptions | undefined
  /**
   * During the drain, requests `routeOf` cannot place are passed to the framework undecided; the adapter then
   * decides each with `admit()` once the framework knows its route (Fastify routes declared before the plugin
   * loaded).
   */
  defers?: (req: IncomingMessage) => boolean
  /** The adapter calls `listened()` once its listen() has finished on every address (Fastify binds 'localhost' one address after another). */
  listens?: boolean
}

const PROBE: ResolvedRouteOptions = { serveDuringDrain: true, abortOnDrain: false, timeout: null }

export const REJECT_BODY = '{"statusCode":503,"error":"Service Unavailable","message":"The server is shutting down"}'

const kEngine = Symbol.for('graceful.engine')
const kRoute = Symbol.for('graceful.route')
const kSignal = Symbol.for('graceful.signal')

interface RequestState {
  [kRoute]?: ResolvedRouteOptions | null
  [kSignal]?: AbortController
}

type TrackedServer = NetServer & { [kEngine]?: Graceful }

export class Graceful {
  readonly options: ResolvedOptions
  readonly log: Logger
  /** Cached for adapters: true from the drain start on. */
  closing = false
  /** `'restart'` serves drain-time requests with `Connection: close` instead of answering 503. */
  drainMode: 'shutdown' | 'restart' = 'shutdown'

  #phase: Phase = 'serving'
  #reason = ''
  #integration: Integration
  #tracker: Tracker
  #before: Hook[] = []
  #after: Hook[] = []
  #promise: Promise<ShutdownReport> | null = null
  #timers: NodeJS.Timeout[] = []

  constructor (options?: GracefulOptions, integration: Integration = {}) {
    this.options = resolveOptions(options, integration.allow)
    this.#integration = integration
    // A graceful-cluster worker's lines say which worker wrote them.
    this.log = safeLogger(supervisedLogger(this.options.logger ?? (this.options.logger === null ? silent : integration.logger ?? silent)))
    const engine = this
    this.#tracker = new Tracker({
      get timeout () { return engine.options.timeout },
      get log () { return engine.log },
      get phase () { return engine.#phase },
      get drainMode () { return engine.drainMode },
      routeOf: (req) => engine.routeOf(req),
      defers: (req) => integration.defers?.(req) === true,
      closesListener: (server) => integration.closesListener?.(server) !== false,
      abortRequest: (req, reason) => { (req as RequestState)[kSignal]?.abort(reason) },
      reject: (req, res, close) => engine.reject(req, res, close)
    })
    if (this.options.signals.length > 0) register(this)
    if (this.options.restart !== null) registerRestart(this)
    joinSupervisor(this, integration.listens === true)
  }

  get phase (): Phase {
    return this.#phase
  }

  get signals (): readonly NodeJS.Signals[] {
    return this.options.signals
  }

  get exit (): boolean {
    return this.options.exit
  }

  /** @internal The restart options, for the restart controller. */
  get restartOptions (): { signal: NodeJS.Signals, timeout: number, pidFile: string | null } {
    return this.options.restart as NonNullable<ResolvedOptions['restart']>
  }

  /** @internal Attached servers that are listening: their sockets go to a successor. */
  listeningServers (): NetServer[] {
    return [...this.#tracker.servers].filter((s) => s.listening)
  }

  /** @internal A successor is ready: drain serving what reaches us, with `Connection: close`. */
  restartDrain (): Promise<ShutdownReport> {
    this.drainMode = 'restart'
    return this.shutdown('restart')
  }

  /** @internal The adapter's listen() has finished on every address: a graceful-cluster worker may be ready. */
  listened (): void {
    supervisedListened(this)
  }

  /** Requests in flight right now, on every attached server. */
  get inFlight (): number {
    return this.#tracker.live().inFlight
  }

  /** A live view: phase, requests in flight, open connections (for a `/metrics` route or a gauge). */
  stats (): Stats {
    return { phase: this.#phase, ...this.#tracker.live() }
  }

  /** Runs when the shutdown starts, during the lame-duck delay (deregister from a service registry). */
  beforeDrain (fn: HookFn, options?: HookOptions): this {
    if (this.#phase !== 'serving') throw createError('GRACEFUL_ERR_SHUTTING_DOWN', ['add a beforeDrain hook', this.#phase])
    this.#before.push(createHook('beforeDrain', this.#before.length + 1, fn, options))
    return this
  }

  /** Runs after every request has finished or been cut (close pools, flush queues), in order. */
  afterDrain (fn: HookFn, options?: HookOptions): this {
    if (this.#phase === 'cleanup' || this.#phase === 'closed') {
      throw createError('GRACEFUL_ERR_SHUTTING_DOWN', ['add an afterDrain hook', this.#phase])
    }
    this.#after.push(createHook('afterDrain', this.#after.length + 1, fn, options))
    return this
  }

  /** Starts the shutdown; every later call returns the same promise. Never rejects. */
  shutdown (reason = 'shutdown'): Promise<ShutdownReport> {
    if (this.#promise === null) this.#promise = this.#run(reason)
    return this.#promise
  }

  /** Readiness: serving, and the user's check passes. */
  async isReady (): Promise<boolean> {
    // In a restart drain the address stays ready: the successor serves it. A probe that reaches us on an
    // old connection must not make a load balancer take the instance out.
    if (this.#phase !== 'serving' && this.drainMode !== 'restart') return false
    const check = this.options.readiness?.check
    if (check == null) return true
    try {
      return (await check()) === true
    } catch (err) {
      this.log.warn({ err }, 'graceful: readiness check threw')
      return false
    }
  }

  /** Drains `server` with this instance. */
  attach (server: NetServer): this {
    if (!(server instanceof NetServer)) throw createError('GRACEFUL_ERR_SERVER', [describe(server)])
    const s = server as TrackedServer
    if (s[kEngine] === this) return this
    if (s[kEngine] !== undefined) throw createError('GRACEFUL_ERR_ALREADY_ATTACHED', [])
    s[kEngine] = this
    this.#tracker.watch(s)
    supervisedServer(this, s)
    if (this.#phase === 'serving' && this.options.restart !== null) {
      if (s.listening) firstListening(this)
      else s.once('listening', () => firstListening(this))
    }
    return this
  }

  /**
   * Per-route options for a request, or undefined. Cached on the request. The readiness and liveness paths
   * are served during the drain whatever the framework: a liveness probe answered 503 would have the
   * orchestrator restart a process that is only draining.
   */
  routeOf (req: IncomingMessage): ResolvedRouteOptions | undefined {
    const r = req as IncomingMessage & RequestState
    let route = r[kRoute]
    if (route === undefined) {
      route = (this.#isProbe(req) ? PROBE : this.#integration.routeOf?.(req)) ?? null
      r[kRoute] = route
    }
    return route ?? undefined
  }

  #isProbe (req: IncomingMessage): boolean {
    const { readiness, liveness } = this.options
    if ((readiness === null && liveness === null) || (req.method !== 'GET' && req.method !== 'HEAD')) return false
    const url = req.url as string
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    return path === readiness?.path || path === liveness?.path
  }

  /** Sets a request's per-route options (adapters that know the route better than `routeOf`). */
  setRoute (req: IncomingMessage, route: ResolvedRouteOptions | undefined): void {
    (req as IncomingMessage & RequestState)[kRoute] = route ?? null
  }

  /**
   * The request's `shutdownSignal`, made on first use: it aborts at the drain start for `abortOnDrain` routes
   * and at the request's deadline for the others.
   */
  signalFor (req: IncomingMessage): AbortSignal {
    const r = req as IncomingMessage & RequestState
    let controller = r[kSignal]
    if (controller === undefined) {
      controller = new AbortController()
      r[kSignal] = controller
      if (this.closing && this.routeOf(req)?.abortOnDrain === true) {
        controller.abort(abortError('the server is draining', 'GRACEFUL_DRAINING'))
      }
    }
    return controller.signal
  }

  /** Did the engine pass this request to the framework undecided (`Integration.defers`), for `admit()`? */
  undecided (req: IncomingMessage): boolean {
    return this.#tracker.undecided(req)
  }

  /**
   * Decides an undecided request (see `undecided`) once the adapter has set its route (`setRoute`). True when
   * it is to be served (with `Connection: close`); false when it must be answered 503 — with `rejectHeaders()`
   * and `REJECT_BODY`, or by `reject(res)` — and it is counted as rejected.
   */
  admit (req: IncomingMessage, res: ServerResponse): boolean {
    if (this.drainMode === 'restart' || this.routeOf(req)?.serveDuringDrain === true) {
      if (req.httpVersionMajor < 2 && !res.headersSent) res.setHeader('connection', 'close')
      return true
    }
    this.#tracker.rejected(res)
    return false
  }

  /** Headers for a 503 during the drain. */
  rejectHeaders (req: IncomingMessage): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' }
    if (req.httpVersionMajor < 2) headers.connection = 'close'
    if (this.options.retryAfter !== null) headers['retry-after'] = this.options.retryAfter
    return headers
  }

  /** Answers 503 on a raw response, the last on its connection unless `close` is false (pipelining). */
  reject (req: IncomingMessage, res: ServerResponse, close = true): void {
    const headers = this.rejectHeaders(req)
    if (!close) delete headers.connection
    headers['content-length'] = String(Buffer.byteLength(REJECT_BODY))
    res.writeHead(503, headers)
    res.end(REJECT_BODY)
  }

  // ---- the shutdown ---------------------------------------------------------------------------------------

  #setPhase (phase: Phase): void {
    const previous = this.#phase
    this.#phase = phase
    if (!phaseChannel.hasSubscribers) return
    phaseChannel.publish({ instance: this, phase, previous, reason: this.#reason, ...this.#tracker.live() })
  }

  async #run (reason: string): Promise<ShutdownReport> {
    const start = performance.now()
    const o = this.options
    const hooks: HookResult[] = []
    this.#reason = reason
    // A restart still on its way is off: its successor is stopped, or (in a successor) the handover abandoned.
    if (o.restart !== null) restartShutdown(this, reason)
    // A restart drain has no lame-duck time: the successor already serves the same address.
    const ms = this.drainMode === 'restart' ? 0 : o.delay
    this.#tracker.begin(ms)
    this.#setPhase('lameduck')
    this.log.info({ reason, delay: ms, inFlight: this.inFlight }, 'graceful: shutdown started')

    // The lame-duck time lasts the delay, and at least until the beforeDrain hooks (deregistration) end.
    const delay = new Promise<void>((resolve) => { this.#timers.push(setTimeout(resolve, ms)) })
    for (const hook of this.#before) hooks.push(await this.#hook(hook, 'beforeDrain', reason))
    await delay

    // The drain starts as the listeners close: requests that reach us before are lame-duck ones.
    await this.#tracker.closeListeners()
    this.closing = true
    this.#setPhase('draining')
    await this.#tracker.drain()

    this.#setPhase('cleanup')
    const c = this.#tracker.counts
    this.log.info({ completed: c.completed, rejected: c.rejected, aborted: c.aborted }, 'graceful: drained')
    for (const hook of this.#after) hooks.push(await this.#hook(hook, 'afterDrain', reason))
    const close = this.#integration.close
    if (close !== undefined) hooks.push(await this.#hook({ name: close.name, fn: close.fn, timeout: null }, 'close', reason))

    for (const t of this.#timers) clearTimeout(t)
    this.#tracker.end()
    // A shutdown an uncaught error started is never clean, however well the drain went.
    const clean = reason !== 'uncaughtException' && reason !== 'unhandledRejection' && !c.timedOut && c.aborted === 0 &&
      c.destroyedSockets === 0 && hooks.every((h) => h.error === undefined)
    const report: ShutdownReport = {
      reason,
      durationMs: Math.round(performance.now() - start),
      inFlightAtStart: c.inFlightAtStart,
      completed: c.completed,
      rejected: c.rejected,
      aborted: c.aborted,
      interrupted: c.interrupted,
      destroyedSockets: c.destroyedSockets,
      hooks,
      timedOut: c.timedOut,
      exitCode: clean ? 0 : 1
    }
    this.#setPhase('closed')
    if (clean) this.log.info({ report }, 'graceful: shutdown complete')
    else this.log.warn({ report }, 'graceful: shutdown complete, not clean')
    if (reportChannel.hasSubscribers) reportChannel.publish({ instance: this, report })
    if (o.signals.length > 0) unregister(this)
    if (o.restart !== null) unregisterRestart(this)
    return report
  }

  async #hook (hook: Hook, kind: 'beforeDrain' | 'afterDrain' | 'close', reason: string): Promise<HookResult> {
    const result = await runHook(hook, this.options.hookTimeout, reason)
    if (result.error !== undefined) this.log.error({ hook: result.name, ms: result.ms, error: result.error }, 'graceful: hook failed')
    if (hookChannel.hasSubscribers) hookChannel.publish({ instance: this, kind, hook: result })
    return result
  }
}

const noop = (): void => {}
const silent: Logger = { info: noop, warn: noop, error: noop }

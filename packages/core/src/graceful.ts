import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2Session } from 'node:http2'
import { Server as NetServer, type Socket } from 'node:net'
import { Server as TlsServer } from 'node:tls'
import { createError, describe } from './errors.js'
import { createHook, runHook, type Hook, type HookFn, type HookOptions, type HookResult } from './hooks.js'
import { resolveOptions, type GracefulOptions, type Logger, type ResolvedOptions, type ResolvedRouteOptions } from './options.js'
import { firstListening, registerRestart, unregisterRestart } from './restart.js'
import { register, unregister } from './signals.js'
import { joinSupervisor, supervisedListened, supervisedServer } from './supervised.js'

export type Phase = 'serving' | 'lameduck' | 'draining' | 'cleanup' | 'closed'

export interface ShutdownReport {
  /** What started it: a signal name, `'shutdown'` (from code), `'close'` (Fastify `app.close()`), … */
  reason: string
  /** ms from the start of the shutdown to `closed`. */
  durationMs: number
  /** Requests in flight when the drain started. */
  inFlightAtStart: number
  /** Requests that ended during the drain without being cut (rejected ones not included). */
  completed: number
  /** Requests answered 503 during the drain. */
  rejected: number
  /** Requests cut at their deadline (their `shutdownSignal` aborted, then their connection destroyed). */
  aborted: number
  /** Connections destroyed while they still held work: a request, a partial request or an upgrade. */
  destroyedSockets: number
  hooks: HookResult[]
  /** The drain deadline passed with work still open. */
  timedOut: boolean
  /** 0 when everything ended on its own and every hook passed, 1 otherwise. */
  exitCode: 0 | 1
}

/** What an adapter hands the core: the framework's own close, and how to find a request's route. */
export interface Integration {
  /** Option names the adapter handles itself (Express `routes`): allowed, not checked here. */
  allow?: readonly string[]
  /** Logger when the user gave none (`logger` option undefined). */
  logger?: Logger
  /** The framework's own close hooks, run after `afterDrain` as one recorded hook. */
  close?: { name: string, fn: () => Promise<unknown> }
  /** Per-route options of a request, or undefined for the defaults. Called only during a shutdown. */
  routeOf?: (req: IncomingMessage) => ResolvedRouteOptions | undefined
  /** The adapter calls `listened()` once its listen() has finished on every address (Fastify binds 'localhost' one address after another). */
  listens?: boolean
}

/**
 * How long a connection must stay silent before the drain closes it as idle. A keep-alive client that
 * has just received a response sends its next request within this window, so it gets an answer
 * (503 or served, with `Connection: close`) instead of a reset. Well under a second, as promised.
 */
export const IDLE_GRACE_MS = 100

export const REJECT_BODY = '{"statusCode":503,"error":"Service Unavailable","message":"The server is shutting down"}'

const kConn = Symbol.for('graceful.connection')
const kEngine = Symbol.for('graceful.engine')
const kRoute = Symbol.for('graceful.route')
const kSignal = Symbol.for('graceful.signal')
const kFate = Symbol.for('graceful.fate')

const FATE_REJECTED = 1
const FATE_CUT = 2

interface TrackedRequest extends IncomingMessage {
  [kRoute]?: ResolvedRouteOptions | null
  [kSignal]?: AbortController
}

interface TrackedResponse extends ServerResponse {
  req: TrackedRequest
  [kFate]?: number
}

interface TrackedServer extends NetServer {
  [kEngine]?: Graceful
}

/**
 * Per-connection state, one object per socket, never per request. Kept small: it lives as long as the
 * connection, and a server may hold tens of thousands of idle keep-alive connections.
 */
class Connection {
  inFlight = 0
  lastRes: TrackedResponse | null = null
  /** socket.bytesRead when its last request ended: anything beyond is a request on its way. */
  idleBytes = 0
  /**
   * When it last went idle, in whole ms of performance.now() (a small integer is stored unboxed): when it
   * opened, or when its last request ended. Idle longer than IDLE_GRACE_MS at the drain start: closed at once.
   */
  idleSince = Math.floor(performance.now())
  /** Upgraded, or an HTTP/2 connection (closed through its session): never swept as idle. */
  held = false
  constructor (readonly engine: Graceful, readonly destroy: Socket['_destroy']) {}
}

interface TrackedSocket extends Socket {
  [kConn]?: Connection
}

/**
 * Stands in for the socket's own `_destroy`, which every way of closing a socket goes through, to learn
 * that it is gone. A 'close' listener would do the same at the price of some 200 bytes of heap per
 * connection (measured: Node's HTTP server already listens for 'close', and a second listener makes it
 * an array), and memory per idle keep-alive connection is what a busy server has most of.
 */
function destroyTracked (this: TrackedSocket, err: Error | null, callback: (error?: Error | null) => void): void {
  const conn = this[kConn] as Connection
  conn.engine._forget(this)
  conn.destroy.call(this, err, callback)
}

function onResponseClose (this: TrackedResponse): void {
  const socket = this.req.socket as TrackedSocket
  const conn = socket[kConn] as Connection
  if (--conn.inFlight === 0) {
    conn.idleBytes = socket.bytesRead
    conn.idleSince = Math.floor(performance.now())
    // Holding the last response until the next request would let every response outlive a scavenge and
    // be promoted to the old generation: far dearer than the bookkeeping itself.
    conn.lastRes = null
  }
  conn.engine._settled(this, conn, socket)
}

/**
 * Node's HTTP server allows half-open sockets, and after an upgrade nobody may answer the client's FIN.
 * During a drain such a socket would wait for the deadline for nothing: finish closing it.
 */
function onUpgradedEnd (this: TrackedSocket): void {
  if (this[kConn]?.engine.closing === true && !this.destroyed) this.end()
}

interface Destroyable {
  readonly destroyed: boolean
  destroy (error?: Error): void
}

interface TrackedStream extends Destroyable {
  readonly session: Http2Session | undefined
}

function streamOf (res: TrackedResponse): TrackedStream {
  return (res as unknown as { stream: TrackedStream }).stream
}

/** What to destroy to cut a response: its socket, or for HTTP/2 its stream. */
function connectionOf (res: TrackedResponse): Destroyable {
  if (res.req.httpVersionMajor !== 2) return res.req.socket as Socket
  const stream = streamOf(res)
  return {
    get destroyed () { return stream.destroyed },
    // Destroyed without an error, a stream is reset with NO_ERROR, which clients take for the normal end of
    // the response: a cut response would look complete. With an error it is reset with INTERNAL_ERROR.
    destroy () { stream.destroy(abortError('the drain deadline passed', 'GRACEFUL_DEADLINE')) }
  }
}

/** The connection an HTTP/2 response's session runs on, read through the session's socket proxy. */
function sessionConnectionOf (res: TrackedResponse): Connection | undefined {
  const session = streamOf(res).session
  /* c8 ignore next - defensive: a stream still in flight has a live session */
  if (session === undefined || session.destroyed) return undefined
  return (session.socket as TrackedSocket)[kConn]
}

function abortError (message: string, code: string): Error {
  const err = new Error(message) as Error & { code: string }
  err.name = 'AbortError'
  err.code = code
  return err
}

export class Graceful {
  readonly options: ResolvedOptions
  readonly log: Logger
  /** Cached for the per-request path: true from the drain start on. */
  closing = false
  /** `'restart'` serves drain-time requests with `Connection: close` instead of answering 503. */
  drainMode: 'shutdown' | 'restart' = 'shutdown'

  #phase: Phase = 'serving'
  #integration: Integration
  #servers = new Set<TrackedServer>()
  #sockets = new Set<TrackedSocket>()
  #sessions = new Set<Http2Session>()
  #onStreamClose: (this: TrackedResponse) => void
  #inFlight = new Set<TrackedResponse>()
  #idle = new Set<TrackedSocket>()
  #before: Hook[] = []
  #after: Hook[] = []
  #promise: Promise<ShutdownReport> | null = null
  #drained: (() => void) | null = null
  #sweepTimer: NodeJS.Timeout | null = null
  #sweepDue = Infinity
  #timers: NodeJS.Timeout[] = []
  #drainStart = 0
  #pastDeadline = false
  #stats = { inFlightAtStart: 0, completed: 0, rejected: 0, aborted: 0, destroyedSockets: 0, timedOut: false }

  constructor (options?: GracefulOptions, integration: Integration = {}) {
    this.options = resolveOptions(options, integration.allow)
    this.#integration = integration
    this.log = this.options.logger ?? (this.options.logger === null ? silent : integration.logger ?? silent)
    const engine = this
    // One function per instance, not per request: HTTP/2 responses end through it.
    this.#onStreamClose = function onStreamClose (this: TrackedResponse) { engine._settledStream(this) }
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
    return [...this.#servers].filter((s) => s.listening)
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
    return this.#inFlight.size
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

  /** Drains `server` with this instance: tracks its connections and requests. */
  attach (server: NetServer): this {
    if (!(server instanceof NetServer)) throw createError('GRACEFUL_ERR_SERVER', [describe(server)])
    const s = server as TrackedServer
    if (s[kEngine] === this) return this
    if (s[kEngine] !== undefined) throw createError('GRACEFUL_ERR_ALREADY_ATTACHED', [])
    s[kEngine] = this
    this.#servers.add(s)

    const engine = this
    const listeners = s.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>
    if (listeners.length === 1) {
      // Wrap rather than prepend: with two 'request' listeners, EventEmitter copies its listener array
      // on every request.
      const app = listeners[0] as (req: IncomingMessage, res: ServerResponse) => void
      s.removeListener('request', app)
      s.on('request', function gracefulRequest (this: NetServer, req: IncomingMessage, res: ServerResponse) {
        engine._track(req as TrackedRequest, res as TrackedResponse)
        app.call(this, req, res)
      })
    } else {
      s.prependListener('request', function gracefulRequest (req: IncomingMessage, res: ServerResponse) {
        engine._track(req as TrackedRequest, res as TrackedResponse)
      })
    }

    // TLS servers hand requests the TLSSocket of 'secureConnection', not the raw one of 'connection'.
    s.on(s instanceof TlsServer ? 'secureConnection' : 'connection', function gracefulConnection (socket: Socket) {
      engine._adopt(socket as TrackedSocket)
    })

    // HTTP/2: a session is the connection. It is told to go away (GOAWAY) at the drain start, which lets
    // its open streams finish and the client open no new ones.
    s.on('session', function gracefulSession (session: Http2Session) {
      engine.#sessions.add(session)
      session.once('close', () => {
        engine.#sessions.delete(session)
        if (engine.closing) engine.#checkDrained()
      })
      if (engine.closing) session.close()
    })

    // Our own 'upgrade' listener would make Node hand upgrade requests to 'upgrade' on a server whose
    // app never asked for them, so we listen only beside a listener of the app's.
    const onUpgrade = function gracefulUpgrade (_req: IncomingMessage, socket: Socket): void {
      const conn = (socket as TrackedSocket)[kConn] ?? engine._adopt(socket as TrackedSocket)
      conn.held = true
      engine.#idle.delete(socket as TrackedSocket)
      socket.on('end', onUpgradedEnd)
    }
    if (s.listenerCount('upgrade') > 0) s.prependListener('upgrade', onUpgrade)
    s.on('newListener', function gracefulNewListener (event: string | symbol, fn: unknown) {
      if (event === 'upgrade' && fn !== onUpgrade && !s.listeners('upgrade').includes(onUpgrade)) {
        s.prependListener('upgrade', onUpgrade)
      }
    })

    supervisedServer(this, s)
    if (this.closing) this.#closeLate(s)
    else if (this.options.restart !== null) {
      if (s.listening) firstListening(this)
      else s.once('listening', () => firstListening(this))
    }
    return this
  }

  /** Per-route options for a request, or undefined. Cached on the request. */
  routeOf (req: IncomingMessage): ResolvedRouteOptions | undefined {
    const r = req as TrackedRequest
    let route = r[kRoute]
    if (route === undefined) {
      route = this.#integration.routeOf?.(req) ?? null
      r[kRoute] = route
    }
    return route ?? undefined
  }

  /** Sets a request's per-route options (adapters that know the route when the request starts). */
  setRoute (req: IncomingMessage, route: ResolvedRouteOptions | undefined): void {
    (req as TrackedRequest)[kRoute] = route ?? null
  }

  /**
   * The request's `shutdownSignal`, made on first use: it aborts at the drain start for `abortOnDrain`
   * routes and at the request's deadline for the others.
   */
  signalFor (req: IncomingMessage): AbortSignal {
    const r = req as TrackedRequest
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

  /**
   * Called by an adapter for a request that arrives during the drain, once it knows the route. Returns
   * true when the request is to be served (with `Connection: close`); false when it must be answered
   * 503 — with `rejectHeaders()` and `REJECT_BODY`, or by `reject(res)`.
   */
  admit (req: IncomingMessage, res: ServerResponse, route?: ResolvedRouteOptions): boolean {
    if (route !== undefined) this.setRoute(req, route)
    route = this.routeOf(req)
    if (this.drainMode === 'restart' || route?.serveDuringDrain === true) {
      if (route?.timeout != null) this.#armRouteTimer(res as TrackedResponse, route.timeout)
      return true
    }
    (res as TrackedResponse)[kFate] = FATE_REJECTED
    this.#stats.rejected++
    return false
  }

  /** Headers for a 503 during the drain. */
  rejectHeaders (req: IncomingMessage): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' }
    if (req.httpVersionMajor < 2) headers.connection = 'close'
    if (this.options.retryAfter !== null) headers['retry-after'] = this.options.retryAfter
    return headers
  }

  /** Answers 503 on a raw response (for adapters without a reply object of their own). */
  reject (req: IncomingMessage, res: ServerResponse): void {
    const headers = this.rejectHeaders(req)
    headers['content-length'] = String(Buffer.byteLength(REJECT_BODY))
    res.writeHead(503, headers)
    res.end(REJECT_BODY)
  }

  // ---- per-request path ---------------------------------------------------------------------------

  /** @internal */
  _track (req: TrackedRequest, res: TrackedResponse): void {
    // An HTTP/2 request's socket is a proxy over its stream; its connection is its session.
    if (req.httpVersionMajor === 2) {
      this.#inFlight.add(res)
      res.on('close', this.#onStreamClose)
      return
    }
    const socket = req.socket as TrackedSocket
    const conn = socket[kConn] ?? this._adopt(socket)
    const previous = conn.lastRes
    conn.inFlight++
    conn.lastRes = res
    this.#inFlight.add(res)
    res.on('close', onResponseClose)
    if (this.closing) this.#lateRequest(req, res, conn, previous)
  }

  /** @internal */
  _adopt (socket: TrackedSocket): Connection {
    const conn = new Connection(this, socket._destroy)
    conn.held = (socket as { alpnProtocol?: unknown }).alpnProtocol === 'h2'
    socket[kConn] = conn
    this.#sockets.add(socket)
    socket._destroy = destroyTracked
    if (this.closing) this.#markIdle(socket, conn)
    return conn
  }

  /** @internal */
  _forget (socket: TrackedSocket): void {
    this.#sockets.delete(socket)
    this.#idle.delete(socket)
    if (this.closing) this.#checkDrained()
  }

  /** @internal */
  _settledStream (res: TrackedResponse): void {
    this.#inFlight.delete(res)
    if (!this.closing) return
    if (res[kFate] === undefined) this.#stats.completed++
    this.#checkDrained()
  }

  /** @internal */
  _settled (res: TrackedResponse, conn: Connection, socket: TrackedSocket): void {
    this.#inFlight.delete(res)
    if (!this.closing) return
    const fate = res[kFate]
    if (fate === undefined) this.#stats.completed++
    if (conn.inFlight === 0 && !socket.destroyed) this.#markIdle(socket, conn)
    this.#checkDrained()
  }

  // ---- the shutdown -------------------------------------------------------------------------------

  async #run (reason: string): Promise<ShutdownReport> {
    const start = performance.now()
    const o = this.options
    const hooks: HookResult[] = []
    this.#phase = 'lameduck'
    this.log.info({ reason, delay: o.delay, inFlight: this.#inFlight.size }, 'graceful: shutdown started')

    // The lame-duck time lasts the delay, and at least until the beforeDrain hooks (deregistration) end.
    // A restart drain has none: the successor already serves the same address, nothing has to notice.
    const ms = this.drainMode === 'restart' ? 0 : o.delay
    const delay = new Promise<void>((resolve) => { this.#timers.push(setTimeout(resolve, ms)) })
    for (const hook of this.#before) hooks.push(await this.#hook(hook, reason))
    await delay

    this.#phase = 'draining'
    await new Promise<void>((resolve) => {
      this.#drained = resolve
      this.#startDrain()
    })

    this.#phase = 'cleanup'
    const s0 = this.#stats
    this.log.info({ completed: s0.completed, rejected: s0.rejected, aborted: s0.aborted }, 'graceful: drained')
    for (const hook of this.#after) hooks.push(await this.#hook(hook, reason))
    const close = this.#integration.close
    if (close !== undefined) hooks.push(await this.#hook({ name: close.name, fn: close.fn, timeout: null }, reason))

    for (const t of this.#timers) clearTimeout(t)
    this.#phase = 'closed'
    const s = this.#stats
    // A shutdown an uncaught error started is never clean, however well the drain went.
    const clean = reason !== 'uncaughtException' && reason !== 'unhandledRejection' && !s.timedOut && s.aborted === 0 && s.destroyedSockets === 0 && hooks.every((h) => h.error === undefined)
    const report: ShutdownReport = {
      reason,
      durationMs: Math.round(performance.now() - start),
      inFlightAtStart: s.inFlightAtStart,
      completed: s.completed,
      rejected: s.rejected,
      aborted: s.aborted,
      destroyedSockets: s.destroyedSockets,
      hooks,
      timedOut: s.timedOut,
      exitCode: clean ? 0 : 1
    }
    if (clean) this.log.info({ report }, 'graceful: shutdown complete')
    else this.log.warn({ report }, 'graceful: shutdown complete, not clean')
    if (o.signals.length > 0) unregister(this)
    if (o.restart !== null) unregisterRestart(this)
    return report
  }

  async #hook (hook: Hook, reason: string): Promise<HookResult> {
    const result = await runHook(hook, this.options.hookTimeout, reason)
    if (result.error !== undefined) this.log.error({ hook: result.name, ms: result.ms, error: result.error }, 'graceful: hook failed')
    return result
  }

  #startDrain (): void {
    this.closing = true
    for (const server of this.#servers) this.#closeListener(server)
    this.#stats.inFlightAtStart = this.#inFlight.size

    for (const socket of this.#sockets) {
      const conn = socket[kConn] as Connection
      if (conn.held) continue
      if (conn.inFlight === 0) this.#markIdle(socket, conn)
      else if (conn.lastRes !== null) closeAfter(conn.lastRes)
    }
    for (const session of this.#sessions) session.close()

    this.#drainStart = performance.now()
    for (const res of this.#inFlight) {
      const route = this.routeOf(res.req)
      if (route?.abortOnDrain === true) res.req[kSignal]?.abort(abortError('the server is draining', 'GRACEFUL_DRAINING'))
      if (route?.timeout != null) this.#armRouteTimer(res, route.timeout)
    }

    this.log.info({ inFlight: this.#inFlight.size, connections: this.#sockets.size }, 'graceful: draining')
    // Ref'd on purpose: a half-open socket does not keep the loop alive, and the process must not slip out
    // through beforeExit halfway through a drain. It is cleared as soon as the drain ends.
    this.#timers.push(setTimeout(() => this.#deadline(), this.options.timeout))
    this.#checkDrained()
  }

  /** A route's own deadline, counted from the drain start like the global one. */
  #armRouteTimer (res: TrackedResponse, timeout: number): void {
    const left = Math.max(0, this.#drainStart + timeout - performance.now())
    const timer = setTimeout(() => {
      if (this.#inFlight.has(res)) this.#cutRoute(res)
    }, left)
    timer.unref()
    this.#timers.push(timer)
  }

  #cutRoute (res: TrackedResponse): void {
    const cut = new Set([connectionOf(res)])
    if (this.#pastDeadline && res.req.httpVersionMajor === 2) this.#lastOnSession(res, cut)
    this.#cut([res], cut)
  }

  /**
   * Past the global deadline an HTTP/2 connection stays open only for streams with a longer timeout of
   * their own. When the last of them is cut, so is the connection: its client may never close it.
   */
  #lastOnSession (res: TrackedResponse, cut: Set<Destroyable>): void {
    const conn = sessionConnectionOf(res)
    for (const other of this.#inFlight) {
      if (other !== res && other.req.httpVersionMajor === 2 && sessionConnectionOf(other) === conn) return
    }
    for (const socket of this.#sockets) if (socket[kConn] === conn) cut.add(socket)
  }

  #closeListener (server: NetServer): void {
    if (!server.listening) return this.#closeLate(server)
    // http.Server#close() also destroys every idle keep-alive connection on the spot, which resets a
    // client whose next request is already on the wire. Stop accepting only; the drain closes idle
    // connections itself once they have been quiet for IDLE_GRACE_MS.
    NetServer.prototype.close.call(server)
  }

  /**
   * A server that starts listening, or is attached, once the drain has begun (a listen() delayed past the
   * signal by an async start-up). It is closed a turn after 'listening': the listeners of that event, the
   * framework's own among them, read server.address(), which is null once closed. Attached from Node's
   * listen diagnostics channel, it is listening before that event has even been emitted.
   */
  #closeLate (server: NetServer): void {
    const close = (): void => {
      setImmediate(() => {
        const address = server.address()
        NetServer.prototype.close.call(server)
        this.log.warn({ address }, 'graceful: a server started listening after the shutdown began; closed it')
      })
    }
    if (server.listening) close()
    else server.once('listening', close)
  }

  /** A request that arrived on an open connection after the drain started. */
  #lateRequest (req: TrackedRequest, res: TrackedResponse, conn: Connection, previous: TrackedResponse | null): void {
    this.#idle.delete(req.socket as TrackedSocket)
    // Only the last response on a connection may say close, or Node ends the connection before it has
    // answered the pipelined requests behind it.
    if (previous !== null && previous !== res && !previous.headersSent && !previous.writableEnded) {
      previous.removeHeader('connection')
    }
    res.setHeader('connection', 'close')
  }

  #markIdle (socket: TrackedSocket, conn: Connection): void {
    if (conn.held) return
    this.#idle.add(socket)
    this.#scheduleSweep(conn.idleSince + IDLE_GRACE_MS)
  }

  /** Makes sure a sweep runs at `due` (performance.now() time) or earlier. */
  #scheduleSweep (due: number): void {
    if (due >= this.#sweepDue) return
    if (this.#sweepTimer !== null) clearTimeout(this.#sweepTimer)
    this.#sweepDue = due
    // The check runs in setImmediate, after a poll phase: bytes that reached the kernel before the
    // timer fired are read first, and the request they carry then keeps its connection open.
    this.#sweepTimer = setTimeout(() => setImmediate(() => this.#sweep()), Math.max(0, due - performance.now()))
    this.#sweepTimer.unref()
  }

  #sweep (): void {
    this.#sweepTimer = null
    this.#sweepDue = Infinity
    const now = performance.now()
    let next = Infinity
    for (const socket of this.#idle) {
      const conn = socket[kConn] as Connection
      /* c8 ignore start - defensive: a new request (#lateRequest) or an upgrade removes the socket from the idle set first */
      if (conn.inFlight > 0 || conn.held) {
        this.#idle.delete(socket)
        continue
      }
      /* c8 ignore stop */
      // Bytes past the end of its last request: a request head or body is arriving. It is answered when
      // complete, or cut at the deadline; either way it is not idle.
      if (socket.bytesRead !== conn.idleBytes) {
        next = Math.min(next, now + IDLE_GRACE_MS)
        continue
      }
      // Each connection gets the whole grace from the moment it went idle, not from the last sweep.
      const due = Math.max(conn.idleSince + IDLE_GRACE_MS, now + (socket.writableLength > 0 ? IDLE_GRACE_MS : 0))
      if (due > now) {
        next = Math.min(next, due)
        continue
      }
      this.#idle.delete(socket)
      socket.destroy()
    }
    if (next !== Infinity) this.#scheduleSweep(Math.max(now + 1, next))
  }

  #deadline (): void {
    this.#pastDeadline = true
    const requests: TrackedResponse[] = []
    const sockets = new Set<Destroyable>()
    // HTTP/2 connections that carry such a request: a stream is not counted in its connection's inFlight.
    const kept = new Set<Connection | undefined>()
    for (const res of this.#inFlight) {
      // Requests on routes with a timeout of their own keep it.
      if (this.routeOf(res.req)?.timeout != null) {
        if (res.req.httpVersionMajor === 2) kept.add(sessionConnectionOf(res))
        continue
      }
      requests.push(res)
      sockets.add(connectionOf(res))
    }
    for (const socket of this.#sockets) {
      const conn = socket[kConn] as Connection
      if (conn.inFlight > 0 || kept.has(conn) || sockets.has(socket)) continue
      // An upgraded or HTTP/2 connection still open, or one whose request is still arriving.
      if (conn.held || socket.bytesRead !== conn.idleBytes) sockets.add(socket)
      else socket.destroy()
    }
    if (sockets.size === 0) return
    this.#stats.timedOut = true
    this.log.warn({ requests: requests.length, connections: sockets.size }, 'graceful: drain deadline passed, cutting what is left')
    this.#cut(requests, sockets)
  }

  /**
   * Aborts the requests' signals, then — one turn later, so a handler can write a last word — destroys
   * the connections.
   */
  #cut (requests: TrackedResponse[], sockets: Set<Destroyable>): void {
    for (const res of requests) {
      res.req[kSignal]?.abort(abortError('the drain deadline passed', 'GRACEFUL_DEADLINE'))
      if (res[kFate] === undefined) {
        res[kFate] = FATE_CUT
        this.#stats.aborted++
      }
    }
    setImmediate(() => {
      const h2: Destroyable[] = []
      for (const socket of sockets) {
        // An HTTP/2 connection closes one turn after its streams, once their resets are written: closed
        // in the same turn, the client sees its streams end as if they were complete.
        if ((socket as { alpnProtocol?: unknown }).alpnProtocol === 'h2') h2.push(socket)
        else this.#destroy(socket)
      }
      if (h2.length > 0) setImmediate(() => { for (const socket of h2) this.#destroy(socket) })
    })
  }

  #destroy (socket: Destroyable): void {
    if (socket.destroyed) return
    this.#stats.destroyedSockets++
    socket.destroy()
  }

  #checkDrained (): void {
    if (this.#drained === null || this.#inFlight.size > 0 || this.#sockets.size > 0 || this.#sessions.size > 0) return
    const done = this.#drained
    this.#drained = null
    done()
  }
}

/** Makes `res` the last response on its connection: it says `Connection: close` and Node closes after it. */
function closeAfter (res: ServerResponse): void {
  if (!res.headersSent) {
    res.setHeader('connection', 'close')
    return
  }
  closeQueued(res as QueuedResponse)
}

interface QueuedResponse extends ServerResponse {
  outputData?: Array<{ data: unknown }>
  outputSize?: number
  _last?: boolean
}

const KEEP_ALIVE_HEAD = /\r\nconnection: *keep-alive\r\n(?:keep-alive: [^\r]*\r\n)?/i

/**
 * A pipelined response queued behind another already has its head built, with keep-alive. Node holds
 * it, unsent, in `outputData` until the connection is free, so it can still be told to close: rewrite
 * the buffered head and mark it last, as Node itself does for a response that says close. Anything
 * unexpected leaves it alone; the idle sweep then closes the connection after it.
 */
function closeQueued (res: QueuedResponse): void {
  const first = res.outputData?.[0]
  if (res.socket != null || first === undefined || typeof first.data !== 'string' || !first.data.startsWith('HTTP/1.')) return
  const end = first.data.indexOf('\r\n\r\n')
  const head = first.data.slice(0, end + 2)
  if (end === -1 || !KEEP_ALIVE_HEAD.test(head)) return
  const rewritten = head.replace(KEEP_ALIVE_HEAD, '\r\nConnection: close\r\n')
  first.data = rewritten + first.data.slice(end + 2)
  if (typeof res.outputSize === 'number') res.outputSize += rewritten.length - head.length
  res._last = true
}

const noop = (): void => {}
const silent: Logger = { info: noop, warn: noop, error: noop }

// Connections and requests, for the drain. While serving, nothing here runs per request or keeps anything per
// HTTP/1 connection: Node already lists a server's connections, knows the response each one is writing and
// when an idle one last saw traffic (node-internals.ts). Only what Node does not list is followed while
// serving: TLS connections still in their handshake, HTTP/2 sessions and upgraded sockets — per connection,
// never per request.
//
// From the shutdown start every response is made the last on its connection (`Connection: close`), so a
// keep-alive client closes the connection itself after its next answer and never races a close of ours. A
// `'request'` listener swapped in then decides each late request before the framework sees it. A connection
// the client leaves idle is closed only once it has been quiet for longer than a client pauses between two
// requests.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { constants as http2constants, type Http2Session, type Http2Stream } from 'node:http2'
import { Server as NetServer, type Socket } from 'node:net'
import { Server as TlsServer, type TLSSocket } from 'node:tls'
import {
  activeResponse, arrivingConnections, httpConnections, lastParsed, onAssignSocket, quietSince, rewriteQueuedHead,
  sessionSocket, sessionStreams, streamResponse, timersNow
} from './node-internals.js'
import type { Logger, ResolvedRouteOptions } from './options.js'
import type { Phase } from './types.js'

/**
 * How long a keep-alive client may pause between two requests and still have its next request answered
 * (503, or served in a restart drain, with `Connection: close`) instead of meeting a closed connection. A
 * connection quiet for longer is closed by the server.
 */
export const IDLE_GRACE_MS = 1000
/** In a restart drain the successor already serves the address: the old process can wait longer. */
export const RESTART_IDLE_GRACE_MS = 2 * IDLE_GRACE_MS
/**
 * The end of the lame-duck time, until the listeners close and the drain starts, answers without
 * `Connection: close`: a client told to close reconnects at once, and a connection of its that is in the accept
 * queue when the listener closes would be reset. Reconnects from responses sent before this have landed, been
 * accepted and been served by then.
 */
export const QUIET_TAIL_MS = 50
/** The highest HTTP/2 stream id: a GOAWAY that names it refuses no stream. */
const MAX_STREAM_ID = 2 ** 31 - 1
/** Added to the grace: timers fire late, and so does a busy client's next request. */
const SLACK_MS = 100

/** What the tracker needs from its instance. */
export interface TrackerHost {
  readonly timeout: number
  readonly log: Logger
  readonly phase: Phase
  readonly drainMode: 'shutdown' | 'restart'
  routeOf (req: IncomingMessage): ResolvedRouteOptions | undefined
  /** Is the server's listener ours to close at the drain start? (Fastify leaves a server it did not listen on open.) */
  closesListener (server: NetServer): boolean
  /** The framework decides this late request itself (it knows a route `routeOf` does not): see `admit()`. */
  defers (req: IncomingMessage): boolean
  /** Aborts the request's `shutdownSignal` (if a handler has asked for it). */
  abortRequest (req: IncomingMessage, reason: Error): void
  /** Answers 503 on a raw response; `close` says whether it is the last on its connection. */
  reject (req: IncomingMessage, res: ServerResponse, close: boolean): void
}

export interface Counts {
  inFlightAtStart: number
  completed: number
  rejected: number
  aborted: number
  interrupted: number
  destroyedSockets: number
  timedOut: boolean
}

const PENDING = 0
const COMPLETED = 1
const REJECTED = 2
const ABORTED = 3
const INTERRUPTED = 4

/** A request seen during the shutdown, until its response closes or its connection does. */
interface Tracked {
  req: IncomingMessage
  res: ServerResponse
  /** HTTP/1: its connection. HTTP/2: null (the stream is `stream`). */
  socket: Socket | null
  stream: Http2Stream | null
  fate: number
  timer: NodeJS.Timeout | null
  /** Sent on a connection a keep-alive response of the shutdown left open for it (Conn.invited). */
  invited: boolean
}

/** An HTTP/1 connection during the shutdown. */
interface Conn {
  pending: Set<Tracked>
  /** The response we made the last on this connection, while we may still take that back. */
  marked: ServerResponse | null
  /** When we first saw it (performance.now()): how long it has been quiet, where Node keeps no timer. */
  seenAt: number
  /**
   * A response of the shutdown's quiet tail went out on it without `Connection: close` (QUIET_TAIL_MS): that
   * invited the client's next request, which is served even once the drain has begun.
   */
  invited: boolean
}

interface Destroyable {
  readonly destroyed: boolean
  destroy (error?: Error): void
}

/** Node publishes every HTTP/1 request here as it is parsed, before it has its connection or reaches 'request'. */
const REQUEST_START = 'http.server.request.start'

const kTracked = Symbol('graceful.tracked')
const kUndecided = Symbol('graceful.undecided')
const kServer = Symbol('graceful.server')
type WithTracked = ServerResponse & { [kTracked]?: Tracked }

export function abortError (message: string, code: string): Error {
  const err = new Error(message) as Error & { code: string }
  err.name = 'AbortError'
  err.code = code
  return err
}

/** The server a socket was accepted by (Node sets `socket.server` on every server connection). */
function serverOf (socket: Socket): unknown {
  return (socket as { server?: unknown }).server
}

export class Tracker {
  readonly counts: Counts = { inFlightAtStart: 0, completed: 0, rejected: 0, aborted: 0, interrupted: 0, destroyedSockets: 0, timedOut: false }
  readonly servers = new Set<NetServer>()

  #host: TrackerHost
  /** Followed while serving (Node lists none of them). */
  /** HTTP/2 sessions, each with its connection (Node forgets it once the session is closed, before the peer has). */
  #sessions = new Map<Http2Session, Socket | undefined>()
  /** When each session was told to go away (performance.now()). */
  #goaway = new Map<Http2Session, number>()
  #upgraded = new Set<Socket>()
  /** TLS connections still in their handshake: the raw socket, and when it connected. */
  #handshaking = new Map<Socket, number>()

  // From the shutdown start.
  #shuttingDown = false
  #draining = false
  #pastDeadline = false
  #conns = new Map<Socket, Conn>()
  #pending = new Set<Tracked>()
  #unhookAssign: (() => void) | null = null
  #listenersClosed = false
  /** Responses are made the last on their connection (off in the quiet tail, see QUIET_TAIL_MS). */
  #marking = false
  #drainStart = 0
  #grace = IDLE_GRACE_MS
  /** The most a timer of ours has fired late: the event loop's delay, added to the grace. */
  #lag = 0
  #sweepTimer: NodeJS.Timeout | null = null
  /** When the planned sweep was due (performance.now()); none is planned before the drain's first look. */
  #sweepDue = Infinity
  #timers: NodeJS.Timeout[] = []
  #drained: (() => void) | null = null

  constructor (host: TrackerHost) {
    this.#host = host
  }

  /** Follows what Node does not list for `server`. Called once per server, while serving or later. */
  watch (server: NetServer): void {
    this.servers.add(server)
    ;(server as unknown as Record<symbol, Tracker>)[kServer] = this
    const tracker = this
    if (server instanceof TlsServer) {
      // One listener per tracker, on each connection only while its handshake lasts.
      const forget = function gracefulHandshakeOver (this: Socket): void {
        tracker.#handshaking.delete(this)
        tracker.#checkDrained()
      }
      server.on('connection', function gracefulHandshake (raw: Socket) {
        tracker.#handshaking.set(raw, performance.now())
        raw.once('close', forget)
      })
      server.on('secureConnection', function gracefulSecure (socket: TLSSocket) {
        const raw = (socket as unknown as { _parent: Socket })._parent
        raw.removeListener('close', forget)
        forget.call(raw)
      })
    }
    // HTTP/2: a session is the connection. GOAWAY lets its open streams finish and the client opens no new ones.
    server.on('session', function gracefulSession (session: Http2Session) {
      tracker.#sessions.set(session, sessionSocket(session))
      session.once('close', () => {
        tracker.#sessions.delete(session)
        tracker.#goaway.delete(session)
        tracker.#checkDrained()
      })
      if (tracker.#shuttingDown) tracker.#goAway(session)
    })
    // Our own 'upgrade' listener would make Node hand upgrade requests to 'upgrade' on a server whose app never
    // asked for them, so we listen only beside a listener of the app's.
    const onUpgrade = function gracefulUpgrade (_req: IncomingMessage, socket: Socket): void { tracker.#upgrade(socket) }
    if (server.listenerCount('upgrade') > 0) server.prependListener('upgrade', onUpgrade)
    server.on('newListener', function gracefulNewListener (event: string | symbol, fn: unknown) {
      if (event === 'upgrade' && fn !== onUpgrade && !server.listeners('upgrade').includes(onUpgrade)) {
        server.prependListener('upgrade', onUpgrade)
      }
    })
    if (this.#shuttingDown) this.#follow(server)
    if (this.#listenersClosed) this.#closeLate(server)
  }

  /** Live counts: read from Node's lists while serving, from ours during the shutdown. */
  live (): { inFlight: number, connections: number } {
    let inFlight = 0
    let connections = this.#sessions.size + this.#upgraded.size + this.#handshaking.size
    for (const session of this.#sessions.keys()) inFlight += sessionStreams(session).length
    if (this.#shuttingDown) return { inFlight: inFlight + this.#countH1Pending(), connections: connections + this.#conns.size }
    for (const server of this.servers) {
      for (const socket of httpConnections(server)) {
        connections++
        if (activeResponse(socket) !== null) inFlight++
      }
    }
    return { inFlight, connections }
  }

  #countH1Pending (): number {
    let n = 0
    for (const t of this.#pending) if (t.socket !== null) n++
    return n
  }

  /** The shutdown starts (the lame-duck time): every response from now on closes its connection. */
  begin (lameDuckMs: number): void {
    this.#shuttingDown = true
    this.#marking = lameDuckMs > QUIET_TAIL_MS
    if (this.#marking) this.#timers.push(setTimeout(() => { this.#marking = false }, lameDuckMs - QUIET_TAIL_MS))
    this.#grace = this.#host.drainMode === 'restart' ? RESTART_IDLE_GRACE_MS : IDLE_GRACE_MS
    subscribe(REQUEST_START, this.#onRequestStart)
    this.#unhookAssign = onAssignSocket((res, socket) => {
      if ((serverOf(socket) as Record<symbol, unknown> | undefined)?.[kServer] === this) this.#assigned(res, socket)
    })
    for (const server of this.servers) this.#follow(server)
    for (const session of this.#sessions.keys()) this.#followSession(session)
    // A response still being written on a connection upgraded behind it (a pipelined upgrade).
    for (const socket of this.#upgraded) {
      const res = activeResponse(socket)
      if (res !== null) this.#track(res.req, res)
    }
  }

  /**
   * Closes the listeners, in the check phase right after a poll phase has taken what waited in their accept
   * queues (closing a listener resets those); from then on a reconnect is refused, and responses close their
   * connections again, those in flight too.
   */
  closeListeners (): Promise<void> {
    return new Promise<void>((resolve) => {
      setImmediate(() => {
        for (const server of this.servers) if (this.#host.closesListener(server)) this.#closeListener(server)
        this.#listenersClosed = true
        this.#marking = true
        for (const [socket, conn] of this.#conns) {
          const res = activeResponse(socket)
          const last = lastParsed(socket)
          if (res !== null && (last === null || last === res.req)) this.#markLast(conn, res)
        }
        resolve()
      })
    })
  }

  /** Starts the drain; resolves when no request and no connection is left (or the deadline has cut them). */
  drain (): Promise<void> {
    this.#draining = true
    this.#drainStart = performance.now()
    this.counts.inFlightAtStart = this.#pending.size
    for (const t of this.#pending) this.#drainStarted(t)
    // Ref'd on purpose: a half-open socket does not keep the loop alive, and the process must not slip out
    // through beforeExit halfway through a drain. It is cleared as soon as the drain ends.
    this.#timers.push(setTimeout(() => this.#deadline(), this.#host.timeout))
    const { inFlight, connections } = this.live()
    this.#host.log.info({ inFlight, connections }, 'graceful: draining')
    return new Promise<void>((resolve) => {
      this.#drained = resolve
      this.#sweep()
    })
  }

  /** The shutdown is over: stop watching responses being assigned, clear timers. */
  end (): void {
    unsubscribe(REQUEST_START, this.#onRequestStart)
    this.#unhookAssign?.()
    this.#unhookAssign = null
    for (const t of this.#timers) clearTimeout(t)
    if (this.#sweepTimer !== null) clearTimeout(this.#sweepTimer)
  }

  /** Was this request passed on for the framework to decide (`TrackerHost.defers`)? */
  undecided (req: IncomingMessage): boolean {
    return (req as IncomingMessage & { [kUndecided]?: boolean })[kUndecided] === true
  }

  /** The framework turned an undecided request away (a 503 of its own making): counted like ours. */
  rejected (res: ServerResponse): void {
    ((res as WithTracked)[kTracked] as Tracked).fate = REJECTED
    this.counts.rejected++
  }

  // ---- from the shutdown start ---------------------------------------------------------------------------

  /** Every new HTTP/1 request, including those Node answers itself (no Host, `Expect` it cannot meet). */
  #onRequestStart = (message: unknown): void => {
    const { request, response, server } = message as { request: IncomingMessage, response: ServerResponse, server: unknown }
    if ((server as Record<symbol, unknown> | undefined)?.[kServer] === this) this.#track(request, response)
  }

  /** Swaps in our request listeners and takes stock of the server's connections and what they carry. */
  #follow (server: NetServer): void {
    for (const event of ['request', 'checkContinue', 'checkExpectation']) this.#swap(server, event)
    const tracker = this
    const adopt = function gracefulConnection (socket: Socket): void {
      // Node's own listener ran first: an HTTP/1 connection has its parser now; an HTTP/2 one has a session.
      // A server whose listener stays open keeps taking connections: the drain cannot wait for those.
      if ((socket as { parser?: unknown }).parser == null || (tracker.#listenersClosed && !tracker.#host.closesListener(server))) return
      tracker.#adopt(socket)
    }
    server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', adopt)
    for (const socket of httpConnections(server)) {
      this.#adopt(socket)
      const res = activeResponse(socket)
      if (res !== null) this.#found(res, socket)
    }
  }

  #followSession (session: Http2Session): void {
    for (const stream of sessionStreams(session)) {
      const res = streamResponse(stream)
      if (res !== undefined && !res.writableFinished) this.#track(res.req, res)
    }
    this.#goAway(session)
  }

  /**
   * Tells an HTTP/2 client to open no new stream, in two steps (RFC 9113 §6.8): a GOAWAY that refuses
   * nothing (the highest stream id), then, once a PING has made the round trip — so every stream the client
   * opened before it saw the GOAWAY has arrived — the closing GOAWAY that names the last stream served.
   */
  #goAway (session: Http2Session): void {
    /* c8 ignore next - defensive: a session leaves the set when it closes; one the app is closing itself is left to it */
    if (session.closed || session.destroyed) return
    this.#goaway.set(session, performance.now())
    const close = (): void => { if (!session.closed && !session.destroyed) session.close() }
    session.goaway(http2constants.NGHTTP2_NO_ERROR, MAX_STREAM_ID)
    // A client that never answers the PING is closed the same way after the grace (see #sweep).
    /* c8 ignore next - ping() refuses only with too many PINGs of the app's own unanswered */
    if (!session.ping(close)) close()
  }

  /**
   * Wraps the app's listener for `event` (the first: a framework adds its own when it makes the server), so
   * each request is looked at before the framework routes it: a 503 from the drain never runs a route
   * handler. Listeners added later (observers) still see every request.
   */
  #swap (server: NetServer, event: string): void {
    const listeners = server.listeners(event) as Array<(req: IncomingMessage, res: ServerResponse) => void>
    const app = listeners[0]
    if (app === undefined) return
    server.removeAllListeners(event)
    const tracker = this
    server.on(event, function gracefulLateRequest (this: NetServer, req: IncomingMessage, res: ServerResponse) {
      if (tracker.#late(req, res)) app.call(this, req, res)
    })
    for (const fn of listeners.slice(1)) server.on(event, fn)
  }

  /** A request that arrives during the shutdown. True when the app is to serve it. */
  #late (req: IncomingMessage, res: ServerResponse): boolean {
    const t = this.#track(req, res)
    const phase = this.#host.phase
    let serve = phase === 'lameduck' || this.#host.drainMode === 'restart' || this.#host.routeOf(req)?.serveDuringDrain === true
    if (t.socket !== null) {
      const conn = this.#adopt(t.socket)
      if (t.invited) serve = true
      const previous = conn.marked
      if (previous !== null && previous !== res && !this.#unmark(previous)) {
        // Pipelined behind a response that has told the client to close: Node will end the connection after
        // it, so nothing can answer this one. Unprocessed, it is the client's to send again (RFC 9112 §9.3.2).
        this.#reject(t, false)
        return false
      }
      this.#markLast(conn, res)
    }
    if (!serve) {
      if (!this.#host.defers(req)) {
        this.#reject(t, true)
        return false
      }
      (req as IncomingMessage & { [kUndecided]?: boolean })[kUndecided] = true
    }
    if (this.#draining) this.#drainStarted(t)
    return true
  }

  /** A response in flight at the shutdown start. */
  #found (res: ServerResponse, socket: Socket): void {
    this.#track(res.req, res)
    const last = lastParsed(socket)
    if (last === null || last === res.req) this.#markLast(this.#adopt(socket), res)
  }

  /**
   * Node hands `res` its connection: a new request's at once (it is tracked already), a pipelined one's once
   * the responses ahead of it are done. One queued since before the shutdown is found here. Whichever is the
   * last request Node has parsed on the connection is made the last response.
   */
  #assigned (res: ServerResponse, socket: Socket): void {
    if ((res as WithTracked)[kTracked] === undefined) {
      const t = this.#track(res.req, res)
      if (this.#draining) {
        this.counts.inFlightAtStart++
        this.#drainStarted(t)
      }
    }
    const last = lastParsed(socket)
    if (last === null || last === res.req) this.#markLast(this.#adopt(socket), res)
  }

  #markLast (conn: Conn, res: ServerResponse): void {
    const ok = this.#marking && (res.headersSent ? rewriteQueuedHead(res, true) : (res.setHeader('connection', 'close'), true))
    if (ok) conn.marked = res
    // A response of the quiet tail goes out keep-alive on purpose: that invites the client's next request on
    // the connection. (One whose keep-alive head went out before the shutdown invites nothing more than any
    // connection kept alive then.)
    conn.invited = !this.#marking
  }

  /** Takes back a `Connection: close` of ours while it has not been sent. */
  #unmark (res: ServerResponse): boolean {
    if (!res.headersSent) {
      // Set back rather than removed: Node leaves the header out altogether once an app has removed it.
      res.setHeader('connection', 'keep-alive')
      return true
    }
    return rewriteQueuedHead(res, false)
  }

  #track (req: IncomingMessage, res: ServerResponse): Tracked {
    const known = (res as WithTracked)[kTracked]
    if (known !== undefined) return known
    const h2 = req.httpVersionMajor === 2
    const t: Tracked = {
      req,
      res,
      socket: h2 ? null : req.socket,
      stream: h2 ? (res as unknown as { stream: Http2Stream }).stream : null,
      fate: PENDING,
      timer: null,
      invited: false
    }
    ;(res as WithTracked)[kTracked] = t
    this.#pending.add(t)
    // An upgraded connection is followed as such, never swept as an idle HTTP one.
    if (t.socket !== null && !this.#upgraded.has(t.socket)) {
      const conn = this.#adopt(t.socket)
      conn.pending.add(t)
      t.invited = conn.invited
      conn.invited = false
    }
    res.once('close', () => this.#settle(t))
    return t
  }

  #adopt (socket: Socket): Conn {
    let conn = this.#conns.get(socket)
    if (conn !== undefined) return conn
    conn = { pending: new Set(), marked: null, seenAt: performance.now(), invited: false }
    this.#conns.set(socket, conn)
    // On Node 20 and 22 a pipelined response queued behind another never emits 'close' when its connection
    // dies; the connection's own close settles whatever is still pending on it.
    socket.once('close', () => this.#gone(socket))
    return conn
  }

  #upgrade (socket: Socket): void {
    this.#conns.delete(socket)
    this.#upgraded.add(socket)
    socket.once('close', () => {
      this.#upgraded.delete(socket)
      this.#checkDrained()
    })
    // Node's HTTP server allows half-open sockets, and after an upgrade nobody may answer the client's FIN.
    // During a drain such a socket would wait for the deadline for nothing: finish closing it.
    socket.on('end', () => { if (this.#draining && !socket.destroyed) socket.end() })
  }

  #reject (t: Tracked, answer: boolean): void {
    t.fate = REJECTED
    this.counts.rejected++
    if (!answer) return
    const { req, res } = t
    const send = (): void => {
      // The client may have gone away meanwhile (its body never came, or it reset the connection).
      /* c8 ignore next */
      if (res.headersSent || res.writableEnded || res.destroyed) return
      // The last request on its connection is told to close; one a pipelined request has followed is not.
      // (On HTTP/2, req.socket is the session's proxy, with no parser: the answer is last, and says nothing.)
      const last = lastParsed(req.socket)
      this.#host.reject(req, res, last === null || last === req)
    }
    // A body still on its way is read first: answering and closing before it has arrived would make the
    // client's kernel reset the connection, and the 503 with it. (A client waiting for 100 Continue sends none;
    // one with another expectation, which an app meets in its checkExpectation listener, sends it at once.)
    const body = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
    const waits = req.headers.expect?.toLowerCase() === '100-continue'
    // Not before the chunk being parsed has been: a request pipelined in it still takes the close over.
    if (req.complete || !body || waits) return queueMicrotask(send)
    req.resume()
    req.once('end', send)
  }

  /** The drain has begun for a request still pending: `abortOnDrain`, and its route's own deadline. */
  #drainStarted (t: Tracked): void {
    const route = this.#host.routeOf(t.req)
    if (route?.abortOnDrain === true) this.#host.abortRequest(t.req, abortError('the server is draining', 'GRACEFUL_DRAINING'))
    if (route?.timeout != null) {
      const left = Math.max(0, this.#drainStart + route.timeout - performance.now())
      t.timer = setTimeout(() => this.#cutRoute(t), left)
      t.timer.unref()
    }
  }

  #settle (t: Tracked): void {
    if (!this.#pending.delete(t)) return
    if (t.timer !== null) clearTimeout(t.timer)
    if (t.fate === PENDING) {
      t.fate = t.res.writableFinished ? COMPLETED : INTERRUPTED
      if (this.#draining) this.counts[t.fate === COMPLETED ? 'completed' : 'interrupted']++
    }
    const socket = t.socket
    if (socket !== null) {
      const conn = this.#conns.get(socket)
      conn?.pending.delete(t)
      if (conn?.marked === t.res) conn.marked = null
      // It may have gone idle: its grace starts now.
      if (this.#draining && conn !== undefined && conn.pending.size === 0 && !socket.destroyed) {
        this.#scheduleSweep(performance.now() + this.#grace + SLACK_MS + this.#lag)
      }
    }
    this.#checkDrained()
  }

  #gone (socket: Socket): void {
    const conn = this.#conns.get(socket)
    if (conn === undefined) return
    this.#conns.delete(socket)
    for (const t of conn.pending) this.#settle(t)
    this.#checkDrained()
  }

  // ---- the drain --------------------------------------------------------------------------------------------

  #closeListener (server: NetServer): void {
    // http.Server#close() also destroys every idle keep-alive connection on the spot, which resets a client
    // whose next request is already on the wire. Stop accepting only; idle connections get their grace.
    if (server.listening) NetServer.prototype.close.call(server)
    else this.#closeLate(server)
  }

  /**
   * A server that starts listening, or is attached, once the drain has begun (a listen() delayed past the
   * signal by an async start-up). It is closed a turn after 'listening': the listeners of that event, the
   * framework's own among them, read server.address(), which is null once closed.
   */
  #closeLate (server: NetServer): void {
    const close = (): void => {
      setImmediate(() => {
        const address = server.address()
        NetServer.prototype.close.call(server)
        this.#host.log.warn({ address }, 'graceful: a server started listening after the shutdown began; closed it')
      })
    }
    if (server.listening) close()
    else server.once('listening', close)
  }

  /** Makes sure a sweep runs at `due` (performance.now() time) or earlier. */
  #scheduleSweep (due: number): void {
    // A look already planned comes first: a due asked for later is never earlier (it counts from a later
    // quiet, with a lag that only grows), and each sweep plans the next from everything it sees.
    if (!this.#listenersClosed || this.#sweepTimer !== null) return
    this.#sweepDue = due
    // The check runs in setImmediate, after a poll phase: bytes that reached the kernel before the timer fired
    // are read first, and the request they carry then keeps its connection open.
    this.#sweepTimer = setTimeout(() => setImmediate(() => this.#sweep()), Math.max(0, due - performance.now()))
    this.#sweepTimer.unref()
  }

  /** Closes the connections that have been quiet for longer than the grace; plans the next look. */
  #sweep (): void {
    const now = performance.now()
    // How late the planned look came (the first, at the drain start, was planned for no time).
    this.#lag = Math.max(this.#lag, now - this.#sweepDue)
    this.#sweepTimer = null
    const grace = this.#grace + SLACK_MS + this.#lag
    // _idleStart is on the timers' clock; ours is performance.now().
    const offset = timersNow() - now
    const arriving = new Set<Socket>()
    for (const server of this.servers) for (const socket of arrivingConnections(server)) arriving.add(socket)
    let next = Infinity
    for (const [socket, conn] of this.#conns) {
      if (socket.destroyed || conn.pending.size > 0 || activeResponse(socket) !== null || arriving.has(socket)) continue
      const quiet = quietSince(socket)
      const since = quiet === undefined ? conn.seenAt : quiet - offset
      // A response still leaving the buffer has not reached the client: its pause has not begun.
      const due = socket.writableLength > 0 ? now + grace : since + grace
      if (due <= now) {
        // Gone from here on: nothing is pending on it, and its fd is closed now. Its 'close' event comes a loop
        // phase later, after 10,000 of them on a big drain, and waiting for those added ~100 ms to the exit.
        socket.destroy()
        this.#conns.delete(socket)
      } else {
        next = Math.min(next, due)
      }
    }
    // A session told to go away with no stream left holds no work, and its client can open none: once the
    // client has had the grace to see the GOAWAY and close it, a session it keeps open is closed for it.
    for (const [session, socket] of this.#sessions) {
      const at = this.#goaway.get(session) as number
      if (sessionStreams(session).length > 0) continue
      if (at + grace <= now) socket?.destroy()
      else next = Math.min(next, at + grace)
    }
    for (const [raw, at] of this.#handshaking) {
      if (at + grace <= now) raw.destroy()
      else next = Math.min(next, at + grace)
    }
    if (next !== Infinity) this.#scheduleSweep(Math.max(now + 1, next))
    this.#checkDrained()
  }

  #cutRoute (t: Tracked): void {
    const sockets = new Set<Destroyable>()
    if (t.socket !== null) sockets.add(t.socket)
    else if (this.#pastDeadline && this.#lastOnSession(t)) sockets.add(t.stream?.session as Http2Session)
    this.#cut([t], sockets)
  }

  /**
   * Past the global deadline an HTTP/2 connection stays open only for streams with a longer timeout of their
   * own. When the last of them is cut, so is the connection: its client may never close it.
   */
  #lastOnSession (t: Tracked): boolean {
    const session = t.stream?.session
    for (const other of this.#pending) if (other !== t && other.stream?.session === session) return false
    return session !== undefined
  }

  #deadline (): void {
    this.#pastDeadline = true
    const requests: Tracked[] = []
    const sockets = new Set<Destroyable>()
    // Connections that carry a request with a later deadline of its own stay open.
    const kept = new Set<unknown>()
    const cutSessions = new Set<Http2Session>()
    for (const t of this.#pending) {
      const session = t.stream?.session
      if (this.#host.routeOf(t.req)?.timeout != null) {
        kept.add(t.socket ?? session)
        continue
      }
      requests.push(t)
      if (t.socket !== null) sockets.add(t.socket)
      else if (session !== undefined) cutSessions.add(session)
    }
    const arriving = new Set<Socket>()
    for (const server of this.servers) for (const socket of arrivingConnections(server)) arriving.add(socket)
    for (const socket of this.#conns.keys()) {
      if (kept.has(socket) || sockets.has(socket)) continue
      // A request still arriving is work; a connection its client left idle is not.
      if (arriving.has(socket)) sockets.add(socket)
      else socket.destroy()
    }
    for (const socket of this.#upgraded) sockets.add(socket)
    for (const [session, socket] of this.#sessions) {
      if (kept.has(session)) continue
      // A session with open streams holds work; one whose client simply keeps it open does not.
      if (cutSessions.has(session) || sessionStreams(session).length > 0) sockets.add(session)
      else socket?.destroy()
    }
    for (const raw of this.#handshaking.keys()) raw.destroy()
    if (sockets.size === 0 && requests.length === 0) return
    this.counts.timedOut = true
    this.#host.log.warn({ requests: requests.length, connections: sockets.size }, 'graceful: drain deadline passed, cutting what is left')
    this.#cut(requests, sockets)
  }

  /**
   * Aborts the requests' signals, then — one turn later, so a handler can write a last word — resets their
   * HTTP/2 streams and destroys the connections. An HTTP/2 connection goes one more turn later, once its
   * streams' resets are written: in the same turn, the client sees its streams end as if they were complete.
   */
  #cut (requests: Tracked[], sockets: Set<Destroyable>): void {
    for (const t of requests) {
      this.#host.abortRequest(t.req, abortError('the drain deadline passed', 'GRACEFUL_DEADLINE'))
      if (t.fate === PENDING) {
        t.fate = ABORTED
        this.counts.aborted++
      }
    }
    setImmediate(() => {
      for (const t of requests) {
        // Destroyed without an error, a stream is reset with NO_ERROR, which clients take for the normal end of
        // the response: a cut response would look complete. With an error it is reset with INTERNAL_ERROR.
        if (t.stream !== null && !t.stream.destroyed) t.stream.destroy(abortError('the drain deadline passed', 'GRACEFUL_DEADLINE'))
      }
      const sessions: Destroyable[] = []
      for (const target of sockets) {
        if (!this.#sessions.has(target as Http2Session)) {
          this.#destroy(target)
        } else if (!target.destroyed) {
          // Counted now: with its streams reset, a session told to go away may close on its own first.
          this.counts.destroyedSockets++
          sessions.push(target)
        }
      }
      if (sessions.length > 0) {
        setImmediate(() => {
          // Whether it closed on its own first depends on the client's answer to the resets.
          /* c8 ignore next */
          for (const session of sessions) if (!session.destroyed) session.destroy()
        })
      }
    })
  }

  #destroy (target: Destroyable): void {
    if (target.destroyed) return
    this.counts.destroyedSockets++
    target.destroy()
  }

  #checkDrained (): void {
    if (this.#drained === null || !this.#listenersClosed) return
    if (this.#pending.size > 0 || this.#conns.size > 0 || this.#sessions.size > 0 || this.#upgraded.size > 0 || this.#handshaking.size > 0) return
    const done = this.#drained
    this.#drained = null
    done()
  }
}

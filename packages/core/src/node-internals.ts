// Everything the engine reads from Node's own state instead of keeping its own while serving. Each touch is one
// small function named for what it reads, checked on Node 20.20, 22.23 and 24.21 (test/node-internals.test.ts
// fails if a version changes it). Where a read finds nothing it expects, it answers as if the state were
// unknown, and the engine falls back to what it has seen itself.
import { ServerResponse } from 'node:http'
import type { Http2Session, Http2Stream } from 'node:http2'
import type { Server as NetServer, Socket } from 'node:net'

const symbols = new Map<string, symbol>()

/** A symbol-keyed own property of a Node object, found by the symbol's description (cached once seen). */
function ownSymbol (obj: object, description: string): symbol | undefined {
  const known = symbols.get(description)
  if (known !== undefined && Object.hasOwn(obj, known)) return known
  for (const s of Object.getOwnPropertySymbols(obj)) {
    if (s.description === description) {
      symbols.set(description, s)
      return s
    }
  }
  return undefined
}

/** The value of such a property; undefined where this Node version has none (the read then answers "unknown"). */
function ownValue (obj: object, description: string): unknown {
  const key = ownSymbol(obj, description)
  /* c8 ignore next - defensive: every supported Node version has each of these symbols (test/node-internals.test.ts) */
  return key === undefined ? undefined : (obj as Record<symbol, unknown>)[key]
}

interface ParserEntry {
  socket: Socket | null
}

interface ConnectionsList {
  all (): ParserEntry[]
  active (): ParserEntry[]
}

/**
 * The HTTP/1 server's list of connections, the one `closeIdleConnections()` reads (`Symbol(http.server.connections)`,
 * made when the server starts listening; http, https, and http2 with `allowHTTP1`). Each entry is a connection's
 * HTTP parser; `active()` are those that have begun a request they have not finished sending, and those that
 * have sent nothing yet.
 */
function connectionsList (server: NetServer): ConnectionsList | undefined {
  // Made when the server starts listening: none on a server that has not yet, nor on a cleartext HTTP/2 one.
  return ownValue(server, 'http.server.connections') as ConnectionsList | undefined
}

function socketsOf (entries: ParserEntry[]): Socket[] {
  const sockets: Socket[] = []
  for (const entry of entries) if (entry.socket != null) sockets.push(entry.socket)
  return sockets
}

/** Every HTTP/1 connection of `server` (upgraded ones excepted: Node forgets those). */
export function httpConnections (server: NetServer): Socket[] {
  const list = connectionsList(server)
  return list === undefined ? [] : socketsOf(list.all())
}

/**
 * Connections whose next request has begun to arrive but is not complete: part of a head (or of a body whose
 * head is still to come). A connection that has sent nothing at all is in Node's active list too; it has read
 * no byte, which tells the two apart.
 */
export function arrivingConnections (server: NetServer): Set<Socket> {
  const list = connectionsList(server)
  const arriving = new Set<Socket>()
  if (list === undefined) return arriving
  for (const socket of socketsOf(list.active())) if (socket.bytesRead > 0) arriving.add(socket)
  return arriving
}

/** The response being written on an HTTP/1 connection (`socket._httpMessage`), or null. */
export function activeResponse (socket: Socket): ServerResponse | null {
  const res = (socket as { _httpMessage?: unknown })._httpMessage
  return res instanceof ServerResponse ? res : null
}

/**
 * The last request Node has parsed on a connection (`socket.parser.incoming`; cleared once that request's
 * response has finished). A response whose request is not this one has another queued behind it.
 */
export function lastParsed (socket: Socket): unknown {
  return (socket as { parser?: { incoming?: unknown } | null }).parser?.incoming ?? null
}

interface TimerLike {
  _idleStart?: unknown
}

/**
 * When an idle keep-alive connection last saw traffic, on the timers' clock: Node arms the keep-alive timer
 * (`socket[Symbol(timeout)]`) when a response ends with nothing queued, and every read or write refreshes its
 * `_idleStart`. Undefined when there is no such timer (a connection that never had a request, or
 * `keepAliveTimeout: 0`).
 */
export function quietSince (socket: Socket): number | undefined {
  return (ownValue(socket, 'timeout') as TimerLike | null | undefined)?._idleStart as number | undefined
}

/** Now, on the timers' clock (which `_idleStart` uses): read from a timer armed and cleared at once. */
export function timersNow (): number {
  const probe = setTimeout(noop, 1) as unknown as TimerLike
  clearTimeout(probe as unknown as NodeJS.Timeout)
  return probe._idleStart as number
}

/** The open streams of an HTTP/2 session (`session[Symbol(state)].streams`, a Map by stream id). */
export function sessionStreams (session: Http2Session): Http2Stream[] {
  // A SafeMap from Node's primordials: a Map, but not of this realm's Map class.
  const streams = (ownValue(session, 'state') as { streams: Map<number, Http2Stream> } | undefined)?.streams
  /* c8 ignore next - defensive, as in ownValue */
  return streams === undefined ? [] : [...streams.values()]
}

/**
 * The connection under an HTTP/2 session (`session[Symbol(socket)]`). `session.socket` is a proxy that refuses
 * `destroy()`; after a graceful close Node waits for the peer to close this socket, which a client that keeps
 * its session open never does.
 */
export function sessionSocket (session: Http2Session): Socket | undefined {
  return ownValue(session, 'socket') as Socket | undefined
}

/**
 * The compatibility-API response of an HTTP/2 stream (`stream[Symbol(response)]`); undefined for a stream of an
 * app that answers `'stream'` events itself.
 */
export function streamResponse (stream: Http2Stream): ServerResponse | undefined {
  return ownValue(stream, 'response') as ServerResponse | undefined
}

interface QueuedResponse extends ServerResponse {
  outputData?: Array<{ data: unknown }>
  outputSize?: number
  _last?: boolean
}

const KEEP_ALIVE_HEAD = /\r\nconnection: *keep-alive\r\n(?:keep-alive: [^\r]*\r\n)?/i
const CLOSE_HEAD = /\r\nconnection: *close\r\n/i

/**
 * Rewrites the head of a pipelined response queued behind another (Node keeps it, unsent, in `outputData`
 * until the connection is free) to say `close` or `keep-alive`, and marks it last or not, as Node itself does
 * for a response whose head says close. True when the head says so now; false when it is not there to
 * rewrite (already sent, or not built in the usual shape).
 */
export function rewriteQueuedHead (response: ServerResponse, close: boolean): boolean {
  const res = response as QueuedResponse
  const first = res.outputData?.[0]
  if (res.socket != null || first === undefined || typeof first.data !== 'string' || !first.data.startsWith('HTTP/1.')) return false
  const end = first.data.indexOf('\r\n\r\n')
  /* c8 ignore next - defensive: Node stores a head whole, in the first chunk */
  if (end === -1) return false
  const head = first.data.slice(0, end + 2)
  const [from, already] = close ? [KEEP_ALIVE_HEAD, CLOSE_HEAD] : [CLOSE_HEAD, KEEP_ALIVE_HEAD]
  if (already.test(head)) {
    res._last = close
    return true
  }
  /* c8 ignore next - a head without the Connection line Node writes (an app that wrote its own) is left alone */
  if (!from.test(head)) return false
  // Node's own Keep-Alive line is dropped, not restored: `Connection: keep-alive` alone keeps the connection.
  const to = close ? '\r\nConnection: close\r\n' : '\r\nConnection: keep-alive\r\n'
  const rewritten = head.replace(from, to)
  first.data = rewritten + first.data.slice(end + 2)
  if (typeof res.outputSize === 'number') res.outputSize += rewritten.length - head.length
  res._last = close
  return true
}

type AssignHook = (res: ServerResponse, socket: Socket) => void
const assignHooks = new Set<AssignHook>()
let originalAssign: ((this: ServerResponse, socket: Socket) => void) | null = null

/**
 * Calls `hook` each time Node hands a response its connection (`ServerResponse#assignSocket`): at once for a
 * request with nothing ahead of it, or once the responses ahead of it on a pipelined connection are done.
 * The hook runs before the response's buffered output is flushed. Installed only while some instance is
 * shutting down; returns the uninstaller.
 */
export function onAssignSocket (hook: AssignHook): () => void {
  if (originalAssign === null) {
    const original = ServerResponse.prototype.assignSocket as (this: ServerResponse, socket: Socket) => void
    originalAssign = original
    ServerResponse.prototype.assignSocket = function gracefulAssignSocket (this: ServerResponse, socket: Socket) {
      for (const fn of assignHooks) fn(this, socket)
      original.call(this, socket)
    }
  }
  assignHooks.add(hook)
  return () => {
    assignHooks.delete(hook)
    if (assignHooks.size === 0 && originalAssign !== null) {
      ServerResponse.prototype.assignSocket = originalAssign
      originalAssign = null
    }
  }
}

/* c8 ignore next - never called: the probe timer is cleared as soon as it is armed */
function noop (): void {}

// The looping clients: each sends one request after another on its own keep-alive connection (or a new
// connection per request) through node:http's Agent, as a Node service calling another does, and reports
// what it saw of each request at the socket level, so a reset, a FIN and a truncated body can be told apart.
//
// A busy client's pause blocks its event loop (Atomics.wait), it does not wait on a timer: a FIN that
// arrives meanwhile stays unread, and the next request goes out on a connection the server has closed —
// what a loaded proxy, a GC pause or a CPU-heavy caller does. So every such client runs in a worker thread
// of its own. The worker runs `loopClient`'s own source (Function#toString, evaluated), so the function
// must stay self-contained: no module-level names inside it, only its parameters and globals.
import http from 'node:http'
import { Worker } from 'node:worker_threads'
import type { Kind } from './options.js'
import type { RequestRecord } from './types.js'

export interface LoopSpec {
  kind: Kind
  client: number
  host: string
  port: number
  path: string
  method: 'GET' | 'POST'
  body: string | null
  /** One keep-alive connection, reused; else a new connection (Connection: close) per request. */
  keepAlive: boolean
  /** ms [min, max) the client's loop is blocked between two requests; null: no pause. */
  pause: [number, number] | null
  /** ms waited on a timer between two requests (a poller's interval): 0 for none. */
  gap: number
  /** ms without an answer before a request counts as timed out. */
  timeout: number
  /** Absolute ms after which the client stops on its own, whatever happens. */
  until: number
}

/** Indexes into the shared Int32Array: set to 1 to stop every client; set to 1 once the final signal is sent. */
export const FLAG_STOP = 0
export const FLAG_FINAL = 1

export type LoopMessage = { type: 'start' } | { type: 'done', record: RequestRecord }

/** Shared flags (seen by worker threads too), all 0. */
export function createFlags (): Int32Array {
  return new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT))
}

/** Stops every client: the flag, and a wake-up for those blocked in a pause. */
export function stopClients (flags: Int32Array): void {
  Atomics.store(flags, 0, 1)
  Atomics.notify(flags, 0)
}

/**
 * One client's loop, until the stop flag, `spec.until`, or (once the final signal is sent) a refused
 * connection. Self-contained: see the file's comment.
 */
export async function loopClient (httpModule: typeof http, spec: LoopSpec, flags: Int32Array, report: (message: LoopMessage) => void): Promise<void> {
  const now = (): number => performance.timeOrigin + performance.now()
  const agent = spec.keepAlive ? new httpModule.Agent({ keepAlive: true, maxSockets: 1 }) : false
  interface SocketState { fin: boolean, code: string, lastEnd: number, connected: boolean }
  const states = new WeakMap<object, SocketState>()
  const headers: Record<string, string> = spec.body === null
    ? {}
    : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(spec.body)) }

  // Every error we meet has a code but our own timeout's.
  const codeOf = (err: NodeJS.ErrnoException): string => err.code ?? ''

  function one (n: number): Promise<RequestRecord> {
    return new Promise((resolve) => {
      const record: RequestRecord = {
        kind: spec.kind, client: spec.client, n, sentAt: now(), endAt: 0, fresh: true, connected: false, quietMs: null,
        started: false, complete: false, status: 0, close: false, retryAfter: false, fin: false, timedOut: false, code: '', message: ''
      }
      let state: SocketState = { fin: false, code: '', lastEnd: 0, connected: false }
      let response: http.IncomingMessage | null = null
      const req = httpModule.request({ host: spec.host, port: spec.port, path: spec.path, method: spec.method, agent, headers })
      req.on('socket', (socket) => {
        let s = states.get(socket)
        if (s === undefined) {
          const created: SocketState = { fin: false, code: '', lastEnd: 0, connected: !socket.connecting }
          s = created
          states.set(socket, created)
          // First: Node's client fails the request ('socket hang up') from its own 'end' listener.
          socket.prependListener('end', () => { created.fin = true })
          socket.prependListener('error', (err: NodeJS.ErrnoException) => { created.code = codeOf(err) })
          socket.once('connect', () => { created.connected = true })
        }
        state = s
        record.fresh = !req.reusedSocket
        if (req.reusedSocket) record.quietMs = Math.max(0, Math.round(record.sentAt - s.lastEnd))
      })
      req.setTimeout(spec.timeout, () => {
        record.timedOut = true
        req.destroy(new Error(`no answer within ${spec.timeout} ms`))
      })
      req.on('response', (res) => {
        response = res
        record.started = true
        record.status = res.statusCode as number
        record.close = /\bclose\b/i.test(String(res.headers.connection))
        record.retryAfter = res.headers['retry-after'] !== undefined
        // A body cut short: 'aborted', after the request's 'close' (which has seen it incomplete).
        res.on('error', () => {})
        res.on('end', () => { state.lastEnd = now() })
        res.resume()
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        record.code = codeOf(err)
        record.message = err.message
      })
      // Once, after the response's end or the request's error, on Node 20, 22 and 24 alike.
      req.on('close', () => {
        record.endAt = now()
        record.complete = response !== null && (response as http.IncomingMessage).complete
        record.fin = state.fin
        record.connected = state.connected
        record.code ||= state.code
        resolve(record)
      })
      req.end(spec.body ?? undefined)
    })
  }

  let n = 0
  // 0 is FLAG_STOP, 1 is FLAG_FINAL (no module-level names in here).
  while (Atomics.load(flags, 0) === 0 && now() < spec.until) {
    n++
    report({ type: 'start' })
    const record = await one(n)
    report({ type: 'done', record })
    if (!record.connected && !record.complete) {
      // After the final signal a refused connection means the listener is gone for good; before it (a
      // restart), the address should come back: try again shortly.
      if (Atomics.load(flags, 1) === 1) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    } else if (spec.pause !== null) {
      const [min, max] = spec.pause
      // Blocked, not waiting on a timer: see the file's comment. A stop wakes it.
      Atomics.wait(flags, 0, 0, min + Math.random() * (max - min))
    } else if (spec.gap > 0) {
      await new Promise((resolve) => setTimeout(resolve, spec.gap))
    }
  }
  if (agent !== false) agent.destroy()
}

/** The worker thread's script: `loopClient`'s source, run with the spec and flags it is given. */
export function workerSource (): string {
  // esbuild-based loaders (tsx) may add `__name(fn, 'name')` calls to the function's source.
  return `'use strict'
const { workerData, parentPort } = require('node:worker_threads')
const __name = (fn) => fn
const loopClient = (${loopClient.toString()})
loopClient(require('node:http'), workerData.spec, workerData.flags, (message) => parentPort.postMessage(message))
  .then(() => parentPort.postMessage({ type: 'end' }))
`
}

/** Runs a client in this thread (no pause) or in a worker thread of its own (a pause); resolves when it has stopped. */
export function runClient (spec: LoopSpec, flags: Int32Array, report: (message: LoopMessage) => void): Promise<void> {
  if (spec.pause === null) return loopClient(http, spec, flags, report)
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerSource(), { eval: true, workerData: { spec, flags } })
    worker.on('message', (message: LoopMessage | { type: 'end' }) => {
      // The loop is over: nothing the worker still holds (a socket closing) is worth waiting for.
      if (message.type === 'end') void worker.terminate()
      else report(message)
    })
    worker.once('error', reject)
    worker.once('exit', () => resolve())
  })
}

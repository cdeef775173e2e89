// What watches the app besides the request loops: a long stream held open, a probe that tells when the
// listener stops accepting (the first refused connect), and the wait for the app to accept at all.
import http from 'node:http'
import net from 'node:net'
import type { StreamResult, RequestRecord } from './types.js'

const now = (): number => performance.timeOrigin + performance.now()

export interface Endpoint {
  host: string
  port: number
}

/** One streaming request (SSE or any long response), held open and watched to its end. */
export class StreamWatch {
  readonly path: string
  readonly record: RequestRecord
  readonly done: Promise<RequestRecord>
  events = 0
  bytes = 0
  #req: http.ClientRequest
  /** We ended it (the check was over), it had not ended. */
  stopped = false

  constructor (target: Endpoint, path: string) {
    this.path = path
    const record: RequestRecord = {
      kind: 'stream', client: 0, n: 1, sentAt: now(), endAt: 0, fresh: true, connected: false, quietMs: null,
      started: false, complete: false, status: 0, close: false, retryAfter: false, fin: false, timedOut: false, code: '', message: ''
    }
    this.record = record
    this.#req = http.request({ host: target.host, port: target.port, path, agent: false, headers: { accept: 'text/event-stream' } })
    this.done = new Promise((resolve) => {
      let response: http.IncomingMessage | null = null
      this.#req.on('socket', (socket) => {
        socket.once('connect', () => { record.connected = true })
        socket.prependOnceListener('end', () => { record.fin = true })
        socket.prependListener('error', (err: NodeJS.ErrnoException) => { record.code ||= String(err.code) })
      })
      this.#req.on('response', (res) => {
        response = res
        record.started = true
        record.status = res.statusCode as number
        record.close = /\bclose\b/i.test(String(res.headers.connection))
        let tail = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          this.bytes += Buffer.byteLength(chunk)
          // SSE events end with a blank line; a chunk may split one.
          const text = tail + chunk
          this.events += text.split(/\r?\n\r?\n/).length - 1
          tail = text.slice(-3)
        })
        res.on('error', () => {})
      })
      this.#req.on('error', (err: NodeJS.ErrnoException) => {
        record.code ||= String(err.code)
        record.message = err.message
      })
      // Once, after the response's end or the request's error (see client.ts).
      this.#req.on('close', () => {
        record.complete = response !== null && (response as http.IncomingMessage).complete
        record.endAt = now()
        resolve(record)
      })
      this.#req.end()
    })
  }

  /** Ends our side if the stream is still open (the check is over). */
  stop (): void {
    if (this.record.endAt !== 0) return
    this.stopped = true
    this.#req.destroy()
  }

  /** How it ended, ms from `zero`. */
  result (zero: number): StreamResult {
    const r = this.record
    const ended = this.stopped ? 'open' : r.complete ? 'complete' : r.started ? 'truncated' : 'failed'
    const how = r.code !== '' ? r.code : r.fin ? 'the server closed the connection (FIN)' : 'the connection closed'
    const detail = ended === 'open'
      ? 'still open when the check ended'
      : ended === 'complete'
        ? 'the response ended properly (its last chunk arrived)'
        : ended === 'truncated' ? `cut without its end: ${how}` : `no response: ${r.message}`
    return {
      path: this.path,
      status: r.status,
      events: this.events,
      bytes: this.bytes,
      ended,
      atMs: ended === 'open' ? null : Math.round(r.endAt - zero),
      detail
    }
  }
}

/** One TCP connect: 'accepted' (then closed at once) or 'refused' (ECONNREFUSED, or any other error). */
export function connectOnce (target: Endpoint): Promise<'accepted' | 'refused'> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port })
    socket.once('connect', () => {
      socket.destroy()
      resolve('accepted')
    })
    socket.once('error', () => resolve('refused'))
  })
}

/**
 * Connects every `everyMs` until `stop()`, reporting each refused connect's time: the first one after the
 * final signal is when the listener closed; any during a restart is a gap in service.
 */
export function startListenerProbe (target: Endpoint, everyMs: number, onRefused: (at: number) => void): { stop: () => Promise<void> } {
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const outcome = await connectOnce(target)
      if (outcome === 'refused') onRefused(now())
      await new Promise((resolve) => setTimeout(resolve, everyMs))
    }
  })()
  return {
    async stop () {
      stopped = true
      await loop
    }
  }
}

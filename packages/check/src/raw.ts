// Connections node:http's client cannot make: two requests pipelined in one write, an idle keep-alive
// connection watched to its end, and a preconnect that never sends a byte. They are raw node:net sockets
// with a small HTTP/1.1 response reader (Node exposes no client-side parser for a byte stream it does not
// own), which is also what tells a FIN from a reset precisely.
import net from 'node:net'
import type { Kind } from './options.js'
import type { ConnectionEnd, RequestRecord } from './types.js'

export interface ResponseHead {
  status: number
  close: boolean
  retryAfter: boolean
}

/** Reads HTTP/1.1 responses out of a byte stream: Content-Length, chunked and close-delimited bodies. */
export class ResponseParser {
  #buffer: Buffer = Buffer.alloc(0)
  #head: ResponseHead | null = null
  #mode: 'length' | 'chunked' | 'close' = 'length'
  #chunk: 'size' | 'data' | 'crlf' | 'trailer' = 'size'
  #remaining = 0

  /** A response's head has arrived and its body has not ended. */
  get started (): boolean {
    return this.#head !== null
  }

  /** Feeds bytes; returns the heads of the responses they completed, in order. Throws on what is not HTTP/1.x. */
  push (chunk: Buffer): ResponseHead[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    const done: ResponseHead[] = []
    for (;;) {
      if (this.#head === null && !this.#readHead(done)) break
      if (this.#head === null) continue
      if (!this.#readBody()) break
      done.push(this.#head)
      this.#head = null
    }
    return done
  }

  /** The connection ended: completes a close-delimited body; null when no response was complete. */
  end (): ResponseHead | null {
    const head = this.#head
    if (head === null || this.#mode !== 'close') return null
    this.#head = null
    return head
  }

  /** false: the head has not all arrived. Pushes bodiless responses to `done` at once. */
  #readHead (done: ResponseHead[]): boolean {
    const end = this.#buffer.indexOf('\r\n\r\n')
    if (end === -1) return false
    const lines = this.#buffer.subarray(0, end).toString('latin1').split('\r\n')
    this.#buffer = this.#buffer.subarray(end + 4)
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] as string)
    if (match === null) throw new Error(`not an HTTP/1.1 response: '${(lines[0] as string).slice(0, 40)}'`)
    const status = Number(match[1])
    const headers = new Map<string, string>()
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
    }
    // 1xx: interim, the real response follows.
    if (status < 200 && status !== 101) return true
    const head = { status, close: /\bclose\b/i.test(headers.get('connection') ?? ''), retryAfter: headers.has('retry-after') }
    if (status === 101 || status === 204 || status === 304) {
      done.push(head)
      return true
    }
    const length = headers.get('content-length')
    if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) {
      this.#mode = 'chunked'
      this.#chunk = 'size'
    } else if (length !== undefined) {
      this.#mode = 'length'
      this.#remaining = Number(length)
    } else {
      this.#mode = 'close'
    }
    this.#head = head
    return true
  }

  /** true once the current response's body has all arrived. */
  #readBody (): boolean {
    if (this.#mode === 'close') {
      this.#buffer = Buffer.alloc(0)
      return false
    }
    if (this.#mode === 'length') return this.#skip()
    for (;;) {
      if (this.#chunk === 'data') {
        if (!this.#skip()) return false
        this.#chunk = 'crlf'
        this.#remaining = 2
      } else if (this.#chunk === 'crlf') {
        if (!this.#skip()) return false
        this.#chunk = 'size'
      } else {
        const eol = this.#buffer.indexOf('\r\n')
        if (eol === -1) return false
        const line = this.#buffer.subarray(0, eol).toString('latin1')
        this.#buffer = this.#buffer.subarray(eol + 2)
        if (this.#chunk === 'trailer') {
          if (line === '') return true
        } else {
          const size = parseInt(line, 16)
          if (Number.isNaN(size)) throw new Error(`bad chunk size '${line.slice(0, 20)}'`)
          this.#chunk = size === 0 ? 'trailer' : 'data'
          this.#remaining = size
        }
      }
    }
  }

  /** Consumes up to #remaining bytes; true once none remain. */
  #skip (): boolean {
    const take = Math.min(this.#remaining, this.#buffer.length)
    this.#remaining -= take
    this.#buffer = this.#buffer.subarray(take)
    return this.#remaining === 0
  }
}

const now = (): number => performance.timeOrigin + performance.now()

export interface RawTarget {
  host: string
  port: number
  timeout: number
}

/** A host as a URL or a Host header has it: an IPv6 address in brackets. */
export const bracketed = (host: string): string => host.includes(':') ? `[${host}]` : host

export function requestBytes (target: RawTarget, path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${bracketed(target.host)}:${target.port}\r\n\r\n`
}

/**
 * One raw connection: requests written as bytes, answers matched to them in order. Every request ends
 * in a record, answered or not; the connection is single-use once it has failed or been closed.
 */
export class RawConnection {
  readonly socket: net.Socket
  fin = false
  code = ''
  connected = false
  closed = false
  /** A response said Connection: close: the connection is not to be used again (whether or not its FIN has been read). */
  ended = false
  /** When the connection's last response ended (for quietMs). */
  lastEnd = 0
  /** When and how it ended. */
  end: { at: number, how: 'fin' | 'reset' } | null = null
  readonly #parser = new ResponseParser()
  readonly #pending: Array<{ record: RequestRecord, resolve: () => void }> = []
  readonly #closed: Promise<void>

  constructor (target: RawTarget) {
    this.socket = net.connect({ host: target.host, port: target.port })
    this.socket.once('connect', () => { this.connected = true })
    this.socket.on('data', (chunk: Buffer) => {
      let heads: ResponseHead[]
      try {
        heads = this.#parser.push(chunk)
      } catch {
        this.code = 'EPROTO'
        this.socket.destroy()
        return
      }
      for (const head of heads) this.#answer(head)
      const first = this.#pending[0]
      if (first !== undefined && this.#parser.started) first.record.started = true
    })
    this.socket.on('end', () => {
      this.fin = true
      this.end ??= { at: now(), how: 'fin' }
      const head = this.#parser.end()
      if (head !== null) this.#answer(head)
    })
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.code ||= String(err.code)
      if (this.code === 'ECONNRESET' || this.code === 'EPIPE') this.end ??= { at: now(), how: 'reset' }
    })
    this.#closed = new Promise((resolve) => {
      this.socket.once('close', () => {
        this.closed = true
        for (const p of this.#pending.splice(0)) this.#fail(p)
        resolve()
      })
    })
  }

  /** Writes the requests in one write (a pipelined pair is two); resolves once each has ended. */
  send (target: RawTarget, kind: Kind, client: number, numbers: number[], path: string): Promise<RequestRecord[]> {
    const at = now()
    const fresh = this.lastEnd === 0
    const records = numbers.map((n): RequestRecord => ({
      kind, client, n, sentAt: at, endAt: 0, fresh, connected: this.connected, quietMs: fresh ? null : Math.max(0, Math.round(at - this.lastEnd)),
      started: false, complete: false, status: 0, close: false, retryAfter: false, fin: false, timedOut: false, code: '', message: ''
    }))
    const ended = records.map((record) => new Promise<void>((resolve) => { this.#pending.push({ record, resolve }) }))
    const timer = setTimeout(() => {
      for (const p of this.#pending) p.record.timedOut = true
      this.socket.destroy()
    }, target.timeout)
    this.socket.write(numbers.map(() => requestBytes(target, path)).join(''))
    return Promise.all(ended).then(() => {
      clearTimeout(timer)
      records.forEach((r, i) => { if (i > 0 && !r.complete && (records[i - 1] as RequestRecord).complete) r.behind = true })
      return records
    })
  }

  /** Resolves once the socket has closed. */
  closedPromise (): Promise<void> {
    return this.#closed
  }

  #answer (head: ResponseHead): void {
    const p = this.#pending.shift()
    if (p === undefined) return
    const t = now()
    this.lastEnd = t
    if (head.close) this.ended = true
    Object.assign(p.record, { endAt: t, started: true, complete: true, status: head.status, close: head.close, retryAfter: head.retryAfter, connected: true })
    p.resolve()
  }

  #fail (p: { record: RequestRecord, resolve: () => void }): void {
    const timedOut = p.record.timedOut
    Object.assign(p.record, {
      endAt: now(),
      // Behind a request this connection answered (the second of a pipelined pair): not a new connection's failure.
      fresh: p.record.fresh && this.lastEnd === 0,
      connected: this.connected,
      fin: this.fin,
      code: timedOut ? 'ETIMEDOUT' : this.code,
      message: timedOut ? 'no answer within the timeout' : this.fin ? 'the server closed the connection (FIN) without answering' : `${this.code || 'closed'} before an answer`
    })
    p.resolve()
  }
}

/**
 * Loops pipelined pairs (two requests in one write) on one connection while it lasts, until the stop flag
 * or `until`, or a refused connection once the final signal is sent (flags as in client.ts).
 */
export async function pipelinedClient (target: RawTarget, path: string, flags: Int32Array, until: number,
  onStart: (requests: number) => void, report: (record: RequestRecord) => void): Promise<void> {
  let conn: RawConnection | null = null
  let n = 0
  while (Atomics.load(flags, 0) === 0 && now() < until) {
    if (conn === null || conn.closed || conn.fin || conn.ended || conn.code !== '') {
      conn?.socket.destroy()
      conn = new RawConnection(target)
    }
    onStart(2)
    const records = await conn.send(target, 'pipelined', 0, [n + 1, n + 2], path)
    n += 2
    for (const r of records) report(r)
    if (records.some((r) => !r.connected) && Atomics.load(flags, 1) === 1) break
    // A short gap on a timer: unlike the busy clients, this one sees a FIN before it sends again.
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  conn?.socket.destroy()
}

/**
 * An idle keep-alive connection (one request, then nothing) or a preconnect (connected, nothing sent),
 * watched until the server ends it or `stop()`.
 */
export class WatchedConnection {
  readonly kind: 'idle' | 'preconnect'
  readonly conn: RawConnection
  /** The idle connection's one request. */
  readonly first: Promise<RequestRecord[]> | null

  constructor (kind: 'idle' | 'preconnect', target: RawTarget, path: string) {
    this.kind = kind
    this.conn = new RawConnection(target)
    this.first = kind === 'idle' ? this.conn.send(target, 'idle', 0, [1], path) : null
  }

  /** How it ended, ms from `zero`. */
  result (zero: number): ConnectionEnd {
    const end = this.conn.end
    if (end !== null) return { kind: this.kind, ended: end.how, atMs: Math.round(end.at - zero) }
    return { kind: this.kind, ended: this.conn.connected ? 'open' : 'never-opened', atMs: null }
  }

  stop (): void {
    this.conn.socket.destroy()
  }
}

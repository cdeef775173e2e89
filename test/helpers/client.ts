// Clients for the connection-level contract: HTTP requests over a keep-alive agent, and raw sockets that
// write exact bytes, parse the HTTP/1.1 responses out of the byte stream and tell a FIN from a reset.
import http, { type IncomingHttpHeaders } from 'node:http'
import net from 'node:net'

export const HOST = '127.0.0.1'

export interface Response {
  status: number
  headers: IncomingHttpHeaders
  body: string
  /** The request went out on a connection the agent had used before. */
  reusedSocket: boolean
}

export interface RequestOptions {
  method?: string
  path?: string
  headers?: Record<string, string>
  body?: string | Buffer
}

/** A keep-alive agent with one socket, so consecutive requests share a connection. */
export function keepAliveAgent (maxSockets = 1): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets })
}

/** One request; resolves with a complete response, rejects when the connection fails before that. */
export function request (port: number, agent: http.Agent | false, options: RequestOptions = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: HOST,
      port,
      agent,
      method: options.method ?? 'GET',
      path: options.path ?? '/',
      headers: options.headers
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('end', () => {
        if (!res.complete) return reject(new Error('response ended before it was complete'))
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), reusedSocket: req.reusedSocket })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

export interface RawResponse {
  status: number
  /** Lower-case names; repeated headers joined with ', '. */
  headers: Record<string, string>
  /** The head exactly as received (status line and headers). */
  head: string
  body: Buffer
  /** 'length' (Content-Length), 'chunked', 'none' (1xx, 204, 304) or 'close' (delimited by the end of the connection). */
  framing: 'length' | 'chunked' | 'none' | 'close'
}

export interface Closed {
  /** The peer ended the connection in order: we read a FIN ('end'). */
  fin: boolean
  /** The connection was reset (ECONNRESET / EPIPE), or failed in another way. */
  reset: boolean
  error: (Error & { code?: string }) | undefined
}

/** Thrown for bytes that are not an HTTP/1.1 response. */
export class ParseError extends Error {
  override name = 'ParseError'
}

const CRLF = Buffer.from('\r\n')
const HEAD_END = Buffer.from('\r\n\r\n')

interface Parsed { response: RawResponse, rest: Buffer }

/**
 * Parses one response from the front of `buf`: undefined while it is incomplete. `ended` says the
 * connection has ended, which completes a response framed by the end of the connection.
 */
export function parseResponse (buf: Buffer, ended = false): Parsed | undefined {
  const headEnd = buf.indexOf(HEAD_END)
  if (headEnd === -1) {
    if (ended && buf.length > 0) throw new ParseError(`connection ended inside a response head: ${JSON.stringify(buf.toString('latin1'))}`)
    return undefined
  }
  const head = buf.subarray(0, headEnd).toString('latin1')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine)
  if (m === null) throw new ParseError(`bad status line: ${JSON.stringify(statusLine)}`)
  const status = Number(m[1])
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0) throw new ParseError(`bad header line: ${JSON.stringify(line)}`)
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  let at = headEnd + HEAD_END.length
  const done = (body: Buffer, framing: RawResponse['framing'], end: number): Parsed =>
    ({ response: { status, headers, head, body, framing }, rest: buf.subarray(end) })

  if ((status >= 100 && status < 200) || status === 204 || status === 304) return done(Buffer.alloc(0), 'none', at)
  if (/(^|,)\s*chunked\s*$/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = []
    for (;;) {
      const lineEnd = buf.indexOf(CRLF, at)
      if (lineEnd === -1) return incomplete(ended, 'a chunk size')
      const sizeText = buf.subarray(at, lineEnd).toString('latin1').split(';')[0]?.trim() ?? ''
      if (!/^[0-9a-f]+$/i.test(sizeText)) throw new ParseError(`bad chunk size: ${JSON.stringify(sizeText)}`)
      const size = parseInt(sizeText, 16)
      at = lineEnd + 2
      if (size === 0) {
        // Trailers, if any, end with an empty line.
        for (;;) {
          const end = buf.indexOf(CRLF, at)
          if (end === -1) return incomplete(ended, 'the last chunk')
          const empty = end === at
          at = end + 2
          if (empty) return done(Buffer.concat(parts), 'chunked', at)
        }
      }
      if (buf.length < at + size + 2) return incomplete(ended, 'a chunk')
      parts.push(buf.subarray(at, at + size))
      if (!buf.subarray(at + size, at + size + 2).equals(CRLF)) throw new ParseError('chunk not followed by CRLF')
      at += size + 2
    }
  }
  const lengthText = headers['content-length']
  if (lengthText !== undefined) {
    if (!/^\d+$/.test(lengthText)) throw new ParseError(`bad content-length: ${JSON.stringify(lengthText)}`)
    const length = Number(lengthText)
    if (buf.length < at + length) return incomplete(ended, 'a body')
    return done(buf.subarray(at, at + length), 'length', at + length)
  }
  if (!ended) return undefined
  return done(buf.subarray(at), 'close', buf.length)
}

function incomplete (ended: boolean, what: string): undefined {
  if (ended) throw new ParseError(`connection ended inside ${what}`)
  return undefined
}

/** Parses every complete response in `buf`. */
export function parseResponses (buf: Buffer, ended = false): { responses: RawResponse[], rest: Buffer } {
  const responses: RawResponse[] = []
  let rest = buf
  for (;;) {
    const parsed = parseResponse(rest, ended)
    if (parsed === undefined) return { responses, rest }
    responses.push(parsed.response)
    rest = parsed.rest
    if (parsed.response.status === 101) return { responses, rest } // what follows is another protocol
    if (rest.length === 0) return { responses, rest }
  }
}

/**
 * A raw TCP connection to the server. Collects every byte it receives; `response()` takes the next HTTP
 * response from that stream, `closed` settles once the connection has closed and says how.
 */
export class RawClient {
  readonly socket: net.Socket
  /** Settles (never rejects) when the socket has closed. */
  readonly closed: Promise<Closed>
  /** Every byte received so far that no `response()` has consumed. */
  buffer: Buffer = Buffer.alloc(0)
  ended = false
  #fin = false
  #error: (Error & { code?: string }) | undefined
  #wake: (() => void) | null = null

  constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
      this.#notify()
    })
    socket.on('end', () => {
      this.#fin = true
      this.ended = true
      this.#notify()
    })
    socket.on('error', (err) => { this.#error = err })
    this.closed = new Promise((resolve) => {
      socket.once('close', (hadError) => {
        this.ended = true
        this.#notify()
        resolve({ fin: this.#fin && !hadError, reset: hadError, error: this.#error })
      })
    })
  }

  /** Connects; rejects with the connection error (ECONNREFUSED…). */
  static connect (port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: HOST, port })
      const onError = (err: Error) => reject(err)
      socket.once('error', onError)
      socket.once('connect', () => {
        socket.removeListener('error', onError)
        resolve(new RawClient(socket))
      })
    })
  }

  /** Writes and resolves once the bytes are handed to the kernel. */
  write (data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => { if (err == null) resolve(); else reject(err) })
    })
  }

  /** The next complete response; rejects when the connection ends or fails before one is complete. */
  async response (): Promise<RawResponse> {
    for (;;) {
      const parsed = parseResponse(this.buffer, this.ended)
      if (parsed !== undefined) {
        this.buffer = parsed.rest
        return parsed.response
      }
      if (this.ended) {
        const why = this.#error === undefined ? 'the connection closed' : `${this.#error.code ?? this.#error.message}`
        throw Object.assign(new Error(`no complete response: ${why}`), { code: this.#error?.code })
      }
      await new Promise<void>((resolve) => { this.#wake = resolve })
    }
  }

  /** The next `n` responses, in order. */
  async responses (n: number): Promise<RawResponse[]> {
    const out: RawResponse[] = []
    for (let i = 0; i < n; i++) out.push(await this.response())
    return out
  }

  /** Resolves once at least `n` bytes are waiting in `buffer` (for data after an upgrade). */
  async bytes (n: number): Promise<Buffer> {
    while (this.buffer.length < n) {
      if (this.ended) throw new Error(`connection closed after ${this.buffer.length} of ${n} bytes`)
      await new Promise<void>((resolve) => { this.#wake = resolve })
    }
    const out = this.buffer.subarray(0, n)
    this.buffer = this.buffer.subarray(n)
    return out
  }

  destroy (): void {
    this.socket.destroy()
  }

  #notify (): void {
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }
}

/** A GET request head for a raw socket. */
export function get (path: string, headers: Record<string, string> = {}): string {
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${HOST}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  return `${lines.join('\r\n')}\r\n\r\n`
}

/** Resolves with the error a connection attempt fails with, or rejects if it connects. */
export function connectError (port: number): Promise<Error & { code?: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port })
    socket.once('error', (err) => resolve(err))
    socket.once('connect', () => {
      socket.destroy()
      reject(new Error('the connection was accepted'))
    })
  })
}

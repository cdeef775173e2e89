// Small clients for the adapter-specific tests (fastify.test.ts, express.test.ts): a keep-alive request,
// a raw connection that pipelines requests and parses the responses out of the byte stream, and a
// "is this address still accepting?" probe.
import http, { type IncomingHttpHeaders } from 'node:http'
import net from 'node:net'
import { once } from 'node:events'

export interface Res {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

export interface ReqOptions {
  host?: string
  port: number
  path?: string
  method?: string
  headers?: Record<string, string>
  /** A keep-alive agent: the client asks for keep-alive, so a `Connection: close` is the server's choice. */
  agent: http.Agent
}

export function send (o: ReqOptions): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: o.host ?? '127.0.0.1',
      port: o.port,
      path: o.path ?? '/',
      method: o.method ?? 'GET',
      headers: o.headers,
      agent: o.agent
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Resolves 'refused' when a new TCP connection is refused, 'accepted' when it is accepted (then closed). */
export function probe (port: number, host = '127.0.0.1'): Promise<'refused' | 'accepted' | string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host })
    socket.once('connect', () => {
      socket.destroy()
      resolve('accepted')
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : (err.code ?? err.message))
    })
  })
}

export interface RawRes extends Res {
  raw: string
}

/** One raw HTTP/1.1 connection: write exact bytes, read the responses back in order. */
export class RawConnection {
  socket: net.Socket
  #buffer = Buffer.alloc(0)
  #parsed: RawRes[] = []
  #methods: string[] = []
  #waiters: Array<{ n: number, resolve: (r: RawRes[]) => void, reject: (e: Error) => void }> = []
  closed = false

  constructor (port: number, host = '127.0.0.1') {
    this.socket = net.connect({ port, host })
    this.socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk])
      this.#parse()
    })
    this.socket.on('error', () => {})
    this.socket.on('close', () => {
      this.closed = true
      for (const w of this.#waiters.splice(0)) {
        if (this.#parsed.length >= w.n) w.resolve(this.#parsed.slice(0, w.n))
        else w.reject(Object.assign(new Error(`connection closed after ${this.#parsed.length} of ${w.n} responses`), { responses: this.#parsed.slice() }))
      }
    })
  }

  async connected (): Promise<void> {
    if (!this.socket.connecting) return
    await once(this.socket, 'connect')
  }

  /** Writes raw bytes; the request lines in them tell which responses have no body (HEAD). */
  write (text: string): void {
    for (const m of text.matchAll(/^([A-Z]+) \S+ HTTP\/1\.[01]\r$/gm)) this.#methods.push(m[1] as string)
    this.socket.write(text)
  }

  /** Resolves with the first `n` responses once they have all arrived. */
  responses (n: number): Promise<RawRes[]> {
    if (this.#parsed.length >= n) return Promise.resolve(this.#parsed.slice(0, n))
    if (this.closed) return Promise.reject(new Error(`connection closed after ${this.#parsed.length} of ${n} responses`))
    return new Promise((resolve, reject) => { this.#waiters.push({ n, resolve, reject }) })
  }

  /** Resolves once the server has closed the connection. */
  async ended (): Promise<void> {
    if (this.closed) return
    await once(this.socket, 'close')
  }

  destroy (): void {
    this.socket.destroy()
  }

  #parse (): void {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = this.#buffer.subarray(0, end).toString('latin1')
      const [statusLine, ...lines] = head.split('\r\n')
      const headers: IncomingHttpHeaders = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      const status = Number((statusLine ?? '').split(' ')[1])
      let bodyEnd: number
      let body: string
      if (this.#methods[this.#parsed.length] === 'HEAD') {
        bodyEnd = end + 4
        body = ''
      } else if (headers['transfer-encoding'] === 'chunked') {
        const decoded = decodeChunked(this.#buffer, end + 4)
        if (decoded === null) return
        bodyEnd = decoded.end
        body = decoded.body
      } else {
        const length = Number(headers['content-length'] ?? 0)
        if (this.#buffer.length < end + 4 + length) return
        bodyEnd = end + 4 + length
        body = this.#buffer.subarray(end + 4, bodyEnd).toString()
      }
      const raw = this.#buffer.subarray(0, bodyEnd).toString('latin1')
      this.#buffer = this.#buffer.subarray(bodyEnd)
      this.#parsed.push({ status, headers, body, raw })
      for (const w of this.#waiters.slice()) {
        if (this.#parsed.length >= w.n) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1)
          w.resolve(this.#parsed.slice(0, w.n))
        }
      }
    }
  }
}

function decodeChunked (buffer: Buffer, start: number): { end: number, body: string } | null {
  let at = start
  const parts: Buffer[] = []
  for (;;) {
    const lineEnd = buffer.indexOf('\r\n', at)
    if (lineEnd === -1) return null
    const size = parseInt(buffer.subarray(at, lineEnd).toString('latin1'), 16)
    if (buffer.length < lineEnd + 2 + size + 2) return null
    if (size === 0) return { end: lineEnd + 4, body: Buffer.concat(parts).toString() }
    parts.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size))
    at = lineEnd + 2 + size + 2
  }
}

export function get (path: string, method = 'GET'): string {
  return `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`
}

export function post (path: string, body: string): string {
  return `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

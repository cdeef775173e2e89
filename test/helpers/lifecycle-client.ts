// Small clients for the lifecycle contract: one-shot node:http requests, and raw keep-alive connections
// that are open before a drain starts so a request can reach the server during the drain.
import { once } from 'node:events'
import http, { type IncomingHttpHeaders } from 'node:http'
import net from 'node:net'

export interface Response {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** One request on a connection of its own (no agent, so `Connection: close`); rejects when the connection is cut. */
export function get (port: number, path: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        if (res.complete) resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
        else reject(new Error('response ended before it was complete'))
      })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

/** Resolves when `signal` aborts (at once if it already has). */
export function aborted (signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return Promise.reject(new Error('no shutdownSignal recorded'))
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}

export interface RawResponse extends Response {
  /** The head exactly as received, for header checks that must not depend on a client's parsing. */
  head: string
}

/**
 * A raw HTTP/1.1 keep-alive connection. `send()` writes one request and resolves with its response,
 * framed by Content-Length (or by the end of the connection when there is none).
 */
export class RawConnection {
  readonly socket: net.Socket
  /** Resolves when the connection has closed, from either side. */
  readonly closed: Promise<void>
  #buffer = Buffer.alloc(0)
  #ended = false
  #waiter: (() => void) | null = null

  private constructor (socket: net.Socket) {
    this.socket = socket
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk])
      this.#wake()
    })
    socket.on('end', () => { this.#ended = true; this.#wake() })
    socket.on('close', () => { this.#ended = true; this.#wake() })
    socket.on('error', () => { this.#ended = true; this.#wake() })
  }

  static async open (port: number): Promise<RawConnection> {
    const socket = net.connect(port, '127.0.0.1')
    await once(socket, 'connect')
    return new RawConnection(socket)
  }

  #wake (): void {
    const w = this.#waiter
    this.#waiter = null
    w?.()
  }

  async #more (): Promise<void> {
    if (this.#ended) throw new Error(`connection closed with ${this.#buffer.length} unparsed bytes`)
    await new Promise<void>((resolve) => { this.#waiter = resolve })
  }

  async send (path: string, method = 'GET'): Promise<RawResponse> {
    this.socket.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
    return await this.read()
  }

  /** Reads the next response on the connection. */
  async read (): Promise<RawResponse> {
    let end = this.#buffer.indexOf('\r\n\r\n')
    while (end === -1) {
      await this.#more()
      end = this.#buffer.indexOf('\r\n\r\n')
    }
    const head = this.#buffer.subarray(0, end).toString('latin1')
    const [statusLine, ...lines] = head.split('\r\n')
    const status = Number((statusLine ?? '').split(' ')[1])
    const headers: IncomingHttpHeaders = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = headers['content-length']
    let bodyEnd: number
    if (typeof length === 'string') {
      bodyEnd = end + 4 + Number(length)
      while (this.#buffer.length < bodyEnd) await this.#more()
    } else {
      if (headers['transfer-encoding'] !== undefined) throw new Error('chunked responses are not supported here')
      while (!this.#ended) await this.#more().catch(() => {})
      bodyEnd = this.#buffer.length
    }
    const body = this.#buffer.subarray(end + 4, bodyEnd).toString('utf8')
    this.#buffer = this.#buffer.subarray(bodyEnd)
    return { status, headers, body, head }
  }

  destroy (): void {
    this.socket.destroy()
  }
}

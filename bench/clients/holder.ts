// A client process that holds connections open for the exit-time and memory runs, so the benchmark's own
// process does nothing but wait for the server's exit: when 10,000 connections close at once, handling
// them here cannot delay the moment it sees the exit.
//
// IPC in: { port, n, mode: 'idle' } opens n keep-alive connections that each make one request;
//         { port, n, mode: 'busy' } opens n connections, then sends GET /gate on each (no answer expected yet);
//         'stats' asks for the counts. Out: { opened } once every connection is set, then { stats }.
// It exits when its parent disconnects.
import net from 'node:net'

export interface HoldRequest { port: number, n: number, mode: 'idle' | 'busy' }
export interface HoldStats {
  /** Connections not closed yet. */
  open: number
  /** Connections that ended in an error (a reset). */
  errors: number
  /** Responses received that were 200s. */
  ok: number
}
export type HolderReply = { opened: number, closedWhileOpening: number } | { stats: HoldStats }

const BATCH = 500
const REQUEST = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
const GATE = 'GET /gate HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
const sockets: net.Socket[] = []
let errors = 0
let closed = 0
let ok = 0

function connect (port: number, request: string | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      if (request === undefined) resolve()
      else s.write(request)
    })
    // Responses here are small: one chunk each.
    s.on('data', (chunk: Buffer) => {
      if (chunk.toString('latin1', 0, 12) === 'HTTP/1.1 200') ok++
      resolve()
    })
    s.on('error', () => { errors++ })
    s.once('close', () => { closed++; resolve() })
    sockets.push(s)
  })
}

async function hold ({ port, n, mode }: HoldRequest): Promise<void> {
  for (let i = 0; i < n; i += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, () => connect(port, mode === 'idle' ? REQUEST : undefined)))
  }
  const closedWhileOpening = closed
  if (mode === 'busy') {
    ok = 0
    for (const s of sockets) s.write(GATE)
  }
  process.send?.({ opened: sockets.length, closedWhileOpening } satisfies HolderReply)
}

process.on('message', (msg: HoldRequest | 'stats') => {
  if (msg === 'stats') process.send?.({ stats: { open: sockets.length - closed, errors, ok } } satisfies HolderReply)
  else void hold(msg)
})
process.on('disconnect', () => {
  for (const s of sockets) s.destroy()
  process.exit(0)
})

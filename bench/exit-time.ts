// Exit time: from SIGTERM to process exit with N idle keep-alive connections (each has made one request),
// and with N connections each holding a request that ends within 100 ms. One process per measurement.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

const REQUEST = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
const SLOW = 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n'

export interface ExitTime { kind: string, connections: number, busy: boolean, exitMs: number, code: number | null, failed: number }

export async function exitTime (kind: string, connections: number, busy: boolean): Promise<ExitTime> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [kind, 'signals'], { stdio: 'inherit' })
  const [{ port }] = await once(child, 'message') as [{ port: number }]
  const sockets: net.Socket[] = []
  let failed = 0
  let answered = 0
  // Open the connections in batches so the listen backlog is never the bottleneck.
  for (let i = 0; i < connections; i += 500) {
    const batch: Array<Promise<void>> = []
    for (let j = i; j < Math.min(connections, i + 500); j++) {
      batch.push(new Promise<void>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write(REQUEST)
          s.once('data', () => resolve())
        })
        s.on('error', (err) => { failed++; reject(err) })
        sockets.push(s)
      }))
    }
    await Promise.all(batch)
  }
  if (busy) {
    // Each connection now holds a request that the server answers 100 ms after it arrives.
    let pending = sockets.length
    const allSent = new Promise<void>((resolve) => { for (const s of sockets) s.write(SLOW, () => { if (--pending === 0) resolve() }) })
    await allSent
    for (const s of sockets) {
      s.on('data', (chunk: Buffer) => { if (chunk.toString('latin1').startsWith('HTTP/1.1 200')) answered++ })
    }
  }
  const start = performance.now()
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit') as [number | null]
  const exitMs = Math.round(performance.now() - start)
  for (const s of sockets) s.destroy()
  if (busy && answered < connections) failed += connections - answered
  return { kind, connections, busy, exitMs, code, failed }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = Number(process.argv[2] ?? 1000)
  for (const kind of ['fastify+graceful', 'express+graceful']) {
    console.log(JSON.stringify(await exitTime(kind, n, false)))
    console.log(JSON.stringify(await exitTime(kind, Math.min(n, 1000), true)))
  }
}

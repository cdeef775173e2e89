// Requests/s of a Fastify hello world under graceful-cluster with 1 worker and with 2, side by side:
// alternating rounds (so drift in the machine's load favours neither), median of the per-round ratios.
// The load generator (autocannon) runs in this process, which is also the cluster primary; on a 2-core
// machine it takes a core of its own, so the ratio is a floor for what a second core gives.
import autocannon from 'autocannon'
import type { Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import { supervise } from '@graceful/cluster'

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const SECONDS = Number(process.env.SECONDS ?? 5)
const APP = fileURLToPath(new URL('./cluster-app.ts', import.meta.url))

async function measure (workers: number): Promise<number> {
  const sup = supervise({
    exec: APP,
    workers,
    execArgv: ['--import', 'tsx', '--conditions=graceful-source'],
    signals: false,
    logger: false
  })
  const port = new Promise<number>((resolve) => {
    sup.on('fork', (_info, worker: Worker) => {
      worker.on('message', (m: { port?: number }) => { if (typeof m.port === 'number') resolve(m.port) })
    })
  })
  try {
    if (!await sup.ready) throw new Error('the workers did not start')
    const url = `http://127.0.0.1:${await port}/`
    // A warm-up so every worker's JIT has settled before we count.
    await autocannon({ url, connections: 50, duration: 2 })
    const result = await autocannon({ url, connections: 50, duration: SECONDS })
    return result.requests.total / (result.duration || 1)
  } finally {
    await sup.shutdown()
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

const one: number[] = []
const two: number[] = []
const ratios: number[] = []
for (let i = 0; i < ROUNDS; i++) {
  const order = i % 2 === 0 ? [1, 2] : [2, 1]
  const r: Record<number, number> = {}
  for (const n of order) r[n] = await measure(n)
  one.push(r[1] as number)
  two.push(r[2] as number)
  ratios.push((r[2] as number) / (r[1] as number))
  console.log(JSON.stringify({ round: i + 1, oneWorker: Math.round(r[1] as number), twoWorkers: Math.round(r[2] as number) }))
}
console.log(JSON.stringify({ oneWorkerRps: Math.round(median(one)), twoWorkersRps: Math.round(median(two)), ratio: Number(median(ratios).toFixed(2)), rounds: ROUNDS }))

// Per-request cost: hello-world requests/s with and without graceful, alternating rounds, median ratio.
import autocannon from 'autocannon'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const SECONDS = Number(process.env.SECONDS ?? 3)

const AMOUNT = Number(process.env.AMOUNT ?? 60_000)

interface Sample { rps: number, cpuUsPerRequest: number }

async function cpu (child: ReturnType<typeof fork>): Promise<number> {
  child.send('cpu')
  const [msg] = await once(child, 'message') as [{ cpu: number }]
  return msg.cpu
}

async function measure (kind: string): Promise<Sample> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [kind], { stdio: 'inherit' })
  try {
    const [{ port }] = await once(child, 'message') as [{ port: number }]
    // A warm-up so the JIT has settled before we count.
    await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 50, amount: 20_000 })
    const before = await cpu(child)
    const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 50, pipelining: 1, amount: AMOUNT })
    const after = await cpu(child)
    const done = result.requests.total
    return { rps: done / (result.duration || 1), cpuUsPerRequest: (after - before) / done }
  } finally {
    child.kill('SIGKILL')
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

export async function perRequest (pairs = [['fastify', 'fastify+graceful'], ['express', 'express+graceful']]) {
  const rows = []
  for (const [bare, ours] of pairs as Array<[string, string]>) {
    const rpsRatios: number[] = []
    const cpuRatios: number[] = []
    const bareRps: number[] = []
    const oursRps: number[] = []
    const bareCpu: number[] = []
    const oursCpu: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      // Alternate which goes first, so drift in the machine's load does not favour one side.
      const order = i % 2 === 0 ? [bare, ours] : [ours, bare]
      const r: Record<string, Sample> = {}
      for (const kind of order) r[kind] = await measure(kind)
      const b = r[bare] as Sample
      const o = r[ours] as Sample
      bareRps.push(b.rps)
      oursRps.push(o.rps)
      bareCpu.push(b.cpuUsPerRequest)
      oursCpu.push(o.cpuUsPerRequest)
      rpsRatios.push(o.rps / b.rps)
      // Throughput-equivalent: how many of our requests fit in the CPU time of one bare request.
      cpuRatios.push(b.cpuUsPerRequest / o.cpuUsPerRequest)
    }
    rows.push({
      bare,
      ours,
      bareRps: Math.round(median(bareRps)),
      oursRps: Math.round(median(oursRps)),
      rpsRatio: median(rpsRatios),
      bareCpuUs: median(bareCpu),
      oursCpuUs: median(oursCpu),
      cpuRatio: median(cpuRatios),
      rounds: ROUNDS
    })
  }
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const row of await perRequest()) console.log(JSON.stringify(row))
}

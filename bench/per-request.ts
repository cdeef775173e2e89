// Per-request cost: hello-world requests/s with and without graceful, alternating rounds, median ratio.
import autocannon from 'autocannon'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const SECONDS = Number(process.env.SECONDS ?? 3)

async function measure (kind: string): Promise<number> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [kind], { stdio: 'inherit' })
  try {
    const [{ port }] = await once(child, 'message') as [{ port: number }]
    // A short warm-up so the JIT has settled before we count.
    await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 50, duration: 1 })
    const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 50, pipelining: 1, duration: SECONDS })
    return result.requests.average
  } finally {
    child.kill('SIGKILL')
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

export async function perRequest (pairs = [['fastify', 'fastify+graceful'], ['express', 'express+graceful']]) {
  const rows = []
  for (const [bare, ours] of pairs as Array<[string, string]>) {
    const ratios: number[] = []
    const bareRps: number[] = []
    const oursRps: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      // Alternate which goes first, so drift in the machine's load does not favour one side.
      const order = i % 2 === 0 ? [bare, ours] : [ours, bare]
      const r: Record<string, number> = {}
      for (const kind of order) r[kind] = await measure(kind)
      bareRps.push(r[bare] as number)
      oursRps.push(r[ours] as number)
      ratios.push((r[ours] as number) / (r[bare] as number))
    }
    rows.push({ bare, ours, bareRps: median(bareRps), oursRps: median(oursRps), ratio: median(ratios), ratios })
  }
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const row of await perRequest()) console.log(JSON.stringify(row))
}

// Row 1, per-request cost: hello-world requests/s and server CPU per request, each library next to the
// bare framework in the same run. Every server of a framework runs at once, each in its own process; in
// each round every one of them takes its turn under autocannon, in an order rotated by one per round, so
// a change in the machine's load hits them all alike. Ratios are per round, then the median.
import autocannon from 'autocannon'
import { KINDS, type Framework, type Kind } from './lib/kinds.js'
import { median, rotation, startServer, type Server } from './lib/child.js'

export interface PerRequestOptions {
  rounds: number
  /** Seconds of load per server per round. */
  seconds: number
  connections: number
  /** Seconds of load per server before the rounds: Express needs a few to reach its steady speed. */
  warmSeconds: number
}

export interface PerRequestRow {
  kind: Kind
  /** Median requests/s. */
  rps: number
  /** Median of the per-round ratios: this kind's requests/s ÷ the bare framework's. */
  rpsRatio: number
  /** Median µs of server CPU per request. */
  cpuUs: number
  /** Median of the per-round ratios: the bare framework's CPU per request ÷ this kind's. */
  cpuRatio: number
  /** Requests that failed or were not 2xx, over every round (must be 0). */
  errors: number
  rounds: number
}

interface Sample { rps: number, cpuUs: number, errors: number }

async function load (s: Server, seconds: number, connections: number): Promise<Sample> {
  const before = await s.ask('cpu')
  const result = await autocannon({ url: `http://127.0.0.1:${s.port}/`, connections, pipelining: 1, duration: seconds })
  const after = await s.ask('cpu')
  const done = result.requests.total
  return { rps: done / result.duration, cpuUs: (after - before) / Math.max(done, 1), errors: result.errors + result.non2xx + result.timeouts }
}

export async function perRequest (options: PerRequestOptions, log: (line: string) => void): Promise<PerRequestRow[]> {
  const rows: PerRequestRow[] = []
  for (const framework of ['fastify', 'express'] as Framework[]) {
    const group = KINDS.filter((k) => k.framework === framework && (k.role === 'bare' || k.onRequestPath))
    const servers = new Map<Kind, Server>()
    try {
      for (const k of group) servers.set(k, await startServer(k.id))
      // A warm-up, so the JIT has settled before anything counts.
      for (const k of group) await load(servers.get(k) as Server, options.warmSeconds, options.connections)
      const samples = new Map<Kind, Sample[]>(group.map((k) => [k, []]))
      for (let r = 0; r < options.rounds; r++) {
        for (const k of rotation(group, r)) (samples.get(k) as Sample[]).push(await load(servers.get(k) as Server, options.seconds, options.connections))
        log(`per-request ${framework}: round ${r + 1}/${options.rounds}: ` +
          group.map((k) => `${k.id} ${Math.round((samples.get(k) as Sample[])[r]?.rps ?? 0)}/s`).join(', '))
      }
      const bare = samples.get(group[0] as Kind) as Sample[]
      for (const k of group) {
        const mine = samples.get(k) as Sample[]
        rows.push({
          kind: k,
          rps: median(mine.map((x) => x.rps)),
          rpsRatio: median(mine.map((x, i) => x.rps / (bare[i] as Sample).rps)),
          cpuUs: median(mine.map((x) => x.cpuUs)),
          cpuRatio: median(mine.map((x, i) => (bare[i] as Sample).cpuUs / x.cpuUs)),
          errors: mine.reduce((a, x) => a + x.errors, 0),
          rounds: options.rounds
        })
      }
    } finally {
      for (const s of servers.values()) await s.kill()
    }
  }
  return rows
}

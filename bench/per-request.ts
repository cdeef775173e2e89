// Row 1, per-request cost: hello-world requests/s and server CPU per request, each library next to the
// bare framework in the same run — every alternative measured, and graceful twice (default options, and with
// readiness plus per-route options configured). Every server of a framework runs at once, each variant in
// `processes` processes of its own (identical processes differ by a few percent); in each round every process
// takes its turn under autocannon, in an order rotated by one per round, so a change in the machine's load
// hits them all alike. Where `taskset` exists the servers run on the last CPU and the load generator (this
// process) on the first. Ratios are per round (a variant's processes averaged), then the median.
import autocannon from 'autocannon'
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import { KINDS, type Framework, type Kind } from './lib/kinds.js'
import { median, rotation, startServer, type Server } from './lib/child.js'

export interface PerRequestOptions {
  rounds: number
  /** Seconds of load per server per round. */
  seconds: number
  connections: number
  /** Seconds of load per server before the rounds: Express needs a few to reach its steady speed. */
  warmSeconds: number
  /** Processes per variant. @default 2 */
  processes?: number
}

/** A variant measured here: a kind, possibly with options set through its environment. */
export interface Variant {
  kind: Kind
  /** Set for graceful with readiness and per-route options (BENCH_PROBES=1). */
  configured: boolean
}

export interface PerRequestRow {
  kind: Kind
  configured: boolean
  /** Median requests/s. */
  rps: number
  /** Median of the per-round ratios: this variant's requests/s ÷ the bare framework's. */
  rpsRatio: number
  /** Median µs of server CPU per request. */
  cpuUs: number
  /** Median of the per-round ratios: the bare framework's CPU per request ÷ this variant's. */
  cpuRatio: number
  /** Requests that failed or were not 2xx, over every round (must be 0). */
  errors: number
  rounds: number
  processes: number
}

interface Sample { rps: number, cpuUs: number, errors: number }

async function load (s: Server, seconds: number, connections: number): Promise<Sample> {
  const before = await s.ask('cpu')
  const result = await autocannon({ url: `http://127.0.0.1:${s.port}/`, connections, pipelining: 1, duration: seconds })
  const after = await s.ask('cpu')
  const done = result.requests.total
  return { rps: done / result.duration, cpuUs: (after - before) / Math.max(done, 1), errors: result.errors + result.non2xx + result.timeouts }
}

/** Pins `pid` to one CPU with taskset, where the machine has it and more than one CPU. */
function pin (pid: number, cpu: number): boolean {
  if (os.cpus().length < 2) return false
  return spawnSync('taskset', ['-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' }).status === 0
}

export function variants (framework: Framework): Variant[] {
  return KINDS.filter((k) => k.framework === framework).flatMap((k) =>
    k.role === 'ours' ? [{ kind: k, configured: false }, { kind: k, configured: true }] : [{ kind: k, configured: false }])
}

export const variantLabel = (v: { kind: Kind, configured: boolean }): string =>
  v.configured ? `${v.kind.label}, readiness + per-route options` : v.kind.label

export async function perRequest (options: PerRequestOptions, log: (line: string) => void): Promise<PerRequestRow[]> {
  const rows: PerRequestRow[] = []
  const processes = options.processes ?? 2
  const pinned = pin(process.pid, 0)
  log(`per-request: ${processes} processes per variant${pinned ? '; servers on the last CPU, the load generator on the first' : ' (no taskset: not pinned)'}`)
  for (const framework of ['fastify', 'express'] as Framework[]) {
    const group = variants(framework)
    const servers = new Map<Variant, Server[]>()
    try {
      for (const v of group) {
        const list: Server[] = []
        for (let i = 0; i < processes; i++) {
          const s = await startServer(v.kind.id, v.configured ? { env: { BENCH_PROBES: '1' } } : {})
          if (pinned) pin(s.pid, os.cpus().length - 1)
          list.push(s)
        }
        servers.set(v, list)
      }
      const all = group.flatMap((v) => (servers.get(v) as Server[]).map((s) => ({ v, s })))
      // A warm-up, so the JIT has settled before anything counts.
      for (const { s } of all) await load(s, options.warmSeconds, options.connections)
      const samples = new Map<Variant, Sample[]>(group.map((v) => [v, []]))
      for (let r = 0; r < options.rounds; r++) {
        const round = new Map<Variant, Sample[]>(group.map((v) => [v, []]))
        for (const { v, s } of rotation(all, r)) (round.get(v) as Sample[]).push(await load(s, options.seconds, options.connections))
        for (const v of group) {
          const got = round.get(v) as Sample[]
          const mean = (f: (x: Sample) => number): number => got.reduce((a, x) => a + f(x), 0) / got.length
          ;(samples.get(v) as Sample[]).push({ rps: mean((x) => x.rps), cpuUs: mean((x) => x.cpuUs), errors: got.reduce((a, x) => a + x.errors, 0) })
        }
        log(`per-request ${framework}: round ${r + 1}/${options.rounds}: ` +
          group.map((v) => `${v.kind.id}${v.configured ? '+options' : ''} ${Math.round((samples.get(v) as Sample[])[r]?.rps ?? 0)}/s`).join(', '))
      }
      const bare = samples.get(group.find((v) => v.kind.role === 'bare') as Variant) as Sample[]
      for (const v of group) {
        const mine = samples.get(v) as Sample[]
        rows.push({
          kind: v.kind,
          configured: v.configured,
          rps: median(mine.map((x) => x.rps)),
          rpsRatio: median(mine.map((x, i) => x.rps / (bare[i] as Sample).rps)),
          cpuUs: median(mine.map((x) => x.cpuUs)),
          cpuRatio: median(mine.map((x, i) => (bare[i] as Sample).cpuUs / x.cpuUs)),
          errors: mine.reduce((a, x) => a + x.errors, 0),
          rounds: options.rounds,
          processes
        })
      }
    } finally {
      for (const list of servers.values()) for (const s of list) await s.kill()
    }
  }
  return rows
}

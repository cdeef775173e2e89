// Row 1, per-request cost: hello-world requests/s and server CPU per request, each library next to the
// bare framework — every alternative measured, and graceful twice (default options, and with readiness plus
// per-route options configured) — and, for reference, each bare framework with one hook or middleware that does
// nothing (what any per-request step costs there), and the same with graceful's package imported but unused (what
// its code being loaded costs: on Express, a library imported and never called still costs per request).
//
// Each variant is measured in a pair with a bare-framework process, both under load at the same moment: two
// load generators (processes of their own), one per server, start and stop together, so both servers meet
// the same machine. Measured one after the other instead, the same server's figures on this kind of machine
// drift by 15–20% within seconds (a step that repeats with the order of the runs, whatever the server), far
// more than the difference being measured. Where `taskset` exists both servers share the last CPU and the
// generators the first. A pair of two bare processes is measured the same way: its ratio is the noise floor.
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import { KINDS, type Framework, type Kind } from './lib/kinds.js'
import { median, startLoadGenerator, startServer, type LoadGenerator, type Server } from './lib/child.js'
import type { LoadReply } from './clients/load.js'

export interface PerRequestOptions {
  rounds: number
  /** Seconds of load per round (both servers of a pair at once). */
  seconds: number
  /** Connections per server. */
  connections: number
  /** Seconds of load per pair before the rounds: Express needs a few to reach its steady speed. */
  warmSeconds: number
  /** Pairs of fresh processes per variant, one after the other (two identical processes differ by a few percent). */
  pairs: number
}

/** A variant measured here: a kind, possibly with options set through its environment. */
export interface Variant {
  kind: Kind
  /** Set for graceful with readiness and per-route options (BENCH_PROBES=1); for a bare framework, one no-op step (BENCH_NOOP=1). */
  configured: boolean
  /** A bare framework with one no-op step that also imports graceful's package and leaves it unused (BENCH_LOAD=1). */
  loaded: boolean
}

export interface PerRequestRow {
  kind: Kind
  configured: boolean
  /** Absent in results saved before it was measured. */
  loaded?: boolean
  /** Median requests/s, while its bare partner was loaded too. */
  rps: number
  /** Median of the per-round ratios: this variant's requests/s ÷ its bare partner's. */
  rpsRatio: number
  /** Median µs of server CPU per request. */
  cpuUs: number
  /** Median of the per-round ratios: the bare partner's CPU per request ÷ this variant's. */
  cpuRatio: number
  /** Requests that failed or were not 2xx, over every round, both servers (must be 0). */
  errors: number
  /** Rounds per pair. */
  rounds: number
  pairs: number
}

interface Sample { rps: number, cpuUs: number, errors: number }

/** Pins every thread of `pid` to one CPU with taskset, where the machine has it and more than one CPU. */
function pin (pid: number, cpu: number): boolean {
  if (os.cpus().length < 2) return false
  return spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' }).status === 0
}

export function variants (framework: Framework): Variant[] {
  return KINDS.filter((k) => k.framework === framework).flatMap((k) =>
    k.role === 'alternative'
      ? [{ kind: k, configured: false, loaded: false }]
      : [{ kind: k, configured: false, loaded: false }, { kind: k, configured: true, loaded: false },
          ...(k.role === 'bare' ? [{ kind: k, configured: true, loaded: true }] : [])])
}

export function variantLabel (v: { kind: Kind, configured: boolean, loaded?: boolean }): string {
  if (v.kind.role === 'bare') {
    if (!v.configured) return `${v.kind.label}, a second process`
    const noop = v.kind.framework === 'fastify' ? 'Fastify + one no-op onRequest hook' : 'Express + one no-op middleware'
    return v.loaded === true ? `${noop}, with @graceful/${v.kind.framework} imported and unused` : noop
  }
  return v.configured ? `${v.kind.label}, readiness + per-route options` : v.kind.label
}

/**
 * graceful configured (BENCH_PROBES), or a reference: a bare framework with one no-op hook or middleware
 * (BENCH_NOOP), and the same with graceful's package imported but not used (BENCH_LOAD).
 */
const envOf = (v: Variant): Record<string, string> =>
  !v.configured ? {} : v.kind.role !== 'bare' ? { BENCH_PROBES: '1' } : v.loaded ? { BENCH_NOOP: '1', BENCH_LOAD: '1' } : { BENCH_NOOP: '1' }

/** Both servers under load at once; each one's requests/s and CPU per request. */
async function together (pair: Array<{ s: Server, gen: LoadGenerator }>, seconds: number, connections: number): Promise<Sample[]> {
  const before = await Promise.all(pair.map(({ s }) => s.ask('cpu')))
  const runs: LoadReply[] = await Promise.all(pair.map(({ s, gen }) => gen.run({ port: s.port, seconds, connections })))
  const after = await Promise.all(pair.map(({ s }) => s.ask('cpu')))
  return runs.map((r, i) => ({
    rps: r.requests / r.seconds,
    cpuUs: ((after[i] as number) - (before[i] as number)) / Math.max(r.requests, 1),
    errors: r.errors
  }))
}

export async function perRequest (options: PerRequestOptions, log: (line: string) => void): Promise<PerRequestRow[]> {
  const rows: PerRequestRow[] = []
  const last = os.cpus().length - 1
  const generators = [await startLoadGenerator(), await startLoadGenerator()]
  try {
    const pinned = generators.every((g) => pin(g.pid, 0))
    log(`per-request: each variant beside a bare process, both loaded at once${pinned ? '; servers on the last CPU, the load generators on the first' : ' (no taskset: not pinned)'}`)
    for (const framework of ['fastify', 'express'] as Framework[]) {
      const bareKind = KINDS.find((k) => k.framework === framework && k.role === 'bare') as Kind
      for (const v of variants(framework)) {
        const got: Array<{ bare: Sample, mine: Sample }> = []
        for (let p = 0; p < options.pairs; p++) {
          // servers[0] is the bare process, servers[1] the variant. Every other pair starts the variant first, so
          // that neither side is always the process started second (suspected of a 1–2% edge; alternated, the
          // noise floor stays at 1.00–1.01).
          const servers: Server[] = []
          try {
            const start = [() => startServer(bareKind.id), () => startServer(v.kind.id, { env: envOf(v) })]
            if (p % 2 === 1) start.reverse()
            for (const s of start) servers.push(await s())
            if (p % 2 === 1) servers.reverse()
            if (pinned) for (const s of servers) pin(s.pid, last)
            // Each pair swaps the generators, so neither side keeps one.
            const pair = servers.map((s, i) => ({ s, gen: generators[(i + p) % 2] as LoadGenerator }))
            // A warm-up, so the JIT has settled before anything counts.
            await together(pair, options.warmSeconds, options.connections)
            for (let r = 0; r < options.rounds; r++) {
              const [bare, mine] = await together(pair, options.seconds, options.connections) as [Sample, Sample]
              got.push({ bare, mine })
            }
          } finally {
            for (const s of servers) await s.kill()
          }
        }
        const row: PerRequestRow = {
          kind: v.kind,
          configured: v.configured,
          loaded: v.loaded,
          rps: median(got.map((x) => x.mine.rps)),
          rpsRatio: median(got.map((x) => x.mine.rps / x.bare.rps)),
          cpuUs: median(got.map((x) => x.mine.cpuUs)),
          cpuRatio: median(got.map((x) => x.bare.cpuUs / x.mine.cpuUs)),
          errors: got.reduce((a, x) => a + x.bare.errors + x.mine.errors, 0),
          rounds: options.rounds,
          pairs: options.pairs
        }
        rows.push(row)
        log(`per-request ${framework}: ${variantLabel(v)}: ${Math.round(row.rps)}/s; CPU bare ÷ this ` +
          got.map((x) => (x.bare.cpuUs / x.mine.cpuUs).toFixed(2)).join(' ') + `, median ${row.cpuRatio.toFixed(3)}`)
      }
    }
  } finally {
    for (const g of generators) await g.close()
  }
  return rows
}

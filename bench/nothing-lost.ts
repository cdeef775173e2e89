// Row 3, nothing lost: requests that fail when a server is shut down or restarted under load, counted by
// graceful-check (@graceful/check), the same traffic and the same counting its users get. Two workloads:
// - keep-alive: 32 clients, each with one keep-alive connection, loop GET / as fast as they can;
// - busy: 16 keep-alive clients whose loop is blocked a random 0–300 ms between two requests (a loaded
//   proxy, a GC pause: each runs in a worker thread and blocks it), so a FIN that arrives meanwhile is
//   not read before the next request goes out.
// Each runs at SIGTERM (after `durationMs` of load) and across `restarts` zero-downtime restarts
// (RESTART_MODES: the in-place SIGHUP restart, and a graceful-cluster roll of 2 workers). A
// request is lost unless it was answered: 2xx, or a 503 (with or without Connection: close); a new
// connection refused after the listener closed is not lost (it never carried a request). graceful-check
// classifies the losses (reset, hang-up, refused after accept, truncated, timeout) and says why.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { check, type CheckResult, type Clients } from '@graceful/check'
import { CONTENDERS, kind, type Kind } from './lib/kinds.js'
import { built, rotation } from './lib/child.js'

export const WORKLOADS = {
  keepAlive: { label: '32 keep-alive clients', clients: { keepAlive: 32 } },
  busy: { label: '16 busy keep-alive clients (each client\'s loop blocked a random 0–300 ms between requests)', clients: { busy: 16 } }
} as const satisfies Record<string, { label: string, clients: Clients }>
export type Workload = keyof typeof WORKLOADS

/** The bound on every wait of one check (the app's start, its exit, a restart). */
const TIMEOUT_MS = 30_000

export interface LoadOutcome {
  requests: number
  failed: number
  /** The first few failures, to say what went wrong: class, connection and what the client saw. */
  failures: Array<{ detail: string }>
  /** The verdict's causes, in graceful-check's words. */
  causes?: string[]
  exit?: { code: number | null, signal: string | null } | undefined
  error?: string
}

export interface NothingLostOptions {
  rounds: number
  restarts: number
  /** ms of load before the signal, and between restarts. */
  betweenRestartsMs: number
}

export interface NothingLostRow {
  kind: Kind
  /** One per round, keep-alive workload. */
  signal: LoadOutcome[]
  /** By restart mode name; absent when the kind has no such mode. */
  restart: Record<string, LoadOutcome>
  /** The same with the busy workload (absent from results recorded before it existed). */
  busySignal?: LoadOutcome[]
  busyRestart?: Record<string, LoadOutcome>
}

/** A check's result as a row cell. */
export function outcome (r: CheckResult): LoadOutcome {
  if (r.error !== null) return { requests: 0, failed: NaN, failures: [], error: r.error.message }
  return {
    requests: r.totals.sent,
    failed: r.verdict.lost,
    failures: r.failures.slice(0, 5).map((f) => ({ detail: `${f.class} on ${f.kind}: ${f.detail}` })),
    causes: r.verdict.causes.map((c) => `${c.count} × ${c.text}`),
    exit: r.exit === null ? undefined : { code: r.exit.code, signal: r.exit.signal },
    // A restart that failed, a process that did not exit: the row must not read as clean.
    ...(r.ok || r.verdict.lost > 0 ? {} : { error: r.verdict.notes.filter((n) => n.problem).map((n) => n.text).join('; ') })
  }
}

export async function atSignal (k: Kind, workload: Workload, durationMs: number): Promise<LoadOutcome> {
  return outcome(await check({
    command: [process.execPath, built(`servers/${k.id}`)],
    clients: WORKLOADS[workload].clients,
    duration: durationMs,
    timeout: TIMEOUT_MS
  }))
}

export interface RestartMode {
  name: string
  /** The kinds it applies to. */
  kinds: string[]
  run (k: Kind, workload: Workload, options: NothingLostOptions): Promise<LoadOutcome>
}

/** SIGHUP to the serving process: graceful starts a successor on the same socket, then drains. */
const inPlace: RestartMode = {
  name: 'in place (SIGHUP)',
  kinds: ['graceful-fastify', 'graceful-express'],
  async run (k, workload, options) {
    const dir = mkdtempSync(join(tmpdir(), 'graceful-bench-'))
    const pidFile = join(dir, 'app.pid')
    try {
      // The check runs the server in a process group of its own, and kills what is left of it at the end.
      return outcome(await check({
        command: [process.execPath, built(`servers/${k.id}`)],
        env: { BENCH_PID_FILE: pidFile },
        restart: { signal: 'SIGHUP', times: options.restarts, pidFile },
        clients: WORKLOADS[workload].clients,
        duration: options.betweenRestartsMs,
        timeout: TIMEOUT_MS
      }))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** SIGHUP to graceful-cluster's supervisor (2 workers): it rolls the workers one at a time. */
const CLUSTER_BIN = fileURLToPath(new URL('../packages/cluster/bin/graceful-cluster.js', import.meta.url))
const clusterRoll: RestartMode = {
  name: 'graceful-cluster roll (2 workers)',
  kinds: ['graceful-fastify', 'graceful-express'],
  async run (k, workload, options) {
    return outcome(await check({
      command: [process.execPath, CLUSTER_BIN, '--workers', '2', built(`servers/${k.id}`)],
      restart: { signal: 'SIGHUP', times: options.restarts },
      clients: WORKLOADS[workload].clients,
      duration: options.betweenRestartsMs,
      timeout: TIMEOUT_MS
    }))
  }
}

export const RESTART_MODES: RestartMode[] = [inPlace, clusterRoll]

export async function nothingLost (options: NothingLostOptions, log: (line: string) => void): Promise<NothingLostRow[]> {
  const rows = new Map<Kind, NothingLostRow>(CONTENDERS.map((k) => [k, { kind: k, signal: [], restart: {}, busySignal: [], busyRestart: {} }]))
  const say = (what: string, k: Kind, o: LoadOutcome): void => {
    log(`nothing-lost ${what} ${k.id}: ${o.failed} failed of ${o.requests}` + (o.error === undefined ? '' : ` (${o.error})`))
  }
  for (const workload of Object.keys(WORKLOADS) as Workload[]) {
    for (let r = 0; r < options.rounds; r++) {
      for (const k of rotation(CONTENDERS, r)) {
        const o = await atSignal(k, workload, options.betweenRestartsMs)
        const row = rows.get(k) as NothingLostRow
        ;(workload === 'busy' ? row.busySignal as LoadOutcome[] : row.signal).push(o)
        say(`${workload} signal round ${r + 1}/${options.rounds}`, k, o)
      }
    }
    for (const mode of RESTART_MODES) {
      for (const id of mode.kinds) {
        const k = kind(id)
        const o = await mode.run(k, workload, options)
        const row = rows.get(k) as NothingLostRow
        ;(workload === 'busy' ? row.busyRestart as Record<string, LoadOutcome> : row.restart)[mode.name] = o
        say(`${workload} restart ${mode.name}`, k, o)
      }
    }
  }
  return [...rows.values()]
}

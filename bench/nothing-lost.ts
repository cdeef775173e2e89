// Row 3, nothing lost: requests that fail when a server is shut down or restarted under load.
// - at SIGTERM: 32 keep-alive clients loop GET / as fast as they can; once each has had some answers the
//   server gets SIGTERM. A client stops at a 503 with Connection: close, or when a new connection is
//   refused; anything else that is not a complete 200 (a reset, a hang-up, a 503 that keeps the
//   connection) is a failed request. test/helpers/load.ts is the same generator the contract tests use.
// - across restarts: the same clients through `restarts` zero-downtime restarts; every restart mode is a
//   small function in RESTART_MODES (the in-place SIGHUP restart now; graceful-cluster's rolling restart
//   can be added the same way).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CONTENDERS, kind, type Kind } from './lib/kinds.js'
import { rotation, startServer, within, type Exit } from './lib/child.js'
import { startLoad, type Failure } from '../test/helpers/load.js'
import { alive } from '../test/helpers/process.js'

export const LOAD_CLIENTS = 32
/** Answers every client has had before the signal. */
const WARM_ANSWERS = 20

export interface LoadOutcome {
  requests: number
  failed: number
  /** The first few failures, to say what went wrong. */
  failures: Failure[]
  exit?: Exit | undefined
  error?: string
}

export interface NothingLostOptions {
  rounds: number
  restarts: number
  /** ms of load between restarts. */
  betweenRestartsMs: number
}

export interface NothingLostRow {
  kind: Kind
  /** One per round. */
  signal: LoadOutcome[]
  /** By restart mode name; absent when the kind has no such mode. */
  restart: Record<string, LoadOutcome>
}

export async function atSignal (k: Kind): Promise<LoadOutcome> {
  const s = await startServer(k.id)
  try {
    const load = startLoad({ port: s.port, clients: LOAD_CLIENTS, maxRequests: 1_000_000, maxMs: 30_000 })
    await within(load.reached(WARM_ANSWERS), `${k.id}: the load warming up`, 30_000)
    s.child.kill('SIGTERM')
    const result = await load.done
    const exit = await within(s.exited, `${k.id}: exit after SIGTERM`, 30_000)
    return { requests: result.requests, failed: result.failures.length, failures: result.failures.slice(0, 5), exit }
  } catch (err) {
    return { requests: 0, failed: NaN, failures: [], error: (err as Error).message }
  } finally {
    await s.kill()
  }
}

export interface RestartMode {
  name: string
  /** The kinds it applies to. */
  kinds: string[]
  run (k: Kind, options: NothingLostOptions): Promise<LoadOutcome>
}

/** True while `pid` runs and is not a zombie (a successor is not our child: there is no exit event). */
/** Polls `condition` every 20 ms (no event exists for another process's pid file or exit), up to `ms`. */
async function until (condition: () => boolean, what: string, ms: number): Promise<void> {
  const start = performance.now()
  while (!condition()) {
    if (performance.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(20)
  }
}

const readPid = (file: string): number => {
  try {
    return Number(readFileSync(file, 'utf8').trim())
  } catch {
    return NaN
  }
}

/** SIGHUP to the serving process: graceful starts a successor on the same socket, then drains. */
const inPlace: RestartMode = {
  name: 'in place (SIGHUP)',
  kinds: ['graceful-fastify', 'graceful-express'],
  async run (k, options) {
    const dir = mkdtempSync(join(tmpdir(), 'graceful-bench-'))
    const pidFile = join(dir, 'app.pid')
    // A process group of its own: the successors are not our children, and the last one is killed with it.
    const s = await startServer(k.id, { env: { BENCH_PID_FILE: pidFile }, detached: true })
    let serving = s.pid
    try {
      await until(() => readPid(pidFile) === s.pid, 'the first pid file', 10_000)
      const load = startLoad({ port: s.port, clients: LOAD_CLIENTS, maxRequests: 10_000_000, maxMs: 120_000 })
      await within(load.reached(WARM_ANSWERS), `${k.id}: the load warming up`, 30_000)
      for (let i = 1; i <= options.restarts; i++) {
        const predecessor = serving
        process.kill(predecessor, 'SIGHUP')
        await until(() => { const p = readPid(pidFile); return p !== predecessor && alive(p) }, `restart ${i}: a successor ready`, 30_000)
        serving = readPid(pidFile)
        await until(() => !alive(predecessor), `restart ${i}: the predecessor gone`, 30_000)
        // Load on the successor alone before the next restart.
        await sleep(options.betweenRestartsMs)
      }
      load.stop()
      const result = await within(load.done, `${k.id}: the load ending`, 30_000)
      return { requests: result.requests, failed: result.failures.length, failures: result.failures.slice(0, 5) }
    } catch (err) {
      return { requests: 0, failed: NaN, failures: [], error: (err as Error).message }
    } finally {
      try { process.kill(-s.pid, 'SIGKILL') } catch {}
      if (serving !== s.pid) try { process.kill(serving, 'SIGKILL') } catch {}
      await s.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

export const RESTART_MODES: RestartMode[] = [inPlace]

export async function nothingLost (options: NothingLostOptions, log: (line: string) => void): Promise<NothingLostRow[]> {
  const rows = new Map<Kind, NothingLostRow>(CONTENDERS.map((k) => [k, { kind: k, signal: [], restart: {} }]))
  for (let r = 0; r < options.rounds; r++) {
    for (const k of rotation(CONTENDERS, r)) {
      const outcome = await atSignal(k)
      ;(rows.get(k) as NothingLostRow).signal.push(outcome)
      log(`nothing-lost signal ${k.id} round ${r + 1}/${options.rounds}: ${outcome.failed} failed of ${outcome.requests}` +
        (outcome.error === undefined ? '' : ` (${outcome.error})`))
    }
  }
  for (const mode of RESTART_MODES) {
    for (const id of mode.kinds) {
      const k = kind(id)
      const outcome = await mode.run(k, options)
      ;(rows.get(k) as NothingLostRow).restart[mode.name] = outcome
      log(`nothing-lost restart ${mode.name} ${k.id}: ${outcome.failed} failed of ${outcome.requests}` +
        (outcome.error === undefined ? '' : ` (${outcome.error})`))
    }
  }
  return [...rows.values()]
}

// The benchmark, in one command: `pnpm bench` at the repository root (builds the packages, then runs this).
// Writes bench/RESULTS.md and the summary table into README.md's Benchmarks section, and prints RESULTS.md.
//
//   --quick            fewer rounds, connections and seconds; writes bench/results/RESULTS.quick.md
//                      instead, and leaves the README alone
//   --only=a,b         only these rows: per-request, exit-time, nothing-lost, scenarios, proxy (like --quick, it
//                      writes bench/results/RESULTS.partial.md)
//   --render           measures nothing: writes the files again from the last run's bench/results/latest.json
// Every knob can also be set alone: BENCH_PR_ROUNDS, BENCH_PR_SECONDS, BENCH_PR_WARM, BENCH_PR_PAIRS, BENCH_EXIT_ROUNDS,
// BENCH_IDLE, BENCH_BUSY, BENCH_LOAD_ROUNDS, BENCH_RESTARTS, BENCH_PROXY_TAIL.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { createRequire } from 'node:module'
import { perRequest } from './per-request.js'
import { exitTime } from './exit-time.js'
import { nothingLost } from './nothing-lost.js'
import { scenarios, type Verdict } from './scenarios.js'
import { proxyRow } from './proxy.js'
import { markdown, summary, type Meta, type Results } from './lib/report.js'
import { KINDS, kind, type Kind } from './lib/kinds.js'

const ROWS = ['per-request', 'exit-time', 'nothing-lost', 'scenarios', 'proxy'] as const
type Row = (typeof ROWS)[number]

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const render = args.includes('--render')
const onlyArg = args.find((a) => a.startsWith('--only='))
const only = onlyArg === undefined ? [...ROWS] : onlyArg.slice('--only='.length).split(',') as Row[]
for (const a of args) {
  if (a !== '--quick' && a !== '--render' && !a.startsWith('--only=')) throw new Error(`unknown argument ${a} (use --quick, --render, --only=${ROWS.join(',')})`)
}
for (const r of only) if (!ROWS.includes(r)) throw new Error(`unknown row ${r} (rows: ${ROWS.join(', ')})`)

const here = (path: string): URL => new URL(path, import.meta.url)
const start = performance.now()
const log = (line: string): void => { process.stderr.write(`[${((performance.now() - start) / 1000).toFixed(0).padStart(4)} s] ${line}\n`) }

const num = (name: string, full: number, fast: number): number => {
  const v = process.env[name]
  if (v === undefined) return quick ? fast : full
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`)
  return n
}

async function measure (): Promise<Results> {
  const options: Meta['options'] = {
    perRequest: { rounds: num('BENCH_PR_ROUNDS', 2, 2), seconds: num('BENCH_PR_SECONDS', 2, 1), connections: 50, warmSeconds: num('BENCH_PR_WARM', 3, 1), pairs: num('BENCH_PR_PAIRS', 8, 2) },
    exitTime: { rounds: num('BENCH_EXIT_ROUNDS', 3, 1), idleConnections: num('BENCH_IDLE', 10_000, 2_000), busyConnections: num('BENCH_BUSY', 1_000, 500), capMs: 30_000, libraryTimeout: 10_000 },
    nothingLost: { rounds: num('BENCH_LOAD_ROUNDS', 2, 1), restarts: num('BENCH_RESTARTS', 3, 1), betweenRestartsMs: quick ? 500 : 1000 },
    proxy: { delay: 1500, tail: num('BENCH_PROXY_TAIL', 100, 30), restarts: 3, keepAlive: quick ? 4 : 8, fresh: 2, pauseMs: quick ? 150 : 100 }
  }
  const require = createRequire(here('package.json'))
  const versions: Record<string, string> = {}
  for (const name of ['fastify', 'express', ...new Set(KINDS.filter((k) => k.role === 'alternative').flatMap((k) => k.packages)), 'autocannon']) {
    versions[name] = (require(`${name}/package.json`) as { version: string }).version
  }
  const loadStart = os.loadavg()
  const results: Results = {
    meta: {
      date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
      node: process.version,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
      cpus: os.cpus().length,
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      loadStart,
      loadEnd: loadStart,
      seconds: 0,
      command: `pnpm bench${quick ? ' --quick' : ''}${onlyArg === undefined ? '' : ` ${onlyArg}`}`,
      quick,
      complete: !quick && onlyArg === undefined,
      versions,
      options
    }
  }
  log(`rows: ${only.join(', ')}${quick ? ' (quick)' : ''}; options ${JSON.stringify(options)}`)
  if (only.includes('per-request')) results.perRequest = await perRequest(options.perRequest, log)
  if (only.includes('exit-time')) results.exitTime = await exitTime(options.exitTime, log)
  if (only.includes('nothing-lost')) results.nothingLost = await nothingLost(options.nothingLost, log)
  if (only.includes('scenarios')) {
    const load = new Map(results.nothingLost?.map((x) => [x.kind, {
      failed: x.signal.reduce((a, o) => a + o.failed, 0),
      requests: x.signal.reduce((a, o) => a + o.requests, 0)
    }]))
    const restart = new Map(results.nothingLost?.flatMap((x) => Object.values(x.restart).map((o) => [x.kind, o] as const)))
    results.scenarios = await scenarios({ load, restart }, log)
  }
  if (only.includes('proxy')) results.proxy = await proxyRow(options.proxy as NonNullable<Meta['options']['proxy']>, log)
  results.meta.loadEnd = os.loadavg()
  results.meta.seconds = (performance.now() - start) / 1000
  mkdirSync(here('results/'), { recursive: true })
  writeFileSync(here('results/latest.json'), JSON.stringify(results, (key, value: unknown) => {
    // Kinds by id, the scenario matrix as nested objects; --render turns them back.
    if (key === 'kind' && typeof value === 'object' && value !== null && 'id' in value) return (value as Kind).id
    if (value instanceof Map) return Object.fromEntries([...value.entries()].map(([k, v]) => [typeof k === 'object' && k !== null && 'id' in k ? (k as Kind).id : String(k), v]))
    return value
  }, 2))
  return results
}

/** The last run's results, from results/latest.json, with kinds and the matrix as objects again. */
function load (): Results {
  type Stored = Omit<Results, 'scenarios'> & { scenarios?: Record<string, Record<string, Verdict>> }
  const stored = JSON.parse(readFileSync(here('results/latest.json'), 'utf8'), (key, value: unknown) => {
    // (A load failure has a `kind` of its own: 'error', 'status'…)
    if (key === 'kind' && typeof value === 'string' && KINDS.some((k) => k.id === value)) return kind(value)
    if (key === 'exitMs' && value === null) return NaN
    return value
  }) as Stored
  // JSON has no Infinity: an exit past the cap was stored as null, like NaN; exit tells them apart.
  for (const row of stored.exitTime ?? []) {
    for (const s of [...row.idle, ...row.busy]) if (Number.isNaN(s.exitMs) && row.kind.role !== 'bare') s.exitMs = Infinity
  }
  const scenarioMap = stored.scenarios === undefined
    ? undefined
    : new Map(Object.entries(stored.scenarios).map(([id, v]) => [kind(id), new Map(Object.entries(v))]))
  // Results from before `complete` was recorded: a full run is one without --quick or --only.
  stored.meta.complete ??= !stored.meta.quick && !stored.meta.command.includes('--only')
  return { ...stored, scenarios: scenarioMap }
}

function publish (results: Results): void {
  const md = markdown(results)
  const complete = results.meta.complete
  const out = complete ? here('RESULTS.md') : here(`results/RESULTS.${results.meta.quick ? 'quick' : 'partial'}.md`)
  mkdirSync(here('results/'), { recursive: true })
  writeFileSync(out, md)
  if (complete) {
    // The README shows the summary table between these markers; a full run keeps it current.
    const readme = here('../README.md')
    const text = readFileSync(readme, 'utf8')
    const begin = '<!-- bench:summary:start -->'
    const end = '<!-- bench:summary:end -->'
    const a = text.indexOf(begin)
    const b = text.indexOf(end)
    if (a !== -1 && b > a) {
      const m = results.meta
      const block = `${begin}\nMeasured ${m.date} on ${m.cpus} × ${m.cpu}, Node.js ${m.node}, load average ${m.loadStart[0]?.toFixed(1) ?? '?'} ` +
        `at the start (other work was running); from [bench/RESULTS.md](bench/RESULTS.md):\n\n${summary(results)}\n${end}`
      writeFileSync(readme, text.slice(0, a) + block + text.slice(b + end.length))
    }
  }
  process.stdout.write(md)
  log(`wrote ${out.pathname}${complete ? ' and the README summary' : ''}`)
}

publish(render ? load() : await measure())

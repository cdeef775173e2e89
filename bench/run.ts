// The benchmark, in one command: `pnpm bench` at the repository root (builds the packages, then runs this).
// Writes bench/RESULTS.md and the summary table into README.md's Benchmarks section, and prints RESULTS.md.
//
//   --quick            fewer rounds, connections and seconds (about a third of the time); writes
//                      bench/results/RESULTS.quick.md instead, and leaves the README alone
//   --only=a,b         only these rows: per-request, exit-time, nothing-lost, scenarios (like --quick, it
//                      writes bench/results/RESULTS.partial.md)
// Every knob can also be set alone: BENCH_PR_ROUNDS, BENCH_PR_SECONDS, BENCH_PR_WARM, BENCH_EXIT_ROUNDS,
// BENCH_IDLE, BENCH_BUSY, BENCH_LOAD_ROUNDS, BENCH_RESTARTS.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { createRequire } from 'node:module'
import { perRequest } from './per-request.js'
import { exitTime } from './exit-time.js'
import { nothingLost } from './nothing-lost.js'
import { scenarios } from './scenarios.js'
import { markdown, summary, type Meta, type Results } from './lib/report.js'
import { KINDS } from './lib/kinds.js'

const ROWS = ['per-request', 'exit-time', 'nothing-lost', 'scenarios'] as const
type Row = (typeof ROWS)[number]

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const onlyArg = args.find((a) => a.startsWith('--only='))
const only = onlyArg === undefined ? [...ROWS] : onlyArg.slice('--only='.length).split(',') as Row[]
for (const a of args) {
  if (a !== '--quick' && !a.startsWith('--only=')) throw new Error(`unknown argument ${a} (use --quick, --only=${ROWS.join(',')})`)
}
for (const r of only) if (!ROWS.includes(r)) throw new Error(`unknown row ${r} (rows: ${ROWS.join(', ')})`)

const num = (name: string, full: number, fast: number): number => {
  const v = process.env[name]
  if (v === undefined) return quick ? fast : full
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`)
  return n
}

const options: Meta['options'] = {
  perRequest: { rounds: num('BENCH_PR_ROUNDS', 8, 3), seconds: num('BENCH_PR_SECONDS', 1, 1), connections: 50, warmSeconds: num('BENCH_PR_WARM', 3, 1) },
  exitTime: { rounds: num('BENCH_EXIT_ROUNDS', 3, 1), idleConnections: num('BENCH_IDLE', 10_000, 2_000), busyConnections: num('BENCH_BUSY', 1_000, 500), capMs: 30_000, libraryTimeout: 10_000 },
  nothingLost: { rounds: num('BENCH_LOAD_ROUNDS', 2, 1), restarts: num('BENCH_RESTARTS', 3, 1), betweenRestartsMs: quick ? 500 : 1000 }
}

const start = performance.now()
const log = (line: string): void => { process.stderr.write(`[${((performance.now() - start) / 1000).toFixed(0).padStart(4)} s] ${line}\n`) }

const require = createRequire(new URL('./package.json', import.meta.url))
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
results.meta.loadEnd = os.loadavg()
results.meta.seconds = (performance.now() - start) / 1000

const complete = !quick && onlyArg === undefined
const md = markdown(results)
const here = (path: string): URL => new URL(path, import.meta.url)
mkdirSync(here('results/'), { recursive: true })
writeFileSync(here('results/latest.json'), JSON.stringify(results, (key, value: unknown) => {
  if (key === 'kind' && typeof value === 'object' && value !== null && 'id' in value) return (value as { id: string }).id
  if (value instanceof Map) return Object.fromEntries([...value.entries()].map(([k, v]) => [typeof k === 'object' && k !== null && 'id' in k ? (k as { id: string }).id : String(k), v]))
  return value
}, 2))
const out = complete ? here('RESULTS.md') : here(`results/RESULTS.${quick ? 'quick' : 'partial'}.md`)
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
    const block = `${begin}\nMeasured ${m.date}, ${m.cpus} × ${m.cpu}, Node.js ${m.node}, load average ${m.loadStart[0]?.toFixed(1)} at the start:\n\n${summary(results)}\n${end}`
    writeFileSync(readme, text.slice(0, a) + block + text.slice(b + end.length))
  }
}
process.stdout.write(md)
log(`wrote ${out.pathname}${complete ? ' and the README summary' : ''}`)

// RESULTS.md from one run's measurements: a summary table (the README shows it), then each row's detail,
// the targets, and every place an alternative is ahead of graceful.
import { CONTENDERS, KINDS, type Kind } from './kinds.js'
import { median } from './child.js'
import { variantLabel, type PerRequestRow } from '../per-request.js'
import { IDLE_QUIET_MS, type ExitSample, type ExitTimeRow } from '../exit-time.js'
import type { LoadOutcome, NothingLostRow } from '../nothing-lost.js'
import { SCENARIOS, SCENARIO_TIMEOUT_MS, type Matrix } from '../scenarios.js'
import type { ProxyResults, ProxyRowOptions } from '../proxy.js'
import { proxyAhead, proxyDetail, proxyMisses, proxySummaryRows } from './proxy-report.js'

export interface Meta {
  date: string
  node: string
  os: string
  cpu: string
  cpus: number
  memoryGb: number
  loadStart: number[]
  loadEnd: number[]
  seconds: number
  command: string
  quick: boolean
  /** Every row at full size: RESULTS.md and the README. */
  complete: boolean
  versions: Record<string, string>
  options: {
    perRequest: { rounds: number, seconds: number, connections: number, warmSeconds: number, pairs: number }
    exitTime: { rounds: number, idleConnections: number, busyConnections: number, capMs: number, libraryTimeout: number }
    nothingLost: { rounds: number, restarts: number, betweenRestartsMs: number }
    proxy?: ProxyRowOptions
  }
}

export interface Results {
  meta: Meta
  perRequest?: PerRequestRow[]
  exitTime?: ExitTimeRow[]
  nothingLost?: NothingLostRow[]
  scenarios?: Matrix
  proxy?: ProxyResults
}

export const TARGETS = {
  rpsRatio: 0.98,
  cpuRatio: 0.98,
  idleExitMs: 200,
  /** 200 ms plus the requests' own 100 ms. */
  busyExitMs: 300,
  /** Heap per idle keep-alive connection added over the bare framework's (issue 12). */
  heapAdded: 64
}

const ours = (k: Kind): Kind => KINDS.find((x) => x.role === 'ours' && x.framework === k.framework) as Kind
const ALTERNATIVES = CONTENDERS.filter((k) => k.role === 'alternative')

function ms (x: number): string {
  if (Number.isNaN(x)) return '–'
  if (!Number.isFinite(x)) return '> cap (killed)'
  return x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`
}
const ratio = (x: number): string => Number.isFinite(x) ? x.toFixed(2) : '–'
const bytes = (x: number): string => Number.isFinite(x) ? `${Math.round(x).toLocaleString('en-US')} B` : '–'
const int = (x: number): string => x.toLocaleString('en-US')

function exitCodes (samples: ExitSample[]): string {
  const codes = new Set(samples.map((s) => s.exit === undefined ? 'killed' : s.exit.signal ?? String(s.exit.code)))
  return [...codes].join(', ')
}

/** Median exit time, with the code and a note when the library waited out its timeout. */
function exitCell (samples: ExitSample[], libraryTimeout: number): string {
  if (samples.length === 0) return '–'
  const m = median(samples.map((s) => s.exitMs))
  const timedOut = m >= libraryTimeout * 0.9
  return `${ms(m)}${timedOut ? ' (its timeout)' : ''}, exit ${exitCodes(samples)}`
}

const exitMedian = (samples: ExitSample[]): number => samples.length === 0 ? NaN : median(samples.map((s) => s.exitMs))

function lostSum (outcomes: LoadOutcome[]): { failed: number, requests: number } {
  return { failed: outcomes.reduce((a, o) => a + o.failed, 0), requests: outcomes.reduce((a, o) => a + o.requests, 0) }
}
const lostCell = (o: { failed: number, requests: number } | undefined): string =>
  o === undefined ? '–' : Number.isNaN(o.failed) ? 'run broke' : `${int(o.failed)} of ${int(o.requests)}`

function table (head: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

export function summary (r: Results): string {
  const cols = CONTENDERS
  const head = ['', 'target', ...cols.map((k) => k.short)]
  const rows: string[][] = []
  const pr = r.perRequest
  if (pr !== undefined) {
    const find = (k: Kind, configured = false): PerRequestRow | undefined => pr.find((x) => x.kind === k && x.configured === configured)
    const cell = (x: PerRequestRow | undefined, f: (x: PerRequestRow) => number): string => x === undefined ? '–' : ratio(f(x))
    rows.push(['requests/s ÷ bare framework', `≥ ${TARGETS.rpsRatio}`, ...cols.map((k) => cell(find(k), (x) => x.rpsRatio))])
    rows.push(['server CPU per request, bare ÷ this', `≥ ${TARGETS.cpuRatio}`, ...cols.map((k) => cell(find(k), (x) => x.cpuRatio))])
    rows.push(['the same, readiness + per-route options configured', `≥ ${TARGETS.cpuRatio}`, ...cols.map((k) => cell(find(k, true), (x) => x.cpuRatio))])
  }
  const et = r.exitTime
  if (et !== undefined) {
    const find = (k: Kind): ExitTimeRow => et.find((x) => x.kind === k) as ExitTimeRow
    const t = r.meta.options.exitTime
    rows.push([`SIGTERM → exit, ${int(t.idleConnections)} idle keep-alive connections (quiet ${IDLE_QUIET_MS / 1000} s)`, `≤ ${TARGETS.idleExitMs} ms`,
      ...cols.map((k) => exitCell(find(k).idle, t.libraryTimeout))])
    rows.push([`SIGTERM → exit, ${int(t.busyConnections)} requests ending within 100 ms`, `≤ ${TARGETS.busyExitMs} ms`,
      ...cols.map((k) => exitCell(find(k).busy, t.libraryTimeout))])
  }
  const nl = r.nothingLost
  if (nl !== undefined) {
    const find = (k: Kind): NothingLostRow => nl.find((x) => x.kind === k) as NothingLostRow
    const o = r.meta.options.nothingLost
    rows.push([`failed requests, 32 keep-alive clients at SIGTERM (${o.rounds} round${o.rounds === 1 ? '' : 's'})`, '0',
      ...cols.map((k) => lostCell(lostSum(find(k).signal)))])
    const modes = [...new Set(nl.flatMap((x) => Object.keys(x.restart)))]
    for (const mode of modes) {
      rows.push([`failed requests across ${o.restarts} restarts, ${mode}`, '0',
        ...cols.map((k) => { const x = find(k).restart[mode]; return x === undefined ? '—²' : lostCell(x) })])
    }
    if (nl.some((x) => (x.busySignal ?? []).length > 0)) {
      rows.push([`failed requests with busy keep-alive clients (each client's loop blocked a random 0–300 ms between requests), at SIGTERM (${o.rounds} round${o.rounds === 1 ? '' : 's'})`, '0',
        ...cols.map((k) => lostCell(lostSum(find(k).busySignal ?? [])))])
      for (const mode of [...new Set(nl.flatMap((x) => Object.keys(x.busyRestart ?? {})))]) {
        rows.push([`failed requests with busy keep-alive clients, across ${o.restarts} restarts, ${mode}`, '0',
          ...cols.map((k) => { const x = find(k).busyRestart?.[mode]; return x === undefined ? '—²' : lostCell(x) })])
      }
    }
  }
  if (et !== undefined) {
    const find = (k: Kind): ExitTimeRow => et.find((x) => x.kind === k) as ExitTimeRow
    rows.push([`heap per connection, added to the bare framework's (${int(r.meta.options.exitTime.idleConnections)} open)`, `≤ ${TARGETS.heapAdded} B`,
      ...cols.map((k) => bytes(find(k).heapAdded))])
  }
  const sc = r.scenarios
  if (sc !== undefined) {
    rows.push(['contract scenarios passed (row 5)', `${SCENARIOS.length} of ${SCENARIOS.length}`,
      ...cols.map((k) => { const m = sc.get(k); return m === undefined ? '–' : `${[...m.values()].filter((v) => v.pass === true).length} of ${SCENARIOS.length}` })])
  }
  rows.push(...proxySummaryRows(r.proxy, cols))
  return table(head, rows)
}

function perRequestDetail (r: Results): string {
  const pr = r.perRequest
  if (pr === undefined) return ''
  const o = r.meta.options.perRequest
  const rows = pr.map((x) => [variantLabel(x), int(Math.round(x.rps)), ratio(x.rpsRatio), `${x.cpuUs.toFixed(1)} µs`, ratio(x.cpuRatio), int(x.errors)])
  return `### 1. Per-request cost

Hello world (\`GET /\` → \`{"hello":"world"}\`). Each variant runs beside a bare-framework process and both are loaded
at the same moment, each by its own autocannon process (${o.connections} connections), ${o.rounds} rounds of ${o.seconds} s after a
${o.warmSeconds} s warm-up, in ${o.pairs} pairs of fresh processes one after the other, every other pair started in the opposite order (two
fresh processes of the same server differ by 1–3%, more than rounds within a pair do: more pairs, not longer
rounds, narrow the result); where \`taskset\` exists both servers share one CPU and the load generators the other. A ratio is
taken within a round (the variant against its partner in the same seconds), then the median over every round of every pair. Measured one after
the other instead, the same server's figures drift by 15–20% within seconds on this machine, more than the
differences being measured. Every library is measured, none assumed equal to the bare framework; graceful also
with readiness and per-route options configured (\`BENCH_PROBES=1\`: a readiness route and a \`serveDuringDrain\`
route). The first line of each framework pairs two bare processes: its ratios are the noise floor. The second is a
reference: the bare framework with one \`onRequest\` hook or one middleware that does nothing (\`BENCH_NOOP=1\`), what any
step on the request path costs there. The third is the same with graceful's package for that framework imported and
never used (\`BENCH_LOAD=1\`): what having its code loaded in the process costs each request, apart from anything it does. The CPU ratio
(server CPU time per request) is the figure to read; requests/s follow it, since both servers share one CPU.

${table(['server', 'requests/s', '÷ bare', 'server CPU / request', 'bare ÷ this', 'errors'], rows)}
`
}

function exitDetail (r: Results): string {
  const et = r.exitTime
  if (et === undefined) return ''
  const o = r.meta.options.exitTime
  const rows = et.filter((x) => x.kind.role !== 'bare').map((x) => [
    x.kind.label,
    exitCell(x.idle, o.libraryTimeout),
    x.idle.map((s) => ms(s.exitMs)).join(', '),
    int(Math.min(...x.idle.map((s) => s.openAtSignal))),
    exitCell(x.busy, o.libraryTimeout),
    x.busy.map((s) => ms(s.exitMs)).join(', '),
    x.busy.map((s) => `${int(s.ok)}`).join(', ')
  ])
  return `### 2. Exit time

From \`SIGTERM\` to the server process's \`exit\` event, seen by the parent, which does nothing else meanwhile (a
separate client process holds the connections). Idle: ${int(o.idleConnections)} keep-alive connections that have each
made one request, the last of them ${IDLE_QUIET_MS / 1000} s before the signal: idle in every library's sense (graceful closes at
once a connection quiet for longer than its 1 s idle grace; one that has just answered gets the grace, since its
client may be about to send its next request). Busy: ${int(o.busyConnections)} connections each holding a request that the app answers 100 ms after
the last one arrived; the signal goes out the moment they are all in. ${o.rounds} rounds, median; a library that waits out
its own timeout (${o.libraryTimeout / 1000} s here, set on every library) does so every time and is not run again.
Every server keeps idle connections 72 s (Fastify's default; Node's, which Express uses, is 5 s), so the connections
are all still open at the signal.

${table(['library', 'idle: median', 'idle: rounds', 'open at signal', 'busy: median', 'busy: rounds', 'busy: answered 200'], rows)}
`
}

function memoryDetail (r: Results): string {
  const et = r.exitTime
  if (et === undefined) return ''
  const o = r.meta.options.exitTime
  const rows = et.map((x) => [x.kind.label, bytes(x.heapPerConnection), x.kind.role === 'bare' ? '–' : bytes(x.heapAdded),
    x.kind.tracksConnections ? 'yes' : 'no (Node does)'])
  return `### 4. Memory

Heap used (after \`gc()\`, twice) in the server with ${int(o.idleConnections)} more idle keep-alive connections open than
before, each having made one request, ÷ ${int(o.idleConnections)}; measured in the exit-time idle runs. "Added" is the
library's figure less its bare framework's in the same round, median over the rounds. The heap per connection of
the bare framework is Node's own (socket, parser, request objects).

${table(['server', 'heap per connection', 'added', 'keeps its own connection list'], rows)}
`
}

function lostDetail (r: Results): string {
  const nl = r.nothingLost
  if (nl === undefined) return ''
  const o = r.meta.options.nothingLost
  const rowsOf = (signal: (x: NothingLostRow) => LoadOutcome[], restart: (x: NothingLostRow) => Record<string, LoadOutcome>): string[][] => nl.map((x) => {
    const outcomes = signal(x)
    const sum = lostSum(outcomes)
    const why = [...new Set(outcomes.flatMap((s) => s.causes ?? s.failures.map((f) => f.detail.trim())))]
      .map((c) => c.replace(/^\d+ × /, '')).slice(0, 2).join('; ')
    const restarts = Object.entries(restart(x)).map(([mode, v]) => `${mode}: ${lostCell(v)}${v.error === undefined ? '' : ` (${v.error})`}`).join('; ')
    return [x.kind.label, lostCell(sum), outcomes.map((s) => s.error ?? String(s.failed)).join(', '), why === '' ? '–' : why, restarts === '' ? '—²' : restarts]
  })
  const head = ['library', 'failed at SIGTERM (all rounds)', 'per round', 'why (graceful-check\'s verdict)', 'across restarts']
  const busy = nl.some((x) => (x.busySignal ?? []).length > 0)
  return `### 3. Nothing lost

Counted by graceful-check (\`@graceful/check\`, the same traffic and counting as \`npx graceful-check\`): the server runs
in its own process, the clients load it for ${o.betweenRestartsMs} ms, then it gets \`SIGTERM\` and is watched to its exit. A request
is lost unless it was answered (a \`2xx\`, or a \`503\`); a new connection refused once the listener has closed is not
(it never carried a request). ${o.rounds} rounds, summed. Restarts: the same clients through ${o.restarts} zero-downtime restarts,
${o.betweenRestartsMs} ms of load on each new process before the next.

32 keep-alive clients, each looping \`GET /\` on its own connection as fast as it can:

${table(head, rowsOf((x) => x.signal, (x) => x.restart))}
${busy
? `
16 busy keep-alive clients: each client's loop is blocked a random 0–300 ms between two requests (each client in a
worker thread of its own, blocked with \`Atomics.wait\`: a loaded proxy, a GC pause), so a FIN that arrives meanwhile is
not read before the next request goes out:

${table(head, rowsOf((x) => x.busySignal ?? [], (x) => x.busyRestart ?? {}))}
`
: ''}
² No zero-downtime restart. \`graceful-cluster\`'s rolling restart will be a second restart mode here.
`
}

function scenariosDetail (r: Results): string {
  const sc = r.scenarios
  if (sc === undefined) return ''
  const cols = CONTENDERS.filter((k) => sc.has(k))
  const cell = (k: Kind, id: string): string => { const v = sc.get(k)?.get(id); return v === undefined ? '–' : v.pass === true ? '✓' : v.pass === false ? '✗' : '—' }
  const rows = SCENARIOS.map((s) => [s.title, ...cols.map((k) => cell(k, s.id))])
  rows.push(['**passed**', ...cols.map((k) => `**${[...(sc.get(k)?.values() ?? [])].filter((v) => v.pass === true).length} of ${SCENARIOS.length}**`)])
  const notes: string[] = []
  for (const k of cols) {
    const misses = SCENARIOS.flatMap((s) => {
      const v = sc.get(k)?.get(s.id)
      return v !== undefined && v.pass === false ? [`${s.id}: ${v.note}`] : []
    })
    if (misses.length > 0) notes.push(`- **${k.short}** ✗ ${misses.join('; ')}`)
  }
  const absent = cols.flatMap((k) => {
    const ids = SCENARIOS.filter((s) => sc.get(k)?.get(s.id)?.pass === null).map((s) => s.id)
    return ids.length === 0 ? [] : [`${k.short} (${ids.join(', ')})`]
  })
  return `### 5. What each gets right

The project's contract (\`test/connections.contract.test.ts\`, \`test/lifecycle.contract.test.ts\`) as black-box scenarios
(\`bench/scenarios.ts\`): each library set up the way its README says, a real \`SIGTERM\`, real sockets. The libraries
give no "drain started" event, so the runs see the drain start as a client does: new connections are opened one after
another from the signal on, and the first one not served as usual marks it. Every library gets a ${SCENARIO_TIMEOUT_MS / 1000} s timeout
here (1 s in the deadline scenario). ✓ passed, ✗ failed (what happened is
listed below), — the library has no such feature (counted as not passed).

${table(['scenario', ...cols.map((k) => k.short)], rows)}

What the ✗ cells saw:
${notes.join('\n')}

The cleanup steps of the hooks scenario: ${cols.filter((k) => k.hookSteps !== undefined).map((k) => `${k.short}: ${k.hookSteps ?? ''}`).join('; ')}.
The lame-duck scenario uses a 1 s delay: graceful's \`delay\` and \`readiness\`; terminus' \`beforeShutdown\` that waits and a
\`healthChecks\` route, as its README advises for Kubernetes.

No such feature (—): ${absent.join('; ')}.
`
}

/** Every place an alternative's figure is better than graceful's on the same framework. */
export function ahead (r: Results): string[] {
  const out: string[] = []
  const pr = r.perRequest
  if (pr !== undefined) {
    for (const alt of ALTERNATIVES) {
      const o = pr.find((x) => x.kind === ours(alt) && !x.configured)
      const a = pr.find((x) => x.kind === alt)
      if (o === undefined || a === undefined) continue
      const aRps = a.rpsRatio
      const aCpu = a.cpuRatio
      const how = 'ratios'
      if (aRps > o.rpsRatio) out.push(`per-request, requests/s ÷ bare: ${alt.short} ${ratio(aRps)} vs graceful ${alt.framework} ${ratio(o.rpsRatio)} (${how})`)
      if (aCpu > o.cpuRatio) out.push(`per-request, CPU bare ÷ this: ${alt.short} ${ratio(aCpu)} vs graceful ${alt.framework} ${ratio(o.cpuRatio)} (${how})`)
    }
  }
  const et = r.exitTime
  if (et !== undefined) {
    for (const alt of ALTERNATIVES) {
      const o = et.find((x) => x.kind === ours(alt)) as ExitTimeRow
      const a = et.find((x) => x.kind === alt) as ExitTimeRow
      for (const load of ['idle', 'busy'] as const) {
        const am = exitMedian(a[load])
        const om = exitMedian(o[load])
        if (am < om) out.push(`exit time, ${load}: ${alt.short} ${ms(am)} vs graceful ${alt.framework} ${ms(om)}`)
      }
      if (a.heapAdded < o.heapAdded) {
        out.push(`memory per connection added: ${alt.short} ${bytes(a.heapAdded)} vs graceful ${alt.framework} ${bytes(o.heapAdded)}` +
          (alt.tracksConnections ? '' : ' (it keeps no connection list of its own)'))
      }
    }
  }
  const nl = r.nothingLost
  if (nl !== undefined) {
    for (const alt of ALTERNATIVES) {
      const o = lostSum((nl.find((x) => x.kind === ours(alt)) as NothingLostRow).signal)
      const a = lostSum((nl.find((x) => x.kind === alt) as NothingLostRow).signal)
      if (a.failed < o.failed) out.push(`failed requests at SIGTERM: ${alt.short} ${a.failed} vs graceful ${alt.framework} ${o.failed}`)
      const ob = lostSum((nl.find((x) => x.kind === ours(alt)) as NothingLostRow).busySignal ?? [])
      const ab = lostSum((nl.find((x) => x.kind === alt) as NothingLostRow).busySignal ?? [])
      if (ab.requests > 0 && ab.failed < ob.failed) out.push(`failed requests with busy keep-alive clients at SIGTERM: ${alt.short} ${ab.failed} vs graceful ${alt.framework} ${ob.failed}`)
    }
  }
  const sc = r.scenarios
  if (sc !== undefined) {
    for (const alt of ALTERNATIVES) {
      for (const s of SCENARIOS) {
        if (sc.get(alt)?.get(s.id)?.pass === true && sc.get(ours(alt))?.get(s.id)?.pass !== true) {
          out.push(`scenario "${s.title}": ${alt.short} passes, graceful ${alt.framework} does not (${sc.get(ours(alt))?.get(s.id)?.note ?? ''})`)
        }
      }
    }
  }
  out.push(...proxyAhead(r.proxy))
  return out
}

/** Where graceful misses its own targets. */
export function misses (r: Results): string[] {
  const out: string[] = []
  const mine = KINDS.filter((k) => k.role === 'ours')
  for (const k of mine) {
    for (const p of r.perRequest?.filter((x) => x.kind === k) ?? []) {
      if (p.rpsRatio < TARGETS.rpsRatio) out.push(`${variantLabel(p)}: requests/s ÷ bare ${ratio(p.rpsRatio)} (target ≥ ${TARGETS.rpsRatio})`)
      if (p.cpuRatio < TARGETS.cpuRatio) out.push(`${variantLabel(p)}: server CPU per request, bare ÷ this ${ratio(p.cpuRatio)} (target ≥ ${TARGETS.cpuRatio})`)
    }
    const e = r.exitTime?.find((x) => x.kind === k)
    if (e !== undefined) {
      const idle = exitMedian(e.idle)
      const busy = exitMedian(e.busy)
      if (idle > TARGETS.idleExitMs) out.push(`${k.label}: exit with idle connections ${ms(idle)} (target ≤ ${TARGETS.idleExitMs} ms)`)
      if (busy > TARGETS.busyExitMs) out.push(`${k.label}: exit with busy connections ${ms(busy)} (target ≤ ${TARGETS.busyExitMs} ms)`)
      if (e.heapAdded > TARGETS.heapAdded) out.push(`${k.label}: heap per connection added ${bytes(e.heapAdded)} (target ≤ ${TARGETS.heapAdded} B)`)
    }
    const n = r.nothingLost?.find((x) => x.kind === k)
    if (n !== undefined) {
      const s = lostSum(n.signal)
      if (!(s.failed === 0)) out.push(`${k.label}: ${s.failed} failed requests at SIGTERM (target 0)`)
      for (const [mode, v] of Object.entries(n.restart)) if (!(v.failed === 0)) out.push(`${k.label}: ${v.failed} failed requests across restarts, ${mode} (target 0)`)
      const b = lostSum(n.busySignal ?? [])
      if (b.requests > 0 && !(b.failed === 0)) out.push(`${k.label}: ${b.failed} failed requests with busy keep-alive clients at SIGTERM (target 0)`)
      for (const [mode, v] of Object.entries(n.busyRestart ?? {})) if (!(v.failed === 0)) out.push(`${k.label}: ${v.failed} failed requests with busy keep-alive clients across restarts, ${mode} (target 0)`)
    }
    const sc = r.scenarios?.get(k)
    if (sc !== undefined) for (const s of SCENARIOS) if (sc.get(s.id)?.pass !== true) out.push(`${k.label}: scenario "${s.title}" not passed (${sc.get(s.id)?.note ?? ''})`)
  }
  out.push(...proxyMisses(r.proxy))
  return out
}

export function markdown (r: Results): string {
  const m = r.meta
  const versions = Object.entries(m.versions).map(([name, v]) => `${name} ${v}`).join(', ')
  const aheadList = ahead(r)
  const missList = misses(r)
  return `# Benchmarks: graceful and the alternatives, side by side

${m.quick ? '**Quick mode** (fewer rounds, fewer connections): for checking the harness, not for quoting.\n\n' : ''}Measured ${m.date} on ${m.cpus} × ${m.cpu}, ${m.memoryGb} GB, ${m.os}, Node.js ${m.node}; load average
${m.loadStart.map((x) => x.toFixed(1)).join(' / ')} at the start and ${m.loadEnd.map((x) => x.toFixed(1)).join(' / ')} at the end (1/5/15 min). The whole run took
${Math.round(m.seconds / 60 * 10) / 10} min: \`${m.command}\`.

Every figure comes from this one run, each library measured next to the others and next to the bare framework, in
alternating rounds, as a median or a ratio within a round: never compare figures from different runs. Libraries:
${versions}. Each is set up the way its README says (bench/servers/, one file each); terminus, http-terminator,
http-graceful-shutdown and stoppable wrap a Node \`http.Server\` and run with Express, close-with-grace and
fastify-graceful-shutdown with Fastify. Every library gets the same timeout (${m.options.exitTime.libraryTimeout / 1000} s; shorter in the
scenarios of row 5).

## Summary

${summary(r)}

How to read it: each column is one library under the same load in the same run; a ratio of 1.00 means "costs
nothing over the bare framework", and the exit times include each library's own waiting (graceful closes a keep-alive connection only
once it has been quiet for its 1 s idle grace, for one). Footnotes and each row's method are below.

### Where graceful misses its targets

${missList.length === 0 ? 'Nowhere in this run.' : missList.map((x) => `- ${x}`).join('\n')}

### Where an alternative is ahead of graceful

${aheadList.length === 0 ? 'Nowhere in this run.' : aheadList.map((x) => `- ${x}`).join('\n')}

Differences of a few percent in the per-request ratios, and of some tens of ms in the exit times, are within what this
machine varies between rounds when it is busy.

## Rows in detail

${perRequestDetail(r)}
${exitDetail(r)}
${lostDetail(r)}
${memoryDetail(r)}
${scenariosDetail(r)}
${proxyDetail(r.proxy, r.meta.options.proxy)}`
}

// The live demo: starts a real app, drives load at it, sends SIGHUP (a zero-downtime restart) and then
// SIGTERM under that load, and shows what happens. The load and the counting are graceful-check's
// (@graceful/check): 16 keep-alive clients, 4 on a slow route, an SSE stream and a readiness poller.
// `pnpm demo` runs Fastify then Express; `pnpm demo --fastify` or `--express` runs one.
// Exits non-zero if any request failed or an exit code was not 0.
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { check, type CheckEvent, type CheckResult } from '@graceful/check'

type Framework = 'fastify' | 'express'

interface Report {
  reason: string
  durationMs: number
  inFlightAtStart: number
  completed: number
  rejected: number
  aborted: number
  hooks: Array<{ name: string, ms: number, error?: string }>
  exitCode: number
}

/** ms of load before the restart, and between the restart and SIGTERM. */
const LOAD_MS = 1500
const KEEP_ALIVE_CLIENTS = 16
const SLOW_CLIENTS = 4
const tty = process.stdout.isTTY === true

const only = process.argv.includes('--express') ? 'express' : process.argv.includes('--fastify') ? 'fastify' : null
const frameworks: Framework[] = only === null ? ['fastify', 'express'] : [only]

let failures = 0
for (const fw of frameworks) failures += await run(fw)
process.exit(failures > 0 ? 1 : 0)

async function run (framework: Framework): Promise<number> {
  console.log(`\n▶ ${framework}: starting examples/demo/${framework}-app.ts (delay 1000 ms, timeout 5000 ms, restart on SIGHUP)`)
  const pidFile = join(mkdtempSync(join(tmpdir(), 'graceful-demo-')), 'app.pid')
  const child = fork(fileURLToPath(new URL(`./${framework}-app.ts`, import.meta.url)), [], {
    env: { ...process.env, PORT: '0', PID_FILE: pidFile },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  // The successor inherits the pipe to our child's stdout: it closes when the last generation is gone.
  const closed = once(child, 'close')
  let predecessorCode: number | null = null
  const predecessorExited = once(child, 'exit').then(([code]) => { predecessorCode = code as number | null })
  let t0 = 0
  let stage: 'serving' | 'restarting' | 'stopping' = 'serving'
  let phase = 'serving'
  const reports: Report[] = []
  let drainStartedAt = 0
  let drainedAt = 0
  const stamp = () => t0 === 0 ? '         ' : `+${String(Math.round(performance.now() - t0)).padStart(5)} ms`
  const note = (line: string) => {
    if (tty) process.stdout.write('\r\x1b[2K')
    console.log(`  ${stamp()}  ${line}`)
  }
  watchLogs(child, (msg, obj) => {
    if (msg === 'graceful: restart requested') note('restart    a successor is starting with the listening socket')
    else if (msg === 'graceful: successor started') note(`restart    successor pid ${String(obj.pid)} started; the old process keeps serving`)
    else if (msg === 'graceful: successor ready') note(`restart    successor pid ${String(obj.pid)} is ready and accepting; the old process drains`)
    else if (msg === 'graceful: restart failed') note(`restart    FAILED: ${String(obj.reason)}`)
    else if (msg === 'graceful: shutdown started') {
      if (stage === 'stopping') phase = 'lameduck'
      note(stage === 'stopping'
        ? `lameduck   readiness answers 503, everything else is served (${String(obj.inFlight)} in flight)`
        : 'old pid    restart drain: requests on its open connections are served with Connection: close')
    } else if (msg === 'graceful: draining' && stage === 'stopping') {
      phase = 'draining'
      drainStartedAt = performance.now()
      note(`draining   listener closed, ${String(obj.inFlight)} requests in flight, ${String(obj.connections)} connections`)
    } else if (msg === 'graceful: drained' && stage === 'stopping') {
      phase = 'cleanup'
      drainedAt = performance.now()
      note(`cleanup    drained (${String(obj.completed)} completed, ${String(obj.rejected)} rejected); running afterDrain hooks`)
    } else if (msg?.startsWith('graceful: shutdown complete') === true) {
      const report = obj.report as Report
      reports.push(report)
      if (stage === 'stopping') phase = 'closed'
      note(`${stage === 'stopping' ? 'closed   ' : 'old pid  '}  shutdown complete (${report.reason}), exit code ${report.exitCode}`)
    } else if (msg?.startsWith('graceful:') === true && stage === 'stopping') {
      note(msg)
    }
  })
  void predecessorExited.then(() => note(`old pid    exited with code ${String(predecessorCode)}`))

  const [message] = await once(child, 'message') as [{ port: number }]
  let lastCount = 0
  let lastAt = performance.now()
  let ticks = 0
  let lost = 0
  const onEvent = (e: CheckEvent): void => {
    if (e.type === 'signal') {
      t0 = performance.now()
      stage = e.final ? 'stopping' : 'restarting'
      note(e.final ? `SIGTERM    sent to pid ${e.pid} under load` : `SIGHUP     sent to pid ${e.pid} under load: zero-downtime restart`)
    } else if (e.type === 'seen' && e.text.startsWith('readiness')) {
      note(`readiness  GET /readyz → ${e.text.replace(/^readiness \S+ answered /, '')}`)
    } else if (e.type === 'lost') {
      if (++lost <= 10) note(`lost       ${e.failure.class} on ${e.failure.kind}: ${e.failure.detail}`)
    } else if (e.type === 'progress' && (tty || ++ticks % 4 === 0)) {
      const p = e.progress
      const now = performance.now()
      const count = p.sent
      const rate = Math.round((count - lastCount) * 1000 / (now - lastAt))
      lastCount = count
      lastAt = now
      const line = `${String(rate).padStart(6)} req/s | in flight ${String(p.inFlight).padStart(3)} | 200: ${p.ok} | 503: ${p.unavailable} | failed: ${p.lost} | ${stage === 'stopping' ? `phase: ${phase}` : stage}`
      if (tty) process.stdout.write(`\r\x1b[2K  ${line}`)
      else console.log(`  ${line}`)
    }
  }
  const result: CheckResult = await check({
    child,
    port: message.port,
    slow: '/slow',
    stream: '/events',
    readiness: '/readyz',
    clients: { keepAlive: KEEP_ALIVE_CLIENTS, slow: SLOW_CLIENTS },
    restart: { signal: 'SIGHUP', times: 1, pidFile },
    signal: 'SIGTERM',
    duration: LOAD_MS,
    timeout: 20_000,
    onEvent
  })
  // The check leaves a process it did not start running: whatever the pid file names is killed if it still runs.
  if (result.exit === null) { try { process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL') } catch {} }
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5000))])
  await predecessorExited
  if (tty) process.stdout.write('\r\x1b[2K')

  const r = reports.find((x) => x.reason === 'SIGTERM') ?? null
  const restart = reports.find((x) => x.reason === 'restart') ?? null
  const t = result.totals
  const pids = [child.pid as number, ...result.restarts.flatMap((x) => x.to === null ? [] : [x.to])]
  const stream = result.stream
  const rows: Array<[string, string]> = [
    ['requests served (200)', String(t.ok)],
    ['rejected with 503 + Connection: close', String(t.unavailableClose)],
    ['failed', String(result.verdict.lost)],
    ['refused after the listener closed', `${t.refused} (never accepted: a load balancer retries them)`],
    ['processes that served /', `${pids.length} (${pids.join(' → ')})`],
    ['restart: old process drain', restart === null ? '?' : `${restart.inFlightAtStart} in flight, ${restart.completed} completed, ${restart.rejected} rejected, exit ${String(predecessorCode)}`],
    ['SSE stream', stream === null ? '?' : `${stream.events} events; ${stream.detail}`],
    ['in flight when the drain started', r === null ? '?' : String(r.inFlightAtStart)],
    ['drain time', drainedAt === 0 ? '?' : `${Math.round(drainedAt - drainStartedAt)} ms`],
    ['shutdown time (SIGTERM → closed)', r === null ? '?' : `${r.durationMs} ms`],
    ...(r?.hooks ?? []).map((h): [string, string] => [`hook: ${h.name}`, `${h.ms} ms${h.error === undefined ? '' : ` FAILED: ${h.error}`}`]),
    ['exit code', r === null ? '?' : String(r.exitCode)]
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  console.log(`\n  ${framework} — report`)
  console.log(`  ${'─'.repeat(width + 40)}`)
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`)
  const errors = new Map<string, number>()
  for (const f of result.failures) errors.set(`${f.class}: ${f.detail}`, (errors.get(`${f.class}: ${f.detail}`) ?? 0) + 1)
  for (const [err, n] of errors) console.log(`  ! ${n} × ${err}`)
  for (const c of result.verdict.causes) console.log(`  ! ${c.text}`)
  if (result.error !== null) console.log(`  ! the check could not run: ${result.error.message}`)
  const restarted = result.restarts[0]?.error === null ? 0 : 1
  const bad = result.verdict.lost + (predecessorCode === 0 ? 0 : 1) + (r?.exitCode === 0 ? 0 : 1) + restarted + (result.error === null ? 0 : 1)
  console.log(bad === 0 ? '  ✔ nothing lost across a restart and a shutdown, clean exits' : '  ✘ something went wrong')
  return bad
}

/** Reads the app's log lines: pino JSON (Fastify) or "msg {json}" (Express's console logger). */
function watchLogs (child: ChildProcess, onLine: (msg: string | undefined, obj: Record<string, unknown>) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue
    createInterface({ input: stream }).on('line', (line) => {
      if (line.startsWith('{')) {
        try {
          const obj = JSON.parse(line) as Record<string, unknown>
          return onLine(obj.msg as string | undefined, obj)
        } catch { /* not JSON after all */ }
      }
      const brace = line.indexOf(' {')
      if (line.startsWith('graceful:') && brace !== -1) {
        try {
          return onLine(line.slice(0, brace), JSON.parse(line.slice(brace + 1)) as Record<string, unknown>)
        } catch { /* fall through */ }
      }
      if (line.trim() !== '') onLine(line, {})
    })
  }
}

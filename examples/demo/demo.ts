// The live demo: starts a real app, drives load at it, sends SIGTERM midway and shows what happens.
// `pnpm demo` runs Fastify then Express; `pnpm demo --fastify` or `--express` runs one.
// Exits non-zero if any request failed or the app's exit code was not 0.
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

type Framework = 'fastify' | 'express'

interface Stats {
  ok: number
  rejected: number
  failed: number
  refused: number
  inFlight: number
  errors: Map<string, number>
  pids: Set<number>
}

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

const LOAD_MS = 1500
const RESTARTED_MS = 1000
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
  let t0 = 0
  let stage: 'serving' | 'restarting' | 'stopping' = 'serving'
  let phase = 'serving'
  const reports: Report[] = []
  let drainStartedAt = 0
  let drainedAt = 0
  let successorReady!: () => void
  const ready = new Promise<void>((resolve) => { successorReady = resolve })
  const stamp = () => t0 === 0 ? '         ' : `+${String(Math.round(performance.now() - t0)).padStart(5)} ms`
  const note = (line: string) => {
    if (tty) process.stdout.write('\r\x1b[2K')
    console.log(`  ${stamp()}  ${line}`)
  }
  watchLogs(child, (msg, obj) => {
    if (msg === 'graceful: restart requested') note('restart    a successor is starting with the listening socket')
    else if (msg === 'graceful: successor started') note(`restart    successor pid ${String(obj.pid)} started; the old process keeps serving`)
    else if (msg === 'graceful: successor ready') {
      note(`restart    successor pid ${String(obj.pid)} is ready and accepting; the old process drains`)
      successorReady()
    } else if (msg === 'graceful: restart failed') note(`restart    FAILED: ${String(obj.reason)}`)
    else if (msg === 'graceful: shutdown started') {
      if (stage === 'stopping') phase = 'lameduck'
      note(stage === 'stopping'
        ? `lameduck   readiness answers 503, everything else is served (${String(obj.inFlight)} in flight)`
        : `old pid    restart drain: requests on its open connections are served with Connection: close`)
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

  const [message] = await once(child, 'message') as [{ port: number }]
  const port = message.port
  const stats: Stats = { ok: 0, rejected: 0, failed: 0, refused: 0, inFlight: 0, errors: new Map(), pids: new Set() }
  let stop = false
  const loops: Array<Promise<void>> = []
  for (let i = 0; i < KEEP_ALIVE_CLIENTS; i++) loops.push(loop(port, '/', stats, () => stop))
  for (let i = 0; i < SLOW_CLIENTS; i++) loops.push(loop(port, '/slow', stats, () => stop))
  const sse = watchEvents(port)
  const readiness = watchReadiness(port, () => stop, () => note('readiness  GET /readyz → 503'))

  let lastCount = 0
  let lastAt = performance.now()
  const progress = setInterval(() => {
    const now = performance.now()
    const count = stats.ok + stats.rejected + stats.failed
    const rate = Math.round((count - lastCount) * 1000 / (now - lastAt))
    lastCount = count
    lastAt = now
    const line = `${String(rate).padStart(6)} req/s | in flight ${String(stats.inFlight).padStart(3)} | 200: ${stats.ok} | 503: ${stats.rejected} | failed: ${stats.failed} | pids: ${stats.pids.size} | ${stage === 'stopping' ? `phase: ${phase}` : stage}`
    if (tty) process.stdout.write(`\r\x1b[2K  ${line}`)
    else console.log(`  ${line}`)
  }, tty ? 250 : 1000)

  await new Promise((resolve) => setTimeout(resolve, LOAD_MS))
  t0 = performance.now()
  stage = 'restarting'
  note(`SIGHUP     sent to pid ${child.pid as number} under load: zero-downtime restart`)
  child.kill('SIGHUP')
  const [predecessorCode] = await Promise.race([
    Promise.all([once(child, 'exit'), ready]).then(([exit]) => exit as [number | null]),
    new Promise<[null]>((resolve) => setTimeout(() => resolve([null]), 30_000))
  ])
  note(`old pid    exited with code ${String(predecessorCode)}`)
  await new Promise((resolve) => setTimeout(resolve, RESTARTED_MS))

  const successor = Number(readFileSync(pidFile, 'utf8'))
  stage = 'stopping'
  t0 = performance.now()
  note(`SIGTERM    sent to pid ${successor} under load`)
  process.kill(successor, 'SIGTERM')
  // The successor inherited the pipe to our child's stdout: it closes when the last generation is gone.
  const killer = setTimeout(() => { try { process.kill(successor, 'SIGKILL') } catch {} }, 20_000)
  await once(child, 'close')
  clearTimeout(killer)
  stop = true
  await Promise.all(loops)
  const events = await sse
  await readiness
  clearInterval(progress)
  if (tty) process.stdout.write('\r\x1b[2K')

  const r = reports.find((x) => x.reason === 'SIGTERM') ?? null
  const restart = reports.find((x) => x.reason === 'restart') ?? null
  const rows: Array<[string, string]> = [
    ['requests served (200)', String(stats.ok)],
    ['rejected with 503 + Connection: close', String(stats.rejected)],
    ['failed', String(stats.failed)],
    ['refused after the listener closed', `${stats.refused} (never accepted: a load balancer retries them elsewhere)`],
    ['processes that served /', `${stats.pids.size} (${[...stats.pids].join(' → ')})`],
    ['restart: old process drain', restart === null ? '?' : `${restart.inFlightAtStart} in flight, ${restart.completed} completed, ${restart.rejected} rejected, exit ${String(predecessorCode)}`],
    ['SSE stream', events],
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
  for (const [err, n] of stats.errors) console.log(`  ! ${n} × ${err}`)
  const bad = stats.failed + (predecessorCode === 0 ? 0 : 1) + (r?.exitCode === 0 ? 0 : 1) + (stats.pids.size === 2 ? 0 : 1)
  console.log(bad === 0 ? '  ✔ nothing lost across a restart and a shutdown, clean exits' : '  ✘ something went wrong')
  return bad
}

/** One keep-alive client looping GET `path` until the server is gone or `done()`. */
async function loop (port: number, path: string, stats: Stats, done: () => boolean): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  try {
    while (!done()) {
      stats.inFlight++
      const outcome = await get(port, path, agent, stats.pids)
      stats.inFlight--
      if (outcome === 'refused') {
        stats.refused++
        return
      }
      if (outcome === 200) stats.ok++
      else if (outcome === 'rejected') stats.rejected++
      else {
        stats.failed++
        stats.errors.set(String(outcome), (stats.errors.get(String(outcome)) ?? 0) + 1)
      }
    }
  } finally {
    agent.destroy()
  }
}

function get (port: number, path: string, agent: http.Agent, pids?: Set<number>): Promise<200 | 'rejected' | 'refused' | string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        if (pids !== undefined && res.statusCode === 200 && path === '/') pids.add((JSON.parse(body) as { pid: number }).pid)
        if (res.statusCode === 200) resolve(200)
        else if (res.statusCode === 503 && res.headers.connection === 'close') resolve('rejected')
        else resolve(`status ${res.statusCode as number} connection ${res.headers.connection as string}`)
      })
      res.on('error', (err) => resolve(err.message))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : `${err.code ?? ''} ${err.message}`))
  })
}

/** An SSE client: how did its stream end? */
function watchEvents (port: number): Promise<string> {
  return new Promise((resolve) => {
    let events = 0
    let body = ''
    http.get({ host: '127.0.0.1', port, path: '/events' }, (res) => {
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
        events += chunk.split('\n\n').length - 1
      })
      res.on('end', () => resolve(body.includes('event: bye')
        ? `${events} events, then 'event: bye' at drain start; ended cleanly`
        : `${events} events, ended without a goodbye`))
      res.on('error', (err) => resolve(`failed: ${err.message}`))
    }).on('error', (err) => resolve(`failed: ${err.message}`))
  })
}

/** Polls readiness the way a load balancer would; reports the first 503. */
async function watchReadiness (port: number, done: () => boolean, on503: () => void): Promise<void> {
  const agent = new http.Agent({ keepAlive: false })
  let said = false
  while (!done()) {
    const outcome = await get(port, '/readyz', agent)
    if (outcome === 'refused') return
    if (!said && outcome !== 200) {
      said = true
      on503()
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
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

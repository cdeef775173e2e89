// The worker side of graceful-cluster, in @graceful/core: a supervised instance reports ready once every
// server it drains listens, drains or shuts down when told over IPC, ignores SIGHUP and refuses in-place
// restarts. The test process is the primary; the workers run test/fixtures/cluster-app.ts with tap's own
// loader (our execArgv), so they record coverage of the core and the adapters. They are slow to start on a
// busy machine: few workers, generous bounds.
//
// With one worker, the ports prove the readiness: node:cluster closes a listening socket once no worker
// listens on it, and a later listen(0) gets a new port. A new worker that reported ready before it listened
// on every server would find one of them on a new port after the old worker drained.
import t, { type Test } from 'tap'
import type { Worker } from 'node:cluster'
import { once } from 'node:events'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { supervise, type SuperviseOptions, type Supervisor } from '@graceful/cluster'
import { settleWithin } from './helpers/bounded.js'

const APP = fileURLToPath(new URL('./fixtures/cluster-app.ts', import.meta.url))
const BOUND_MS = 120_000

t.setTimeout(600_000)

interface Line {
  msg: string
  pid: number
  data: Record<string, unknown>
}

function get (port: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode, ...(JSON.parse(body) as Record<string, unknown>) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

class Run {
  readonly sup: Supervisor
  readonly lines: Line[] = []
  readonly log: Array<{ msg: string, obj: Record<string, unknown> }> = []
  readonly workers = new Map<number, Worker>()
  output = ''
  #waiters: Array<() => void> = []

  constructor (t: Test, env: Record<string, string>, options: Partial<SuperviseOptions> = {}) {
    const at = (obj: object, msg?: string): void => {
      this.log.push({ msg: msg as string, obj: obj as Record<string, unknown> })
      this.#wake()
    }
    this.sup = supervise({
      exec: APP,
      workers: 1,
      readyTimeout: BOUND_MS,
      killTimeout: 60_000,
      signals: false,
      silent: true,
      logger: { info: at, warn: at, error: at },
      env,
      ...options
    })
    this.sup.on('fork', (info: { pid: number }, worker: Worker) => {
      this.workers.set(info.pid, worker)
      let partial = ''
      worker.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        this.output += chunk
        const parts = (partial + chunk).split('\n')
        partial = parts.pop() as string
        for (const part of parts) {
          if (part.startsWith('{')) this.lines.push(JSON.parse(part) as Line)
        }
        this.#wake()
      })
      worker.process.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.output += chunk })
    })
    t.teardown(() => this.sup.kill('teardown').then(() => {}))
  }

  #wake (): void {
    for (const w of this.#waiters.splice(0)) w()
  }

  until<T> (check: () => T | undefined, what: string): Promise<T> {
    return settleWithin(new Promise<T>((resolve) => {
      const test = (): void => {
        const value = check()
        if (value !== undefined) resolve(value)
        else this.#waiters.push(test)
      }
      test()
    }), `${what}\nsupervisor: ${JSON.stringify(this.log.map((l) => l.msg))}\nworkers:\n${this.output}`, BOUND_MS)
  }

  /** The worker's own log line with this message, from `pid`. */
  line (msg: string, pid: number): Promise<Line> {
    return this.until(() => this.lines.find((l) => l.msg === msg && l.pid === pid), `'${msg}' from ${pid}`)
  }

  supervisorLog (msg: string, n = 1): Promise<{ msg: string, obj: Record<string, unknown> }> {
    return this.until(() => this.log.filter((l) => l.msg === msg)[n - 1], `'${msg}' #${n}`)
  }
}

t.test('Fastify on localhost, with an admin server, a metrics server and a scratch instance: ready only once all listen, and a roll keeps every port', async (t) => {
  const run = new Run(t, { FRAMEWORK: 'fastify', HOST: 'localhost', ADMIN: '1', METRICS: '1', SCRATCH: '1', RESTART: '1' })
  t.equal(await run.sup.ready, true)
  const [first] = run.sup.workers
  const pid = first?.pid as number
  const listening = await run.line('fixture: listening', pid)
  const { port, adminPort } = listening.data as { port: number, adminPort: number }
  t.match(await get(port), { status: 200, pid }, 'the app answers')
  t.match(await get(adminPort), { status: 200, admin: true, pid }, 'the admin server answers')
  t.ok(run.lines.some((l) => l.msg === 'fixture: scratch instance closed' && l.pid === pid), 'the scratch instance came and went first')
  const refused = await run.line('graceful: restart refused', pid)
  t.match(refused.data, { reason: /graceful-cluster worker: send SIGHUP to the supervisor/ }, 'in-place restart is refused in a worker')
  t.match(refused.data, { pid, worker: first?.id }, 'its lines name the worker and its pid')

  process.kill(pid, 'SIGHUP')
  await run.line('graceful: SIGHUP ignored in a graceful-cluster worker; the supervisor rolls the workers', pid)
  t.match(await get(port), { pid }, 'the worker lives on after a SIGHUP')

  t.match(await settleWithin(run.sup.roll(), 'roll', BOUND_MS), { ok: true, replaced: 1 })
  const [next] = run.sup.workers
  const nextPid = next?.pid as number
  t.not(nextPid, pid)
  const nextListening = await run.line('fixture: listening', nextPid)
  t.same(nextListening.data, { port, adminPort }, 'the new worker took the same two ports: it listened on both before the old one drained')
  t.match(await get(port), { pid: nextPid })
  t.match(await get(adminPort), { admin: true, pid: nextPid })
  t.match(run.lines.find((l) => l.msg === 'graceful: shutdown complete' && l.pid === pid), { data: { report: { reason: 'restart', exitCode: 0 } } }, 'the old worker ran a restart drain')

  // Messages that are not the supervisor's are ignored; a shutdown, then a drain, end the worker once.
  const worker = run.workers.get(nextPid) as Worker
  worker.send('hello')
  worker.send({ graceful: 'unknown' })
  t.match(await get(port), { pid: nextPid }, 'still serving')
  worker.send({ graceful: 'shutdown' })
  worker.send({ graceful: 'drain' })
  const exited = await run.until(() => run.log.find((l) => l.msg === 'graceful-cluster: worker exited' && l.obj.workerPid === nextPid), 'the worker exited')
  t.match(exited.obj, { code: 0, unexpected: true }, 'exit 0, on its own as far as the supervisor knows')
  t.match(run.lines.filter((l) => l.msg === 'graceful: shutdown complete' && l.pid === nextPid), [{ data: { report: { reason: 'shutdown' } } }], 'one shutdown, reason "shutdown"')
  t.equal(await run.sup.shutdown(), 0)
})

t.test('Express with an admin server listened after the first: ready only once both listen, a roll keeps both ports, a shutdown drains with its reason; every line names its worker', async (t) => {
  const run = new Run(t, { FRAMEWORK: 'express', ADMIN: '1', SCRATCH: '1', SUPERVISED_LOGGER: '1' })
  t.equal(await run.sup.ready, true)
  const pid = run.sup.workers[0]?.pid as number
  const { port, adminPort } = (await run.line('fixture: listening', pid)).data as { port: number, adminPort: number }
  t.match(await settleWithin(run.sup.roll(), 'roll', BOUND_MS), { ok: true, replaced: 1 })
  const nextPid = run.sup.workers[0]?.pid as number
  t.same((await run.line('fixture: listening', nextPid)).data, { port, adminPort }, 'the same two ports')
  t.match(await get(adminPort), { admin: true, pid: nextPid })
  // A signal that arrives once the worker's shutdown is over, while it waits for the supervisor's go-ahead to
  // exit, is the same shutdown: it neither kills the worker nor makes its exit unclean. The go-ahead is held
  // back until the worker has said what it did with the signal, or has died of it.
  const last = run.workers.get(nextPid) as Worker
  const died = once(last, 'exit')
  const send = last.send.bind(last) as (message: unknown) => boolean
  last.send = ((message: { graceful?: string }) => {
    if (message.graceful !== 'exit') return send(message)
    process.kill(nextPid, 'SIGTERM')
    void Promise.race([run.line('graceful: signal ignored, the shutdown is over and this worker exits', nextPid), died]).then(() => send(message))
    return true
  }) as Worker['send']
  t.equal(await run.sup.shutdown('SIGTERM'), 0)
  t.match(run.log.find((l) => l.msg === 'graceful-cluster: worker exited' && l.obj.workerPid === nextPid), { obj: { code: 0, signal: null } })
  t.match(run.lines.find((l) => l.msg === 'graceful: shutdown complete' && l.pid === nextPid), { data: { report: { reason: 'SIGTERM', exitCode: 0 } } })
  // Two workers' reports on one stdout: each graceful line says whose it is, as the supervisor's lines do.
  const ids = new Map(run.log.filter((l) => l.msg === 'graceful-cluster: worker started').map((l) => [l.obj.workerPid, l.obj.worker]))
  const graceful = run.lines.filter((l) => l.msg.startsWith('graceful: '))
  t.ok(graceful.length >= 8, `${graceful.length} graceful lines from the two workers`)
  t.same(graceful.filter((l) => l.data.pid !== l.pid || l.data.worker !== ids.get(l.pid)), [], 'each names its pid and worker id')
  t.same([...new Set(graceful.map((l) => l.data.worker))].sort(), [...ids.values()].sort(), 'both workers')
})

/** The status of one GET on a connection of its own. */
function status (port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode as number))
    }).on('error', reject)
  })
}

t.test('a roll does not wait for the workers\' lame-duck delay; a shutdown answers readiness 503 during it and serves the rest', async (t) => {
  // Ten minutes of delay: an old worker that waited for it in a roll would be killed at the kill timeout.
  const run = new Run(t, { FRAMEWORK: 'express', DELAY: '600000' }, { killTimeout: 20_000 })
  t.equal(await run.sup.ready, true)
  const pid = run.sup.workers[0]?.pid as number
  const { port } = (await run.line('fixture: listening', pid)).data as { port: number }
  t.equal(await status(port, '/readyz'), 200, 'ready while serving')
  t.match(await settleWithin(run.sup.roll(), 'roll', BOUND_MS), { ok: true, replaced: 1 })
  t.same(run.log.filter((l) => l.msg === 'graceful-cluster: worker did not exit in time, killed'), [], 'the old worker exited on its own')
  t.match(run.lines.find((l) => l.msg === 'graceful: shutdown complete' && l.pid === pid), { data: { report: { reason: 'restart', exitCode: 0 } } },
    'its restart drain skipped the delay')
  const next = run.sup.workers[0]?.pid as number
  t.equal(await status(port, '/readyz'), 200, 'the new worker is ready')

  void run.sup.shutdown('SIGTERM')
  await run.line('graceful: shutdown started', next)
  t.equal(await status(port, '/readyz'), 503, 'during the delay readiness answers 503')
  t.equal(await status(port, '/'), 200, 'and everything else is served as usual')
  t.equal(await run.sup.kill('test'), 1)
})

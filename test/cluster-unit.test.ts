// graceful-cluster's supervisor, driven in this process: the test process is the node:cluster primary, so the
// supervisor's code records coverage here. Its workers run test/fixtures/cluster-worker.mjs, a small
// node:http app on @graceful/core, with plain `node` (the built dist of the core: fast to start on a busy
// machine, no coverage of its own). test/cluster-worker.test.ts covers the worker side of the core with
// workers that record coverage; test/cluster.test.ts runs the bin against Fastify and Express apps.
import t, { type Test } from 'tap'
import type { Worker } from 'node:cluster'
import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { availableParallelism, tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import {
  BACKOFF_MIN_MS, BACKOFF_RESET_MS, CLUSTER_DEFAULTS, USAGE, jsonLogger, main, parseArgs, resolveSuperviseOptions, supervise,
  type Io, type SuperviseOptions, type Supervisor
} from '@graceful/cluster'
import { CHANNELS, type RestartMessage } from '@graceful/core'
import { settleWithin } from './helpers/bounded.js'

const WORKER = fileURLToPath(new URL('./fixtures/cluster-worker.mjs', import.meta.url))
// Generous: only proves "no hang" on a loaded machine.
const BOUND_MS = 30_000
const SIGNAL_NAMES = ['SIGHUP', 'SIGTERM', 'SIGINT'] as const
const MAX_WORKERS = 4 * availableParallelism()
const WORKERS_RANGE = `a whole number from 1 to ${MAX_WORKERS} \\(4 × the ${availableParallelism()} cores Node.js sees\\)`

t.setTimeout(300_000)

interface Entry {
  level: 'info' | 'warn' | 'error'
  msg: string
  obj: Record<string, unknown>
  /** performance.now() when it was logged. */
  at: number
}

interface Listening {
  fixture: 'listening'
  port: number
  pid: number
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-cluster-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** One GET on a connection of its own: the pid that answered. */
function get (port: number, path = '/'): Promise<{ status: number, pid: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode as number, pid: (JSON.parse(body) as { pid: number }).pid }))
      res.on('error', reject)
    })
    req.setTimeout(BOUND_MS, () => req.destroy(new Error(`no answer within ${BOUND_MS} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** A supervisor in this process, its log and its workers' output and ports. */
class Run {
  readonly sup: Supervisor
  readonly logs: Entry[] = []
  output = ''
  readonly listening: Listening[] = []
  /** Every message a worker sent, with its pid, in order. */
  readonly messages: Array<{ pid: number, message: unknown }> = []
  readonly workers = new Map<number, Worker>()
  #waiters: Array<() => void> = []

  constructor (t: Test, options: Partial<SuperviseOptions> = {}) {
    const at = (level: Entry['level']) => (obj: object, msg?: string): void => {
      this.logs.push({ level, msg: msg as string, obj: obj as Record<string, unknown>, at: performance.now() })
      this.#wake()
    }
    this.sup = supervise({
      exec: WORKER,
      execArgv: [],
      workers: 2,
      readyTimeout: 20_000,
      killTimeout: 20_000,
      signals: false,
      silent: true,
      logger: { info: at('info'), warn: at('warn'), error: at('error') },
      ...options,
      env: { _TAPJS_PROCESSINFO_COVERAGE_: '0', ...options.env }
    })
    this.sup.on('fork', (info: { pid: number }, worker: Worker) => {
      this.workers.set(info.pid, worker)
      for (const stream of [worker.process.stdout, worker.process.stderr]) {
        stream?.setEncoding('utf8').on('data', (chunk: string) => { this.output += chunk })
      }
      worker.on('message', (m: Listening) => {
        this.messages.push({ pid: info.pid, message: m })
        if (m.fixture !== 'listening') return
        this.listening.push(m)
        this.#wake()
      })
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
    }), `${what}\nlog: ${JSON.stringify(this.logs.map((l) => [l.msg, l.obj]))}\nworkers' output:\n${this.output}`, BOUND_MS)
  }

  logged (msg: string): Entry[] {
    return this.logs.filter((l) => l.msg === msg)
  }

  /** The `n`th (from 1) entry with this message. */
  waitLog (msg: string, n = 1): Promise<Entry> {
    return this.until(() => this.logged(msg)[n - 1], `log line '${msg}' #${n}`)
  }

  /**
   * The port the workers share (they all listen on the same one, port 0 included). Once the last worker
   * listening on it is gone, the primary closes that socket, and the next listen(0) gets a new port.
   */
  port (): Promise<number> {
    return this.until(() => this.listening.at(-1)?.port, 'a worker listening')
  }

  pids (): number[] {
    return this.sup.workers.map((w) => w.pid).sort()
  }

  /** Fresh connections until each of `pids` has answered (round-robin takes turns); bounded. */
  async served (pids: number[]): Promise<void> {
    const port = await this.port()
    const seen = new Set<number>()
    for (let i = 0; i < 50 && !pids.every((p) => seen.has(p)); i++) {
      const answer = await get(port)
      if (answer.status !== 200) throw new Error(`status ${answer.status}`)
      seen.add(answer.pid)
    }
    if (!pids.every((p) => seen.has(p))) throw new Error(`not every worker answered: wanted ${pids.join(', ')}, saw ${[...seen].join(', ')}`)
  }

  /** Log messages in order, keeping only `msgs`. */
  sequence (msgs: string[]): Array<[string, unknown]> {
    return this.logs.filter((l) => msgs.includes(l.msg)).map((l) => [l.msg, l.obj.workerPid])
  }
}

t.test('the first workers start, report ready and share one port; a shutdown drains them and resolves 0', async (t) => {
  const run = new Run(t)
  t.equal(await run.sup.ready, true, 'ready resolves true')
  t.equal(run.logged('graceful-cluster: worker started').length, 2)
  t.equal(run.logged('graceful-cluster: worker ready').length, 2)
  t.match(run.logged('graceful-cluster: ready'), [{ obj: { workers: 2 } }])
  const workers = run.sup.workers
  t.match(workers, [{ state: 'ready' }, { state: 'ready' }], 'both ready')
  t.equal(new Set(run.listening.map((l) => l.port)).size, 1, 'one port for both')
  await run.served(run.pids())
  t.pass('both workers answered on it')

  t.equal(await settleWithin(run.sup.shutdown('test'), 'shutdown', BOUND_MS), 0, 'the shutdown resolves 0')
  t.equal(await run.sup.closed, 0)
  t.equal(await run.sup.shutdown(), 0, 'a second call resolves the same')
  t.match(run.logged('graceful-cluster: shutting down'), [{ obj: { reason: 'test', workers: 2 } }])
  t.match(run.logged('graceful-cluster: worker draining'), [{ obj: { reason: 'test' } }, { obj: { reason: 'test' } }])
  t.match(run.logged('graceful-cluster: worker exited'), [{ level: 'info', obj: { code: 0 } }, { level: 'info', obj: { code: 0 } }])
  t.match(run.logged('graceful-cluster: stopped'), [{ level: 'info', obj: { exitCode: 0 } }])
  t.same(run.sup.workers, [], 'no worker left')
  t.notOk(workers.some((w) => alive(w.pid)), 'every worker process is gone')
  t.match(run.output, /"reason":"test"/, 'the workers shut down with the reason they were given')
})

/** Every message on the graceful:restart channel while the test runs. */
function restartEvents (t: Test): RestartMessage[] {
  const events: RestartMessage[] = []
  const listener = (message: unknown): void => { events.push(message as RestartMessage) }
  subscribe(CHANNELS.restart, listener)
  t.teardown(() => { unsubscribe(CHANNELS.restart, listener) })
  return events
}

t.test('a roll replaces each worker in turn: the new one is ready before an old one drains, and the old one is gone before the next starts', async (t) => {
  const run = new Run(t)
  const events = restartEvents(t)
  await run.sup.ready
  const before = run.pids()
  const result = await settleWithin(run.sup.roll('test'), 'roll', BOUND_MS)
  t.match(result, { ok: true, replaced: 2 })
  t.type(result.ms, 'number')
  const after = run.pids()
  t.equal(after.length, 2, 'two workers again')
  t.notOk(after.some((p) => before.includes(p)), 'both are new')
  t.notOk(before.some(alive), 'the old ones are gone')
  await run.served(after)
  t.pass('the new workers serve')

  const seq = run.sequence(['graceful-cluster: worker started', 'graceful-cluster: worker ready', 'graceful-cluster: worker draining', 'graceful-cluster: worker exited'])
  const [a, b] = after as [number, number]
  const [oldA, oldB] = run.logged('graceful-cluster: worker draining').map((e) => e.obj.workerPid as number) as [number, number]
  t.same(seq.slice(4), [
    ['graceful-cluster: worker started', a], ['graceful-cluster: worker ready', a],
    ['graceful-cluster: worker draining', oldA], ['graceful-cluster: worker exited', oldA],
    ['graceful-cluster: worker started', b], ['graceful-cluster: worker ready', b],
    ['graceful-cluster: worker draining', oldB], ['graceful-cluster: worker exited', oldB]
  ], 'fork, ready, drain, exit; then the next')
  t.same([oldA, oldB].sort(), before)
  t.match(run.logged('graceful-cluster: worker draining'), [{ obj: { reason: 'roll' } }, { obj: { reason: 'roll' } }])
  t.match(run.logged('graceful-cluster: roll started'), [{ obj: { trigger: 'test', workers: 2 } }])
  t.match(run.logged('graceful-cluster: roll done'), [{ obj: { replaced: 2 } }])
  t.match(run.output, /"reason":"restart"/, 'the old workers ran a restart drain')
  t.same(events, [{ event: 'roll-started', pid: process.pid }, { event: 'roll-done', pid: process.pid }],
    'graceful:restart saw the roll start and end')
  t.equal(await run.sup.shutdown(), 0)
})

t.test('rolls under new-connection load leave no connection hanging: a drained worker exits only once the supervisor answers', async (t) => {
  // node:cluster's primary may hand a connection to a worker whose listener close it has not seen yet; a
  // worker that exited right after its (fast) drain left such connections hanging, unanswered. 30 drains
  // without the exit handshake left 17 of them in a stress run; with it, none.
  const run = new Run(t, { workers: 2 })
  await run.sup.ready
  const port = await run.port()
  let stop = false
  const failures: string[] = []
  let ok = 0
  const client = async (): Promise<void> => {
    while (!stop) {
      try {
        await settleWithin(get(port), 'an answer', 5000)
        ok++
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  }
  const clients = Array.from({ length: 4 }, client)
  const drained: number[] = []
  for (let i = 0; i < 4; i++) {
    const before = run.pids()
    t.match(await run.sup.roll(), { ok: true, replaced: 2 })
    drained.push(...before)
  }
  stop = true
  await Promise.all(clients)
  t.comment(`${ok} requests over 8 drains`)
  t.same(failures, [], 'every request answered')
  for (const pid of drained) {
    const sent = run.messages.filter((m) => m.pid === pid).map((m) => m.message)
    t.match(sent.at(-1), { graceful: 'drained', code: 0 }, `worker ${pid} said it had drained, last`)
  }
  t.equal(await run.sup.shutdown(), 0)
})

t.test('a roll is refused before the first workers are ready, while another roll runs, and once the shutdown started', async (t) => {
  const run = new Run(t, { workers: 1 })
  // Nobody subscribes to graceful:restart here: nothing may be published (or built).
  const restart = channel(CHANNELS.restart)
  const published: unknown[] = []
  restart.publish = (message: unknown) => { published.push(message) }
  // An own property would shadow the prototype's publish, which subscribing switches: remove it.
  t.teardown(() => { delete (restart as { publish?: unknown }).publish })
  t.notOk(restart.hasSubscribers, 'no subscriber')
  t.match(await run.sup.roll(), { ok: false, reason: 'the first workers are not ready yet', replaced: 0 })
  await run.sup.ready
  const first = run.sup.roll('first')
  t.match(await run.sup.roll('second'), { ok: false, reason: 'a roll is already in progress' })
  t.match(await first, { ok: true, replaced: 1 })
  const closed = run.sup.shutdown()
  t.match(await run.sup.roll('late'), { ok: false, reason: 'the supervisor is shutting down' })
  t.match(run.logged('graceful-cluster: roll refused'), [
    { level: 'warn', obj: { trigger: 'roll' } }, { obj: { trigger: 'second' } }, { obj: { trigger: 'late' } }
  ])
  t.equal(run.logged('graceful-cluster: roll started').length, 1, 'one roll ran')
  t.same(published, [], 'the roll published nothing without a subscriber')
  t.equal(await closed, 0)
})

t.test('a new worker that throws at start-up fails the roll, the old workers keep serving, and the next roll succeeds', async (t) => {
  const fail = join(tempDir(t), 'fail')
  const run = new Run(t, { env: { FAIL_FILE: fail } })
  await run.sup.ready
  const before = run.pids()
  writeFileSync(fail, '')
  const events = restartEvents(t)
  const result = await settleWithin(run.sup.roll(), 'roll', BOUND_MS)
  t.same(events, [{ event: 'roll-started', pid: process.pid }, { event: 'roll-failed', pid: process.pid, reason: result.reason }],
    'graceful:restart saw the roll fail, with the reason')
  t.match(result, { ok: false, replaced: 0, reason: /exited \(code 1\) before it was ready/ })
  t.match(run.logged('graceful-cluster: roll failed'), [{ level: 'error', obj: { reason: result.reason, replaced: 0 } }])
  t.match(run.logged('graceful-cluster: worker exited'), [{ level: 'error', obj: { code: 1, unexpected: true } }], 'the crash is logged')
  t.equal(run.logged('graceful-cluster: worker draining').length, 0, 'no old worker was told to drain')
  t.same(run.pids(), before, 'the old workers run on')
  await run.served(before)
  t.pass('and serve')

  unlinkSync(fail)
  t.match(await run.sup.roll(), { ok: true, replaced: 2 })
  t.notOk(run.pids().some((p) => before.includes(p)), 'replaced by the next roll')
  t.equal(await run.sup.shutdown(), 0)
})

t.test('a new worker not ready within readyTimeout fails the roll and is stopped; a replacement that hangs is stopped and replaced', async (t) => {
  const hang = join(tempDir(t), 'hang')
  const run = new Run(t, { workers: 1, readyTimeout: 4000, env: { HANG_FILE: hang } })
  await run.sup.ready
  const [first] = run.pids() as [number]
  writeFileSync(hang, '')
  const result = await settleWithin(run.sup.roll(), 'roll', BOUND_MS)
  t.match(result, { ok: false, reason: /was not ready within 4000 ms/ })
  const stopped = run.logged('graceful-cluster: stopping a worker that is not ready')
  t.match(stopped, [{ obj: { reason: 'roll failed' } }], 'the new worker was stopped')
  t.notOk(alive(stopped[0]?.obj.workerPid as number), 'and is gone')
  t.same(run.pids(), [first], 'the old worker runs on')
  await run.served([first])

  // The next worker to start hangs too: it is stopped at the timeout and replaced like a crashed one.
  process.kill(first, 'SIGKILL')
  const notReady = await run.waitLog('graceful-cluster: worker not ready in time, stopping it')
  t.match(notReady, { level: 'warn', obj: { readyTimeout: 4000 } })
  unlinkSync(hang)
  const exits = await run.until(() => {
    const e = run.logged('graceful-cluster: worker exited').filter((x) => x.obj.unexpected === true)
    return e.length >= 2 ? e : undefined
  }, 'the hanging replacement exited')
  t.match(exits, [{ obj: { workerPid: first, signal: 'SIGKILL' } }, { obj: { workerPid: notReady.obj.workerPid } }])
  t.ok((exits[1]?.obj.restartInMs as number) > (exits[0]?.obj.restartInMs as number), 'with a longer backoff')
  await run.until(() => run.sup.workers.find((w) => w.state === 'ready'), 'a replacement ready')
  await run.served(run.pids())
  t.pass('the replacement serves')
  t.equal(await run.sup.shutdown(), 0)
})

t.test('a crashed worker is replaced after a backoff that doubles with each crash in a row', async (t) => {
  const fail = join(tempDir(t), 'fail')
  const run = new Run(t, { workers: 1, env: { FAIL_FILE: fail } })
  await run.sup.ready
  const [first] = run.pids() as [number]
  writeFileSync(fail, '')
  process.kill(first, 'SIGKILL')
  // The replacements throw at start-up; each exit doubles the next delay.
  await run.waitLog('graceful-cluster: worker exited', 3)
  unlinkSync(fail)
  await run.until(() => run.sup.workers.find((w) => w.state === 'ready'), 'a replacement ready')
  const exits = run.logged('graceful-cluster: worker exited')
  t.match(exits[0], { level: 'error', obj: { workerPid: first, signal: 'SIGKILL', unexpected: true, restartInMs: BACKOFF_MIN_MS } })
  t.same(exits.slice(0, 3).map((e) => e.obj.restartInMs), [BACKOFF_MIN_MS, 2 * BACKOFF_MIN_MS, 4 * BACKOFF_MIN_MS], '100, 200, 400 ms')
  t.ok(exits.slice(1).every((e) => e.obj.code === 1), 'the replacements failed at start-up')
  const delays = exits.map((e) => e.obj.restartInMs as number)
  t.ok(delays.every((d, i) => i === 0 || d === 2 * (delays[i - 1] as number)), `doubling: ${delays.join(', ')}`)
  await run.served(run.pids())
  t.pass('serving resumes')
  t.equal(await run.sup.shutdown(), 0)
})

t.test('a worker that had run a while before it crashed starts the backoff over', async (t) => {
  const run = new Run(t, { workers: 2 })
  await run.sup.ready
  const [a, b] = run.pids() as [number, number]
  process.kill(a, 'SIGKILL')
  await run.waitLog('graceful-cluster: worker ready', 3)
  const young = run.sup.workers.find((w) => w.pid !== b) as { pid: number }
  process.kill(young.pid, 'SIGKILL')
  await run.waitLog('graceful-cluster: worker ready', 4)
  // The deadline that matters here has to pass: b has to have run BACKOFF_RESET_MS.
  const started = run.logged('graceful-cluster: worker started').find((e) => e.obj.workerPid === b) as Entry
  await sleep(Math.max(0, started.at + BACKOFF_RESET_MS + 100 - performance.now()))
  process.kill(b, 'SIGKILL')
  await run.waitLog('graceful-cluster: worker ready', 5)
  t.same(run.logged('graceful-cluster: worker exited').map((e) => [e.obj.workerPid, e.obj.restartInMs]),
    [[a, BACKOFF_MIN_MS], [young.pid, 2 * BACKOFF_MIN_MS], [b, BACKOFF_MIN_MS]])
  t.equal(await run.sup.shutdown(), 0)
})

t.test('a worker that does not exit within killTimeout after it was told to shut down is killed, and the exit code is 1', async (t) => {
  const run = new Run(t, { workers: 1, killTimeout: 1000, env: { HOOK: 'hang' } })
  await run.sup.ready
  const [pid] = run.pids() as [number]
  const start = performance.now()
  t.equal(await settleWithin(run.sup.shutdown(), 'shutdown', BOUND_MS), 1)
  t.ok(performance.now() - start >= 900, 'not before the kill timeout')
  t.match(run.logged('graceful-cluster: worker did not exit in time, killed'), [{ level: 'warn', obj: { workerPid: pid, killTimeout: 1000 } }])
  t.match(run.logged('graceful-cluster: worker exited'), [{ level: 'warn', obj: { workerPid: pid, signal: 'SIGKILL' } }])
  t.match(run.logged('graceful-cluster: stopped'), [{ level: 'warn', obj: { exitCode: 1 } }])
})

t.test('a worker whose shutdown is not clean makes the exit code 1', async (t) => {
  const run = new Run(t, { workers: 2, env: { HOOK: 'fail' } })
  await run.sup.ready
  t.equal(await run.sup.shutdown(), 1)
  t.match(run.logged('graceful-cluster: worker exited'), [{ level: 'warn', obj: { code: 1 } }, { level: 'warn', obj: { code: 1 } }])
})

t.test('kill() SIGKILLs every worker at once, even mid-drain, and resolves 1', async (t) => {
  const run = new Run(t, { workers: 2, env: { HOOK: 'hang' } })
  await run.sup.ready
  const pids = run.pids()
  void run.sup.shutdown()
  await run.waitLog('graceful-cluster: worker draining', 2)
  t.equal(await settleWithin(run.sup.kill('test'), 'kill', BOUND_MS), 1)
  t.match(run.logged('graceful-cluster: killing every worker'), [{ level: 'error', obj: { reason: 'test', workers: 2 } }])
  t.match(run.logged('graceful-cluster: worker exited'), [{ obj: { signal: 'SIGKILL' } }, { obj: { signal: 'SIGKILL' } }])
  t.notOk(pids.some(alive))
})

t.test('kill() before any shutdown shuts down and kills', async (t) => {
  const run = new Run(t, { workers: 1 })
  await run.sup.ready
  t.equal(await run.sup.kill(), 1)
  t.match(run.logged('graceful-cluster: shutting down'), [{ obj: { reason: 'kill' } }])
})

t.test('first workers that fail at start-up stop the supervisor with exit code 1', async (t) => {
  const fail = join(tempDir(t), 'fail')
  writeFileSync(fail, '')
  const run = new Run(t, { workers: 2, env: { FAIL_FILE: fail } })
  t.equal(await run.sup.ready, false, 'ready resolves false')
  t.equal(await run.sup.closed, 1)
  t.match(run.logged('graceful-cluster: start-up failed'), [{ level: 'error', obj: { reason: /exited \(code 1\)/ } }])
  t.equal(run.logged('graceful-cluster: start-up failed').length, 1, 'said once')
  t.equal(run.logged('graceful-cluster: worker started').length, 2, 'no replacement was started')
})

t.test('first workers not ready within readyTimeout stop the supervisor with exit code 1', async (t) => {
  const hang = join(tempDir(t), 'hang')
  writeFileSync(hang, '')
  const run = new Run(t, { workers: 1, readyTimeout: 1500, env: { HANG_FILE: hang } })
  t.equal(await run.sup.ready, false)
  t.equal(await run.sup.closed, 1)
  t.match(run.logged('graceful-cluster: start-up failed'), [{ obj: { reason: /was not ready within 1500 ms/ } }])
  t.match(run.logged('graceful-cluster: stopping a worker that is not ready'), [{ obj: { reason: 'start-up failed' } }])
})

t.test('a shutdown before the first fork starts nothing and resolves 0', async (t) => {
  const run = new Run(t)
  t.equal(await run.sup.shutdown('early'), 0)
  t.equal(await run.sup.ready, false)
  t.same(run.logged('graceful-cluster: worker started'), [])
})

t.test('a shutdown during start-up stops the workers that are not ready yet; their exits do not count', async (t) => {
  const run = new Run(t, { workers: 2 })
  await run.waitLog('graceful-cluster: worker started', 2)
  t.equal(await run.sup.shutdown('early'), 0)
  t.equal(await run.sup.ready, false)
  t.equal(run.logged('graceful-cluster: start-up failed').length, 0, 'no start-up failure is claimed')
  t.ok(run.logged('graceful-cluster: stopping a worker that is not ready').length >= 1)
})

t.test('a shutdown as the last first worker reports ready ends the start-up', async (t) => {
  const run = new Run(t, { workers: 1 })
  let closed: Promise<number> | undefined
  run.sup.once('ready', () => { closed = run.sup.shutdown('at ready') })
  t.equal(await run.sup.ready, false, 'not started')
  t.equal(await closed, 0)
  t.same(run.logged('graceful-cluster: ready'), [])
})

t.test('a shutdown while the roll waits for a new worker ends the roll', async (t) => {
  const run = new Run(t, { workers: 1 })
  await run.sup.ready
  const rolling = run.sup.roll()
  await run.waitLog('graceful-cluster: worker started', 2)
  const closed = run.sup.shutdown('mid-roll')
  t.match(await rolling, { ok: false, reason: 'the supervisor is shutting down', replaced: 0 })
  t.equal(await closed, 0)
})

t.test('a shutdown while the roll drains an old worker ends the roll after that worker', async (t) => {
  const run = new Run(t, { workers: 2, env: { HOOK: 'slow', HOOK_MS: '1500' } })
  await run.sup.ready
  const rolling = run.sup.roll()
  await run.waitLog('graceful-cluster: worker draining')
  const closed = run.sup.shutdown('mid-drain')
  t.match(await rolling, { ok: false, reason: 'the supervisor is shutting down', replaced: 1 })
  t.equal(await closed, 0)
  t.equal(run.logged('graceful-cluster: worker started').length, 3, 'no second new worker')
})

t.test('workers that crash during a roll are made up for when it ends', async (t) => {
  const run = new Run(t, { workers: 2, env: { HOOK: 'slow', HOOK_MS: '1500' } })
  await run.sup.ready
  const before = run.pids()
  const rolling = run.sup.roll()
  const draining = await run.waitLog('graceful-cluster: worker draining')
  // The old worker that is not draining yet crashes: the roll replaces it anyway.
  const other = before.find((p) => p !== draining.obj.workerPid) as number
  process.kill(other, 'SIGKILL')
  t.match(await rolling, { ok: true, replaced: 2 })
  t.match(run.logged('graceful-cluster: worker exited').find((e) => e.obj.workerPid === other), { level: 'error', obj: { unexpected: true } })
  t.notOk('restartInMs' in ((run.logged('graceful-cluster: worker exited').find((e) => e.obj.workerPid === other) as Entry).obj), 'no replacement of its own')
  t.equal(run.sup.workers.length, 2)
  t.equal(await run.sup.shutdown(), 0)
})

t.test('a new worker that crashes during a roll is replaced once the roll ends', async (t) => {
  const run = new Run(t, { workers: 2, env: { HOOK: 'slow', HOOK_MS: '1500' } })
  await run.sup.ready
  const before = run.pids()
  const rolling = run.sup.roll()
  const draining = await run.waitLog('graceful-cluster: worker draining')
  const fresh = run.sup.workers.find((w) => !before.includes(w.pid) && w.state === 'ready') as { pid: number }
  t.ok(draining.obj.workerPid !== fresh.pid)
  process.kill(fresh.pid, 'SIGKILL')
  t.match(await rolling, { ok: true })
  await run.until(() => run.sup.workers.filter((w) => w.state === 'ready').length === 2 ? true : undefined, 'two ready workers again')
  t.equal(await run.sup.shutdown(), 0)
})

t.test('a channel error on a worker is logged, not thrown', async (t) => {
  const run = new Run(t, { workers: 1 })
  await run.sup.ready
  const [pid] = run.pids() as [number]
  run.workers.get(pid)?.emit('error', new Error('channel closed on purpose'))
  t.match(run.logged('graceful-cluster: worker channel error'), [{ level: 'warn', obj: { workerPid: pid, error: 'channel closed on purpose' } }])
  t.equal(await run.sup.shutdown(), 0)
})

t.test('with signals: SIGHUP rolls, SIGTERM shuts down, a second signal kills; the handlers are removed at the end', async (t) => {
  const baseline = SIGNAL_NAMES.map((s) => process.listenerCount(s))
  // Each drain takes 3 s: long enough for the second signal to arrive during the shutdown's.
  const run = new Run(t, { workers: 1, signals: true, env: { HOOK: 'slow', HOOK_MS: '3000' } })
  t.same(SIGNAL_NAMES.map((s) => process.listenerCount(s)), baseline.map((n) => n + 1), 'one handler each')
  await run.sup.ready
  process.emit('SIGHUP', 'SIGHUP')
  await run.waitLog('graceful-cluster: roll done')
  t.match(run.logged('graceful-cluster: roll started'), [{ obj: { trigger: 'SIGHUP' } }])
  process.emit('SIGTERM', 'SIGTERM')
  await run.waitLog('graceful-cluster: worker draining', 2)
  t.match(run.logged('graceful-cluster: shutting down'), [{ obj: { reason: 'SIGTERM' } }])
  process.emit('SIGINT', 'SIGINT')
  t.equal(await run.sup.closed, 1, 'the second signal made it 1')
  t.match(run.logged('graceful-cluster: killing every worker'), [{ obj: { reason: 'second signal SIGINT' } }])
  t.same(SIGNAL_NAMES.map((s) => process.listenerCount(s)), baseline, 'handlers removed')
})

t.test('options are checked: a bad one throws a TypeError with a code naming it', async (t) => {
  const cases: Array<[unknown, string, RegExp]> = [
    [null, 'GRACEFUL_ERR_OPTIONS', /options must be an object/],
    [{ exec: 'a.js', wrokers: 2 }, 'GRACEFUL_ERR_OPTION_UNKNOWN', /unknown option 'wrokers'/],
    [{}, 'GRACEFUL_ERR_CLUSTER_OPTION', /option 'exec' must be the app's file path, instead got 'undefined'/],
    [{ exec: '' }, 'GRACEFUL_ERR_CLUSTER_OPTION', /'exec'/],
    [{ exec: 'a.js', args: 'x' }, 'GRACEFUL_ERR_CLUSTER_OPTION', /option 'args' must be an array of strings, instead got '"x"'/],
    [{ exec: 'a.js', args: [1] }, 'GRACEFUL_ERR_CLUSTER_OPTION', /'args'/],
    [{ exec: 'a.js', workers: 0 }, 'GRACEFUL_ERR_CLUSTER_OPTION', new RegExp(`option 'workers' must be ${WORKERS_RANGE}, instead got '0'`)],
    [{ exec: 'a.js', workers: MAX_WORKERS + 1 }, 'GRACEFUL_ERR_CLUSTER_OPTION', new RegExp(`option 'workers' must be ${WORKERS_RANGE}, instead got '${MAX_WORKERS + 1}'`)],
    [{ exec: 'a.js', workers: 1_000_000 }, 'GRACEFUL_ERR_CLUSTER_OPTION', /'workers'/],
    [{ exec: 'a.js', workers: 1.5 }, 'GRACEFUL_ERR_CLUSTER_OPTION', /'workers'/],
    [{ exec: 'a.js', workers: '2' }, 'GRACEFUL_ERR_CLUSTER_OPTION', /'workers'/],
    [{ exec: 'a.js', readyTimeout: 0 }, 'GRACEFUL_ERR_CLUSTER_OPTION', /option 'readyTimeout' must be a whole number of ms from 1 to 2147483647/],
    [{ exec: 'a.js', readyTimeout: 2 ** 31 }, 'GRACEFUL_ERR_CLUSTER_OPTION', /'readyTimeout'/],
    [{ exec: 'a.js', killTimeout: Infinity }, 'GRACEFUL_ERR_CLUSTER_OPTION', /option 'killTimeout'.*instead got 'Infinity'/],
    [{ exec: 'a.js', execArgv: '--inspect' }, 'GRACEFUL_ERR_CLUSTER_OPTION', /'execArgv'/],
    [{ exec: 'a.js', env: { A: 1 } }, 'GRACEFUL_ERR_CLUSTER_OPTION', /option 'env' must be an object of strings/],
    [{ exec: 'a.js', env: 'A=1' }, 'GRACEFUL_ERR_CLUSTER_OPTION', /'env'/],
    [{ exec: 'a.js', env: new Map() }, 'GRACEFUL_ERR_CLUSTER_OPTION', /'env'/],
    [{ exec: 'a.js', logger: console.log }, 'GRACEFUL_ERR_LOGGER', /option 'logger'/],
    [{ exec: 'a.js', logger: null }, 'GRACEFUL_ERR_LOGGER', /option 'logger'/],
    [{ exec: 'a.js', signals: 'yes' }, 'GRACEFUL_ERR_CLUSTER_OPTION', /option 'signals' must be a boolean/],
    [{ exec: 'a.js', silent: 1 }, 'GRACEFUL_ERR_CLUSTER_OPTION', /option 'silent' must be a boolean/],
    // Checked last, once the values are right: the app must exist.
    [{ exec: 'a.js' }, 'GRACEFUL_ERR_CLUSTER_APP', /^graceful-cluster: the app 'a\.js' does not exist: node would look for .*a\.js \(a file, with \.js/],
    [{ exec: WORKER + '.nope', workers: 1 }, 'GRACEFUL_ERR_CLUSTER_APP', /'.*cluster-worker\.mjs\.nope'/]
  ]
  for (const [input, code, message] of cases) {
    t.throws(() => resolveSuperviseOptions(input), { name: 'TypeError', code, message }, `${JSON.stringify(input) ?? String(input)} → ${code}`)
  }
  t.throws(() => supervise({ exec: 'a.js', workers: -1 }), { code: 'GRACEFUL_ERR_CLUSTER_OPTION' }, 'supervise() checks them first')
  t.throws(() => supervise({ exec: 'a.js', logger: false }), { code: 'GRACEFUL_ERR_CLUSTER_APP' }, 'and the app')
})

t.test('the app is found as node finds a script: the file, the file with .js, a folder with index.js or a package.json main', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'app.js'), '')
  mkdirSync(join(dir, 'site'))
  writeFileSync(join(dir, 'site', 'index.js'), '')
  mkdirSync(join(dir, 'pkg'))
  writeFileSync(join(dir, 'pkg', 'package.json'), '{"main":"server.js"}')
  writeFileSync(join(dir, 'pkg', 'server.js'), '')
  mkdirSync(join(dir, 'empty'))
  for (const exec of ['app.js', 'app', 'site', 'pkg', WORKER]) {
    const path = exec === WORKER ? WORKER : join(dir, exec)
    t.equal(resolveSuperviseOptions({ exec: path, logger: false }).exec, path, `${exec}: kept as given`)
  }
  t.equal(resolveSuperviseOptions({ exec: relative(process.cwd(), WORKER), logger: false }).exec, relative(process.cwd(), WORKER), 'a path relative to the working directory')
  t.throws(() => resolveSuperviseOptions({ exec: join(dir, 'empty'), logger: false }), { code: 'GRACEFUL_ERR_CLUSTER_APP' }, 'a folder without an entry point')
  t.throws(() => resolveSuperviseOptions({ exec: join(dir, 'ap'), logger: false }), { code: 'GRACEFUL_ERR_CLUSTER_APP' }, 'a typo')
})

t.test('at most 4 workers per core: more only compete for the CPU, and a typo must not fork a million processes', async (t) => {
  t.equal(resolveSuperviseOptions({ exec: WORKER, workers: MAX_WORKERS, logger: false }).workers, MAX_WORKERS)
  t.throws(() => resolveSuperviseOptions({ exec: WORKER, workers: MAX_WORKERS + 1, logger: false }), { code: 'GRACEFUL_ERR_CLUSTER_OPTION' })
  t.same(parseArgs(['--workers', String(MAX_WORKERS), 'app.js']), { help: false, options: { workers: MAX_WORKERS, exec: 'app.js', args: [] } })
  t.throws(() => parseArgs(['--workers', '1000000', 'app.js']), {
    code: 'GRACEFUL_ERR_CLUSTER_FLAG', message: new RegExp(`flag '--workers' must be ${WORKERS_RANGE}, instead got '1000000'`)
  })
})

t.test('options have defaults: one worker per core, 60 s to be ready, 30 s to exit, our execArgv, signals on', async (t) => {
  const o = resolveSuperviseOptions({ exec: WORKER, logger: false })
  t.match(o, { exec: WORKER, args: [], readyTimeout: CLUSTER_DEFAULTS.readyTimeout, killTimeout: CLUSTER_DEFAULTS.killTimeout, env: {}, signals: true, silent: false })
  t.equal(CLUSTER_DEFAULTS.readyTimeout, 60_000)
  t.equal(CLUSTER_DEFAULTS.killTimeout, 30_000)
  const { availableParallelism } = await import('node:os')
  t.equal(o.workers, availableParallelism())
  t.same(o.execArgv, process.execArgv)
  t.doesNotThrow(() => o.logger.info({}, 'silent'), 'logger false is a silent logger')
  const env = Object.assign(Object.create(null) as Record<string, string>, { A: 'b' })
  const given = resolveSuperviseOptions({ exec: WORKER, args: ['--port', '3000'], workers: 3, readyTimeout: 5, killTimeout: 6, execArgv: [], env, signals: false, silent: true, logger: undefined })
  t.match(given, { args: ['--port', '3000'], workers: 3, readyTimeout: 5, killTimeout: 6, execArgv: [], signals: false, silent: true })
  t.same({ ...given.env }, { A: 'b' }, 'a null-prototype env is fine')
})

t.test('outside graceful-cluster a supervised logger is the logger itself', async (t) => {
  const { supervisedLogger } = await import('../packages/core/src/supervised.js')
  const logger = { info: () => {}, warn: () => {}, error: () => {} }
  t.equal(supervisedLogger(logger), logger)
})

t.test('the default logger writes one pino-shaped JSON line per event', async (t) => {
  const lines: string[] = []
  jsonLogger((line) => lines.push(line)).warn({ worker: 1 }, 'graceful-cluster: test')
  const entry = JSON.parse(lines[0] as string) as Record<string, unknown>
  t.match(entry, { level: 40, pid: process.pid, msg: 'graceful-cluster: test', worker: 1, time: Number })
  t.ok((lines[0] as string).endsWith('}\n'), 'one line')
  const levels: number[] = []
  const logger = jsonLogger((line) => levels.push((JSON.parse(line) as { level: number }).level))
  logger.info({}, 'a')
  logger.error({}, 'b')
  t.same(levels, [30, 50])

  // Without a writer: stdout.
  const write = process.stdout.write
  const captured: string[] = []
  process.stdout.write = ((chunk: string) => { captured.push(chunk); return true }) as typeof process.stdout.write
  try {
    jsonLogger().info({ x: 1 }, 'graceful-cluster: to stdout')
    resolveSuperviseOptions({ exec: WORKER }).logger.info({}, 'graceful-cluster: the default')
  } finally {
    process.stdout.write = write
  }
  t.match(captured.map((c) => JSON.parse(c) as unknown), [{ msg: 'graceful-cluster: to stdout', x: 1 }, { msg: 'graceful-cluster: the default' }])
})

t.test('the command line: flags, then the app and its own arguments', async (t) => {
  t.same(parseArgs(['app.js']), { help: false, options: { exec: 'app.js', args: [] } })
  t.same(parseArgs(['--workers', '4', '--ready-timeout=5000', '--kill-timeout', '7000', 'app.js', '--port', '3000']),
    { help: false, options: { workers: 4, readyTimeout: 5000, killTimeout: 7000, exec: 'app.js', args: ['--port', '3000'] } })
  t.same(parseArgs(['--workers=2', '--', '--weird-name.js', '-x']), { help: false, options: { workers: 2, exec: '--weird-name.js', args: ['-x'] } }, 'after --, the app')
  t.same(parseArgs(['--help']), { help: true })
  t.same(parseArgs(['-h', 'app.js']), { help: true })
  const bad: Array<[string[], string, RegExp]> = [
    [['--workers', 'two', 'app.js'], 'GRACEFUL_ERR_CLUSTER_FLAG', new RegExp(`flag '--workers' must be ${WORKERS_RANGE}, instead got 'two'`)],
    [['--workers', '0', 'app.js'], 'GRACEFUL_ERR_CLUSTER_FLAG', /'--workers'.*instead got '0'/],
    [['--workers=', 'app.js'], 'GRACEFUL_ERR_CLUSTER_FLAG', /instead got ''/],
    [['--ready-timeout', '1e3', 'app.js'], 'GRACEFUL_ERR_CLUSTER_FLAG', /flag '--ready-timeout' must be a whole number of ms from 1 to 2147483647, instead got '1e3'/],
    [['--kill-timeout', '99999999999999999999', 'app.js'], 'GRACEFUL_ERR_CLUSTER_FLAG', /'--kill-timeout'/],
    [['--kill-timeout', '2147483648', 'app.js'], 'GRACEFUL_ERR_CLUSTER_FLAG', /'--kill-timeout'.*instead got '2147483648'/],
    [['--workers', '9007199254740993', 'app.js'], 'GRACEFUL_ERR_CLUSTER_FLAG', /'--workers'/],
    [['--kill-timeout'], 'GRACEFUL_ERR_CLUSTER_FLAG', /instead got '\(nothing\)'/],
    [['--workres', '2', 'app.js'], 'GRACEFUL_ERR_CLUSTER_FLAG_UNKNOWN', /unknown flag '--workres'/],
    [['-w', '2'], 'GRACEFUL_ERR_CLUSTER_FLAG_UNKNOWN', /'-w'/],
    [[], 'GRACEFUL_ERR_CLUSTER_NO_APP', /no app to run/],
    [['--workers', '2'], 'GRACEFUL_ERR_CLUSTER_NO_APP', /instead got '"--workers 2"'/],
    [['--', ''], 'GRACEFUL_ERR_CLUSTER_NO_APP', /no app to run/]
  ]
  for (const [argv, code, message] of bad) {
    t.throws(() => parseArgs(argv), { name: 'TypeError', code, message }, `${argv.join(' ')} → ${code}`)
  }
})

function capture (): Io & { out: string, err: string, codes: number[], exited: Promise<number> } {
  let exited: (code: number) => void = () => {}
  const io = {
    out: '',
    err: '',
    codes: [] as number[],
    exited: new Promise<number>((resolve) => { exited = resolve }),
    stdout: (text: string) => { io.out += text },
    stderr: (text: string) => { io.err += text },
    exit: (code: number) => {
      io.codes.push(code)
      exited(code)
    }
  }
  return io
}

t.test('the bin prints its usage for --help and exits 0; a bad flag exits 2 with the message, the code and the usage', async (t) => {
  const help = capture()
  t.equal(main(['--help'], help), undefined)
  t.same(help.codes, [0])
  t.equal(help.out, USAGE)
  t.match(USAGE, /graceful-cluster \[--workers N\] \[--ready-timeout ms\] \[--kill-timeout ms\] app\.js \[args…\]/)

  const bad = capture()
  t.equal(main(['--workers', 'x', 'app.js'], bad), undefined)
  t.same(bad.codes, [2])
  t.match(bad.err, /flag '--workers' must be a whole number from 1 to \d+ .*, instead got 'x' \(GRACEFUL_ERR_CLUSTER_FLAG\)/)
  t.ok(bad.err.endsWith(USAGE), 'then the usage')
  t.equal(bad.out, '')

  const missing = capture()
  t.equal(main(['--workers', '1', 'no-such-app.js'], missing), undefined, 'an app that does not exist starts nothing')
  t.same(missing.codes, [2])
  t.match(missing.err, /^graceful-cluster: the app 'no-such-app\.js' does not exist: .*\(GRACEFUL_ERR_CLUSTER_APP\)/)
  t.equal(missing.out, '', 'not even the supervisor\'s first line')
})

t.test('the bin supervises the app with our execArgv, logs JSON lines and exits with the supervisor\'s code', async (t) => {
  // Our execArgv: tap's TypeScript loader and the graceful-source condition; the worker loads the core's
  // sources (and records coverage) like any test child.
  const io = capture()
  const sup = main(['--workers', '1', '--ready-timeout', '60000', '--kill-timeout=20000', WORKER], io) as Supervisor
  t.teardown(() => sup.kill('teardown').then(() => {}))
  t.equal(await sup.ready, true)
  t.match(sup.options, { workers: 1, readyTimeout: 60_000, killTimeout: 20_000, exec: WORKER, args: [], signals: true })
  t.equal(await sup.shutdown(), 0)
  t.equal(await io.exited, 0, 'exit(0) once every worker is gone')
  const lines = io.out.trim().split('\n').map((l) => JSON.parse(l) as { msg: string, level: number })
  t.same(lines.map((l) => l.msg), ['graceful-cluster: started', 'graceful-cluster: worker started', 'graceful-cluster: worker ready', 'graceful-cluster: ready',
    'graceful-cluster: shutting down', 'graceful-cluster: worker draining', 'graceful-cluster: worker exited', 'graceful-cluster: stopped'])
})

t.test('the bin reads process.argv, writes to the process\'s stdout and stderr and sets its exit code', async (t) => {
  const real = { exit: process.exit, argv: process.argv, out: process.stdout.write, err: process.stderr.write }
  const codes: number[] = []
  let out = ''
  let err = ''
  process.exit = ((code?: number) => { codes.push(code as number) }) as typeof process.exit
  process.stdout.write = ((chunk: string) => { out += chunk; return true }) as typeof process.stdout.write
  process.stderr.write = ((chunk: string) => { err += chunk; return true }) as typeof process.stderr.write
  try {
    main(['--help'])
    main(['--nope', 'app.js'])
    process.argv = [real.argv[0] as string, 'graceful-cluster', '--help']
    await import('../packages/cluster/src/bin.js')
  } finally {
    Object.assign(process, { exit: real.exit, argv: real.argv })
    process.stdout.write = real.out
    process.stderr.write = real.err
  }
  t.same(codes, [0, 2, 0], 'help, bad flag, then the bin itself with --help')
  t.equal(out, USAGE + USAGE)
  t.match(err, /unknown flag '--nope': .*\(GRACEFUL_ERR_CLUSTER_FLAG_UNKNOWN\)/)
})

// Zero-downtime restart in place (issue 4): real SIGHUPs to a forked fixture app (test/fixtures/restart-app.ts)
// and to the successors graceful starts from it, under real load.
//
// Every family of processes runs in a process group of its own (the first one is forked `detached`; its
// successors stay in its group), and teardown SIGKILLs the whole group, so no successor outlives its test.
// Successors are not our children: there is no exit event for them, so "gone" is polled (kill(pid, 0), plus
// /proc to tell an unreaped zombie from a live process), always with a bound.
import t, { type Test } from 'tap'
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs'
import { Agent, request, type IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FIXTURE_EXEC_ARGV, fixtureEnv } from './helpers/fork.js'
import { startMixedLoad, type MixedLoad } from './helpers/mixed-load.js'

type Adapter = 'fastify' | 'express'
const ADAPTERS: Adapter[] = ['fastify', 'express']
const HOST = '127.0.0.1'
// Generous: a forked child compiles TypeScript on a loaded 2-core machine. Only proves "no hang".
const BOUND_MS = 20_000
// The fixture keeps graceful's default drain timeout (10 s); hooks and exit get a little more.
const DRAIN_BOUND_MS = 15_000
// The acceptance scenario's own pacing: load runs this long between restarts.
const LOAD_BETWEEN_RESTARTS_MS = 2_000

const FIXTURE_ENV_KEYS = ['PORT', 'ADMIN_PORT', 'PID_FILE', 'RESTART_TIMEOUT', 'FAIL_ONCE_FILE', 'NEVER_READY_FILE', 'HOLD_FILE',
  'GRACEFUL_RESTART_FDS', 'GRACEFUL_RESTART_PARENT', 'LISTEN_FDS', 'LISTEN_PID', 'pm_id']

t.setTimeout(600_000)

interface Entry {
  level: string
  msg: string
  /** The process that logged it. */
  pid: number
  time: number
  data?: Record<string, unknown>
}

interface Ports {
  port: number
  adminPort?: number
}

/** True while `pid` runs: kill(pid, 0) succeeds and /proc does not show it as a zombie. */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
  // A zombie has exited and only waits for its parent (or PID 1, for an orphan) to reap it.
  return procState(pid) !== 'Z'
}

/** State letter and process group of a process, from /proc/PID/stat; undefined once it is gone. */
function procStat (pid: number): { state: string, pgrp: number } | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { state: fields[0] as string, pgrp: Number(fields[2]) }
}

function procState (pid: number): string | undefined {
  return procStat(pid)?.state
}

/** Is `pid` a generation of the fixture app (not a helper such as tsx's esbuild service)? */
function isFixture (pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('restart-app')
  } catch {
    return false
  }
}

/** Live (non-zombie) generations of the fixture app in a process group. */
function groupMembers (pgid: number): number[] {
  const members: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = procStat(Number(name))
    if (stat !== undefined && stat.pgrp === pgid && stat.state !== 'Z' && isFixture(Number(name))) members.push(Number(name))
  }
  return members
}

/**
 * Resolves with the ms it took once `pid` is gone; rejects after `bound` ms. Polls: a process that is
 * not our child has no exit event.
 */
async function gone (pid: number, bound = BOUND_MS): Promise<number> {
  const start = performance.now()
  while (alive(pid)) {
    if (performance.now() - start > bound) throw new Error(`pid ${pid} still alive after ${bound} ms`)
    await sleep(20)
  }
  return performance.now() - start
}

/** Rejects after `ms` with a message saying what did not happen. */
function bounded<T> (promise: Promise<T>, what: string | (() => string), ms = BOUND_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${typeof what === 'function' ? what() : what}: not within ${ms} ms`)), ms)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/**
 * One GET; rejects on any connection error or after BOUND_MS. Without an agent it has a connection of its
 * own and says `Connection: close`.
 */
function get (port: number, path: string, agent: Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, agent, headers: agent === false ? { connection: 'close' } : {} }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.setTimeout(BOUND_MS, () => req.destroy(new Error(`no answer within ${BOUND_MS} ms`)))
    req.on('error', reject)
    req.end()
  })
}

function pidOf (answer: Answer): number {
  return (JSON.parse(answer.body) as { pid: number }).pid
}

/** The first process of a fixture app and every successor graceful starts from it. */
class Family {
  readonly proc: ChildProcess
  /** The first process's pid, which is also the process group's id. */
  readonly pid: number
  readonly pidFile: string
  readonly ports: Promise<Ports>
  /** stdout and stderr of every generation (successors inherit them), interleaved as they arrive. */
  output = ''
  readonly entries: Entry[] = []
  /** Every pid the family has shown: the first, successors named in log lines, loggers. */
  readonly known = new Set<number>()
  #partial = ''
  #ended = false
  #waiters: Array<() => void> = []

  constructor (readonly t: Test, adapter: Adapter, readonly dir: string, env: Record<string, string> = {}) {
    this.pidFile = join(dir, 'app.pid')
    const base: NodeJS.ProcessEnv = { ...process.env }
    for (const key of FIXTURE_ENV_KEYS) delete base[key]
    this.proc = fork(new URL('./fixtures/restart-app.ts', import.meta.url), [], {
      execArgv: FIXTURE_EXEC_ARGV,
      env: fixtureEnv({ FIXTURE_ADAPTER: adapter, PID_FILE: this.pidFile, ...env }, base),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // A process group of its own: teardown kills every generation at once.
      detached: true
    })
    this.pid = this.proc.pid as number
    this.known.add(this.pid)
    t.teardown(() => this.killAll())
    let open = 2
    const ended = (): void => {
      if (--open > 0) return
      this.#ended = true
      this.#wake()
    }
    this.proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.#seen(chunk)).on('end', ended)
    this.proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.#seen(chunk)).on('end', ended)
    const messages: Ports[] = []
    this.proc.on('message', (m: Ports) => {
      messages.push(m)
      this.#wake()
    })
    this.ports = this.#until(() => messages.find((m) => typeof m.port === 'number'), 'the first process\'s ports')
  }

  #seen (chunk: string): void {
    this.output += chunk
    const lines = (this.#partial + chunk).split('\n')
    this.#partial = lines.pop() as string
    for (const line of lines) {
      if (!line.startsWith('{')) continue
      let entry: Entry
      try {
        entry = JSON.parse(line) as Entry
      } catch {
        continue
      }
      this.entries.push(entry)
      this.known.add(entry.pid)
      const pid = entry.data?.pid
      if (typeof pid === 'number' && entry.msg.startsWith('graceful: successor')) this.known.add(pid)
    }
    this.#wake()
  }

  #wake (): void {
    for (const w of this.#waiters.splice(0)) w()
  }

  /** Resolves once `check` passes; rejects, with the output, if every process is gone first or after the bound. */
  #until<T> (check: () => T | undefined, what: string, ms = BOUND_MS): Promise<T> {
    return bounded(new Promise<T>((resolve, reject) => {
      const test = (): void => {
        const value = check()
        if (value !== undefined) return resolve(value)
        if (this.#ended) return reject(new Error(`every process ended before ${what}; output:\n${this.output}`))
        this.#waiters.push(test)
      }
      test()
    }), () => `${what}; output:\n${this.output}\n`, ms)
  }

  /** Log entries with this exact message, optionally from one process only. */
  logged (msg: string, from?: number): Entry[] {
    return this.entries.filter((e) => e.msg === msg && (from === undefined || e.pid === from))
  }

  /** Resolves with the first entry with one of these messages, optionally from one process only. */
  waitAny (msgs: string[], from?: number): Promise<Entry> {
    return this.#until(() => this.entries.find((e) => msgs.includes(e.msg) && (from === undefined || e.pid === from)),
      `one of the log lines ${msgs.map((m) => `'${m}'`).join(', ')}${from === undefined ? '' : ` from ${from}`}`)
  }

  /** Resolves with the `n`th (from 1) entry with this message, optionally from one process only. */
  waitLog (msg: string, { from, n = 1, ms = BOUND_MS }: { from?: number, n?: number, ms?: number } = {}): Promise<Entry> {
    return this.#until(() => this.logged(msg, from)[n - 1], `log line '${msg}' #${n}${from === undefined ? '' : ` from ${from}`}`, ms)
  }

  /** The pid the pid file names now. */
  servingPid (): number {
    return Number(readFileSync(this.pidFile, 'utf8').trim())
  }

  /** Resolves once the pid file names `pid` (the first process writes it once it listens). */
  async waitPidFile (pid: number): Promise<void> {
    const read = (): number | undefined => existsSync(this.pidFile) ? this.servingPid() : undefined
    if (read() === pid) return
    const watcher = watch(this.dir)
    try {
      await bounded(new Promise<void>((resolve) => {
        watcher.on('change', () => { if (read() === pid) resolve() })
        // It may have been written between the first read and the watch.
        if (read() === pid) resolve()
      }), `pid file naming ${pid} (it holds ${String(read())})`)
    } finally {
      watcher.close()
    }
  }

  /** Processes of the family still running: known pids and anything else in its process group. */
  living (): number[] {
    return [...new Set([...this.known, ...groupMembers(this.pid)])].filter((pid) => alive(pid))
  }

  /**
   * Ends the family the polite way: SIGTERM to whatever runs, then every process gone. Asserts that
   * nothing of the family is left.
   */
  async stop (t: Test): Promise<void> {
    for (const pid of this.living()) {
      try {
        process.kill(pid, 'SIGTERM')
      } catch {}
    }
    for (const pid of this.known) await gone(pid)
    t.same(this.living(), [], 'no process of the family is left')
  }

  killAll (): void {
    try {
      process.kill(-this.pid, 'SIGKILL')
    } catch {}
    // Should a successor have left the group, it is still ours: it runs our fixture.
    for (const pid of this.known) {
      if (!alive(pid) || !isFixture(pid)) continue
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  }
}

/**
 * `keepAlive` clients (a new connection after a `Connection: close`) plus `fresh` clients opening a new
 * connection per request, looping GET / until stopped. Any error or non-200 is a failure.
 */
function startLoad (port: number, keepAlive: number, fresh: number): MixedLoad {
  return startMixedLoad({ port, keepAlive, fresh, boundMs: BOUND_MS })
}

/**
 * A fresh folder for the pid file and the switch files, removed at teardown. Not t.testdir(): its path is
 * made of the file's and the test's names, so two runs of this file at once (several engineers share the
 * machine) would empty each other's folders.
 */
function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-restart-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Starts a family and waits until its first process listens and the pid file names it. */
async function start (t: Test, adapter: Adapter, env: Record<string, string> = {}, dir = tempDir(t)): Promise<{ family: Family, port: number, adminPort?: number }> {
  const family = new Family(t, adapter, dir, env)
  const ports = await family.ports
  await family.waitPidFile(family.pid)
  return { family, port: ports.port, adminPort: ports.adminPort }
}

/**
 * SIGHUP to the process the pid file names; resolves with the successor's pid once the predecessor logs
 * it ready (its `n`th 'successor ready' in the family).
 */
async function restart (t: Test, family: Family, n: number): Promise<{ predecessor: number, successor: number }> {
  const predecessor = family.servingPid()
  process.kill(predecessor, 'SIGHUP')
  const ready = await family.waitLog('graceful: successor ready', { from: predecessor, n: 1 })
  t.equal(family.logged('graceful: successor ready').length, n, `restart ${n}: one more successor ready`)
  return { predecessor, successor: ready.data?.pid as number }
}

for (const adapter of ADAPTERS) {
  t.test(adapter, async (t) => {
    t.test('three restarts under steady load fail no request, and each serves from a new pid', async (t) => {
      const { family, port } = await start(t, adapter)
      const load = startLoad(port, 8, 2)
      t.teardown(() => load.stop())
      await load.seen(family.pid)
      const serving = [family.pid]
      const exits: Array<Promise<number>> = []
      for (let i = 1; i <= 3; i++) {
        const { predecessor, successor } = await restart(t, family, i)
        t.equal(predecessor, serving[i - 1], `restart ${i} was asked of the serving process`)
        t.not(successor, predecessor, `restart ${i}: a new pid`)
        serving.push(successor)
        exits.push(gone(predecessor, DRAIN_BOUND_MS))
        await load.seen(successor)
        await sleep(LOAD_BETWEEN_RESTARTS_MS)
      }
      const result = await load.stop()
      t.comment(`${adapter}: ${result.requests} requests, ${result.ok} ok, ${result.failures.length} failed, ` +
        `${result.closes} Connection: close to keep-alive clients, ${result.reconnects} reconnects; per pid ${JSON.stringify([...result.pids])}`)
      t.same(result.failures, [], 'zero failed requests')
      t.equal(result.ok, result.requests, 'every response 200')
      t.same([...result.pids.keys()].sort(), [...serving].sort(), 'responses came from exactly the four generations')
      t.equal(new Set(serving).size, 4, 'four distinct pids')
      t.ok(result.reconnects > 0, 'keep-alive clients reconnected after Connection: close')
      const ms = await Promise.all(exits)
      t.ok(ms.every((m) => m < DRAIN_BOUND_MS), `each predecessor exited within the drain deadline (${ms.map(Math.round).join(', ')} ms)`)
      t.same(family.logged('graceful: restart failed'), [])
      t.equal(family.servingPid(), serving[3])
      await family.stop(t)
    })

    t.test('a 3 s request started just before a restart completes with 200 from the predecessor', async (t) => {
      const { family, port } = await start(t, adapter)
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      t.teardown(() => agent.destroy())
      const slow = get(port, '/slow?ms=3000', agent)
      let answeredAt = Infinity
      void slow.then(() => { answeredAt = performance.now() }, () => {})
      await family.waitLog('fixture: slow request entered', { from: family.pid })
      process.kill(family.pid, 'SIGHUP')
      const ready = await family.waitLog('graceful: successor ready', { from: family.pid })
      const readyAt = performance.now()
      const answer = await slow
      t.equal(answer.status, 200)
      t.equal(pidOf(answer), family.pid, 'answered by the predecessor')
      if (readyAt < answeredAt) {
        // The restart drain started while the request was in flight: it finished, told to close.
        t.equal(answer.headers.connection, 'close', 'the drain made the in-flight response the last on its connection')
      } else {
        t.comment('the successor became ready only after the slow request had finished: the drain did not overlap it')
        t.equal(answer.headers.connection, 'keep-alive')
      }
      await gone(family.pid, DRAIN_BOUND_MS)
      t.equal(pidOf(await get(port, '/')), ready.data?.pid, 'the successor serves afterwards')
      await family.stop(t)
    })

    t.test('a successor that throws during start-up is reported, the same pid keeps serving, and the next restart succeeds', async (t) => {
      const dir = tempDir(t)
      const failOnce = join(dir, 'fail-once')
      const { family, port } = await start(t, adapter, { FAIL_ONCE_FILE: failOnce }, dir)
      writeFileSync(failOnce, '')
      const load = startLoad(port, 2, 1)
      t.teardown(() => load.stop())
      await load.seen(family.pid)

      process.kill(family.pid, 'SIGHUP')
      const started = await family.waitLog('graceful: successor started', { from: family.pid })
      const failed = await family.waitLog('graceful: restart failed', { from: family.pid })
      const broken = started.data?.pid as number
      t.ok(family.logged('fixture: start-up fails on purpose', broken).length === 1, 'the successor threw')
      t.equal(failed.level, 'error', 'logged as an error')
      t.match(failed.data, { reason: String }, 'with a reason')
      t.notOk(existsSync(failOnce), 'the successor consumed the switch')
      await gone(broken)
      t.equal(family.servingPid(), family.pid, 'the pid file still names the first process')
      t.equal(pidOf(await get(port, '/')), family.pid, 'the same pid serves')
      t.same(family.logged('graceful: successor ready'), [])

      const { successor } = await restart(t, family, 1)
      t.not(successor, family.pid)
      t.not(successor, broken)
      await load.seen(successor)
      await gone(family.pid, DRAIN_BOUND_MS)
      const result = await load.stop()
      t.comment(`${adapter}: ${result.requests} requests, ${result.failures.length} failed; per pid ${JSON.stringify([...result.pids])}`)
      t.same(result.failures, [], 'zero failed requests')
      t.same([...result.pids.keys()].sort(), [family.pid, successor].sort(), 'served by the first process, then by the second successor only')
      t.equal(family.servingPid(), successor)
      await family.stop(t)
    })

    t.test('a successor that never becomes ready is killed at the timeout, leaving no orphan, and the old pid keeps serving', async (t) => {
      const dir = tempDir(t)
      const neverReady = join(dir, 'never-ready')
      const { family, port } = await start(t, adapter, { NEVER_READY_FILE: neverReady, RESTART_TIMEOUT: '1500' }, dir)
      writeFileSync(neverReady, '')
      const load = startLoad(port, 2, 1)
      t.teardown(() => load.stop())
      await load.seen(family.pid)

      process.kill(family.pid, 'SIGHUP')
      const started = await family.waitLog('graceful: successor started', { from: family.pid })
      const stuck = started.data?.pid as number
      const failed = await family.waitLog('graceful: restart failed', { from: family.pid })
      // On a busy machine the successor may not even have reached its never-listening branch in 1.5 s;
      // either way it was not ready in time.
      if (family.logged('fixture: never listening', stuck).length === 0) t.comment('the successor was still starting up at the timeout')
      t.ok(failed.time - started.time >= 1400, `failed at the timeout, not before (${failed.time - started.time} ms after the start)`)
      t.match(failed.data, { reason: String }, 'with a reason')
      await gone(stuck)
      t.notOk(family.living().includes(stuck), 'the stuck successor is gone')
      t.same(family.living(), [family.pid], 'only the first process runs')
      t.equal(pidOf(await get(port, '/')), family.pid, 'the old pid keeps serving')
      t.equal(family.servingPid(), family.pid, 'the pid file still names it')
      const result = await load.stop()
      t.same(result.failures, [], 'zero failed requests')
      t.same([...result.pids.keys()], [family.pid])
      await family.stop(t)
    })

    t.test('SIGTERM while the successor starts up stops both: no orphan keeps the socket, the pid file names the old process, nothing is thrown', async (t) => {
      const dir = tempDir(t)
      const hold = join(dir, 'hold')
      const { family } = await start(t, adapter, { HOLD_FILE: hold }, dir)
      writeFileSync(hold, '')
      process.kill(family.pid, 'SIGHUP')
      const started = await family.waitLog('graceful: successor started', { from: family.pid })
      const successor = started.data?.pid as number
      await family.waitLog('fixture: holding', { from: successor })
      const exited = once(family.proc, 'exit')
      process.kill(family.pid, 'SIGTERM')
      const [code] = await bounded(exited, 'the old process exiting')
      t.equal(code, 0, 'the old process exits 0: its own shutdown was clean')
      // Were the successor still there, this is where it would go on: listen on the socket it inherited, name
      // itself in the pid file, and throw ERR_IPC_CHANNEL_CLOSED telling its predecessor it is ready.
      try {
        process.kill(successor, 'SIGUSR2')
      } catch {}
      await gone(successor)
      t.same(family.living(), [], 'nothing of the family is left')
      t.equal(family.servingPid(), family.pid, 'the pid file still names the old process')
      t.match(family.logged('graceful: restart failed', family.pid), [{ data: { pid: successor, reason: 'the shutdown started (SIGTERM) before the successor was ready' } }])
      t.notMatch(family.output, /ERR_IPC_CHANNEL_CLOSED|uncaught/i, 'nothing was thrown')
    })

    t.test('two SIGHUPs in a row start exactly one successor, and never more than two generations run', async (t) => {
      const { family, port } = await start(t, adapter)
      // Generations alive, sampled through the restart (the group and every pid the logs name).
      let most = 0
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          most = Math.max(most, family.living().length)
          await sleep(10)
        }
      })()
      t.teardown(() => { sampling = false })

      // The second signal goes out as soon as the first is seen to have arrived, or after 10 ms: two
      // signals sent back to back may reach the process as one (a pending signal is a bit, not a queue).
      const first = performance.now()
      process.kill(family.pid, 'SIGHUP')
      const seen = await Promise.race([
        family.waitLog('graceful: restart requested', { from: family.pid }).then(() => true, () => false),
        sleep(10).then(() => false)
      ])
      process.kill(family.pid, 'SIGHUP')
      const gap = performance.now() - first
      t.comment(`the second SIGHUP went out ${gap.toFixed(1)} ms after the first${seen ? ', after the first was logged' : ''}`)
      const ready = await family.waitLog('graceful: successor ready', { from: family.pid })
      const successor = ready.data?.pid as number
      await gone(family.pid, DRAIN_BOUND_MS)
      sampling = false
      await sampler

      t.equal(family.logged('graceful: successor started').length, 1, 'one successor started')
      t.equal(family.logged('graceful: restart requested', family.pid).length, 1, 'one restart requested')
      const ignored = family.logged('graceful: restart already in progress, signal ignored', family.pid)
      if (seen) t.equal(ignored.length, 1, 'the second signal was logged and ignored')
      else t.ok(ignored.length <= 1, 'the second signal, unless merged with the first by the kernel, was logged and ignored')
      t.ok(most <= 2, `never more than two generations alive (at most ${most})`)
      t.equal(pidOf(await get(port, '/')), successor)
      await family.stop(t)
    })

    t.test('a SIGHUP during a restart is logged and ignored', async (t) => {
      // The second signal goes out once the first is known to have arrived, so it cannot merge with it.
      const { family } = await start(t, adapter)
      process.kill(family.pid, 'SIGHUP')
      await family.waitLog('graceful: restart requested', { from: family.pid })
      process.kill(family.pid, 'SIGHUP')
      await family.waitLog('graceful: restart already in progress, signal ignored', { from: family.pid })
      await family.waitLog('graceful: successor ready', { from: family.pid })
      t.equal(family.logged('graceful: successor started').length, 1, 'one successor started')
      await gone(family.pid, DRAIN_BOUND_MS)
      t.equal(family.living().length, 1, 'one process serves')
      await family.stop(t)
    })

    t.test('a successor refuses to restart while its predecessor is still draining', async (t) => {
      const { family, port } = await start(t, adapter)
      // An 8 s request holds the predecessor's drain (the drain timeout is 10 s).
      const slow = get(port, '/slow?ms=8000')
      await family.waitLog('fixture: slow request entered', { from: family.pid })
      process.kill(family.pid, 'SIGHUP')
      const ready = await family.waitLog('graceful: successor ready', { from: family.pid })
      const successor = ready.data?.pid as number
      // Once the predecessor has closed its listener (its drain started), every new connection reaches
      // the successor. Before that, both accept from the shared socket.
      await family.waitLog('graceful: draining', { from: family.pid })
      t.equal(pidOf(await get(port, '/')), successor, 'the successor serves')
      if (!alive(family.pid)) {
        t.comment('the predecessor was gone before the check: the successor became ready too late to test the refusal')
      } else {
        process.kill(successor, 'SIGHUP')
        const answer = await family.waitAny(['graceful: restart refused', 'graceful: restart requested'], successor)
        t.comment(`the successor answered the SIGHUP with '${answer.msg}' ${JSON.stringify(answer.data)}`)
        t.equal(answer.msg, 'graceful: restart refused', 'the successor refuses')
        t.ok(alive(family.pid), 'the predecessor was still draining')
        if (answer.msg !== 'graceful: restart refused') {
          // It went ahead: a third generation is on its way. Teardown kills the family.
          t.equal((await slow).status, 200, 'the slow request still completes')
          return
        }
        t.match(answer.data, { reason: String }, 'with a reason')
        t.same(family.logged('graceful: successor started', successor), [], 'the successor started nothing')
      }
      const answer = await slow
      t.equal(answer.status, 200)
      t.equal(pidOf(answer), family.pid)
      await gone(family.pid, DRAIN_BOUND_MS)
      // Once it has seen its predecessor go (the IPC channel closing), it restarts.
      await family.waitLog('graceful: predecessor exited', { from: successor })
      const next = await restart(t, family, 2)
      t.equal(next.predecessor, successor)
      await family.stop(t)
    })

    t.test('both listeners, the app port and an admin port, survive a restart', async (t) => {
      // Port 0 for both: a port picked free beforehand can be taken by a parallel test before the fixture
      // binds it. The successor's listen(0) calls take the inherited sockets in the same order.
      const { family, port, adminPort } = await start(t, adapter, { ADMIN_PORT: '0' })
      const admin = adminPort as number
      t.ok(admin > 0 && admin !== port, 'the admin server listens on a port of its own')
      t.same(JSON.parse((await get(port, '/')).body), { pid: family.pid })
      t.same(JSON.parse((await get(admin, '/')).body), { admin: true, pid: family.pid })
      const { successor } = await restart(t, family, 1)
      await gone(family.pid, DRAIN_BOUND_MS)
      t.same(JSON.parse((await get(port, '/')).body), { pid: successor }, 'the app port answers with the new pid')
      t.same(JSON.parse((await get(admin, '/')).body), { admin: true, pid: successor }, 'the admin port answers with the new pid')
      const listening = family.logged('fixture: listening', successor)
      t.match(listening, [{ data: { port, adminPort: admin } }], 'the successor took over both ports')
      await family.stop(t)
    })

    t.test('the pid file names the serving process after each restart', async (t) => {
      const { family, port } = await start(t, adapter)
      t.equal(family.servingPid(), family.pid, 'the first process writes it once listening')
      t.equal(pidOf(await get(port, '/')), family.pid)
      let serving = family.pid
      for (let i = 1; i <= 2; i++) {
        const { predecessor, successor } = await restart(t, family, i)
        t.equal(predecessor, serving)
        // The successor writes the file before it tells its predecessor it is ready.
        t.equal(family.servingPid(), successor, `restart ${i}: the pid file names the successor once it is ready`)
        await gone(predecessor, DRAIN_BOUND_MS)
        t.equal(pidOf(await get(port, '/')), successor, `restart ${i}: and the successor is the one serving`)
        t.same(readdirSync(family.dir).filter((f) => f !== 'app.pid'), [], 'no temp file is left beside it')
        serving = successor
      }
      await family.stop(t)
    })
  })
}

// The restart controller, driven in this process: the test process plays the predecessor (its
// process.argv points the successor at a small fixture, and process.exit is stood in for), the fixture
// plays the successor in a real child process that inherits a real listening socket. Both record
// coverage. test/restart.test.ts runs the acceptance scenarios against real Fastify and Express apps.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel'
import { once } from 'node:events'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CHANNELS, Graceful, type GracefulOptions, type RestartMessage } from '@graceful/core'
import { FIXTURE_EXEC_ARGV } from './helpers/fork.js'
import { captureLogger, type LogEntry } from './helpers/harness.js'
import { settleWithin } from './helpers/bounded.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/restart-successor.ts', import.meta.url))
const BOUND_MS = 30_000

// Several seconds per successor under tap's loader on a loaded machine: more than tap's default 60 s a file.
t.setTimeout(300_000)

const bounded = <T>(promise: Promise<T>, what: string): Promise<T> => settleWithin(promise, what, BOUND_MS)

function gone (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch {
    return true
  }
}

/** Waits until a process that is not our child has exited (there is no event for that). */
async function until (check: () => boolean, what: string): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > BOUND_MS) throw new Error(`${what}: not within ${BOUND_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

interface Predecessor {
  g: Graceful
  server: http.Server
  port: number
  logs: LogEntry[]
  exits: number[]
  /** Resolves with the first log entry whose message is `msg`. */
  logged (msg: string): Promise<LogEntry>
}

/**
 * Successor modes whose side of graceful the tests that start successors themselves cover: they start under
 * tsx, in a second, rather than under tap's loader (with coverage), in several on a busy machine.
 */
const FAST = new Set(['throw', 'never', 'hold', 'quit'])

async function predecessor (t: Test, mode: string, options: GracefulOptions['restart'], extra: GracefulOptions = {}): Promise<Predecessor> {
  const logs: LogEntry[] = []
  const waiters: Array<{ msg: string, resolve: (e: LogEntry) => void }> = []
  const capture = captureLogger(logs)
  const logger = {
    info: (o: object, m?: string) => { capture.info(o, m); settle() },
    warn: (o: object, m?: string) => { capture.warn(o, m); settle() },
    error: (o: object, m?: string) => { capture.error(o, m); settle() }
  }
  function settle (): void {
    for (const w of [...waiters]) {
      const hit = logs.find((l) => l.msg === w.msg)
      if (hit !== undefined) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(hit)
      }
    }
  }
  const g = new Graceful({ signals: false, logger, restart: options, ...extra })
  const server = http.createServer((_req, res) => { res.end(String(process.pid)) })
  g.attach(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')

  const argv = process.argv
  const execArgv = process.execArgv
  const coverage = process.env._TAPJS_PROCESSINFO_COVERAGE_
  const exit = process.exit
  const exits: number[] = []
  process.argv = [argv[0] as string, FIXTURE]
  if (FAST.has(mode)) {
    // The successor starts under tsx, without coverage (see helpers/fork.ts).
    process.execArgv = FIXTURE_EXEC_ARGV
    process.env._TAPJS_PROCESSINFO_COVERAGE_ = '0'
  }
  process.env.RESTART_MODE = mode
  if (options !== false && options !== true && options?.pidFile !== undefined) process.env.PID_FILE = options.pidFile
  process.exit = ((code?: number) => { exits.push(code ?? 0) }) as typeof process.exit
  t.teardown(async () => {
    process.argv = argv
    process.execArgv = execArgv
    process.exit = exit
    if (coverage === undefined) delete process.env._TAPJS_PROCESSINFO_COVERAGE_
    else process.env._TAPJS_PROCESSINFO_COVERAGE_ = coverage
    delete process.env.RESTART_MODE
    delete process.env.PID_FILE
    await g.shutdown()
    server.close()
  })
  return {
    g,
    server,
    port: (server.address() as AddressInfo).port,
    logs,
    exits,
    logged: (msg) => new Promise<LogEntry>((resolve) => {
      waiters.push({ msg, resolve })
      settle()
    })
  }
}

/** Every message on the graceful:restart channel while the test runs. */
function restartEvents (t: Test): RestartMessage[] {
  const events: RestartMessage[] = []
  const listener = (message: unknown): void => { events.push(message as RestartMessage) }
  subscribe(CHANNELS.restart, listener)
  t.teardown(() => { unsubscribe(CHANNELS.restart, listener) })
  return events
}

/**
 * A successor started by the test itself, which plays its predecessor: the fixture gets a real listening
 * socket of ours as fd 4 and an IPC channel, as graceful's restart gives them. Its stderr (JSON lines) is kept.
 */
interface Successor {
  child: ChildProcess
  server: http.Server
  /** The fixture's stderr so far. */
  stderr (): string
  /** Resolves with the first message from the fixture with this `graceful` field. */
  message (kind: string): Promise<Record<string, unknown>>
  /** Resolves once the fixture has written this line (a log `msg`). */
  logged (msg: string): Promise<void>
  /** Resolves with its exit code and signal; rejects if it has not exited within the bound. */
  exited (): Promise<[number | null, NodeJS.Signals | null]>
}

async function successor (t: Test, mode: string, pidFile: string | undefined): Promise<Successor> {
  const server = http.createServer((_req, res) => { res.end(String(process.pid)) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
  const { port } = server.address() as AddressInfo
  const child = spawn(process.execPath, [...process.execArgv, FIXTURE], {
    env: {
      ...process.env,
      RESTART_MODE: mode,
      ...(pidFile === undefined ? {} : { PID_FILE: pidFile }),
      GRACEFUL_RESTART_FDS: JSON.stringify([{ fd: 4, address: '127.0.0.1', port }]),
      GRACEFUL_RESTART_PARENT: String(process.pid)
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc', fd]
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.teardown(() => { child.kill('SIGKILL') })
  let stderr = ''
  const waiters: Array<() => void> = []
  const wake = (): void => { for (const w of waiters.splice(0)) w() }
  child.stderr?.setEncoding('utf8').on('data', (c: string) => { stderr += c; wake() })
  const messages: Array<Record<string, unknown>> = []
  child.on('message', (m: Record<string, unknown>) => { messages.push(m); wake() })
  const until = (check: () => boolean, what: string): Promise<void> => bounded(new Promise<void>((resolve) => {
    const test = (): void => { if (check()) resolve(); else waiters.push(test) }
    test()
  }), `${what}; stderr:\n${stderr}`)
  return {
    child,
    server,
    stderr: () => stderr,
    message: async (kind) => {
      await until(() => messages.some((m) => m.graceful === kind), `the successor's '${kind}' message`)
      return messages.find((m) => m.graceful === kind) as Record<string, unknown>
    },
    logged: (msg) => until(() => stderr.includes(`"msg":"${msg}"`), `the successor's line '${msg}'`),
    exited: () => bounded(exited, `the successor exiting; stderr:\n${stderr}`)
  }
}

/** A fresh folder under the system's temp dir, removed at teardown (t.testdir's name is the test's, too long here). */
function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-restart-unit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function readPid (file: string): string {
  return readFileSync(file, 'utf8').trim()
}

function get (port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
}

t.test('a ready successor takes over the socket and names itself in the pid file; then we drain and exit 0', async (t) => {
  const pidFile = join(t.testdir({}), 'app.pid')
  const events = restartEvents(t)
  // Ten minutes of lame duck: a restart drain that waited for it would not end within the bound.
  const p = await predecessor(t, 'ok', { pidFile, timeout: BOUND_MS }, { delay: 600_000 })
  t.equal(readFileSync(pidFile, 'utf8').trim(), String(process.pid), 'the first process writes the pid file once it listens')
  process.emit('SIGHUP', 'SIGHUP')
  const started = await bounded(p.logged('graceful: successor started'), 'the successor starting')
  const successor = started.obj.pid as number
  t.teardown(() => { try { process.kill(successor, 'SIGKILL') } catch {} })
  await bounded(p.logged('graceful: successor ready'), 'the successor being ready')
  const report = await bounded(p.g.shutdown(), 'the restart drain')
  t.match(report, { reason: 'restart', exitCode: 0 }, 'the restart drain skipped the delay')
  await until(() => p.exits.length > 0, 'process.exit')
  t.same(p.exits, [0], 'the predecessor exits 0')
  t.equal(readFileSync(pidFile, 'utf8').trim(), String(successor), 'the successor wrote the pid file')
  t.equal(await get(p.port), String(successor), 'the successor answers on the same port')
  t.ok(await p.g.isReady(), 'readiness stays 200 in a restart drain: the address is still served')
  t.same(events, [
    { event: 'requested', pid: process.pid },
    { event: 'spawned', pid: process.pid, successor },
    { event: 'ready', pid: process.pid, successor },
    { event: 'draining', pid: process.pid, successor }
  ], 'graceful:restart saw the restart step by step')
  process.kill(successor, 'SIGTERM')
  await until(() => gone(successor), 'the successor exiting')
  t.equal(readFileSync(pidFile, 'utf8').trim(), String(successor), 'taken over, its shutdown leaves the pid file alone')
  // Here the predecessor (this process) outlives its successor: nothing serves any more, and it says so.
  await bounded(p.logged('graceful: the successor exited after it took over; nothing serves here any more'), 'the line about the successor exiting')
})

t.test('a successor that fails at start-up is reported and this process keeps serving; a second signal during a restart is ignored', async (t) => {
  const p = await predecessor(t, 'throw', { timeout: BOUND_MS })
  // Nobody subscribes to graceful:restart here: nothing may be published (or built).
  const restart = channel(CHANNELS.restart)
  const published: unknown[] = []
  restart.publish = (message: unknown) => { published.push(message) }
  // An own property would shadow the prototype's publish, which subscribing switches: remove it.
  t.teardown(() => { delete (restart as { publish?: unknown }).publish })
  t.notOk(restart.hasSubscribers, 'no subscriber')
  process.emit('SIGHUP', 'SIGHUP')
  process.emit('SIGHUP', 'SIGHUP')
  const failed = await bounded(p.logged('graceful: restart failed'), 'the failure')
  t.match(String(failed.obj.reason), /exited \(code 1\) before it was ready/)
  t.equal(p.logs.filter((l) => l.msg === 'graceful: successor started').length, 1, 'one successor')
  t.ok(p.logs.some((l) => l.msg === 'graceful: restart already in progress, signal ignored'))
  t.equal(p.g.phase, 'serving')
  t.equal(await get(p.port), String(process.pid), 'still serving')
  t.same(p.exits, [])
  t.same(published, [], 'nothing was published without a subscriber')
})

t.test('a successor that is never ready is stopped at the timeout, and leaves no process behind', async (t) => {
  const p = await predecessor(t, 'never', { timeout: 1500 })
  process.emit('SIGHUP', 'SIGHUP')
  const started = await bounded(p.logged('graceful: successor started'), 'the successor starting')
  const failed = await bounded(p.logged('graceful: restart failed'), 'the timeout')
  t.match(String(failed.obj.reason), /not ready within 1500 ms/)
  await until(() => gone(started.obj.pid as number), 'the successor exiting')
  t.equal(p.g.phase, 'serving')
  t.equal(await get(p.port), String(process.pid), 'still serving')
})

t.test('a restart is refused, with the reason, where it cannot work', async (t) => {
  const events = restartEvents(t)
  const p = await predecessor(t, 'ok', { timeout: BOUND_MS })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  p.g.beforeDrain(() => gate, { name: 'hold the lame duck' })
  const refusals = () => p.logs.filter((l) => l.msg === 'graceful: restart refused').map((l) => String(l.obj.reason))

  process.env.pm_id = '0'
  process.emit('SIGHUP', 'SIGHUP')
  delete process.env.pm_id

  const platform = Object.getOwnPropertyDescriptor(process, 'platform') as PropertyDescriptor
  Object.defineProperty(process, 'platform', { value: 'win32', configurable: true })
  process.emit('SIGHUP', 'SIGHUP')
  Object.defineProperty(process, 'platform', platform)

  const pid = Object.getOwnPropertyDescriptor(process, 'pid') as PropertyDescriptor
  Object.defineProperty(process, 'pid', { value: 1, configurable: true })
  process.emit('SIGHUP', 'SIGHUP')
  Object.defineProperty(process, 'pid', pid)

  t.match(refusals(), [/pm2/, /Windows/, /PID 1.*graceful-cluster/])

  // During the shutdown's lame-duck time the member is still there, but not serving.
  const shutdown = p.g.shutdown()
  process.emit('SIGHUP', 'SIGHUP')
  t.match(refusals().at(-1), /the shutdown has started/)
  t.notOk(p.logs.some((l) => l.msg === 'graceful: successor started'), 'nothing was started')
  t.match(events, [
    { event: 'requested' }, { event: 'refused', reason: /pm2/ }, { event: 'requested' }, { event: 'refused', reason: /Windows/ },
    { event: 'requested' }, { event: 'refused', reason: /PID 1/ }, { event: 'requested' }, { event: 'refused', reason: /the shutdown has started/ }
  ], 'each refusal published with its reason')
  t.equal(events.length, 8)
  release()
  await shutdown
})

t.test('a shutdown while the successor is starting stops the successor; the restart fails with the reason and this process exits only as its shutdown says', async (t) => {
  const events = restartEvents(t)
  const p = await predecessor(t, 'hold', { timeout: BOUND_MS })
  process.emit('SIGHUP', 'SIGHUP')
  const started = await bounded(p.logged('graceful: successor started'), 'the successor starting')
  const child = started.obj.pid as number
  t.teardown(() => { try { process.kill(child, 'SIGKILL') } catch {} })
  const report = await bounded(p.g.shutdown('SIGTERM'), 'the shutdown')
  t.match(report, { reason: 'SIGTERM', exitCode: 0 }, 'an ordinary, clean shutdown')
  const failed = await bounded(p.logged('graceful: restart failed'), 'the restart failing')
  t.match(failed.obj, { pid: child, reason: 'the shutdown started (SIGTERM) before the successor was ready' })
  await until(() => gone(child), 'the successor exiting')
  t.same(p.exits, [], 'the restart never exits the process: the shutdown (its signal) decides')
  t.same(events.map((e) => e.event), ['requested', 'spawned', 'failed'])
  t.match(events[2], { successor: child, reason: /the shutdown started/ })
  t.notOk(p.logs.some((l) => l.msg === 'graceful: successor ready'))
})

t.test('a successor that shuts down before it is ready tells us: the restart fails with its reason', async (t) => {
  const p = await predecessor(t, 'quit', { timeout: BOUND_MS })
  process.emit('SIGHUP', 'SIGHUP')
  const failed = await bounded(p.logged('graceful: restart failed'), 'the restart failing')
  t.match(failed.obj, { reason: 'the successor gave up: this process started to shut down (quit) before its predecessor took it over' })
  await until(() => gone(failed.obj.pid as number), 'the successor exiting')
  t.equal(p.g.phase, 'serving')
  t.equal(await get(p.port), String(process.pid), 'still serving')
})

// Successors that go wrong; side by side, as each spends seconds starting up (and one 5 s being stubborn).
// The first four are started by the test itself, in four ways a successor can lose its predecessor before the
// handover: it gives up, puts the predecessor back in the pid file, and throws nothing.
t.test('successors that go wrong', { jobs: 5 }, async (t) => {
  t.test('a successor stopped by a failed restart that ignores SIGTERM is killed with SIGKILL', async (t) => {
    const stubborn = join(tempDir(t), 'stubborn')
    process.env.STUBBORN_FILE = stubborn
    t.teardown(() => { delete process.env.STUBBORN_FILE })
    const p = await predecessor(t, 'stubborn', { timeout: BOUND_MS })
    process.emit('SIGHUP', 'SIGHUP')
    const started = await bounded(p.logged('graceful: successor started'), 'the successor starting')
    await until(() => existsSync(stubborn), 'the successor ignoring SIGTERM')
    void p.g.shutdown()
    const failed = await bounded(p.logged('graceful: restart failed'), 'the restart failing')
    t.match(failed.obj, { pid: started.obj.pid, reason: /the shutdown started/ })
    await until(() => gone(started.obj.pid as number), 'the successor being killed')
    t.pass('gone: SIGTERM could not have done it')
  })

  t.test('its predecessor goes away while it starts up: it drains and exits 1', async (t) => {
    const pidFile = join(tempDir(t), 'app.pid')
    const s = await successor(t, 'hold', pidFile)
    await s.logged('fixture: holding')
    s.child.disconnect()
    const [code] = await s.exited()
    t.equal(code, 1, 'exit 1')
    t.match(s.stderr(), /"msg":"graceful: restart abandoned".*"reason":"the predecessor \(pid \d+\) went away before it took this process over"/)
    t.match(s.stderr(), /"msg":"graceful: shutdown complete"/, 'it ran its own drain first')
    t.notMatch(s.stderr(), /ERR_IPC_CHANNEL_CLOSED|uncaught/i, 'no uncaught error')
    t.notOk(existsSync(pidFile), 'it never wrote the pid file')
  })

  t.test('it said ready, then the channel closed before the predecessor took it over: the pid file names the predecessor again, exit 1', async (t) => {
    const dir = tempDir(t)
    const pidFile = join(dir, 'app.pid')
    writeFileSync(pidFile, `${process.pid}\n`)
    const s = await successor(t, 'ok', pidFile)
    const ready = await s.message('ready')
    t.equal(ready.pid, s.child.pid)
    t.equal(readPid(pidFile), String(s.child.pid), 'it named itself before it said ready')
    t.equal(await get((s.server.address() as AddressInfo).port).then(() => 'answered'), 'answered', 'the shared socket is served')
    // Not the handover: ignored.
    s.child.send({ graceful: 'something else' })
    s.child.disconnect()
    const [code] = await s.exited()
    t.equal(code, 1)
    t.equal(readPid(pidFile), String(process.pid), 'the pid file names the predecessor again')
    t.same(readdirSync(dir), ['app.pid'], 'no temp file left')
    t.notMatch(s.stderr(), /ERR_IPC_CHANNEL_CLOSED|uncaught/i)
  })

  t.test('it shuts down (SIGTERM) before it is taken over: it tells the predecessor, restores the pid file, and its shutdown decides the exit code', async (t) => {
    const pidFile = join(tempDir(t), 'app.pid')
    writeFileSync(pidFile, `${process.pid}\n`)
    const s = await successor(t, 'ok', pidFile)
    await s.message('ready')
    s.child.kill('SIGTERM')
    const abandoned = await s.message('abandoned')
    t.match(abandoned, { reason: 'this process started to shut down (SIGTERM) before its predecessor took it over' })
    t.same(await s.exited(), [0, null])
    t.equal(readPid(pidFile), String(process.pid), 'the pid file names the predecessor again')
  })

  t.test('its channel closed before it loaded graceful: it gives up at once', async (t) => {
    // Without a pid file, for once.
    const s = await successor(t, 'detached', undefined)
    const [code] = await s.exited()
    t.equal(code, 1)
    t.notMatch(s.stderr(), /ERR_IPC_CHANNEL_CLOSED|uncaught/i)
  })
})

t.test('under systemd socket activation the first start takes the socket from LISTEN_FDS', async (t) => {
  const pidFile = join(t.testdir({}), 'app.pid')
  const server = http.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
  // LISTEN_PID must be the pid of the process that reads it: the shell sets it, then execs node.
  const node = [process.execPath, ...process.execArgv, FIXTURE].map((a) => `'${a}'`).join(' ')
  const child = spawn('/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec ${node}`], {
    // An explicit port: under socket activation the sockets are taken in order, whatever the port says.
    env: { ...process.env, RESTART_MODE: 'ok', PID_FILE: pidFile, LISTEN_PORT: '1' },
    stdio: ['ignore', 'ignore', 'pipe', fd]
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (c: string) => { stderr += c })
  t.teardown(() => { child.kill('SIGKILL') })
  await until(() => { try { return readFileSync(pidFile, 'utf8').trim() === String(child.pid) } catch { return false } }, `the pid file (${stderr})`)
  t.pass('the socket-activated process took the socket and wrote its pid file')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
})

t.test('listen() arguments: a port (number, string, options) is ours to match; a path, fd or handle is not', async (t) => {
  const { wanted, parseInherited } = await import('../packages/core/src/restart.js')
  t.same(wanted([3000, '127.0.0.1', () => {}]), { port: 3000, host: '127.0.0.1' })
  t.same(wanted(['3000']), { port: 3000, host: undefined })
  t.same(wanted([{ port: 0, host: '::1' }]), { port: 0, host: '::1' })
  t.same(wanted([{}]), { port: 0, host: undefined })
  t.equal(wanted(['/tmp/app.sock']), null)
  t.equal(wanted([{ fd: 3 }]), null)
  t.equal(wanted([{ path: '/tmp/app.sock' }]), null)
  t.equal(wanted([{ handle: {} }]), null)
  t.same(parseInherited('[{"fd":4,"address":"127.0.0.1","port":80},{"fd":"x"}]'), [{ fd: 4, address: '127.0.0.1', port: 80, claimed: false, listening: false }])
  t.same(parseInherited('not json'), [], 'a damaged variable inherits nothing rather than crashing the start-up')
})

t.test('a successor starts where the user started: PWD when it names the cwd (a symlinked release), the script under it', async (t) => {
  const { startDirectory, successorLaunch } = await import('../packages/core/src/restart.js')
  const dir = t.testdir({ releases: { v1: { 'app.js': '' }, v2: { 'app.js': '' } } })
  const v1 = join(dir, 'releases', 'v1')
  const current = join(dir, 'current')
  symlinkSync(v1, current)
  t.same(startDirectory(v1, current), { logical: current, physical: v1 }, 'PWD names the cwd through a symlink')
  t.same(startDirectory(v1, undefined), { logical: v1, physical: v1 }, 'no PWD')
  t.same(startDirectory(v1, v1), { logical: v1, physical: v1 })
  t.same(startDirectory(v1, 'releases/v1'), { logical: v1, physical: v1 }, 'a relative PWD is no PWD')
  t.same(startDirectory(v1, dir), { logical: v1, physical: v1 }, 'a stale PWD (another directory) is ignored')
  t.same(startDirectory(v1, join(dir, 'gone')), { logical: v1, physical: v1 }, 'a PWD that no longer exists is ignored')
  const start = { logical: current, physical: v1 }
  t.same(successorLaunch(start, ['node', join(v1, 'app.js'), '--port', '3000']), { cwd: current, args: [join(current, 'app.js'), '--port', '3000'] },
    'the script is found through the link again, and its arguments kept')
  t.same(successorLaunch(start, ['node', '/srv/other.js']), { cwd: current, args: ['/srv/other.js'] }, 'a script elsewhere stays')
  t.same(successorLaunch({ logical: v1, physical: v1 }, ['node', join(v1, 'app.js')]), { cwd: v1, args: [join(v1, 'app.js')] })
  t.same(successorLaunch(start, ['node']), { cwd: current, args: [] }, 'no script (node -e)')
})

t.test('a process is running until it has exited', async (t) => {
  const { running } = await import('../packages/core/src/restart.js')
  t.equal(running(process.pid), true)
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  t.equal(running(child.pid as number), false)
})

t.test('a pid file that cannot be written is logged, leaves no temp file, and the server serves all the same', async (t) => {
  const logs: LogEntry[] = []
  const dir = t.testdir({})
  const pidFile = join(dir, 'app.pid')
  const server = http.createServer((_req, res) => { res.end('ok') })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const g = new Graceful({ signals: false, logger: captureLogger(logs), restart: { pidFile } })
  // A directory took the pid file's place after the start-up checks: the rename fails.
  mkdirSync(pidFile)
  // Attached when already listening: the pid file is written at once.
  g.attach(server)
  t.teardown(async () => { await g.shutdown(); server.close() })
  t.match(logs.find((l) => l.msg === 'graceful: could not write the pid file'), { level: 'error', obj: { pidFile } })
  t.same(readdirSync(dir), ['app.pid'], 'the temp file was removed')
  t.equal(await get((server.address() as AddressInfo).port), 'ok')
})

t.test('the pid file is written through a new file of an unguessable name: planted symlinks and files change nothing', async (t) => {
  const dir = t.testdir({ 'secret': 'root only\n' })
  const secret = join(dir, 'secret')
  const pidFile = join(dir, 'app.pid')
  // What another user could have planted at the temp names of the next pids, before this fix's random names:
  // symlinks to a file they may not write, and a world-writable file of their own.
  for (let pid = process.pid; pid < process.pid + 5; pid++) symlinkSync(secret, `${pidFile}.${pid}.tmp`)
  writeFileSync(`${pidFile}.planted.tmp`, '', { mode: 0o666 })
  const planted = readdirSync(dir).sort()
  const umask = process.umask(0)
  t.teardown(() => { process.umask(umask) })
  const server = http.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const logs: LogEntry[] = []
  const g = new Graceful({ signals: false, logger: captureLogger(logs), restart: { pidFile } })
  g.attach(server)
  process.umask(umask)
  t.teardown(async () => { await g.shutdown(); server.close() })
  t.same(logs.filter((l) => l.level === 'error'), [])
  t.equal(readFileSync(secret, 'utf8'), 'root only\n', 'the symlinks\' target is untouched')
  t.equal(readPid(pidFile), String(process.pid))
  const stat = lstatSync(pidFile)
  t.ok(stat.isFile(), 'the pid file is a file of its own, not a symlink')
  t.equal(stat.mode & 0o777, 0o644, 'mode 0644, even with umask 0')
  t.same(readdirSync(dir).sort(), [...planted, 'app.pid'].sort(), 'no temp file of ours left, the planted ones untouched')
})

t.test('a successor takes each socket by port and host, or by port; Unix sockets are not handed over', async (t) => {
  // Unix socket paths must stay short (108 bytes): a folder of our own under the system's temp dir.
  const dir = mkdtempSync(join(tmpdir(), 'graceful-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pidFile = join(dir, 'app.pid')
  const p = await predecessor(t, 'many', { pidFile, timeout: BOUND_MS })
  const second = http.createServer((_req, res) => { res.end(String(process.pid)) })
  const pipe = http.createServer()
  p.g.attach(second).attach(pipe)
  second.listen(0, '127.0.0.1')
  pipe.listen(join(dir, 'old.sock'))
  await Promise.all([once(second, 'listening'), once(pipe, 'listening')])
  const port2 = (second.address() as AddressInfo).port
  const spare = http.createServer().listen(0, '127.0.0.1')
  await once(spare, 'listening')
  process.env.EXTRA_PORT = String((spare.address() as AddressInfo).port)
  spare.close()
  const pwd = process.env.PWD
  process.env.PORTS = `${p.port},${port2}`
  process.env.PIPE = join(dir, 'new.sock')
  // Without PWD the successor starts in our working directory.
  delete process.env.PWD
  t.teardown(() => {
    process.env.PWD = pwd
    delete process.env.PORTS
    delete process.env.PIPE
    delete process.env.EXTRA_PORT
    second.close()
    pipe.close()
  })
  process.emit('SIGHUP', 'SIGHUP')
  const started = await bounded(p.logged('graceful: successor started'), 'the successor starting')
  const successor = started.obj.pid as number
  t.teardown(() => { try { process.kill(successor, 'SIGKILL') } catch {} })
  await bounded(p.logged('graceful: successor ready'), 'the successor being ready')
  await bounded(p.g.shutdown(), 'the restart drain')
  t.equal(await get(p.port), String(successor), 'the first port, taken by port and host')
  t.equal(await get(port2), String(successor), 'the second port, taken by port alone')
  t.equal(readFileSync(`${pidFile}.late`, 'utf8').trim(), String(successor), 'an instance made after the take-over writes its pid file at once')
  process.kill(successor, 'SIGTERM')
  await until(() => gone(successor), 'the successor exiting')
})

t.test('the restart signal handler stays while any instance still wants it', async (t) => {
  const before = process.listenerCount('SIGUSR2')
  const a = new Graceful({ signals: false, logger: false, restart: { signal: 'SIGUSR2' } })
  const b = new Graceful({ signals: false, logger: false, restart: { signal: 'SIGUSR2' } })
  t.equal(process.listenerCount('SIGUSR2'), before + 1, 'one handler for both')
  await a.shutdown()
  t.equal(process.listenerCount('SIGUSR2'), before + 1, 'still there for the other')
  await b.shutdown()
  t.equal(process.listenerCount('SIGUSR2'), before, 'gone with the last')
})

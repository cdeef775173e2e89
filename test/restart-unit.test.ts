// The restart controller, driven in this process: the test process plays the predecessor (its
// process.argv points the successor at a small fixture, and process.exit is stood in for), the fixture
// plays the successor in a real child process that inherits a real listening socket. Both record
// coverage. test/restart.test.ts runs the acceptance scenarios against real Fastify and Express apps.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Graceful, type GracefulOptions } from '@graceful/core'
import { captureLogger, type LogEntry } from './helpers/harness.js'
import { settleWithin } from './helpers/bounded.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/restart-successor.ts', import.meta.url))
const BOUND_MS = 30_000

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
  const exit = process.exit
  const exits: number[] = []
  process.argv = [argv[0] as string, FIXTURE]
  process.env.RESTART_MODE = mode
  if (options !== false && options !== true && options?.pidFile !== undefined) process.env.PID_FILE = options.pidFile
  process.exit = ((code?: number) => { exits.push(code ?? 0) }) as typeof process.exit
  t.teardown(async () => {
    process.argv = argv
    process.exit = exit
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
  const p = await predecessor(t, 'ok', { pidFile, timeout: BOUND_MS })
  t.equal(readFileSync(pidFile, 'utf8').trim(), String(process.pid), 'the first process writes the pid file once it listens')
  process.emit('SIGHUP', 'SIGHUP')
  const started = await bounded(p.logged('graceful: successor started'), 'the successor starting')
  const successor = started.obj.pid as number
  t.teardown(() => { try { process.kill(successor, 'SIGKILL') } catch {} })
  await bounded(p.logged('graceful: successor ready'), 'the successor being ready')
  const report = await bounded(p.g.shutdown(), 'the restart drain')
  t.match(report, { reason: 'restart', exitCode: 0 })
  await until(() => p.exits.length > 0, 'process.exit')
  t.same(p.exits, [0], 'the predecessor exits 0')
  t.equal(readFileSync(pidFile, 'utf8').trim(), String(successor), 'the successor wrote the pid file')
  t.equal(await get(p.port), String(successor), 'the successor answers on the same port')
  t.ok(await p.g.isReady(), 'readiness stays 200 in a restart drain: the address is still served')
  process.kill(successor, 'SIGTERM')
  await until(() => gone(successor), 'the successor exiting')
})

t.test('a successor that fails at start-up is reported and this process keeps serving; a second signal during a restart is ignored', async (t) => {
  const p = await predecessor(t, 'throw', { timeout: BOUND_MS })
  process.emit('SIGHUP', 'SIGHUP')
  process.emit('SIGHUP', 'SIGHUP')
  const failed = await bounded(p.logged('graceful: restart failed'), 'the failure')
  t.match(String(failed.obj.reason), /exited \(code 1\) before it was ready/)
  t.equal(p.logs.filter((l) => l.msg === 'graceful: successor started').length, 1, 'one successor')
  t.ok(p.logs.some((l) => l.msg === 'graceful: restart already in progress, signal ignored'))
  t.equal(p.g.phase, 'serving')
  t.equal(await get(p.port), String(process.pid), 'still serving')
  t.same(p.exits, [])
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
  release()
  await shutdown
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

t.test('a process is running until it has exited', async (t) => {
  const { running } = await import('../packages/core/src/restart.js')
  t.equal(running(process.pid), true)
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  t.equal(running(child.pid as number), false)
})

t.test('a pid file that cannot be written is logged, and the server serves all the same', async (t) => {
  const logs: LogEntry[] = []
  const server = http.createServer((_req, res) => { res.end('ok') })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  // Attached when already listening: the pid file is written at once.
  const g = new Graceful({ signals: false, logger: captureLogger(logs), restart: { pidFile: join(t.testdir({}), 'missing', 'app.pid') } })
  g.attach(server)
  t.teardown(async () => { await g.shutdown(); server.close() })
  t.match(logs.find((l) => l.msg === 'graceful: could not write the pid file'), { level: 'error' })
  t.equal(await get((server.address() as AddressInfo).port), 'ok')
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

// graceful-check against real apps: plain node:http ones (test/fixtures/check-app.mjs, each shutdown
// behaviour a mode), graceful's own adapters, graceful-cluster, and three alternatives set up as their
// READMEs say (bench/servers/). Real processes, real signals, real sockets; the check runs in this process.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { USAGE, check, formatResult, main, type CheckOptions, type CheckResult, type Failure, type Io, type Kind } from '@graceful/check'
import { FIXTURE_EXEC_ARGV, fixtureEnv } from './helpers/fork.js'

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))
const APP = here('./fixtures/check-app.mjs')
const PLAIN = [process.execPath, APP]
const TSX = (file: string, ...args: string[]): string[] => [process.execPath, ...FIXTURE_EXEC_ARGV, here(file), ...args]
/** Children record no coverage (see helpers/fork.ts). */
const QUIET = { _TAPJS_PROCESSINFO_COVERAGE_: '0' }

// About 60 s on a quiet machine; a loaded one (several times that) must not fail it.
t.setTimeout(600_000)


function dir (t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'graceful-check-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

/** One check; its report goes to the test's comments when an assertion fails, to see why. */
async function run (t: Test, options: CheckOptions & { app?: object }): Promise<CheckResult> {
  const { app, ...rest } = options
  const result = await check({ duration: 500, timeout: 10_000, ...rest, env: { ...QUIET, ...(app === undefined ? {} : { CHECK_APP: JSON.stringify(app) }), ...rest.env } })
  t.teardown(() => { if (!t.passing()) t.comment(formatResult(result)) })
  return result
}

const lostOn = (r: CheckResult, kinds: Kind[]): number => kinds.reduce((a, k) => a + (r.kinds[k]?.lost ?? 0), 0)
/**
 * graceful's losses on `kinds`, but a connection reset in the listener's accept queue as it closes: the one
 * window no server closes (README, How a shutdown unfolds). The load here comes from the same two cores as
 * the server, with clients that connect anew for each request: under load a few land in it.
 */
const gracefulLost = (r: CheckResult, kinds: Kind[]): Failure[] =>
  r.failures.filter((f) => kinds.includes(f.kind) && f.cause !== 'acceptQueue')
const sentOn = (r: CheckResult, kinds: Kind[]): number => kinds.reduce((a, k) => a + (r.kinds[k]?.sent ?? 0), 0)

t.test('a server that drains correctly loses nothing, busy and paused clients included', async (t) => {
  const r = await run(t, {
    command: PLAIN,
    app: { term: 'drain', lameMs: 300 },
    readiness: '/readyz',
    stream: '/events',
    slow: '/slow',
    postPath: '/echo',
    // Every kind but new-connection-per-request, whose connections race the listener's close in the kernel's
    // accept queue whatever the server does (a loss the check reports, and the next test does not need).
    clients: { keepAlive: 3, busy: 4, paused: 2, post: 2, slow: 1, pipelined: 1, idle: 1, preconnect: 1 }
  })
  t.equal(r.error, null)
  t.equal(r.verdict.lost, 0, 'nothing lost')
  t.ok(r.ok)
  t.ok(sentOn(r, ['busy', 'paused']) > 0 && r.kinds.busy?.ok !== 0, 'the busy and paused clients were served')
  t.equal(r.totals.unavailableKeep, 0)
  t.equal(r.exit?.code, 0)
  t.equal(r.exit?.known, true)
  const tl = r.timeline as NonNullable<CheckResult['timeline']>
  t.ok((tl.readinessMs as number) < (tl.listenerClosedMs as number), 'readiness turned 503 before the listener closed (a lame duck)')
  t.ok((tl.listenerClosedMs as number) >= 250, 'the listener closed after the lame duck')
  t.match(r.stream, { ended: 'complete', status: 200 }, 'the stream ended with its last event')
  t.ok((r.stream?.events ?? 0) > 0)
  t.same(r.connections.map((c) => [c.kind, c.ended]), [['idle', 'fin'], ['preconnect', 'fin']], 'the idle connection and the preconnect were closed with a FIN')
  t.equal(r.heldExit, false)
  t.same(r.verdict.causes, [])
  t.equal(r.app.portFrom, 'proc', 'the port came from the process\'s first listening socket')
  t.match(r.app.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
})

t.test('Node\'s own server.close() loses the paused clients\' requests: idle connections closed as they were reused', async (t) => {
  // No fast keep-alive loop: on Node 22 and 24 a connection that is never idle when close() runs is served
  // on and on (the check then reports that the process did not exit); on Node 20 it is closed.
  const r = await run(t, { command: PLAIN, app: { term: 'close' }, clients: { busy: 4, paused: 2 } })
  t.equal(r.error, null)
  t.notOk(r.ok)
  t.ok(lostOn(r, ['busy', 'paused']) > 0, 'the paused clients lost requests')
  // A busy client's pause may be a few ms: then it is a race like a keep-alive loop's, not a pause.
  const paused = r.failures.filter((f) => (f.kind === 'busy' || f.kind === 'paused') && (f.quietMs as number) >= 20)
  t.ok(paused.length > 0 && paused.every((f) => f.cause === 'idleClose'), 'each on a connection quiet for 20 ms or more: an idle close')
  t.ok(r.failures.every((f) => f.class === 'hangUp' || f.class === 'reset'), 'nothing else')
  t.match(r.verdict.causes.map((c) => c.text).join('\n'), /idle keep-alive connections were closed while clients were about to reuse them/)
  t.equal(r.exit?.code, 0)
})

t.test('process.exit() at the signal: the requests in flight are lost, and the CLI says why and exits 1', async (t) => {
  const io = fakeIo()
  process.env.CHECK_APP = JSON.stringify({ term: 'exit' })
  process.env._TAPJS_PROCESSINFO_COVERAGE_ = '0'
  t.teardown(() => { delete process.env.CHECK_APP })
  const done = main(['--slow', '/slow', '--connections', '5', '--duration', '400ms', '--timeout', '10s', '--app-output', '--', ...PLAIN], io)
  const result = await done as CheckResult
  t.equal(await io.code, 1)
  t.ok(result.failures.some((f) => f.cause === 'exitInFlight'), 'cut by the exit')
  t.match(io.out, /\nverdict {2}✘ \d+ requests? lost\n/)
  t.match(io.out, /the process exited with requests in flight/)
  t.match(io.err, /^graceful-check: started .*check-app\.mjs \(pid \d+\)\ngraceful-check: the app listens at http:\/\/127\.0\.0\.1:\d+\/ \(its first listening socket\)\n/)
  t.match(io.err, /\n {2}SIGTERM sent to pid \d+\n/)
  t.match(io.err, /exited \(code 0\)/)
  t.notMatch(io.err, /\r/, 'no progress line when stderr is not a terminal')
  t.match(io.err, /\n {2}│ exiting at once\n/, "--app-output: the app's lines as they come")
})

function fakeIo (isTTY = false): Io & { out: string, err: string, code: Promise<number>, interrupt: () => void } {
  let exit: (code: number) => void = () => {}
  let handler: () => void = () => {}
  const io = {
    out: '',
    err: '',
    code: new Promise<number>((resolve) => { exit = resolve }),
    isTTY,
    stdout (text: string) { io.out += text },
    stderr (text: string) { io.err += text },
    exit (code: number) { exit(code) },
    onInterrupt (h: () => void) {
      handler = h
      return () => { handler = () => {} }
    },
    interrupt () { handler() }
  }
  return io
}

/** A fixture app started here (not by the check), with its port from IPC. */
async function started (t: Test, app: object): Promise<{ child: ReturnType<typeof spawn>, port: number }> {
  const child = spawn(process.execPath, [APP], { env: fixtureEnv({ CHECK_APP: JSON.stringify(app) }), stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const [message] = await once(child, 'message') as [{ port: number }]
  return { child, port: message.port }
}

t.test('a child process given to check(): no handler for SIGTERM, so it is killed by it, and its exit says so', async (t) => {
  const { child, port } = await started(t, { term: 'none' })
  const r = await run(t, { child, port, clients: { keepAlive: 2 } })
  t.same(r.exit && [r.exit.code, r.exit.signal, r.exit.known], [null, 'SIGTERM', true])
  t.equal(r.app.portFrom, 'port')
  t.match(r.verdict.notes.map((n) => n.id), ['killedBySignal'])
  t.equal(r.app.command, null)
})

t.test('attached by pid and url: its exit is seen by polling, its code cannot be known', async (t) => {
  const { child, port } = await started(t, { term: 'drain' })
  const r = await run(t, { pid: child.pid as number, url: `http://127.0.0.1:${port}/`, clients: { keepAlive: 2, busy: 1 } })
  t.equal(r.verdict.lost, 0)
  t.same(r.exit && [r.exit.code, r.exit.signal, r.exit.known], [null, null, false])
  t.equal(r.app.portFrom, 'url')
  t.equal(r.app.pid, child.pid)
})

t.test('a process that ignores SIGTERM: it did not exit within the timeout, which fails the check', async (t) => {
  const r = await run(t, { command: PLAIN, app: { term: 'hang' }, clients: { keepAlive: 1, idle: 1, preconnect: 1 }, stream: '/events', timeout: 2000 })
  t.equal(r.exit, null)
  t.notOk(r.ok)
  t.equal(r.verdict.lost, 0)
  const note = r.verdict.notes.find((n) => n.id === 'noExit')
  t.match(note, { problem: true, text: /did not exit within 2000 ms of SIGTERM[^]*still open then: the idle keep-alive connection, the preconnect, the stream \/events$/ })
})

t.test('answers that turn 5xx after the signal, and a request never answered', async (t) => {
  const notes: Array<string | null> = []
  const r = await run(t, {
    command: PLAIN, app: { term: 'drain', lameMs: 300, second: true }, path: '/boom', slow: '/hang', clients: { keepAlive: 2, slow: 1 }, timeout: 1500,
    onEvent: (e) => { if (e.type === 'listening') notes.push(e.note) }
  })
  t.same(notes, ['the first of 2 listening sockets it holds; --port chooses another'], 'the first of its two listening sockets')
  t.ok(r.failures.some((f) => f.class === 'serverError' && f.cause === 'serverError' && f.detail === 'answered 500'), 'a 500 where there was a 200')
  t.ok(r.failures.some((f) => f.class === 'timeout' && f.kind === 'slow' && f.cause === 'timeout'), 'the request on /hang timed out')
  t.match(r.verdict.causes.map((c) => c.id).sort(), ['serverError', 'timeout'])
})

t.test('in-place restarts under load, each new process found in the old one\'s process tree, then SIGTERM', async (t) => {
  const r = await run(t, { command: PLAIN, app: { term: 'drain', hup: 'restart' }, restart: { times: 2 }, signal: 'SIGTERM', readiness: '/readyz', clients: { keepAlive: 2, busy: 2, newConnection: 1, idle: 1 } })
  t.equal(r.error, null)
  t.equal(r.restarts.length, 2)
  for (const x of r.restarts) {
    t.match(x, { mode: 'in-place', error: null, refused: 0 }, `restart #${x.n}: in place, nothing refused`)
    t.not(x.to, x.from)
    t.ok((x.successorMs as number) <= (x.doneMs as number))
  }
  t.equal(r.restarts[1]?.from, r.restarts[0]?.to, 'the second restart signalled the process the first started')
  t.same(r.signals.map((s) => [s.signal, s.final]), [['SIGHUP', false], ['SIGHUP', false], ['SIGTERM', true]])
  t.equal(r.exit?.pid, r.restarts[1]?.to, 'SIGTERM went to the last process')
  t.equal(r.exit?.known, false, 'not our child')
  t.equal(lostOn(r, ['keepAlive', 'busy', 'idle']), 0, 'no keep-alive request lost across the restarts')
  t.equal(r.readiness?.notReadyBefore, 0, 'readiness stayed 200 through the restarts')
})

t.test('restarts from the command line, the new process found through its pid file; the app is stopped after the check', async (t) => {
  const pidFile = join(dir(t), 'app.pid')
  process.env.CHECK_APP = JSON.stringify({ term: 'drain', hup: 'restart', pidFile })
  t.teardown(() => { delete process.env.CHECK_APP })
  const io = fakeIo(true)
  const result = await main(['--restart', 'SIGHUP', '--times', '1', '--pid-file', pidFile, '--readiness', '/readyz', '--connections', '5', '--duration', '300', '--json', '--', ...PLAIN], io) as CheckResult
  t.equal(await io.code, 0)
  const json = JSON.parse(io.out) as CheckResult
  t.same(json, JSON.parse(JSON.stringify(result)), 'the JSON is the result')
  t.equal(json.schema, 1)
  t.equal(json.scenario.signal, null)
  t.match(json.restarts, [{ n: 1, mode: 'in-place', error: null }])
  t.equal(json.exit, null, 'no final signal: its exit is not part of the check')
  t.equal(json.timeline?.signal, 'SIGHUP', 'the timeline runs from the last restart\'s signal')
  t.match(json.readiness, { flipMs: null, flipStatus: null, notReadyBefore: 0 }, 'readiness answered 200 throughout')
  t.match(io.err, /\r\x1b\[2K +\d+\.\d s {2}sent [\d,]+ {2}in flight \d+/, 'a progress line, drawn in place on a terminal')
  t.match(io.err, /restart #1 complete: pid \d+ → \d+ \(in place\)/)
})

t.test('restarts that fail: a process SIGHUP kills, and one that ignores it', async (t) => {
  const killed = await run(t, { command: PLAIN, app: { hup: 'none' }, restart: { times: 2 }, signal: 'SIGTERM', clients: { keepAlive: 2, newConnection: 1 } })
  t.match(killed.restarts, [{ n: 1, error: /^the process exited \(killed by SIGHUP\) and no new process took over$/, mode: null, to: null }])
  t.ok(killed.failures.some((f) => f.class === 'refused' && f.cause === 'unserved'), 'connections refused while the address should have been served')
  t.match(killed.verdict.notes.map((n) => `${n.id}${n.problem ? '!' : ''}`), ['restartFailed!', 'noSignal!'])
  t.notOk(killed.ok)
  const stays = await run(t, { command: PLAIN, app: { hup: 'restart', keepOld: true }, restart: { times: 1 }, clients: { keepAlive: 1 }, timeout: 2000 })
  t.match(stays.restarts, [{ error: /^not complete within 2000 ms \(pid \d+ started, pid \d+ still runs\)$/ }], 'a new process, and the old one never left')
  const ignored = await run(t, { command: PLAIN, app: { hup: 'ignore' }, restart: { times: 1 }, clients: { keepAlive: 1 }, timeout: 2000 })
  t.match(ignored.restarts, [{ error: 'not complete within 2000 ms (no new process seen)' }])
  t.equal(ignored.verdict.lost, 0)
  t.notOk(ignored.ok)
})

t.test('apps that cannot be checked: not found, exits at once, never listens, the port given is not its, a pid that is not running', async (t) => {
  const missing = await run(t, { command: ['/nonexistent/graceful-check-app'] })
  t.match(missing.error, { code: 'GRACEFUL_ERR_CHECK_START', message: /^could not start '\/nonexistent\/graceful-check-app': spawn \/nonexistent\/graceful-check-app ENOENT$/ })
  t.equal(missing.app.pid, null)
  const early = await run(t, { command: [process.execPath, '-e', 'for (let i = 0; i < 60; i++) console.log(i); console.error("no config"); process.exit(3)'] })
  t.match(early.error, { code: 'GRACEFUL_ERR_CHECK_START', message: /^the app exited \(code 3\) before a listening socket on an address loopback reaches/ })
  t.equal(early.app.output.length, 50, 'its last 50 lines are kept')
  t.ok(early.app.output.includes('59') && early.app.output.includes('no config') && !early.app.output.includes('0'))
  t.notOk(early.ok)
  t.same(early.verdict, { lost: 0, causes: [], notes: [] })
  const never = await run(t, { command: PLAIN, app: { listen: false }, timeout: 300 })
  t.match(never.error, { message: /^a listening socket on an address loopback reaches .*: not within 300 ms$/ })
  const wrong = await run(t, { command: PLAIN, app: { listen: false }, port: 1, timeout: 300 })
  t.match(wrong.error, { message: 'the app accepting a connection: not within 300 ms' })
  const gone = await run(t, { pid: 2 ** 31 - 2 })
  t.match(gone.error, { message: `no process with pid ${2 ** 31 - 2} is running` })
  const lines: string[] = []
  const out = await run(t, { command: [process.execPath, '-e', 'console.log("hello"); process.exit(1)'], output: (line) => lines.push(line) })
  t.same(lines, ['hello'], 'output() gets each line')
  t.same(out.app.output, ['hello'])
})

t.test('an app that exits under load, before the signal or after a restart', async (t) => {
  const early = await run(t, { command: PLAIN, app: { dieAfterMs: 200 }, clients: { keepAlive: 1 }, duration: 2000 })
  t.match(early.error, { code: 'GRACEFUL_ERR_CHECK_START', message: 'the app exited (code 0) before the load before the first signal' })
  t.equal(early.timeline, null)
  t.ok(early.totals.sent > 0, 'what it answered meanwhile is counted')
  const successor = await run(t, { command: PLAIN, app: { term: 'drain', hup: 'restart', dieAfterMs: 300, successorOnly: true }, restart: { times: 2 }, signal: 'SIGTERM', clients: { keepAlive: 1 }, duration: 1500 })
  t.match(successor.error, { message: 'the app exited (exit code unknown: not our child) before the load after restart #1' })
  t.equal(successor.restarts.length, 1)
  t.same(successor.signals.map((x) => x.signal), ['SIGHUP'], 'no SIGTERM after that')
})

t.test('a child that has already exited is not checked; an onEvent that throws rejects check(), the app still killed', async (t) => {
  const { child, port } = await started(t, { term: 'none' })
  child.kill('SIGKILL')
  await once(child, 'exit')
  const r = await run(t, { child, port })
  t.match(r.error, { code: 'GRACEFUL_ERR_CHECK_START', message: `no process with pid ${String(child.pid)} is running` })
  let pid = 0
  await t.rejects(check({
    command: PLAIN, env: { ...QUIET, CHECK_APP: '{}' }, clients: { keepAlive: 1 },
    onEvent: (e) => { if (e.type === 'started') pid = e.pid; if (e.type === 'load') throw new Error('a bug in my onEvent') }
  }), /a bug in my onEvent/)
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the app is gone')
})

t.test('without Linux\'s /proc the port must be given', async (t) => {
  const platform = Object.getOwnPropertyDescriptor(process, 'platform') as PropertyDescriptor
  Object.defineProperty(process, 'platform', { value: 'darwin' })
  try {
    const r = await run(t, { command: PLAIN, app: {} })
    t.match(r.error, { code: 'GRACEFUL_ERR_CHECK_PORT', message: "finding the app's port needs Linux's /proc: give --port or --url" })
  } finally {
    Object.defineProperty(process, 'platform', platform)
  }
})

t.test('an aborted check kills the app it started and says it was interrupted; Ctrl-C in the CLI exits 130', async (t) => {
  const controller = new AbortController()
  let pid = 0
  const r = await run(t, {
    command: PLAIN, app: {}, clients: { keepAlive: 1 }, abort: controller.signal,
    onEvent: (e) => { if (e.type === 'started') pid = e.pid; if (e.type === 'load') controller.abort() }
  })
  t.match(r.error, { code: 'GRACEFUL_ERR_CHECK_INTERRUPTED' })
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the app is gone')
  const restarting = new AbortController()
  const during = await run(t, {
    command: PLAIN, app: { hup: 'ignore' }, restart: { times: 1 }, clients: { keepAlive: 1 }, abort: restarting.signal,
    onEvent: (e) => { if (e.type === 'signal') restarting.abort() }
  })
  t.match(during.error, { code: 'GRACEFUL_ERR_CHECK_INTERRUPTED' }, 'aborted during a restart')
  t.match(during.restarts, [{ error: 'interrupted' }])
  const before = await run(t, { command: PLAIN, app: {}, abort: AbortSignal.abort() })
  t.match(before.error, { code: 'GRACEFUL_ERR_CHECK_INTERRUPTED' }, 'already aborted: nothing runs')

  const io = fakeIo()
  const done = main(['--duration', '5s', '--connections', '5', '--', ...PLAIN], io)
  await new Promise<void>((resolve) => { const wait = setInterval(() => { if (io.err.includes('load on')) { clearInterval(wait); resolve() } }, 10) })
  io.interrupt()
  await done
  t.equal(await io.code, 130)
  t.match(io.out, /could not check the app: interrupted/)
})

t.test('the CLI shows the first ten lost requests as they happen, the rest in the report', async (t) => {
  process.env.CHECK_APP = JSON.stringify({ term: 'hang' })
  t.teardown(() => { delete process.env.CHECK_APP })
  const io = fakeIo()
  const result = await main(['--path', '/hang', '--timeout', '1000', '--duration', '0', '--connections', '12', '--', ...PLAIN], io) as CheckResult
  t.equal(await io.code, 1)
  t.ok(result.verdict.lost > 10)
  t.equal(io.err.split('\n').filter((l) => l.includes(' lost: ')).length, 10)
  t.match(io.err, /\(further lost requests: in the report\)\n/)
})

t.test('the CLI: --help, a bad flag, flags that clash', async (t) => {
  const help = fakeIo()
  t.equal(await main(['--help'], help), undefined)
  t.equal(await help.code, 0)
  t.equal(help.out, USAGE)
  const bad = fakeIo()
  await main(['--timeout', 'soon', '--', 'node'], bad)
  t.equal(await bad.code, 2)
  t.match(bad.err, /^graceful-check flag '--timeout' must be .*, instead got 'soon' \(GRACEFUL_ERR_CHECK_FLAG\)\n\nUsage: graceful-check \[options\] -- command \[args…\]; graceful-check --help says more\.\n$/)
  const clash = fakeIo()
  await main(['--url', 'http://127.0.0.1:3000/', '--port', '3001', '--', 'node'], clash)
  t.equal(await clash.code, 2)
  t.match(clash.err, /'port' must be the url's port \(3000\) or left out, instead got '3001' \(GRACEFUL_ERR_CHECK_OPTION\)/)
})

t.test('the bin reads process.argv, writes to the process\'s stdout and exits with main\'s code', async (t) => {
  const real = { exit: process.exit, argv: process.argv, out: process.stdout.write }
  const codes: number[] = []
  let out = ''
  process.exit = ((code?: number) => { codes.push(code as number) }) as typeof process.exit
  process.stdout.write = ((chunk: string) => { out += chunk; return true }) as typeof process.stdout.write
  try {
    process.argv = [real.argv[0] as string, 'graceful-check', '--help']
    // --help is answered before main's first await: done once the import is.
    await import('../packages/check/src/bin.js')
  } finally {
    Object.assign(process, { exit: real.exit, argv: real.argv })
    process.stdout.write = real.out
  }
  t.same(codes, [0])
  t.equal(out, USAGE)
  const { PROCESS_IO } = await import('../packages/check/src/cli.js')
  const before = process.listenerCount('SIGINT')
  const off = PROCESS_IO.onInterrupt(() => {})
  t.equal(process.listenerCount('SIGINT'), before + 1, 'Ctrl-C interrupts the check')
  off()
  t.equal(process.listenerCount('SIGINT'), before)
  PROCESS_IO.stderr('')
})

t.test('graceful (Fastify, the demo app): SIGTERM under the whole mix, with readiness, a stream and a slow route', async (t) => {
  const r = await run(t, {
    command: TSX('../examples/demo/fastify-app.ts'),
    env: { PORT: '0', PID_FILE: join(dir(t), 'demo.pid') },
    readiness: '/readyz',
    stream: '/events',
    slow: '/slow',
    duration: 800,
    timeout: 20_000
  })
  t.equal(r.error, null)
  t.same(gracefulLost(r, ['keepAlive', 'post', 'slow', 'stream', 'idle', 'readiness']), [],
    'nothing lost on the keep-alive loops, the POSTs, the slow requests, the stream, the idle connection, the readiness polls')
  t.ok((r.kinds.keepAlive?.unavailableClose ?? 0) + (r.kinds.keepAlive?.okClose ?? 0) > 0, 'keep-alive loops were told Connection: close')
  t.equal(r.totals.unavailableKeep, 0, 'every 503 said Connection: close')
  t.equal(r.totals.retryAfter, r.totals.unavailableClose, '…and Retry-After')
  const tl = r.timeline as NonNullable<CheckResult['timeline']>
  t.ok((tl.readinessMs as number) < 500 && (tl.listenerClosedMs as number) >= 900, 'readiness 503 at once, the listener closed after the 1 s lame duck')
  t.match(r.stream, { ended: 'complete' }, 'the stream ended with its goodbye (abortOnDrain)')
  t.equal(r.exit?.code, 0)
  t.same(r.connections.map((c) => c.ended), ['fin', 'fin'], 'the idle connection and the preconnect closed with a FIN')
  t.same(r.failures.filter((f) => f.cause !== 'acceptQueue'), [],
    'busy and paused clients, new connections and the pipelined pair included: nothing lost but to the accept queue')
})

t.test('graceful (Express): three in-place restarts under load, followed through the pid file', async (t) => {
  const pidFile = join(dir(t), 'app.pid')
  const r = await run(t, {
    command: TSX('../bench/servers/graceful-express.ts'),
    env: { BENCH_PID_FILE: pidFile },
    restart: { times: 3, pidFile },
    postPath: '/echo',
    clients: { keepAlive: 3, busy: 2, post: 1, newConnection: 1, idle: 1 },
    duration: 400,
    timeout: 20_000
  })
  t.equal(r.error, null)
  t.match(r.restarts, [1, 2, 3].map((n) => ({ n, mode: 'in-place', error: null, refused: 0 })), 'each restart in place, no connection refused')
  t.same(gracefulLost(r, ['keepAlive', 'post', 'newConnection', 'idle']), [], 'no request lost on the keep-alive loops, the POSTs, the new connections')
  t.equal(r.kinds.post?.ok, (r.kinds.post?.sent ?? 0) - (r.kinds.post?.lost ?? 0), 'POST /echo served throughout')
  t.equal(r.totals.unavailableClose + r.totals.unavailableKeep, 0, 'a restart drain serves, it does not 503')
  t.equal(r.verdict.lost, 0, 'nothing lost at all, busy clients included: the successor serves the address throughout')
})

t.test('graceful-cluster: SIGHUP to the supervisor rolls its workers, and the check sees the roll', async (t) => {
  const r = await run(t, {
    command: TSX('../packages/cluster/src/bin.ts', '--workers', '1', here('./fixtures/cluster-app.ts')),
    env: { FRAMEWORK: 'fastify' },
    restart: { times: 1 },
    clients: { keepAlive: 2, newConnection: 1 },
    duration: 400,
    timeout: 30_000
  })
  t.equal(r.error, null)
  t.match(r.restarts, [{ mode: 'roll', error: null, refused: 0 }])
  t.equal(r.restarts[0]?.to, r.restarts[0]?.from, 'the supervisor stays')
  t.same(gracefulLost(r, ['keepAlive', 'newConnection']), [])
})

// Each alternative as its README sets it up (bench/servers/). They close idle keep-alive connections the
// moment the shutdown starts, so a client that was pausing between two requests loses the second.
const ALTERNATIVES = [
  ['Fastify + close-with-grace', '../bench/servers/fastify-close-with-grace.ts'],
  ['@godaddy/terminus (Express)', '../bench/servers/terminus.ts'],
  ['http-terminator (Express)', '../bench/servers/http-terminator.ts']
] as const

t.test('the alternatives lose the paused clients\' requests to idle closes; the verdict says so', async (t) => {
  // Side by side: three independent apps, and the time of one.
  const results = await Promise.all(ALTERNATIVES.map(([, file]) => run(t, {
    command: TSX(file),
    clients: { keepAlive: 2, busy: 3, paused: 2 },
    duration: 600,
    timeout: 20_000
  })))
  results.forEach((r, i) => {
    const name = (ALTERNATIVES[i] as readonly [string, string])[0]
    t.equal(r.error, null, `${name}: checked`)
    t.notOk(r.ok, `${name}: something was lost`)
    t.ok(lostOn(r, ['busy', 'paused']) > 0, `${name}: the paused clients lost requests`)
    const paused = r.failures.filter((f) => (f.kind === 'busy' || f.kind === 'paused') && (f.quietMs as number) >= 20)
    t.ok(paused.length > 0 && paused.every((f) => f.cause === 'idleClose'), `${name}: every one after a pause to an idle close`)
    t.match(r.verdict.causes[0]?.text, /^idle keep-alive connections were closed while clients were about to reuse them/, `${name}: the verdict's first cause`)
    t.equal(r.exit?.code, 0, `${name}: and it exits 0 all the same`)
  })
})

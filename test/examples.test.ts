// The deployment recipes (examples/*/app.ts, docs/recipes.md) as users would run them: each is forked,
// sent real requests and a real SIGTERM, and must exit 0 with its report.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import WebSocket from 'ws'
import { GRACE_MARGIN_MS, checkGracePeriod, requiredGracePeriodMs } from '../examples/kubernetes/grace-period.js'
import { Example, get } from './helpers/example.js'
import type { ShutdownReport } from '@graceful/core'

// Generous: a forked child compiles TypeScript on a loaded 2-core machine. Only proves "no hang".
const BOUND_MS = 20_000

const JOBS = 3
t.setTimeout(180_000)

/** A report as the child logged it. */
type Report = ShutdownReport

/** An example by its folder under examples/ (its app.ts). */
class Child extends Example {
  constructor (example: string, env: NodeJS.ProcessEnv) {
    super(`${example}/app.ts`, env)
  }
}

/** Forks an example, kills it at teardown if it is still running, and waits until it listens. */
async function start (t: Test, example: string, env: NodeJS.ProcessEnv = {}): Promise<{ child: Child, port: number }> {
  const child = new Child(example, env)
  t.teardown(() => {
    if (child.alive) child.proc.kill('SIGKILL')
  })
  return { child, port: await child.ready }
}

/** The exit after a SIGTERM: code 0, in bound, with exactly one clean report. */
async function cleanExit (t: Test, child: Child): Promise<Report> {
  const exit = await child.exited
  t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'exits with code 0')
  t.ok(exit.ms < BOUND_MS, 'exits without hanging')
  const reports = child.reports()
  t.equal(reports.length, 1, 'logs one shutdown complete line')
  t.match(reports[0], { reason: 'SIGTERM', exitCode: 0, timedOut: false, aborted: 0, destroyedSockets: 0 })
  return reports[0] as Report
}

t.test('kubernetes grace-period helper', async (t) => {
  const budget = { delay: 5000, timeout: 10_000, hookTimeout: 5000, hooks: 2 }
  t.equal(requiredGracePeriodMs(budget), 5000 + 10_000 + 2 * 5000 + GRACE_MARGIN_MS)
  t.equal(checkGracePeriod(budget, undefined), null, 'no warning when the variable is not set')
  t.equal(checkGracePeriod(budget, ''), null, 'no warning when the variable is empty')
  t.equal(checkGracePeriod(budget, '26'), null, 'no warning when it covers the budget exactly')
  t.equal(checkGracePeriod(budget, '30'), null, 'no warning when it is longer')
  t.match(checkGracePeriod(budget, '25'), { requiredSeconds: 26, given: '25', message: /shorter than the shutdown may take.*at least 26/ })
  t.match(checkGracePeriod({ ...budget, delay: 500 }, '21'), { requiredSeconds: 22 }, 'rounds the requirement up to whole seconds')
  t.match(checkGracePeriod(budget, '30s'), { message: /must be a number of seconds, got '30s'/ }, 'warns about a value that is not a number')
})

t.test('kubernetes deployment.yaml: the grace period matches its env and covers the app\'s shutdown', async (t) => {
  const yaml = readFileSync(new URL('../examples/kubernetes/deployment.yaml', import.meta.url), 'utf8')
  const grace = /^\s*terminationGracePeriodSeconds: (\d+)$/m.exec(yaml)?.[1]
  const env = /- name: TERMINATION_GRACE_PERIOD_SECONDS\n\s*value: "(\d+)"/.exec(yaml)?.[1]
  const delay = /- name: GRACEFUL_DELAY_MS\n\s*value: "(\d+)"/.exec(yaml)?.[1]
  t.ok(grace !== undefined && env !== undefined && delay !== undefined, 'all three are set')
  t.equal(env, grace, 'TERMINATION_GRACE_PERIOD_SECONDS equals terminationGracePeriodSeconds')
  // app.ts: timeout 10 s, hookTimeout 5 s, one afterDrain hook plus fastify.close.
  t.equal(checkGracePeriod({ delay: Number(delay), timeout: 10_000, hookTimeout: 5000, hooks: 2 }, grace), null)
  t.match(yaml, /readinessProbe:\s*\n(?:\s*#.*\n)*\s*httpGet:\s*\n\s*path: \/readyz/, 'readiness probes /readyz')
  t.match(yaml, /livenessProbe:\s*\n(?:\s*#.*\n)*\s*httpGet:\s*\n\s*path: \/livez/, 'liveness probes /livez')
})

t.test('examples', { jobs: JOBS }, async (t) => {
  t.test('kubernetes: readiness turns 503 in the lame duck while / and /livez still serve, then exit 0', async (t) => {
    // Long enough for three requests on a loaded machine; the test does not wait it out idly, it is the
    // window the requests must land in.
    const { child, port } = await start(t, 'kubernetes', { GRACEFUL_DELAY_MS: '2500', TERMINATION_GRACE_PERIOD_SECONDS: '30' })
    t.match(await get(port, '/readyz'), { status: 200, body: /"status":"ready"/ }, 'ready while serving')
    t.match(await get(port, '/'), { status: 200, body: /"phase":"serving"/ })
    child.kill('SIGTERM')
    await child.waitFor(/graceful: shutdown started/)
    t.match(await get(port, '/readyz'), { status: 503, body: /"phase":"lameduck"/ }, 'not ready from the first moment')
    t.match(await get(port, '/'), { status: 200, body: /"phase":"lameduck"/ }, 'the app is still served')
    t.match(await get(port, '/livez'), { status: 200, body: /"status":"alive"/ }, 'still alive: no restart')
    const report = await cleanExit(t, child)
    t.same(report.hooks.map((h) => h.name), ['flush metrics', 'fastify.close'])
    t.same(child.entries().filter((e) => e.level === 40), [], 'no warning: 30 s covers the shutdown')
  })

  t.test('kubernetes: warns at start-up when TERMINATION_GRACE_PERIOD_SECONDS is too short', async (t) => {
    const { child } = await start(t, 'kubernetes', { GRACEFUL_DELAY_MS: '100', TERMINATION_GRACE_PERIOD_SECONDS: '5' })
    // Logged before listening, but the port arrives over IPC and the log over the stdout pipe: nothing
    // orders the two (on a loaded machine the port came first), so wait for the line itself.
    await child.waitFor(/terminationGracePeriodSeconds \(5\) is shorter/)
    const warnings = child.entries().filter((e) => e.level === 40)
    t.equal(warnings.length, 1, 'one warning, logged before listening')
    t.match(warnings[0], { given: '5', requiredSeconds: 22, msg: /terminationGracePeriodSeconds \(5\) is shorter/ })
    child.kill('SIGTERM')
    await cleanExit(t, child)
  })

  t.test('systemd: SIGTERM (systemctl stop) drains and exits 0 with the report', async (t) => {
    // systemd makes /run/graceful-app (RuntimeDirectory=); here the pid file goes to a folder of the test's.
    const dir = mkdtempSync(join(tmpdir(), 'graceful-systemd-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const { child, port } = await start(t, 'systemd', { PID_FILE: join(dir, 'app.pid') })
    t.match(await get(port, '/'), { status: 200, body: /"hello":"world"/ })
    child.kill('SIGTERM')
    const report = await cleanExit(t, child)
    t.same(report.hooks.map((h) => [h.name, h.error]), [['close resources', undefined]])
  })

  t.test('systemd: the unit runs node directly, stops with SIGTERM, and gives the shutdown enough time', async (t) => {
    const unit = readFileSync(new URL('../examples/systemd/graceful-app.service', import.meta.url), 'utf8')
    t.match(unit, /^ExecStart=\/usr\/bin\/node \S+\.js$/m)
    t.match(unit, /^KillSignal=SIGTERM$/m)
    t.match(unit, /^Restart=on-failure$/m)
    t.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m, 'reload is a zero-downtime restart')
    const pidFile = /^PIDFile=(\S+)$/m.exec(unit)?.[1]
    t.ok(pidFile !== undefined && unit.includes(`PID_FILE=${pidFile}`), 'the app writes the pid file systemd reads')
    // app.ts: delay 0, timeout 10 s, hookTimeout 5 s, one afterDrain hook.
    const stop = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1])
    t.ok(stop * 1000 >= requiredGracePeriodMs({ delay: 0, timeout: 10_000, hookTimeout: 5000, hooks: 1 }), `TimeoutStopSec=${stop} covers the shutdown`)
  })

  t.test('systemd: reload (SIGHUP) hands the socket to a successor, which names itself in the pid file', async (t) => {
    const pidFile = join(t.testdir({}), 'app.pid')
    const { child, port } = await start(t, 'systemd', { PID_FILE: pidFile })
    const first = (JSON.parse((await get(port, '/')).body) as { pid: number }).pid
    t.equal(readFileSync(pidFile, 'utf8').trim(), String(first), 'the first process writes the pid file')
    // The predecessor exits once the successor is ready; the successor inherits its stdout, so the pipe
    // (child.exited) closes only when the successor is gone too.
    const predecessorExit = once(child.proc, 'exit') as Promise<[number | null, string | null]>
    child.proc.kill('SIGHUP')
    const [code] = await predecessorExit
    t.equal(code, 0, 'the predecessor drains and exits 0')
    const answer = await get(port, '/')
    const second = (JSON.parse(answer.body) as { pid: number }).pid
    t.equal(answer.status, 200, 'the port kept answering')
    t.not(second, first, 'a new process serves')
    t.equal(readFileSync(pidFile, 'utf8').trim(), String(second), 'the successor wrote the pid file')
    t.teardown(() => { try { process.kill(second, 'SIGKILL') } catch {} })
    process.kill(second, 'SIGTERM')
    await child.exited
    t.ok(child.logged('graceful: successor ready').length === 1)
  })

  t.test('docker: the app drains on SIGTERM and exits 0 with the report', async (t) => {
    const { child, port } = await start(t, 'docker')
    t.match(await get(port, '/'), { status: 200, body: /"hello":"world"/ })
    child.kill('SIGTERM')
    const report = await cleanExit(t, child)
    t.same(report.hooks.map((h) => h.name), ['fastify.close'])
  })

  t.test('docker: the Dockerfile runs node in exec form and stops with SIGTERM inside docker stop\'s 10 s', async (t) => {
    const dockerfile = readFileSync(new URL('../examples/docker/Dockerfile', import.meta.url), 'utf8')
    t.match(dockerfile, /^FROM node:20-slim$/m)
    t.match(dockerfile, /^CMD \["node", "[^"]+\.js"\]$/m, 'exec form, node directly')
    t.match(dockerfile, /^STOPSIGNAL SIGTERM$/m)
    // app.ts: delay 0, timeout 5 s, hookTimeout 2 s, fastify.close as the one hook.
    t.ok(requiredGracePeriodMs({ delay: 0, timeout: 5000, hookTimeout: 2000, hooks: 1 }) <= 10_000)
  })

  t.test('websockets: SIGTERM closes every client with 1001, the drain waits for them, exit 0', async (t) => {
    const { child, port } = await start(t, 'websockets')
    const clients = [0, 1].map(() => new WebSocket(`ws://127.0.0.1:${port}/`))
    t.teardown(() => { for (const ws of clients) ws.terminate() })
    const closed = clients.map((ws) => once(ws, 'close') as Promise<[number, Buffer]>)
    const greeted = clients.map((ws) => once(ws, 'message') as Promise<[Buffer]>)
    for (const [data] of await Promise.all(greeted)) t.equal(data.toString(), 'hello', 'connected and greeted')
    // Plain HTTP on the same server works beside the upgrades.
    t.match(await get(port, '/'), { status: 200 })
    child.kill('SIGTERM')
    for (const [code, reason] of await Promise.all(closed)) {
      t.equal(code, 1001, 'close code 1001 (going away)')
      t.equal(reason.toString(), 'server going away')
    }
    const report = await cleanExit(t, child)
    t.same(report.hooks.map((h) => [h.name, h.error]), [['close websockets', undefined]])
  })

  t.test('websockets: a client that ignores the close frame is destroyed at the deadline, exit 1', async (t) => {
    const { child, port } = await start(t, 'websockets', { GRACEFUL_TIMEOUT_MS: '300' })
    // A raw client: it completes the upgrade, then never answers anything.
    const socket = connect(port, '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    socket.setEncoding('latin1')
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
    let received = ''
    const upgraded = new Promise<void>((resolve) => {
      socket.on('data', (chunk: string) => {
        received += chunk
        if (received.includes('hello')) resolve()
      })
    })
    socket.on('error', () => {}) // a reset is what we expect
    const socketClosed = once(socket, 'close')
    await upgraded
    t.match(received, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
    child.kill('SIGTERM')
    await socketClosed
    // A close frame: 0x88, length, then the code 1001 (0x03 0xe9) and the reason.
    t.match(received, /\x88.\x03\xe9server going away/, 'the close frame was sent')
    const exit = await child.exited
    t.same({ code: exit.code, signal: exit.signal }, { code: 1, signal: null }, 'exit code 1: not clean')
    t.ok(exit.ms < BOUND_MS, 'exits without hanging')
    t.match(child.reports(), [{ reason: 'SIGTERM', timedOut: true, destroyedSockets: 1, exitCode: 1 }])
  })

  t.test('websockets-fastify: SIGTERM closes every client with 1001, the drain waits for them, exit 0', async (t) => {
    const { child, port } = await start(t, 'websockets-fastify')
    const clients = [0, 1].map(() => new WebSocket(`ws://127.0.0.1:${port}/ws`))
    t.teardown(() => { for (const ws of clients) ws.terminate() })
    const closed = clients.map((ws) => once(ws, 'close') as Promise<[number, Buffer]>)
    const greeted = clients.map((ws) => once(ws, 'message') as Promise<[Buffer]>)
    for (const [data] of await Promise.all(greeted)) t.equal(data.toString(), 'hello', 'connected and greeted')
    t.match(await get(port, '/'), { status: 200 })
    child.kill('SIGTERM')
    for (const [code, reason] of await Promise.all(closed)) {
      t.equal(code, 1001, 'close code 1001 (going away)')
      t.equal(reason.toString(), 'server going away')
    }
    const report = await cleanExit(t, child)
    t.same(report.hooks.map((h) => [h.name, h.error]), [['close websockets', undefined], ['fastify.close', undefined]])
  })

  t.test('sse: the stream ends with event: bye at SIGTERM, then exit 0', async (t) => {
    const { child, port } = await start(t, 'sse')
    const stream = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/events', agent: false }, resolve)
      req.on('error', reject)
      req.end()
    })
    t.teardown(() => { stream.destroy() })
    t.equal(stream.statusCode, 200)
    t.match(stream.headers['content-type'], /^text\/event-stream/)
    stream.setEncoding('utf8')
    let body = ''
    let hello: () => void
    const greeted = new Promise<void>((resolve) => { hello = resolve })
    stream.on('data', (chunk: string) => {
      body += chunk
      if (body.includes('event: hello')) hello()
    })
    const ended = once(stream, 'end')
    await greeted
    child.kill('SIGTERM')
    await ended
    t.match(body, /event: bye\ndata: \{"reason":"server going away"\}\n\n$/, 'the last event says bye')
    const report = await cleanExit(t, child)
    t.match(report, { inFlightAtStart: 1, completed: 1 }, 'the stream ended on its own, not cut')
  })

  t.test('db-pool: a request in flight at SIGTERM completes, then afterDrain closes the pool, exit 0', async (t) => {
    const { child, port } = await start(t, 'db-pool')
    t.match(await get(port, '/orders'), { status: 200 })
    // A query that takes a second: well past the SIGTERM that follows its start.
    const answer = get(port, '/orders?ms=1000')
    await child.waitFor(/pool: query started[^]*pool: query started/) // the second query, ours
    child.kill('SIGTERM')
    const res = await answer
    t.equal(res.status, 200)
    t.same(JSON.parse(res.body), [{ id: 1, total: 42 }], 'the in-flight request got its rows')
    t.equal(res.headers.connection, 'close')
    const report = await cleanExit(t, child)
    t.match(report, { inFlightAtStart: 1, completed: 1 })
    t.same(report.hooks.map((h) => [h.name, h.error]), [['close db pool', undefined]])
    const pool = child.logged('pool: ')
    t.same(pool.map((l) => l.replace(/: SELECT.*/, '')), [
      'pool: query started', 'pool: query finished', 'pool: query started', 'pool: query finished', 'pool: ended'
    ], 'the pool ended after the in-flight query finished')
  })
})

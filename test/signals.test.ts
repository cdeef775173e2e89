// Process-level behaviour: real signals to forked fixture apps (test/fixtures/*-app.ts), exit codes and
// output.
import t, { type Test } from 'tap'
import { Agent, request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import type { FixtureConfig, ReadyMessage } from './fixtures/fixture-common.js'
import { forkFixture, type Child } from './helpers/child.js'
import type { ShutdownReport } from '@graceful/core'

type Adapter = 'fastify' | 'express'
const ADAPTERS: Adapter[] = ['fastify', 'express']
const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']
// Generous: a forked child compiles TypeScript on a loaded 2-core machine. Only proves "no hang".
const BOUND_MS = 20_000

// Each child spends most of its life starting up; a few at a time keep the file well inside its budget.
const JOBS = 3
t.setTimeout(180_000)

/** Forks a fixture, kills it at teardown if it is still running, and waits until it listens. */
async function start (t: Test, adapter: Adapter, config: FixtureConfig = {}): Promise<{ child: Child, port: number, ready: ReadyMessage }> {
  const child = forkFixture(t, `${adapter}-app.ts`, config)
  const ready = await child.message((m): m is ReadyMessage => 'port' in m)
  return { child, port: ready.port, ready }
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/**
 * A GET; rejects on a reset. Without an agent it has a connection of its own and asks for
 * `Connection: close` itself.
 */
function get (port: number, path: string, agent: Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const entered = (m: object): m is { entered: string } => 'entered' in m

for (const adapter of ADAPTERS) {
  t.test(adapter, { jobs: JOBS }, async (t) => {
    for (const signal of SIGNALS) {
      t.test(`${signal} drains and exits with code 0, logging one report`, async (t) => {
        const { child, port } = await start(t, adapter, { hooks: true })
        t.equal((await get(port, '/')).body, 'hello')
        child.kill(signal)
        const exit = await child.exited
        t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null })
        t.ok(exit.ms < BOUND_MS, 'exits without hanging')
        const reports = child.reports()
        t.equal(reports.length, 1, 'one shutdown complete line')
        t.match(reports[0], { reason: signal, exitCode: 0, timedOut: false, aborted: 0, destroyedSockets: 0 })
        t.same(reports[0]?.hooks.map((h) => h.name).slice(0, 3), ['before', 'first', 'last'])
        t.same(child.lines().filter((l) => l.startsWith('app1 hook')), ['app1 hook before ran', 'app1 hook first ran', 'app1 hook last ran'])
        t.ok(child.lines().includes('process.exit called with 0'), 'graceful exits with the report\'s code')
      })
    }

    t.test('a request in flight at SIGTERM finishes with 200 and Connection: close, then the process exits 0', async (t) => {
      const { child, port } = await start(t, adapter, { releaseOnDrain: true })
      // A keep-alive client: the server would keep its connection open, were it not for the drain.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      t.teardown(() => agent.destroy())
      t.equal((await get(port, '/', agent)).headers.connection, 'keep-alive', 'served before: keep-alive')
      const answer = get(port, '/hold', agent)
      await child.message(entered)
      child.kill('SIGTERM')
      const res = await answer
      t.equal(res.status, 200)
      t.equal(res.body, 'released')
      t.equal(res.headers.connection, 'close')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null })
      const reports = child.reports()
      t.equal(reports.length, 1)
      t.match(reports[0], { reason: 'SIGTERM', inFlightAtStart: 1, completed: 1, aborted: 0, exitCode: 0 })
    })

    t.test('a hung request past the timeout makes the process exit with code 1', async (t) => {
      const { child, port } = await start(t, adapter, { options: { timeout: 300 } })
      const answer = get(port, '/hold').then(() => 'answered', (err: NodeJS.ErrnoException) => err.code)
      await child.message(entered)
      child.kill('SIGTERM')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 1, signal: null })
      t.ok(exit.ms < BOUND_MS, 'exits without hanging')
      t.equal(await answer, 'ECONNRESET', 'the hung request is cut')
      const reports = child.reports()
      t.equal(reports.length, 1)
      t.match(reports[0], { reason: 'SIGTERM', inFlightAtStart: 1, aborted: 1, timedOut: true, exitCode: 1 })
    })

    t.test('a failing afterDrain hook makes the exit code 1 and the other hooks still run', async (t) => {
      const { child } = await start(t, adapter, { failHook: true })
      child.kill('SIGTERM')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 1, signal: null })
      t.same(child.lines().filter((l) => l.startsWith('app1 hook')), ['app1 hook before ran', 'app1 hook first ran', 'app1 hook last ran'])
      const reports = child.reports()
      t.equal(reports.length, 1)
      const report = reports[0] as ShutdownReport
      t.equal(report.exitCode, 1)
      t.same(report.hooks.slice(0, 4).map((h) => [h.name, h.error]),
        [['before', undefined], ['first', undefined], ['failing', 'fixture: hook failed on purpose'], ['last', undefined]])
      t.equal(child.logged('graceful: hook failed').length, 1, 'the failure is logged')
    })

    t.test('a second SIGTERM during the shutdown exits at once with code 1', async (t) => {
      const { child } = await start(t, adapter, { options: { delay: 5000 }, hooks: true })
      child.kill('SIGTERM')
      // The beforeDrain hook runs at the start of the 5 s lame-duck delay.
      await child.waitFor(/fixture: app1 hook before ran/)
      child.kill('SIGTERM')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 1, signal: null })
      t.ok(exit.ms < 4000, 'does not wait for the delay')
      t.equal(child.reports().length, 0, 'the shutdown did not finish')
      t.equal(child.logged('graceful: second signal').length, 1)
    })

    t.test('signals: false leaves SIGTERM to Node: the process dies by the signal', async (t) => {
      const { child } = await start(t, adapter, { options: { signals: false } })
      child.kill('SIGTERM')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: null, signal: 'SIGTERM' })
      t.equal(child.reports().length, 0)
    })

    t.test('signals: [SIGINT] drains on SIGINT and exits 0', async (t) => {
      const { child } = await start(t, adapter, { options: { signals: ['SIGINT'] } })
      child.kill('SIGINT')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null })
      t.match(child.reports(), [{ reason: 'SIGINT', exitCode: 0 }])
    })

    t.test('signals: [SIGINT] leaves SIGTERM to Node', async (t) => {
      const { child } = await start(t, adapter, { options: { signals: ['SIGINT'] } })
      child.kill('SIGTERM')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: null, signal: 'SIGTERM' })
      t.equal(child.reports().length, 0)
    })

    t.test('exit: false runs the shutdown on SIGTERM, then the process ends on its own with code 0', async (t) => {
      const { child } = await start(t, adapter, { options: { exit: false }, keepAlive: true })
      child.kill('SIGTERM')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null })
      t.match(child.reports(), [{ reason: 'SIGTERM', exitCode: 0 }])
      const lines = child.lines()
      t.notOk(lines.some((l) => l.startsWith('process.exit called')), 'graceful does not call process.exit')
      t.same(lines.filter((l) => !l.startsWith('app1 hook')), ['app1 interval cleared', 'exit event code=0'])
    })

    t.test('two instances share one SIGTERM handler, and one SIGTERM drains both', async (t) => {
      const { child, ready } = await start(t, adapter, { two: true, hooks: true })
      // The baseline is tap's own listener (signal-exit, for process info); outside tap it is 0.
      t.equal(ready.afterFirst, ready.baseline + 1, 'the first instance adds one SIGTERM listener')
      t.equal(ready.listeners, ready.baseline + 1, 'the second adds none: one process-wide SIGTERM listener')
      t.ok(ready.port2 !== undefined && ready.port2 !== ready.port, 'two apps listen')
      t.equal((await get(ready.port2 as number, '/')).body, 'hello')
      child.kill('SIGTERM')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null })
      t.match(child.reports(), [{ reason: 'SIGTERM', exitCode: 0 }, { reason: 'SIGTERM', exitCode: 0 }])
      const hooks = child.lines().filter((l) => l.includes(' hook '))
      for (const label of ['app1', 'app2']) {
        t.same(hooks.filter((l) => l.startsWith(label)), [`${label} hook before ran`, `${label} hook first ran`, `${label} hook last ran`])
      }
    })

    t.test('an uncaught exception shuts down gracefully and exits with code 1', async (t) => {
      const { child, port } = await start(t, adapter, { hooks: true })
      t.equal((await get(port, '/throw')).body, 'thrown soon')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 1, signal: null })
      const errors = child.logged('graceful: uncaught error')
      t.equal(errors.length, 1, 'one error line')
      t.match(errors[0], /fixture: boom/)
      t.match(child.reports(), [{ reason: 'uncaughtException' }])
      t.ok(child.lines().includes('app1 hook last ran'), 'the hooks ran')
      t.ok(child.lines().includes('process.exit called with 1'))
    })

    t.test('a shutdown started from code never calls process.exit; the process ends on its own with 0', async (t) => {
      const { child } = await start(t, adapter, { shutdown: true })
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null })
      t.match(child.reports(), [{ reason: 'shutdown', exitCode: 0 }])
      const lines = child.lines()
      t.equal(lines.length, 2, lines.join('\n'))
      t.match(lines[0], /^app1 shutdown\(\) resolved \{.*"reason":"shutdown".*\}$/)
      t.equal(lines[1], 'exit event code=0')
    })
  })
}

// Several servers in one process (test/fixtures/many-servers-app.ts): an app and an admin server, and three
// apps side by side, under one real SIGTERM. One signal handler; every instance drains at the same time; the
// process exits once, after all of them, with the highest exit code; one process report sums them up.
import t, { type Test } from 'tap'
import type { Layout, ManyConfig, ManyReady } from './fixtures/many-servers-app.js'
import { forkFixture, type Child, type LogLine } from './helpers/child.js'
import { get, type Answer } from './helpers/example.js'

// Generous: a forked child compiles TypeScript on a loaded 2-core machine. Only proves "no hang".
const BOUND_MS = 20_000
const JOBS = 3
t.setTimeout(240_000)

const isReady = (m: object): m is ManyReady => 'ports' in m
const entered = (m: object): boolean => 'entered' in m

async function start (t: Test, config: ManyConfig): Promise<{ child: Child, ready: ManyReady }> {
  const child = forkFixture(t, 'many-servers-app.ts', config)
  return { child, ready: await child.message(isReady) }
}

/** Starts a /hold on every server and resolves once each has reached its handler. */
async function holdEverywhere (child: Child, ports: Record<string, number>): Promise<Map<string, Promise<Answer>>> {
  const answers = new Map(Object.entries(ports).map(([label, port]) => [label, get(port, '/hold')]))
  await child.messageCount(entered, answers.size)
  return answers
}

async function exitOf (t: Test, child: Child, code: number): Promise<void> {
  const exit = await child.exited
  t.same({ code: exit.code, signal: exit.signal }, { code, signal: null }, `the process exits with code ${code}`)
  t.ok(exit.ms < BOUND_MS, `without hanging (${Math.round(exit.ms)} ms)`)
}

/** Log entries with this message (the fixture logs JSON lines labelled with the instance). */
function entries (child: Child, msg: string): LogLine[] {
  return child.logLines().filter((l) => l.msg === msg)
}

const LAYOUTS: Array<{ layout: Layout, instances: number, servers: string[] }> = [
  { layout: 'fastify+fastify-admin', instances: 2, servers: ['app', 'admin'] },
  { layout: 'fastify+http-admin', instances: 1, servers: ['app', 'admin'] },
  { layout: 'express+admin', instances: 1, servers: ['app', 'admin'] },
  { layout: 'fastify*3', instances: 3, servers: ['app1', 'app2', 'app3'] },
  { layout: 'express*3', instances: 3, servers: ['app1', 'app2', 'app3'] }
]

t.test('one SIGTERM drains every server of the process together', { jobs: JOBS }, async (t) => {
  for (const { layout, instances, servers } of LAYOUTS) {
    t.test(`${layout}: ${instances} instance(s), ${servers.length} servers: one handler, all drained at once, one exit with 0`, async (t) => {
      const { child, ready } = await start(t, { layout })
      t.same(Object.keys(ready.ports).sort(), [...servers].sort())
      t.equal(ready.sigtermListeners, 1, 'one SIGTERM listener for the whole process')
      t.equal(ready.errorListeners, 1, 'one uncaughtException listener')
      for (const label of servers) t.equal((await get(ready.ports[label] as number, '/')).body, `hello from ${label}`)

      const answers = await holdEverywhere(child, ready.ports)
      child.kill('SIGTERM')
      for (const [label, answer] of answers) {
        const res = await answer
        t.same([res.status, res.body, res.headers.connection], [200, `released ${label}`, 'close'],
          `${label}: the request in flight finishes (it could only once every instance was draining)`)
      }
      await exitOf(t, child, 0)
      t.equal(child.lines().filter((l) => l.startsWith('process.exit called')).length, 1, 'process.exit is called once')

      const reports = child.reports()
      t.equal(reports.length, instances, 'one report line per instance')
      t.ok(reports.every((r) => r.reason === 'SIGTERM' && r.exitCode === 0 && r.aborted === 0))
      t.equal(reports.reduce((n, r) => n + r.completed, 0), servers.length, 'every request in flight completed')
      const processReports = entries(child, 'graceful: process shutdown complete')
      if (instances > 1) {
        t.equal(processReports.length, 1, 'one process report')
        t.equal(processReports[0]?.app, servers[0], 'logged through the first instance')
        t.match(processReports[0]?.report, { reason: 'SIGTERM', instances, inFlightAtStart: servers.length, completed: servers.length, aborted: 0, exitCode: 0 })
      } else {
        t.equal(processReports.length, 0, 'one instance: its report is the process\'s')
        t.match(reports[0], { inFlightAtStart: 2, completed: 2 }, 'one instance drains both servers')
      }

      // Parallel, not one after another: every instance had begun before any reached its cleanup.
      const phases = child.lines().filter((l) => / (beforeDrain|afterDrain)$/.test(l))
      const lastBefore = Math.max(...phases.map((l, i) => l.endsWith('beforeDrain') ? i : -1))
      const firstAfter = phases.findIndex((l) => l.endsWith('afterDrain'))
      t.equal(phases.length, 2 * instances)
      t.ok(lastBefore < firstAfter, `every beforeDrain before any afterDrain: ${phases.join(', ')}`)
    })
  }
})

for (const adapter of ['fastify', 'express'] as const) {
  const layout: Layout = `${adapter}*3`
  t.test(`${layout}: exit codes, second signals and mixed options`, { jobs: JOBS }, async (t) => {
    t.test('one instance\'s failing hook makes the process exit 1; the others report 0', async (t) => {
      const { child, ready } = await start(t, { layout, failHook: 1 })
      const answers = await holdEverywhere(child, ready.ports)
      child.kill('SIGTERM')
      for (const answer of answers.values()) t.equal((await answer).status, 200)
      await exitOf(t, child, 1)
      const reports = entries(child, 'graceful: shutdown complete')
      t.same(reports.map((r) => r.app).sort(), ['app1', 'app3'], 'clean instances')
      t.same(entries(child, 'graceful: shutdown complete, not clean').map((r) => r.app), ['app2'])
      const [summary] = entries(child, 'graceful: process shutdown complete, not clean')
      t.match(summary, { app: 'app1', level: 'warn', report: { instances: 3, failedHooks: 1, completed: 3, exitCode: 1 } })
      t.ok(child.lines().includes('process.exit called with 1'))
    })

    t.test('a second SIGTERM while they drain exits at once with 1, logged once', async (t) => {
      const delay = { delay: 5000 }
      const { child } = await start(t, { layout, options: [delay, delay, delay] })
      child.kill('SIGTERM')
      // Every instance runs its beforeDrain hook at the start of its 5 s lame-duck time.
      await child.waitFor(/fixture: app3 beforeDrain/)
      child.kill('SIGTERM')
      const exit = await child.exited
      t.same({ code: exit.code, signal: exit.signal }, { code: 1, signal: null })
      t.ok(exit.ms < 4000, `does not wait for the delay (${Math.round(exit.ms)} ms)`)
      t.equal(child.reports().length, 0, 'no instance finished')
      t.equal(entries(child, 'graceful: second signal, exiting now with code 1').length, 1)
    })

    t.test('exit: false on two instances and true on one: all drain, then the process exits once with 0', async (t) => {
      const { child, ready } = await start(t, { layout, options: [{ exit: false }, { exit: true }, { exit: false }] })
      const answers = await holdEverywhere(child, ready.ports)
      child.kill('SIGTERM')
      for (const answer of answers.values()) t.equal((await answer).status, 200)
      await exitOf(t, child, 0)
      t.equal(child.reports().length, 3, 'every instance finished first')
      t.match(entries(child, 'graceful: process shutdown complete'), [{ report: { instances: 3, exitCode: 0 } }])
      t.same(child.lines().filter((l) => l.startsWith('process.exit called')), ['process.exit called with 0'])
    })

    t.test('exit: false on every instance: all drain, and the process ends on its own with 0', async (t) => {
      const { child, ready } = await start(t, { layout, options: [{ exit: false }, { exit: false }, { exit: false }] })
      const answers = await holdEverywhere(child, ready.ports)
      child.kill('SIGTERM')
      for (const answer of answers.values()) t.equal((await answer).status, 200)
      await exitOf(t, child, 0)
      t.equal(child.reports().length, 3)
      t.match(entries(child, 'graceful: process shutdown complete'), [{ report: { instances: 3, exitCode: 0 } }])
      t.notOk(child.lines().some((l) => l.startsWith('process.exit called')), 'graceful never calls process.exit')
    })

    t.test('an instance that does not listen for SIGTERM is drained too before the process exits', async (t) => {
      const { child, ready } = await start(t, { layout, options: [{}, { signals: ['SIGINT'] }, {}] })
      const answers = await holdEverywhere(child, ready.ports)
      child.kill('SIGTERM')
      t.equal((await (answers.get('app2') as Promise<Answer>)).body, 'released app2', 'its request in flight is not cut by process.exit')
      await exitOf(t, child, 0)
      t.same(entries(child, 'graceful: shutdown complete').map((r) => [r.app, (r.report as { reason: string }).reason]).sort(),
        [['app1', 'SIGTERM'], ['app2', 'SIGTERM'], ['app3', 'SIGTERM']])
    })
  })
}

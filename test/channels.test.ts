// The lifecycle on node:diagnostics_channel (packages/core/src/channels.ts), as an APM agent or a metrics
// library sees it: every message of a Fastify and an Express shutdown, `stats()` for live gauges, and
// nothing published — or allocated — while nobody subscribes.
import t, { type Test } from 'tap'
import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel'
import http from 'node:http'
import { Session } from 'node:inspector/promises'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'
import {
  CHANNELS, Graceful, type HookMessage, type PhaseMessage, type ReportMessage, type Stats
} from '@graceful/core'
import type { GracefulMiddleware } from '@graceful/express'
import { harnesses } from './helpers/harnesses.js'
import type { TestApp } from './helpers/harness.js'
import { keepAliveAgent, request } from './helpers/client.js'

/** The core instance behind a harness's app: Fastify `app.graceful`, Express `g.instance`. */
function instanceOf (app: TestApp): Graceful {
  return app.adapter === 'fastify' ? app.graceful as Graceful : (app.graceful as unknown as GracefulMiddleware).instance
}

interface Recorded {
  phase: PhaseMessage[]
  hook: HookMessage[]
  report: ReportMessage[]
}

/** Subscribes to the three lifecycle channels for the length of the test. */
function record (t: Test): Recorded {
  const got: Recorded = { phase: [], hook: [], report: [] }
  for (const name of ['phase', 'hook', 'report'] as const) {
    const fn = (message: unknown): void => { (got[name] as unknown[]).push(message) }
    subscribe(CHANNELS[name], fn)
    t.teardown(() => { unsubscribe(CHANNELS[name], fn) })
  }
  return got
}

for (const harness of harnesses) {
  t.test(`${harness.name}: a shutdown publishes each phase change, each hook and the report`, async (t) => {
    const app = await harness.start()
    t.teardown(() => app.close())
    const instance = instanceOf(app)
    const got = record(t)
    app.graceful.beforeDrain(() => {}, { name: 'deregister' })
    app.graceful.afterDrain(() => {}, { name: 'close pool' })
    const agent = keepAliveAgent()
    t.teardown(() => { agent.destroy() })
    const held = request(app.port, agent, { path: '/hold/a' })
    await app.entered('a')
    t.same(got, { phase: [], hook: [], report: [] }, 'nothing is published while serving')

    const draining = new Promise<void>((resolve) => {
      subscribe(CHANNELS.phase, function waitForDrain (m) {
        if ((m as PhaseMessage).phase !== 'draining') return
        unsubscribe(CHANNELS.phase, waitForDrain)
        resolve()
      })
    })
    const done = app.graceful.shutdown('deploy')
    await draining
    app.release('a')
    t.match(await held, { status: 200, headers: { connection: 'close' } })
    const report = await done

    t.same(got.phase.map((m) => [m.previous, m.phase]), [
      ['serving', 'lameduck'], ['lameduck', 'draining'], ['draining', 'cleanup'], ['cleanup', 'closed']
    ], 'graceful:phase: every change, in order')
    for (const m of got.phase) {
      t.equal(m.instance, instance, `${m.phase}: the instance that changed`)
      t.equal(m.reason, 'deploy', `${m.phase}: the shutdown's reason`)
      t.type(m.inFlight, 'number')
      t.type(m.connections, 'number')
    }
    t.match(got.phase[1], { phase: 'draining', inFlight: 1, connections: 1 }, 'at the drain start: the held request on its connection')
    t.match(got.phase[3], { phase: 'closed', inFlight: 0 })

    const hooks = got.hook.map((m) => [m.kind, m.hook.name])
    t.same(hooks, [
      ['beforeDrain', 'deregister'],
      ['afterDrain', 'close pool'],
      ...(harness.name === 'fastify' ? [['close', 'fastify.close']] : [])
    ], 'graceful:hook: one message per hook as it settles, the framework\'s own close as kind close')
    for (const m of got.hook) {
      t.equal(m.instance, instance)
      t.same(Object.keys(m.hook).sort(), ['ms', 'name'], 'a passing hook has no error field')
    }
    t.same(got.hook.map((m) => m.hook), report.hooks, 'the same entries as the report\'s hooks')

    t.equal(got.report.length, 1, 'graceful:report: once')
    t.equal(got.report[0]?.instance, instance)
    t.equal(got.report[0]?.report, report, 'the very object shutdown() resolves with')
  })

  t.test(`${harness.name}: a failing hook is published with its error`, async (t) => {
    const app = await harness.start()
    t.teardown(() => app.close())
    const got = record(t)
    app.graceful.afterDrain(() => { throw new Error('pool refused to close') }, { name: 'close pool' })
    await app.graceful.shutdown()
    t.match(got.hook[0], { kind: 'afterDrain', hook: { name: 'close pool', error: 'pool refused to close' } })
    t.match(got.report[0]?.report, { exitCode: 1 })
  })

  t.test(`${harness.name}: nobody subscribed: no channel has subscribers and nothing is published during a shutdown`, async (t) => {
    const app = await harness.start()
    t.teardown(() => app.close())
    // The same Channel objects the core publishes on: channel(name) returns one object per name.
    const published: string[] = []
    for (const name of Object.values(CHANNELS)) {
      const ch = channel(name)
      t.equal(ch.hasSubscribers, false, `${name}: no subscriber`)
      const original = ch.publish
      ch.publish = function spy (message: unknown) {
        published.push(name)
        original.call(this, message)
      }
      // Deleted, not set back: a channel takes its publish() from its prototype, which Node swaps when the
      // first subscriber comes; an own property would shadow the active one for every later test.
      t.teardown(() => { delete (ch as { publish?: unknown }).publish })
    }
    app.graceful.afterDrain(() => {})
    const report = await app.graceful.shutdown()
    t.equal(report.exitCode, 0)
    t.same(published, [], 'publish() was never called')
  })

  t.test(`${harness.name}: stats() counts the requests in flight and the open connections, during the drain too`, async (t) => {
    const app = await harness.start()
    t.teardown(() => app.close())
    const instance = instanceOf(app)
    const stats = (): Stats => instance.stats()
    t.same(stats(), { phase: 'serving', inFlight: 0, connections: 0 })
    const agent = keepAliveAgent()
    t.teardown(() => { agent.destroy() })
    const held = request(app.port, agent, { path: '/hold/a' })
    await app.entered('a')
    t.same(stats(), { phase: 'serving', inFlight: 1, connections: 1 })
    const done = app.graceful.shutdown()
    t.match(stats(), { phase: 'lameduck', inFlight: 1, connections: 1 })
    app.release('a')
    await held
    await done
    t.same(stats(), { phase: 'closed', inFlight: 0, connections: 0 })
  })
}

interface ProfileNode {
  callFrame: { functionName: string, url: string, lineNumber: number }
  selfSize: number
  children: ProfileNode[]
}

const PACKAGES = new URL('../packages/', import.meta.url).href

/**
 * Bytes the library's own code (packages/*\/src) allocated while `work` ran, sampled by V8's heap profiler
 * on average every `interval` bytes, objects that were collected again included: a message object built
 * per request (some 60 bytes) over 2,000 requests leaves hundreds of samples, nothing leaves none.
 */
// V8's sampling heap profiler names a sample after the JavaScript frame running when it was taken, and the
// JIT allocates too: the code and data of a function it has just compiled are counted as that function's,
// some runs and not others (under coverage, most runs), and so is what TurboFan inlined into it (Express's
// next() into the middleware). Interpreted only, what is counted is what the code itself creates — more than
// when optimised, since escape analysis removes nothing: the stricter test.
for (const flag of ['--no-sparkplug', '--no-maglev', '--no-turbofan']) v8.setFlagsFromString(flag)

async function libraryAllocations (work: () => Promise<void>, interval = 128): Promise<Map<string, number>> {
  const session = new Session()
  session.connect()
  try {
    await session.post('HeapProfiler.enable')
    // The two include flags (V8 11 on, Node 20 on) are not in @types/node 20's parameter type.
    const sampling = { samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }
    await session.post('HeapProfiler.startSampling', sampling)
    await work()
    const { profile } = await session.post('HeapProfiler.stopSampling') as { profile: { head: ProfileNode } }
    const ours = new Map<string, number>()
    const walk = (node: ProfileNode): void => {
      const url = node.callFrame.url
      if (node.selfSize > 0 && (url.startsWith(PACKAGES) || url.startsWith(fileURLToPath(PACKAGES)))) {
        const where = `${url.slice(url.indexOf('/packages/') + 1)}:${node.callFrame.lineNumber + 1} ${node.callFrame.functionName}`
        ours.set(where, (ours.get(where) ?? 0) + node.selfSize)
      }
      node.children.forEach(walk)
    }
    walk(profile.head)
    return ours
  } finally {
    session.disconnect()
  }
}

for (const harness of harnesses) {
  t.test(`${harness.name}: serving 2,000 requests allocates nothing in the library, so no message is built per request`, async (t) => {
    const app = await harness.start()
    t.teardown(() => app.close())
    for (const name of Object.values(CHANNELS)) t.equal(channel(name).hasSubscribers, false, `${name}: no subscriber`)
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
    t.teardown(() => { agent.destroy() })
    const burst = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i += 4) {
        await Promise.all([0, 1, 2, 3].map(() => request(app.port, agent, { path: '/' })))
      }
    }
    // Warm: the first calls compile and allocate feedback for every function on the path.
    await burst(400)
    const ours = await libraryAllocations(() => burst(2000))
    t.same(Object.fromEntries(ours), {}, 'no sampled allocation in packages/*/src')
  })
}

// The process-wide signal registry's logic, with close-with-grace and the process stood in for, so every
// branch runs without signalling the test process. test/signals.test.ts and test/many-servers.test.ts prove
// the real wiring with real signals sent to forked apps.
import t from 'tap'
import { EventEmitter } from 'node:events'
import type { Logger, ShutdownReport } from '@graceful/core'
import { createSignalRegistry, type ProcessLike, type ProcessReport, type SignalMember } from '../packages/core/src/signals.js'

type Install = Parameters<typeof createSignalRegistry>[0]
type Options = Parameters<Install>[0]
type Fn = Parameters<Install>[1]

function fakeInstall () {
  const installs: Array<{ options: Options, fn: Fn, uninstalled: boolean, closed: Promise<void> | null }> = []
  const install = (options: Options, fn: Fn) => {
    const entry = { options, fn, uninstalled: false, closed: null as Promise<void> | null }
    installs.push(entry)
    return {
      // close-with-grace's close(): the callback with { manual: true }.
      close: () => { entry.closed = fn({ manual: true }) },
      uninstall: () => { entry.uninstalled = true }
    }
  }
  return { installs, install }
}

class FakeProcess extends EventEmitter implements ProcessLike {
  codes: number[] = []
  exitCode: number | undefined = undefined
  exit (code: number): void {
    this.codes.push(code)
  }
}

function report (exitCode: 0 | 1, fields: Partial<ShutdownReport> = {}): ShutdownReport {
  return { reason: 'x', durationMs: 1, inFlightAtStart: 0, completed: 0, rejected: 0, aborted: 0, interrupted: 0, destroyedSockets: 0, hooks: [], timedOut: false, exitCode, ...fields }
}

function member (signals: NodeJS.Signals[], exit: boolean, result: ShutdownReport | Promise<ShutdownReport> = report(0)) {
  const logs: Array<[string, string, Record<string, unknown>]> = []
  const log: Logger = {
    info: (o, m) => { logs.push(['info', m ?? '', o as Record<string, unknown>]) },
    warn: (o, m) => { logs.push(['warn', m ?? '', o as Record<string, unknown>]) },
    error: (o, m) => { logs.push(['error', m ?? '', o as Record<string, unknown>]) }
  }
  const reasons: string[] = []
  const m: SignalMember & { logs: typeof logs, reasons: string[] } = {
    signals, exit, log, logs, reasons,
    shutdown: async (reason?: string) => {
      reasons.push(reason as string)
      return result
    }
  }
  return m
}

function deferredReport () {
  let resolve!: (r: ShutdownReport) => void
  const promise = new Promise<ShutdownReport>((r) => { resolve = r })
  return { promise, resolve }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('installs one handler for every member, skipping the signals nobody asked for, the error events and beforeExit', async (t) => {
  const { installs, install } = fakeInstall()
  const proc = new FakeProcess()
  const r = createSignalRegistry(install, proc)
  const a = member(['SIGTERM', 'SIGINT'], true)
  const b = member(['SIGTERM'], true)
  r.register(a)
  t.equal(proc.listenerCount('uncaughtException'), 1, 'the registry listens for uncaught errors itself')
  t.equal(proc.listenerCount('unhandledRejection'), 1)
  r.register(b)
  t.equal(installs.length, 1, 'the same signal set does not install again')
  const skip = installs[0]?.options.skip ?? []
  t.ok(skip.includes('beforeExit'))
  t.ok(skip.includes('SIGHUP'))
  t.ok(skip.includes('uncaughtException'), 'close-with-grace would exit at once on an error during the shutdown')
  t.ok(skip.includes('unhandledRejection'))
  t.notOk(skip.includes('SIGTERM'))
  t.notOk(skip.includes('SIGINT'))
  t.equal(installs[0]?.options.delay, null, 'each instance bounds its own shutdown')

  const c = member(['SIGUSR2'], true)
  r.register(c)
  t.equal(installs.length, 2, 'a new signal reinstalls')
  t.equal(installs[0]?.uninstalled, true, 'the old handler is removed')
  t.equal(proc.listenerCount('uncaughtException'), 1, 'still one error listener')
  r.unregister(c)
  r.unregister(b)
  r.unregister(a)
  t.equal(installs.at(-1)?.uninstalled, true, 'the last member gone, nothing stays installed')
  t.equal(proc.listenerCount('uncaughtException'), 0)
  t.equal(proc.listenerCount('unhandledRejection'), 0)
})

t.test('a signal shuts down the members that listen for it and, since the process exits, the others too; the highest exit code wins', async (t) => {
  const { installs, install } = fakeInstall()
  const proc = new FakeProcess()
  const r = createSignalRegistry(install, proc)
  const a = member(['SIGTERM'], true, report(0))
  const b = member(['SIGTERM', 'SIGINT'], false, report(1))
  const c = member(['SIGINT'], true, report(0))
  r.register(a)
  r.register(b)
  r.register(c)
  const fn = installs.at(-1)?.fn as Fn
  await fn({ signal: 'SIGTERM' })
  t.same(a.reasons, ['SIGTERM'])
  t.same(b.reasons, ['SIGTERM'])
  t.same(c.reasons, ['SIGTERM'], 'process.exit would cut it: drained too')
  t.same(proc.codes, [1])
  r.unregister(a)
  t.equal(installs.at(-1)?.uninstalled, false, 'after a signal, the handler stays for the second signal')
})

t.test('when no member that listens for the signal exits the process, the others keep serving', async (t) => {
  const { installs, install } = fakeInstall()
  const proc = new FakeProcess()
  const r = createSignalRegistry(install, proc)
  const a = member(['SIGTERM'], false)
  const c = member(['SIGINT'], true)
  r.register(a)
  r.register(c)
  void (installs.at(-1)?.fn as Fn)({ signal: 'SIGTERM' })
  await turn()
  t.same(a.reasons, ['SIGTERM'])
  t.same(c.reasons, [])
  t.same(proc.codes, [])
})

t.test('with exit: false the handler never settles, so close-with-grace does not exit for us', async (t) => {
  const { installs, install } = fakeInstall()
  const proc = new FakeProcess()
  const r = createSignalRegistry(install, proc)
  const a = member(['SIGINT'], false)
  r.register(a)
  let settled = false
  void (installs[0]?.fn as Fn)({ signal: 'SIGINT' }).then(() => { settled = true })
  await turn()
  t.same(a.reasons, ['SIGINT'])
  t.equal(settled, false)
  t.same(proc.codes, [])
  t.equal(proc.exitCode, undefined, 'a clean shutdown leaves the exit code alone')
  t.equal(proc.listenerCount('uncaughtException'), 0, 'errors after the shutdown are Node\'s again')
  t.same(a.logs, [], 'one clean instance: its own report says it all')
})

for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  t.test(`an ${event} shuts every member down through close-with-grace, logs it once, and exits 1`, async (t) => {
    const { installs, install } = fakeInstall()
    const proc = new FakeProcess()
    const r = createSignalRegistry(install, proc)
    const a = member(['SIGINT'], true, report(1))
    const b = member(['SIGTERM'], false, report(0))
    r.register(a)
    r.register(b)
    const err = new Error('boom')
    proc.emit(event, err)
    await installs.at(-1)?.closed
    t.same(a.reasons, [event])
    t.same(b.reasons, [event])
    t.same(proc.codes, [1])
    t.same(a.logs[0]?.slice(0, 2), ['error', 'graceful: uncaught error, shutting down'])
    t.equal(a.logs[0]?.[2].err, err)
    t.equal(a.logs[0]?.[2].event, event)
    t.same(b.logs, [], 'process-level lines go through the first instance only')
  })
}

t.test('an uncaught error during a signal\'s shutdown lets the drain finish, then exits 1', async (t) => {
  const { installs, install } = fakeInstall()
  const proc = new FakeProcess()
  const r = createSignalRegistry(install, proc)
  const pending = deferredReport()
  const a = member(['SIGTERM'], true, pending.promise)
  r.register(a)
  const done = (installs[0]?.fn as Fn)({ signal: 'SIGTERM' })
  await turn()
  proc.emit('uncaughtException', new Error('during'))
  t.same(proc.codes, [], 'no exit while the drain goes on')
  t.same(a.logs.map(([level, msg]) => [level, msg]),
    [['error', 'graceful: uncaught error during the shutdown; the drain goes on, the exit code will be 1']])
  pending.resolve(report(0, { reason: 'SIGTERM', completed: 1, inFlightAtStart: 1 }))
  await done
  t.same(proc.codes, [1])
  const last = a.logs.at(-1)
  t.same(last?.slice(0, 2), ['warn', 'graceful: process shutdown complete, not clean'], 'the report said 0: a process line says why 1')
  t.match(last?.[2].report, { reason: 'SIGTERM', instances: 1, completed: 1, uncaughtErrors: 1, exitCode: 1 })
})

t.test('with exit: false an uncaught error during the shutdown sets process.exitCode to 1 instead', async (t) => {
  const { installs, install } = fakeInstall()
  const proc = new FakeProcess()
  const r = createSignalRegistry(install, proc)
  const pending = deferredReport()
  const a = member(['SIGTERM'], false, pending.promise)
  r.register(a)
  void (installs[0]?.fn as Fn)({ signal: 'SIGTERM' })
  await turn()
  proc.emit('unhandledRejection', new Error('late'))
  pending.resolve(report(0))
  await turn()
  t.same(proc.codes, [])
  t.equal(proc.exitCode, 1)
  t.equal(proc.listenerCount('unhandledRejection'), 0)
})

t.test('several members: one process report, through the first, with the sums', async (t) => {
  const { installs, install } = fakeInstall()
  const proc = new FakeProcess()
  const r = createSignalRegistry(install, proc)
  const a = member(['SIGTERM'], true, report(0, { inFlightAtStart: 2, completed: 2, rejected: 1 }))
  const b = member(['SIGTERM'], true, report(1, {
    inFlightAtStart: 3, completed: 1, aborted: 2, destroyedSockets: 2, timedOut: true, hooks: [{ name: 'x', ms: 1, error: 'e' }, { name: 'y', ms: 1 }]
  }))
  const c = member(['SIGTERM'], true, report(0, { completed: 4, interrupted: 1 }))
  r.register(a)
  r.register(b)
  r.register(c)
  await (installs[0]?.fn as Fn)({ signal: 'SIGTERM' })
  t.same(proc.codes, [1])
  t.same(b.logs, [])
  t.same(c.logs, [])
  t.equal(a.logs.length, 1)
  const [level, msg, obj] = a.logs[0] as [string, string, { report: ProcessReport }]
  t.same([level, msg], ['warn', 'graceful: process shutdown complete, not clean'])
  t.same({ ...obj.report, durationMs: 0 }, {
    reason: 'SIGTERM', instances: 3, durationMs: 0, inFlightAtStart: 5, completed: 7, rejected: 1, aborted: 2,
    interrupted: 1, destroyedSockets: 2, failedHooks: 1, timedOut: true, uncaughtErrors: 0, exitCode: 1
  })
})

t.test('several clean members: the process report is logged at info with exit code 0', async (t) => {
  const { installs, install } = fakeInstall()
  const proc = new FakeProcess()
  const r = createSignalRegistry(install, proc)
  const a = member(['SIGINT'], true)
  const b = member(['SIGINT'], false)
  r.register(a)
  r.register(b)
  await (installs[0]?.fn as Fn)({ signal: 'SIGINT' })
  t.same(proc.codes, [0])
  t.same(a.logs.map(([level, msg]) => [level, msg]), [['info', 'graceful: process shutdown complete']])
  t.match(a.logs[0]?.[2], { report: { instances: 2, exitCode: 0 } })
})

t.test('second signals and failures are logged once, through the first member', async (t) => {
  const { installs, install } = fakeInstall()
  const proc = new FakeProcess()
  const r = createSignalRegistry(install, proc)
  const a = member(['SIGTERM'], true)
  const b = member(['SIGTERM'], true)
  r.register(a)
  r.register(b)
  const options = installs[0]?.options as Options
  options.onSecondSignal?.('SIGTERM')
  ;(options.logger as { error (e: unknown): void }).error(new Error('failed'))
  t.same(a.logs.map(([, m]) => m), [
    'graceful: second signal, exiting now with code 1',
    'graceful: shutdown failed'
  ])
  t.same(b.logs, [])
})

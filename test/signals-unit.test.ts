// The process-wide signal registry's logic, with close-with-grace and process.exit stood in for, so every
// branch runs without signalling the test process. test/signals.test.ts proves the real wiring with real
// signals sent to forked apps.
import t from 'tap'
import type { Logger, ShutdownReport } from '@graceful/core'
import { createSignalRegistry, type SignalMember } from '../packages/core/src/signals.js'

type Install = Parameters<typeof createSignalRegistry>[0]
type Options = Parameters<Install>[0]
type Fn = Parameters<Install>[1]

function fakeInstall () {
  const installs: Array<{ options: Options, fn: Fn, uninstalled: boolean }> = []
  const install = (options: Options, fn: Fn) => {
    const entry = { options, fn, uninstalled: false }
    installs.push(entry)
    return { uninstall: () => { entry.uninstalled = true } }
  }
  return { installs, install }
}

function report (exitCode: 0 | 1): ShutdownReport {
  return { reason: 'x', durationMs: 1, inFlightAtStart: 0, completed: 0, rejected: 0, aborted: 0, destroyedSockets: 0, hooks: [], timedOut: false, exitCode }
}

function member (signals: NodeJS.Signals[], exit: boolean, exitCode: 0 | 1 = 0) {
  const logs: Array<[string, string]> = []
  const log: Logger = {
    info: (_o, m) => { logs.push(['info', m ?? '']) },
    warn: (_o, m) => { logs.push(['warn', m ?? '']) },
    error: (_o, m) => { logs.push(['error', m ?? '']) }
  }
  const reasons: string[] = []
  const m: SignalMember & { logs: typeof logs, reasons: string[] } = {
    signals, exit, log, logs, reasons,
    shutdown: async (reason?: string) => {
      reasons.push(reason as string)
      return report(exitCode)
    }
  }
  return m
}

t.test('installs one handler for every member, skipping the signals nobody asked for and beforeExit', async (t) => {
  const { installs, install } = fakeInstall()
  const r = createSignalRegistry(install, () => {})
  const a = member(['SIGTERM', 'SIGINT'], true)
  const b = member(['SIGTERM'], true)
  r.register(a)
  r.register(b)
  t.equal(installs.length, 1, 'the same signal set does not install again')
  const skip = installs[0]?.options.skip ?? []
  t.ok(skip.includes('beforeExit'))
  t.ok(skip.includes('SIGHUP'))
  t.notOk(skip.includes('SIGTERM'))
  t.notOk(skip.includes('SIGINT'))
  t.equal(installs[0]?.options.delay, null, 'each instance bounds its own shutdown')

  const c = member(['SIGUSR2'], true)
  r.register(c)
  t.equal(installs.length, 2, 'a new signal reinstalls')
  t.equal(installs[0]?.uninstalled, true, 'the old handler is removed')
  r.unregister(c)
  r.unregister(b)
  r.unregister(a)
  t.equal(installs.at(-1)?.uninstalled, true, 'the last member gone, nothing stays installed')
})

t.test('a signal shuts down the members that listen for it and exits with the highest exit code', async (t) => {
  const { installs, install } = fakeInstall()
  const codes: number[] = []
  const r = createSignalRegistry(install, (code) => { codes.push(code) })
  const a = member(['SIGTERM'], true, 0)
  const b = member(['SIGTERM', 'SIGINT'], false, 1)
  const c = member(['SIGINT'], true, 0)
  r.register(a)
  r.register(b)
  r.register(c)
  const fn = installs.at(-1)?.fn as Fn
  await fn({ signal: 'SIGTERM' })
  t.same(a.reasons, ['SIGTERM'])
  t.same(b.reasons, ['SIGTERM'])
  t.same(c.reasons, [], 'a member not listening for SIGTERM keeps serving')
  t.same(codes, [1])
  r.unregister(a)
  t.equal(installs.at(-1)?.uninstalled, false, 'after a signal, the handler stays for the second signal')
})

t.test('with exit: false the handler never settles, so close-with-grace does not exit for us', async (t) => {
  const { installs, install } = fakeInstall()
  const codes: number[] = []
  const r = createSignalRegistry(install, (code) => { codes.push(code) })
  const a = member(['SIGINT'], false)
  r.register(a)
  let settled = false
  void (installs[0]?.fn as Fn)({ signal: 'SIGINT' }).then(() => { settled = true })
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.same(a.reasons, ['SIGINT'])
  t.equal(settled, false)
  t.same(codes, [])
})

t.test('an uncaught error shuts every member down, logs it, and exits 1', async (t) => {
  const { installs, install } = fakeInstall()
  const codes: number[] = []
  const r = createSignalRegistry(install, (code) => { codes.push(code) })
  const a = member(['SIGINT'], true, 1)
  r.register(a)
  await (installs[0]?.fn as Fn)({ err: new Error('boom') })
  t.same(a.reasons, ['uncaughtException'])
  t.same(codes, [1])
  t.ok(a.logs.some(([level, msg]) => level === 'error' && msg.includes('uncaught error')))
})

t.test('second signals, second errors and failures are logged through every member', async (t) => {
  const { installs, install } = fakeInstall()
  const r = createSignalRegistry(install, () => {})
  const a = member(['SIGTERM'], true)
  r.register(a)
  const options = installs[0]?.options as Options
  options.onSecondSignal?.('SIGTERM')
  options.onSecondError?.(new Error('again'))
  ;(options.logger as { error (e: unknown): void }).error(new Error('failed'))
  t.same(a.logs.map(([, m]) => m), [
    'graceful: second signal, exiting now with code 1',
    'graceful: error during shutdown, exiting now with code 1',
    'graceful: shutdown failed'
  ])
})

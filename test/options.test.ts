// Option validation through every entry point: `new Graceful()` (core), `graceful()` (Express, throws at
// once) and `app.register(graceful)` (Fastify, the error surfaces at start-up). One table of bad values,
// generated tests; no server is started and no signal handler is installed.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import {
  DEFAULTS, Graceful, codes, resolveOptions, resolveRouteOptions, type ErrorCode, type GracefulOptions
} from '@graceful/core'
import { graceful as expressGraceful, type ExpressGracefulOptions } from '@graceful/express'
import { graceful as fastifyGraceful } from '@graceful/fastify'

type Entry = 'core' | 'express' | 'fastify'

interface BadCase {
  /** What is wrong, for the test name. */
  name: string
  options: unknown
  code: ErrorCode
  /** Text the message must contain to name the option. */
  option: string
  /** Text the message must contain to show the value it got. */
  got: string
  /** The case is about `signals` (or a conflict with them): `signals: false` is not added. */
  aboutSignals?: boolean
  /** Entry points the case does not apply to, and why. */
  only?: Entry[]
}

const noop = (): void => {}

const BAD: BadCase[] = [
  // options itself
  { name: 'options that are a string', options: 'fast', code: 'GRACEFUL_ERR_OPTIONS', option: 'options', got: '"fast"', aboutSignals: true },
  { name: 'options that are a number', options: 42, code: 'GRACEFUL_ERR_OPTIONS', option: 'options', got: '42', aboutSignals: true },
  { name: 'options that are true', options: true, code: 'GRACEFUL_ERR_OPTIONS', option: 'options', got: 'true', aboutSignals: true },
  { name: 'options that are an array', options: [], code: 'GRACEFUL_ERR_OPTIONS', option: 'options', got: '[]', aboutSignals: true },
  // Fastify itself turns `register(plugin, null)` into `{}` before the plugin sees it.
  { name: 'options that are null', options: null, code: 'GRACEFUL_ERR_OPTIONS', option: 'options', got: 'null', aboutSignals: true, only: ['core', 'express'] },
  { name: 'options that are a Map', options: new Map([['timeout', 1]]), code: 'GRACEFUL_ERR_OPTIONS', option: 'options', got: 'instead got', aboutSignals: true },
  // Reading these throws: the error is ours, coded, with theirs as its cause.
  { name: 'options behind a Proxy whose traps throw', options: new Proxy({}, { ownKeys () { throw new Error('trap') }, getPrototypeOf () { return Object.prototype } }), code: 'GRACEFUL_ERR_OPTIONS_UNREADABLE', option: 'options', got: 'trap', aboutSignals: true },
  { name: 'an option with a getter that throws', options: { get timeout () { throw new Error('getter') } }, code: 'GRACEFUL_ERR_OPTIONS_UNREADABLE', option: 'options', got: 'getter', aboutSignals: true },

  // unknown top-level options
  { name: "an unknown option 'timout' (a typo)", options: { timout: 100 }, code: 'GRACEFUL_ERR_OPTION_UNKNOWN', option: "'timout'", got: 'timout' },
  { name: "an unknown option 'Timeout' (wrong case)", options: { Timeout: 100 }, code: 'GRACEFUL_ERR_OPTION_UNKNOWN', option: "'Timeout'", got: 'Timeout' },
  { name: "the Express-only option 'routes'", options: { routes: {} }, code: 'GRACEFUL_ERR_OPTION_UNKNOWN', option: "'routes'", got: 'routes', only: ['core', 'fastify'] },

  // timeout
  { name: 'timeout as a string', options: { timeout: '100' }, code: 'GRACEFUL_ERR_TIMEOUT', option: "'timeout'", got: "'\"100\"'" },
  { name: 'a negative timeout', options: { timeout: -1 }, code: 'GRACEFUL_ERR_TIMEOUT', option: "'timeout'", got: "'-1'" },
  { name: 'timeout NaN', options: { timeout: NaN }, code: 'GRACEFUL_ERR_TIMEOUT', option: "'timeout'", got: "'NaN'" },
  { name: 'timeout Infinity', options: { timeout: Infinity }, code: 'GRACEFUL_ERR_TIMEOUT', option: "'timeout'", got: "'Infinity'" },
  { name: 'timeout -Infinity', options: { timeout: -Infinity }, code: 'GRACEFUL_ERR_TIMEOUT', option: "'timeout'", got: "'-Infinity'" },
  { name: 'timeout null', options: { timeout: null }, code: 'GRACEFUL_ERR_TIMEOUT', option: "'timeout'", got: "'null'" },
  { name: 'timeout true', options: { timeout: true }, code: 'GRACEFUL_ERR_TIMEOUT', option: "'timeout'", got: "'true'" },
  { name: 'timeout above what setTimeout can hold (2^31 ms)', options: { timeout: 2 ** 31 }, code: 'GRACEFUL_ERR_TIMEOUT', option: "'timeout'", got: `'${2 ** 31}'` },

  // delay
  { name: 'delay as a string', options: { delay: '0' }, code: 'GRACEFUL_ERR_DELAY', option: "'delay'", got: "'\"0\"'" },
  { name: 'a negative delay', options: { delay: -5 }, code: 'GRACEFUL_ERR_DELAY', option: "'delay'", got: "'-5'" },
  { name: 'delay NaN', options: { delay: NaN }, code: 'GRACEFUL_ERR_DELAY', option: "'delay'", got: "'NaN'" },
  { name: 'delay Infinity', options: { delay: Infinity }, code: 'GRACEFUL_ERR_DELAY', option: "'delay'", got: "'Infinity'" },
  { name: 'delay above 2^31 - 1 ms', options: { delay: 2 ** 31 }, code: 'GRACEFUL_ERR_DELAY', option: "'delay'", got: `'${2 ** 31}'` },

  // hookTimeout
  { name: 'hookTimeout 0', options: { hookTimeout: 0 }, code: 'GRACEFUL_ERR_HOOK_TIMEOUT', option: "'hookTimeout'", got: "'0'" },
  { name: 'a negative hookTimeout', options: { hookTimeout: -1 }, code: 'GRACEFUL_ERR_HOOK_TIMEOUT', option: "'hookTimeout'", got: "'-1'" },
  { name: 'hookTimeout NaN', options: { hookTimeout: NaN }, code: 'GRACEFUL_ERR_HOOK_TIMEOUT', option: "'hookTimeout'", got: "'NaN'" },
  { name: 'hookTimeout Infinity', options: { hookTimeout: Infinity }, code: 'GRACEFUL_ERR_HOOK_TIMEOUT', option: "'hookTimeout'", got: "'Infinity'" },
  { name: 'hookTimeout as a string', options: { hookTimeout: '5000' }, code: 'GRACEFUL_ERR_HOOK_TIMEOUT', option: "'hookTimeout'", got: "'\"5000\"'" },

  // signals
  { name: 'an empty signals array', options: { signals: [] }, code: 'GRACEFUL_ERR_SIGNALS', option: "'signals'", got: "'[]'", aboutSignals: true },
  { name: 'an unknown signal name', options: { signals: ['SIGFOO'] }, code: 'GRACEFUL_ERR_SIGNALS', option: "'signals'", got: 'SIGFOO', aboutSignals: true },
  { name: 'a lower-case signal name', options: { signals: ['sigterm'] }, code: 'GRACEFUL_ERR_SIGNALS', option: "'signals'", got: 'sigterm', aboutSignals: true },
  { name: 'SIGKILL, which cannot be handled', options: { signals: ['SIGKILL'] }, code: 'GRACEFUL_ERR_SIGNALS', option: "'signals'", got: 'SIGKILL', aboutSignals: true },
  { name: "SIGUSR1, which is Node's inspector's", options: { signals: ['SIGUSR1'] }, code: 'GRACEFUL_ERR_SIGNALS', option: "'signals'", got: 'SIGUSR1', aboutSignals: true },
  { name: 'duplicate signals', options: { signals: ['SIGTERM', 'SIGTERM'] }, code: 'GRACEFUL_ERR_SIGNALS', option: "'signals'", got: '["SIGTERM","SIGTERM"]', aboutSignals: true },
  { name: 'signals as a single string', options: { signals: 'SIGTERM' }, code: 'GRACEFUL_ERR_SIGNALS', option: "'signals'", got: '"SIGTERM"', aboutSignals: true },
  { name: 'signals true', options: { signals: true }, code: 'GRACEFUL_ERR_SIGNALS', option: "'signals'", got: "'true'", aboutSignals: true },
  { name: 'signals null', options: { signals: null }, code: 'GRACEFUL_ERR_SIGNALS', option: "'signals'", got: "'null'", aboutSignals: true },

  // exit
  { name: "exit 'yes'", options: { exit: 'yes' }, code: 'GRACEFUL_ERR_EXIT', option: "'exit'", got: '"yes"' },
  { name: 'exit 1', options: { exit: 1 }, code: 'GRACEFUL_ERR_EXIT', option: "'exit'", got: "'1'" },
  { name: 'exit null', options: { exit: null }, code: 'GRACEFUL_ERR_EXIT', option: "'exit'", got: "'null'" },

  // retryAfter
  { name: 'a negative retryAfter', options: { retryAfter: -1 }, code: 'GRACEFUL_ERR_RETRY_AFTER', option: "'retryAfter'", got: "'-1'" },
  { name: 'a fractional retryAfter', options: { retryAfter: 1.5 }, code: 'GRACEFUL_ERR_RETRY_AFTER', option: "'retryAfter'", got: "'1.5'" },
  { name: 'retryAfter as a string', options: { retryAfter: '1' }, code: 'GRACEFUL_ERR_RETRY_AFTER', option: "'retryAfter'", got: "'\"1\"'" },
  { name: 'retryAfter NaN', options: { retryAfter: NaN }, code: 'GRACEFUL_ERR_RETRY_AFTER', option: "'retryAfter'", got: "'NaN'" },
  { name: 'retryAfter Infinity', options: { retryAfter: Infinity }, code: 'GRACEFUL_ERR_RETRY_AFTER', option: "'retryAfter'", got: "'Infinity'" },
  { name: 'retryAfter true', options: { retryAfter: true }, code: 'GRACEFUL_ERR_RETRY_AFTER', option: "'retryAfter'", got: "'true'" },

  // readiness
  { name: 'readiness true', options: { readiness: true }, code: 'GRACEFUL_ERR_READINESS', option: "'readiness'", got: "'true'" },
  { name: 'readiness as a path string', options: { readiness: '/readyz' }, code: 'GRACEFUL_ERR_READINESS', option: "'readiness'", got: '"/readyz"' },
  { name: "a readiness path without a leading '/'", options: { readiness: { path: 'readyz' } }, code: 'GRACEFUL_ERR_READINESS', option: "'readiness'", got: '"readyz"' },
  { name: 'an empty readiness path', options: { readiness: { path: '' } }, code: 'GRACEFUL_ERR_READINESS', option: "'readiness'", got: '{"path":""}' },
  { name: 'a readiness path with a query string', options: { readiness: { path: '/readyz?x=1' } }, code: 'GRACEFUL_ERR_READINESS', option: "'readiness'", got: '/readyz?x=1' },
  { name: 'a numeric readiness path', options: { readiness: { path: 5 } }, code: 'GRACEFUL_ERR_READINESS', option: "'readiness'", got: '{"path":5}' },
  { name: 'a readiness check that is not a function', options: { readiness: { check: 'yes' } }, code: 'GRACEFUL_ERR_READINESS', option: "'readiness'", got: '"yes"' },
  { name: 'an unknown key inside readiness', options: { readiness: { path: '/readyz', interval: 5 } }, code: 'GRACEFUL_ERR_READINESS', option: "'readiness'", got: 'interval' },
  { name: 'readiness as an array', options: { readiness: ['/readyz'] }, code: 'GRACEFUL_ERR_READINESS', option: "'readiness'", got: '["/readyz"]' },

  // liveness
  { name: 'liveness true', options: { liveness: true }, code: 'GRACEFUL_ERR_LIVENESS', option: "'liveness'", got: "'true'" },
  { name: "a liveness path without a leading '/'", options: { liveness: { path: 'livez' } }, code: 'GRACEFUL_ERR_LIVENESS', option: "'liveness'", got: '"livez"' },
  { name: 'an unknown key inside liveness', options: { liveness: { path: '/livez', extra: 1 } }, code: 'GRACEFUL_ERR_LIVENESS', option: "'liveness'", got: 'extra' },
  { name: 'readiness and liveness on the same path', options: { readiness: { path: '/health' }, liveness: { path: '/health' } }, code: 'GRACEFUL_ERR_LIVENESS', option: "'liveness'", got: '/health' },
  { name: "a readiness path equal to liveness's default", options: { readiness: { path: '/livez' }, liveness: {} }, code: 'GRACEFUL_ERR_LIVENESS', option: "'liveness'", got: "'{}'" },

  // logger
  { name: 'a logger missing error()', options: { logger: { info: noop, warn: noop } }, code: 'GRACEFUL_ERR_LOGGER', option: "'logger'", got: 'info' },
  { name: 'a logger whose info is not a function', options: { logger: { info: 'x', warn: noop, error: noop } }, code: 'GRACEFUL_ERR_LOGGER', option: "'logger'", got: "info: 'x'" },
  { name: "logger 'console' as a string", options: { logger: 'console' }, code: 'GRACEFUL_ERR_LOGGER', option: "'logger'", got: '"console"' },
  { name: 'logger true', options: { logger: true }, code: 'GRACEFUL_ERR_LOGGER', option: "'logger'", got: "'true'" },
  { name: 'logger null', options: { logger: null }, code: 'GRACEFUL_ERR_LOGGER', option: "'logger'", got: "'null'" },

  // restart
  { name: 'restart as a signal string', options: { restart: 'SIGHUP' }, code: 'GRACEFUL_ERR_RESTART', option: "'restart'", got: '"SIGHUP"' },
  { name: 'restart 1', options: { restart: 1 }, code: 'GRACEFUL_ERR_RESTART', option: "'restart'", got: "'1'" },
  { name: 'an unknown restart signal', options: { restart: { signal: 'SIGFOO' } }, code: 'GRACEFUL_ERR_RESTART', option: "'restart'", got: 'SIGFOO' },
  { name: 'an unknown key inside restart', options: { restart: { sig: 'SIGHUP' } }, code: 'GRACEFUL_ERR_RESTART', option: "'restart'", got: 'sig' },
  { name: 'a restart timeout of 0', options: { restart: { timeout: 0 } }, code: 'GRACEFUL_ERR_RESTART', option: "'restart'", got: '{"timeout":0}' },
  { name: 'a negative restart timeout', options: { restart: { timeout: -1 } }, code: 'GRACEFUL_ERR_RESTART', option: "'restart'", got: '{"timeout":-1}' },
  { name: 'a restart timeout of NaN', options: { restart: { timeout: NaN } }, code: 'GRACEFUL_ERR_RESTART', option: "'restart'", got: 'NaN' },
  { name: 'an empty restart pidFile', options: { restart: { pidFile: '' } }, code: 'GRACEFUL_ERR_RESTART', option: "'restart'", got: '{"pidFile":""}' },
  { name: 'a numeric restart pidFile', options: { restart: { pidFile: 5 } }, code: 'GRACEFUL_ERR_RESTART', option: "'restart'", got: '{"pidFile":5}' },
  { name: 'a restart signal that is also a default shutdown signal', options: { restart: { signal: 'SIGTERM' } }, code: 'GRACEFUL_ERR_RESTART_SIGNAL', option: `'restart' restarts on SIGTERM, which option 'signals' also names (["SIGTERM","SIGINT"])`, got: '{"signal":"SIGTERM"}', aboutSignals: true },
  { name: 'a restart signal that is also in signals', options: { signals: ['SIGUSR2'], restart: { signal: 'SIGUSR2' } }, code: 'GRACEFUL_ERR_RESTART_SIGNAL', option: `'restart' restarts on SIGUSR2, which option 'signals' also names (["SIGUSR2"])`, got: '{"signal":"SIGUSR2"}', aboutSignals: true },
  { name: 'restart: true with SIGHUP in signals', options: { signals: ['SIGHUP'], restart: true }, code: 'GRACEFUL_ERR_RESTART_SIGNAL', option: `'restart' restarts on SIGHUP, which option 'signals' also names (["SIGHUP"])`, got: "'true'", aboutSignals: true }
]

/** The case's options, with `signals: false` unless the case is about signals. */
function optionsOf (c: BadCase): unknown {
  return c.aboutSignals === true ? c.options : { signals: false, ...(c.options as object) }
}

function checkError (t: Test, err: unknown, code: ErrorCode, option: string, got: string): void {
  t.type(err, TypeError, 'a TypeError')
  const e = err as { code?: unknown, message?: unknown }
  t.equal(e.code, code, 'with the specific code')
  t.equal(typeof e.message, 'string')
  t.match(e.message, option, 'the message names the option')
  // Look for the value after "instead got" where the message has one, not in its "must be" part.
  const message = e.message as string
  const at = message.lastIndexOf('instead got')
  t.match(at === -1 ? message : message.slice(at), got, 'the message shows the value it got')
}

type Outcome =
  | { via: 'startup', err: unknown }
  | { via: 'uncaughtException', err: unknown }
  | { via: 'accepted' }
  | { via: 'no answer' }

/**
 * Builds a Fastify app with `setup` and waits for `ready()`. An error thrown while declaring (setup) or
 * from ready() is a start-up error. A plugin that throws instead of failing its load would crash the
 * whole test process; we catch that as an uncaughtException so the case fails on its own.
 */
async function fastifyStartup (t: Test, setup: (app: FastifyInstance) => unknown): Promise<Outcome> {
  // pluginTimeout 0: no avvio timer keeps the process alive after a plugin that never finished.
  const app = Fastify({ logger: false, pluginTimeout: 0 })
  let onUncaught!: (err: unknown) => void
  let timer: NodeJS.Timeout | undefined
  const uncaught = new Promise<Outcome>((resolve) => { onUncaught = (err) => resolve({ via: 'uncaughtException', err }) })
  const noAnswer = new Promise<Outcome>((resolve) => { timer = setTimeout(() => resolve({ via: 'no answer' }), 10_000) })
  process.on('uncaughtException', onUncaught)
  try {
    const started = (async () => {
      await setup(app)
      await app.ready()
    })().then((): Outcome => ({ via: 'accepted' }), (err: unknown): Outcome => ({ via: 'startup', err }))
    const outcome = await Promise.race([started, uncaught, noAnswer])
    if (outcome.via === 'accepted') t.teardown(() => app.close())
    return outcome
  } finally {
    clearTimeout(timer)
    process.removeListener('uncaughtException', onUncaught)
  }
}

function expectStartupError (t: Test, outcome: Outcome, code: ErrorCode, option: string, got: string): void {
  t.equal(outcome.via, 'startup', 'the error surfaces at start-up (declaration or ready())')
  if (outcome.via === 'startup' || outcome.via === 'uncaughtException') checkError(t, outcome.err, code, option, got)
}

t.test('every code in the table exists in codes and has a TypeError base', async (t) => {
  for (const code of new Set(BAD.map((c) => c.code))) {
    t.equal(codes[code]?.base, TypeError, code)
  }
})

t.test('new Graceful(options) from @graceful/core', async (t) => {
  for (const c of BAD) {
    if (c.only !== undefined && !c.only.includes('core')) continue
    t.test(`throws ${c.code} for ${c.name}`, async (t) => {
      let instance: Graceful | undefined
      const err = t.throws(() => { instance = new Graceful(optionsOf(c) as GracefulOptions) })
      // Accepted by mistake: remove any signal handler it installed.
      if (instance !== undefined) await instance.shutdown()
      checkError(t, err, c.code, c.option, c.got)
    })
  }
})

t.test('resolveOptions(options) from @graceful/core', async (t) => {
  for (const c of BAD) {
    if (c.only !== undefined && !c.only.includes('core')) continue
    t.test(`throws ${c.code} for ${c.name}`, async (t) => {
      const err = t.throws(() => resolveOptions(optionsOf(c)))
      checkError(t, err, c.code, c.option, c.got)
    })
  }
})

t.test('graceful(options) from @graceful/express throws at once', async (t) => {
  for (const c of BAD) {
    if (c.only !== undefined && !c.only.includes('express')) continue
    t.test(`throws ${c.code} for ${c.name}`, async (t) => {
      let g: ReturnType<typeof expressGraceful> | undefined
      const err = t.throws(() => { g = expressGraceful(optionsOf(c) as ExpressGracefulOptions) })
      if (g !== undefined) await g.shutdown()
      checkError(t, err, c.code, c.option, c.got)
    })
  }
})

t.test('app.register(graceful, options) from @graceful/fastify fails the start-up', async (t) => {
  for (const c of BAD) {
    if (c.only !== undefined && !c.only.includes('fastify')) continue
    t.test(`fails ready() with ${c.code} for ${c.name}`, async (t) => {
      const outcome = await fastifyStartup(t, (app) => app.register(fastifyGraceful, optionsOf(c) as never))
      expectStartupError(t, outcome, c.code, c.option, c.got)
    })
  }
})

t.test('good values are accepted and defaults applied', async (t) => {
  t.test('new Graceful({ signals: false }) has every default', async (t) => {
    const g = new Graceful({ signals: false })
    t.same(g.options, {
      timeout: 10000,
      delay: 0,
      hookTimeout: 5000,
      signals: [],
      exit: true,
      retryAfter: '1',
      readiness: null,
      liveness: null,
      logger: undefined,
      restart: null
    })
    t.equal(g.phase, 'serving')
    await g.shutdown()
  })

  t.test("signals default to ['SIGTERM', 'SIGINT']", async (t) => {
    t.same(resolveOptions({}).signals, ['SIGTERM', 'SIGINT'])
    t.same(resolveOptions(undefined), resolveOptions({}), 'undefined options are the defaults')
    t.same(DEFAULTS.signals, ['SIGTERM', 'SIGINT'])
  })

  const check = (): boolean => true
  const logger = { info: noop, warn: noop, error: noop }
  const GOOD: Array<{ name: string, options: Record<string, unknown>, expect: Record<string, unknown> }> = [
    { name: 'timeout 0', options: { timeout: 0 }, expect: { timeout: 0 } },
    { name: 'the largest timeout setTimeout holds', options: { timeout: 2 ** 31 - 1 }, expect: { timeout: 2 ** 31 - 1 } },
    { name: 'timeout undefined (the default)', options: { timeout: undefined }, expect: { timeout: 10000 } },
    { name: 'delay 5000', options: { delay: 5000 }, expect: { delay: 5000 } },
    { name: 'hookTimeout 1', options: { hookTimeout: 1 }, expect: { hookTimeout: 1 } },
    { name: 'signals [SIGUSR2]', options: { signals: ['SIGUSR2'] }, expect: { signals: ['SIGUSR2'] } },
    { name: 'signals false', options: { signals: false }, expect: { signals: [] } },
    { name: 'exit false', options: { exit: false }, expect: { exit: false } },
    { name: 'retryAfter 0', options: { retryAfter: 0 }, expect: { retryAfter: '0' } },
    { name: 'retryAfter 30', options: { retryAfter: 30 }, expect: { retryAfter: '30' } },
    { name: 'retryAfter false', options: { retryAfter: false }, expect: { retryAfter: null } },
    { name: 'readiness {}', options: { readiness: {} }, expect: { readiness: { path: '/readyz', check: null } } },
    { name: 'readiness with path and check', options: { readiness: { path: '/ready', check } }, expect: { readiness: { path: '/ready', check } } },
    { name: 'readiness false', options: { readiness: false }, expect: { readiness: null } },
    { name: 'liveness {}', options: { liveness: {} }, expect: { liveness: { path: '/livez' } } },
    { name: 'liveness with a path', options: { liveness: { path: '/alive' } }, expect: { liveness: { path: '/alive' } } },
    { name: 'a pino-style logger', options: { logger }, expect: { logger } },
    { name: 'logger false (silent)', options: { logger: false }, expect: { logger: null } },
    { name: 'restart true', options: { restart: true }, expect: { restart: { signal: 'SIGHUP', timeout: 60000, pidFile: null } } },
    { name: 'restart with every key', options: { restart: { signal: 'SIGUSR2', timeout: 1000, pidFile: '/tmp/x.pid' } }, expect: { restart: { signal: 'SIGUSR2', timeout: 1000, pidFile: '/tmp/x.pid' } } }
  ]
  for (const c of GOOD) {
    t.test(`accepts ${c.name}`, async (t) => {
      const resolved = resolveOptions(c.options) as unknown as Record<string, unknown>
      for (const [key, value] of Object.entries(c.expect)) t.same(resolved[key], value, key)
      if (c.options.signals === undefined) {
        const g = new Graceful({ signals: false, ...c.options })
        for (const [key, value] of Object.entries(c.expect)) t.same((g.options as unknown as Record<string, unknown>)[key], value, `core ${key}`)
      }
    })
  }

  t.test('accepts an object without a prototype', async (t) => {
    const options = Object.assign(Object.create(null) as Record<string, unknown>, { timeout: 5 })
    t.equal(resolveOptions(options).timeout, 5)
  })

  t.test('copies the signals array instead of keeping the caller’s', async (t) => {
    const signals: NodeJS.Signals[] = ['SIGTERM']
    const resolved = resolveOptions({ signals })
    t.not(resolved.signals, signals)
    t.same(resolved.signals, ['SIGTERM'])
  })

  t.test("accepts adapter-specific names only when the adapter allows them", async (t) => {
    t.doesNotThrow(() => resolveOptions({ routes: {} }, ['routes']))
    t.throws(() => resolveOptions({ routes: {} }), { code: 'GRACEFUL_ERR_OPTION_UNKNOWN' })
  })

  t.test('Express applies the same options and defaults', async (t) => {
    const g = expressGraceful({ signals: false, timeout: 0, retryAfter: false, routes: { '/x': { serveDuringDrain: true } } })
    t.equal(g.instance.options.timeout, 0)
    t.equal(g.instance.options.retryAfter, null)
    t.equal(g.instance.options.delay, 0)
    t.equal(g.instance.options.hookTimeout, 5000)
    t.equal(g.instance.options.exit, true)
    await g.shutdown()
  })

  t.test('Fastify applies the same options and defaults', async (t) => {
    const app = Fastify({ logger: false })
    t.teardown(() => app.close())
    await app.register(fastifyGraceful, { signals: false, delay: 5, readiness: {} })
    await app.ready()
    t.equal(app.graceful.options.delay, 5)
    t.same(app.graceful.options.readiness, { path: '/readyz', check: null })
    t.equal(app.graceful.options.timeout, 10000)
    t.equal(app.graceful.options.retryAfter, '1')
  })
})

// ---- per-route options ----------------------------------------------------------------------------

interface BadRoute {
  name: string
  value: unknown
  /** The key the message must name. */
  key: string
  got: string
}

const BAD_ROUTES: BadRoute[] = [
  { name: 'per-route options that are not an object', value: 'yes', key: 'must be an object', got: '"yes"' },
  { name: 'per-route options that are null', value: null, key: 'must be an object', got: "'null'" },
  { name: "serveDuringDrain 'yes'", value: { serveDuringDrain: 'yes' }, key: "'serveDuringDrain'", got: '"yes"' },
  { name: 'abortOnDrain 1', value: { abortOnDrain: 1 }, key: "'abortOnDrain'", got: "'1'" },
  { name: 'a negative route timeout', value: { timeout: -1 }, key: "'timeout'", got: "'-1'" },
  { name: 'a route timeout of NaN', value: { timeout: NaN }, key: "'timeout'", got: 'NaN' },
  { name: 'a route timeout of Infinity', value: { timeout: Infinity }, key: "'timeout'", got: 'Infinity' },
  { name: 'a route timeout as a string', value: { timeout: '5' }, key: "'timeout'", got: '"5"' },
  { name: 'an unknown per-route key', value: { serveDuringDrian: true }, key: "'serveDuringDrian'", got: "'true'" }
]

t.test('resolveRouteOptions(input, where) from @graceful/core', async (t) => {
  for (const c of BAD_ROUTES) {
    t.test(`throws GRACEFUL_ERR_ROUTE_OPTION for ${c.name}`, async (t) => {
      const err = t.throws(() => resolveRouteOptions(c.value, "route 'GET /x'"))
      checkError(t, err, 'GRACEFUL_ERR_ROUTE_OPTION', c.key, c.got)
      t.match((err as Error).message, "route 'GET /x'", 'the message names the route')
    })
  }
  t.test('applies the defaults to {}', async (t) => {
    t.same(resolveRouteOptions({}, 'r'), { serveDuringDrain: false, abortOnDrain: false, timeout: null })
  })
  t.test('keeps good values', async (t) => {
    t.same(resolveRouteOptions({ serveDuringDrain: true, abortOnDrain: true, timeout: 0 }, 'r'),
      { serveDuringDrain: true, abortOnDrain: true, timeout: 0 })
    t.same(resolveRouteOptions({ timeout: undefined }, 'r').timeout, null)
  })
})

t.test('Fastify config.graceful is checked at start-up', async (t) => {
  for (const c of BAD_ROUTES) {
    // Fastify route config must be an object; a non-object or null config.graceful is ours to reject too.
    t.test(`rejects ${c.name} on a route declared after an awaited register`, async (t) => {
      const outcome = await fastifyStartup(t, async (app) => {
        await app.register(fastifyGraceful, { signals: false })
        app.get('/x', { config: { graceful: c.value as never } }, async () => 'x')
      })
      expectStartupError(t, outcome, 'GRACEFUL_ERR_ROUTE_OPTION', c.key, c.got)
      if (outcome.via === 'startup') t.match((outcome.err as Error).message, '/x', 'the message names the route')
    })
    t.test(`rejects ${c.name} on a route in a plugin registered after it`, async (t) => {
      const outcome = await fastifyStartup(t, (app) => {
        app.register(fastifyGraceful, { signals: false })
        app.register(async function routes (f) {
          f.post('/y', { config: { graceful: c.value as never } }, async () => 'y')
        })
      })
      expectStartupError(t, outcome, 'GRACEFUL_ERR_ROUTE_OPTION', c.key, c.got)
    })
  }
  // Fastify runs onRoute hooks when a route is declared, so a route declared before the plugin has loaded
  // (register not awaited) is not seen at start-up: its options are resolved when first needed, and a bad
  // one is logged rather than thrown mid-shutdown. The README says to await the register.
  t.test('does not fail the start-up for a route declared before an un-awaited register has loaded', async (t) => {
    const outcome = await fastifyStartup(t, (app) => {
      app.register(fastifyGraceful, { signals: false })
      app.get('/x', { config: { graceful: { timeout: -1 } } }, async () => 'x')
    })
    t.equal(outcome.via, 'accepted')
  })
  t.test('accepts good per-route options', async (t) => {
    const outcome = await fastifyStartup(t, async (app) => {
      await app.register(fastifyGraceful, { signals: false })
      app.get('/x', { config: { graceful: { serveDuringDrain: true, timeout: 100, abortOnDrain: true } } }, async () => 'x')
    })
    t.equal(outcome.via, 'accepted')
  })
})

t.test('Express routes are checked when the middleware is created', async (t) => {
  for (const c of BAD_ROUTES) {
    t.test(`throws GRACEFUL_ERR_ROUTE_OPTION for ${c.name}`, async (t) => {
      const err = t.throws(() => expressGraceful({ signals: false, routes: { 'GET /x': c.value as never } }))
      checkError(t, err, 'GRACEFUL_ERR_ROUTE_OPTION', c.key, c.got)
      t.match((err as Error).message, 'GET /x', 'the message names the route')
    })
  }

  const BAD_KEYS: Array<{ name: string, key: string }> = [
    { name: "a route key without a leading '/'", key: 'upload' },
    { name: "a method and a path without a leading '/'", key: 'POST upload' },
    { name: 'an unknown method', key: 'FETCH /upload' },
    { name: 'an empty route key', key: '' },
    { name: 'an unbalanced parenthesis', key: '/a(' },
    { name: 'a parameter without a name', key: '/users/:' },
    { name: 'an unclosed brace', key: '/files{' },
    { name: 'a bare wildcard (not Express 5 syntax)', key: '/*' }
  ]
  for (const c of BAD_KEYS) {
    t.test(`throws GRACEFUL_ERR_ROUTE_KEY for ${c.name}`, async (t) => {
      const err = t.throws(() => expressGraceful({ signals: false, routes: { [c.key]: { serveDuringDrain: true } } }))
      checkError(t, err, 'GRACEFUL_ERR_ROUTE_KEY', "'routes'", `'${c.key}'`)
    })
  }

  const BAD_ROUTES_OPTION: Array<{ name: string, routes: unknown, got: string }> = [
    { name: 'routes as a string', routes: '/x', got: '"/x"' },
    { name: 'routes null', routes: null, got: "'null'" },
    { name: 'routes as an array', routes: [{ '/x': {} }], got: '[{"/x":{}}]' },
    { name: 'routes true', routes: true, got: "'true'" },
    { name: 'routes 5', routes: 5, got: "'5'" },
    // Neither has own keys to read: taken as an object, either would be silently ignored.
    { name: 'routes as a Map', routes: new Map([['GET /x', { serveDuringDrain: true }]]), got: 'Map' },
    { name: 'routes as a Date', routes: new Date(0), got: '1970' }
  ]
  for (const c of BAD_ROUTES_OPTION) {
    t.test(`throws GRACEFUL_ERR_ROUTES for ${c.name}`, async (t) => {
      const err = t.throws(() => expressGraceful({ signals: false, routes: c.routes as never }))
      checkError(t, err, 'GRACEFUL_ERR_ROUTES', "'routes'", c.got)
    })
  }

  t.test('accepts Express 5 paths with and without a method', async (t) => {
    const g = expressGraceful({
      signals: false,
      routes: {
        '/healthz': { serveDuringDrain: true },
        'POST /upload': { timeout: 100 },
        'get /users/:id': { abortOnDrain: true },
        'ALL /files/*rest': {},
        '/docs{/:page}': {}
      }
    })
    t.equal(typeof g, 'function')
    await g.shutdown()
  })
})

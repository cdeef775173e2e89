// Option validation as properties (fast-check), through every entry point: `resolveOptions()` and
// `new Graceful()` (core), `graceful()` (Express) and `app.register(graceful)` (Fastify); per-route options
// (core, Express `routes`, Fastify route `config.graceful`) and hook options (`beforeDrain`/`afterDrain`).
// For every option: any value outside its domain throws a TypeError whose `code` is the option's
// GRACEFUL_ERR_* and whose message names the option and shows the value; any value inside is accepted and
// kept as given (never coerced). Each domain is written down here from the README, not from options.ts.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import Fastify from 'fastify'
import { accessSync, constants, lstatSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import {
  Graceful, SIGNALS, describe, resolveOptions, resolveRouteOptions, type ErrorCode, type GracefulOptions, type ResolvedOptions
} from '@graceful/core'
import { graceful as expressGraceful } from '@graceful/express'
import { graceful as fastifyGraceful } from '@graceful/fastify'

const MAX_MS = 2 ** 31 - 1
// Runs per property: enough to find an edge the targeted values miss, few enough for seconds per file.
const RUNS = { pure: 150, instance: 60, fastify: 20 }
// A few seconds on an idle machine; the bound is for a loaded one.
t.setTimeout(240_000)

// ---- what a value can be ------------------------------------------------------------------------------

/** Every kind of JS value but undefined (which means "the default"), weighted towards near misses. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({
    maxDepth: 2,
    maxKeys: 4,
    withBoxedValues: true, withBigInt: true, withDate: true, withMap: true, withSet: true,
    withNullPrototype: true, withTypedArray: true, withSparseArray: true, withObjectString: true
  }),
  fc.double(),
  fc.integer().map(String),
  fc.double().map(String),
  fc.integer().map((n) => Object(n) as unknown),
  fc.func(fc.anything()),
  fc.constantFrom<unknown>(NaN, Infinity, -Infinity, -1, 0.5, MAX_MS + 1, 2 ** 53, '', '0', '100', true, false, null, [], {})
).filter((v) => v !== undefined)

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v))

/** A finite number of ms in [min, 2^31 - 1] (setTimeout's range), or, with `exclusive`, in (min, 2^31 - 1]. */
function isMs (v: unknown, min: number, exclusive = false): v is number {
  return typeof v === 'number' && Number.isFinite(v) && (exclusive ? v > min : v >= min) && v <= MAX_MS
}

function msArb (min: number, exclusive = false): fc.Arbitrary<number> {
  return fc.oneof(
    fc.integer({ min: Math.ceil(exclusive ? min + 1 : min), max: MAX_MS }),
    fc.double({ min, max: MAX_MS, minExcluded: exclusive, noNaN: true }).filter((v) => !Object.is(v, -0))
  )
}

/**
 * A readiness or liveness path: '/' and at least one more character, all literal in both frameworks:
 * letters, digits and /-._~!$&'()+,;=@ (no ':' or '*', which Fastify's router reads as patterns; no '%',
 * which it decodes; no spaces, '?', '#' or non-ASCII, which clients encode).
 */
const isPath = (v: unknown): boolean => typeof v === 'string' && /^\/[A-Za-z0-9\-._~!$&'()+,;=@/]+$/.test(v)
const pathArb = fc.stringMatching(/^\/[A-Za-z0-9\-._~!$&'()+,;=@/]+$/)

/** A good path with one character that is not literal in both frameworks put in. */
const pathNearMiss = fc.tuple(pathArb, fc.constantFrom(':', '*', '%', ' ', '?', '#', 'é', '\n', '"'), fc.nat())
  .map(([path, c, at]) => { const i = 1 + (at % path.length); return path.slice(0, i) + c + path.slice(i) })

const isBool = (v: unknown): boolean => typeof v === 'boolean'
const isFn = (v: unknown): boolean => typeof v === 'function'
/** Absent or undefined: the default. */
const unset = (o: Record<string, unknown>, k: string): boolean => !Object.hasOwn(o, k) || o[k] === undefined
const onlyKeys = (o: Record<string, unknown>, keys: string[]): boolean => Object.keys(o).every((k) => keys.includes(k))

// Signals whose real handlers must not be installed in the test process, even for a moment: Node cannot
// run JavaScript safely after a real SIGSEGV, SIGBUS, SIGFPE or SIGILL. resolveOptions() checks them all.
const FATAL = new Set(['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL'])
const signalArb = (safe: boolean) => fc.constantFrom(...SIGNALS.filter((s) => !safe || !FATAL.has(s)))

/** A folder only we can write: pid files in it are valid. */
const PID_DIR = mkdtempSync(join(tmpdir(), 'graceful-property-'))
t.teardown(() => rmSync(PID_DIR, { recursive: true, force: true }))

/**
 * The README's rule for `restart.pidFile` ("Zero-downtime restart"): a file path (no NUL byte, not a
 * directory, a name of at most 234 bytes) in an existing directory this process can write and that is not
 * world-writable without the sticky bit.
 */
function pidFileWorks (file: string): boolean {
  const name = basename(file)
  if (file.includes('\0') || file.endsWith('/') || name === '.' || name === '..' || Buffer.byteLength(name) > 234) return false
  const dir = dirname(resolve(file))
  try {
    const mode = statSync(dir).mode
    if (!statSync(dir).isDirectory() || ((mode & 0o002) !== 0 && (mode & 0o1000) === 0)) return false
    accessSync(dir, constants.W_OK | constants.X_OK)
    return lstatSync(file, { throwIfNoEntry: false })?.isDirectory() !== true
  } catch {
    return false
  }
}

interface Domain {
  option: string
  code: ErrorCode
  /** A code other than `code` for some values outside the domain. */
  codeOf?: (v: unknown) => ErrorCode | undefined
  /** Inside the domain. */
  valid: (safe: boolean) => fc.Arbitrary<unknown>
  /** Values of the right shape with wrong parts: near misses that anyValue seldom makes. */
  near?: fc.Arbitrary<unknown>
  isValid: (v: unknown) => boolean
  /** The value's resolved form: kept as given, not coerced. */
  resolved: (r: ResolvedOptions) => unknown
  expected: (v: unknown) => unknown
}

const loggerArb = fc.record({ info: fc.func(fc.constant(undefined)), warn: fc.func(fc.constant(undefined)), error: fc.func(fc.constant(undefined)) })
const isLogger = (v: unknown): boolean => {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return false
  const l = v as Record<string, unknown>
  return isFn(l.info) && isFn(l.warn) && isFn(l.error)
}

/** `{ signal?, timeout?, pidFile? }` with a known signal, a timeout in range and a non-empty string pidFile. */
function isRestartShape (v: unknown): v is Record<string, unknown> {
  return isPlainObject(v) && onlyKeys(v, ['signal', 'timeout', 'pidFile']) &&
    (unset(v, 'signal') || (SIGNALS as readonly unknown[]).includes(v.signal)) && (unset(v, 'timeout') || isMs(v.timeout, 1)) &&
    (unset(v, 'pidFile') || (typeof v.pidFile === 'string' && v.pidFile.length > 0))
}

const DOMAINS: Domain[] = [
  {
    option: 'timeout',
    code: 'GRACEFUL_ERR_TIMEOUT',
    valid: () => msArb(0),
    isValid: (v) => isMs(v, 0),
    resolved: (r) => r.timeout,
    expected: (v) => v
  },
  {
    option: 'delay',
    code: 'GRACEFUL_ERR_DELAY',
    valid: () => msArb(0),
    isValid: (v) => isMs(v, 0),
    resolved: (r) => r.delay,
    expected: (v) => v
  },
  {
    option: 'hookTimeout',
    code: 'GRACEFUL_ERR_HOOK_TIMEOUT',
    valid: () => msArb(0, true),
    isValid: (v) => isMs(v, 0, true),
    resolved: (r) => r.hookTimeout,
    expected: (v) => v
  },
  {
    option: 'signals',
    code: 'GRACEFUL_ERR_SIGNALS',
    valid: (safe) => fc.oneof(fc.constant(false), fc.uniqueArray(signalArb(safe), { minLength: 1 })),
    near: fc.oneof(
      fc.array(fc.oneof(signalArb(false), fc.string(), anyValue)),
      fc.sparseArray(signalArb(false), { minNumElements: 1 }),
      // One hole beside a signal: every() skips holes, and a Set of it has the array's length.
      signalArb(false).map((s) => { const holey: string[] = []; holey[1] = s; return holey })
    ),
    isValid: (v) => v === false || (Array.isArray(v) && v.length > 0 && [...v as unknown[]].every((s) => (SIGNALS as readonly unknown[]).includes(s)) &&
      new Set(v).size === v.length && Object.keys(v).length === v.length),
    resolved: (r) => r.signals,
    expected: (v) => v === false ? [] : v
  },
  {
    option: 'exit',
    code: 'GRACEFUL_ERR_EXIT',
    valid: () => fc.boolean(),
    isValid: isBool,
    resolved: (r) => r.exit,
    expected: (v) => v
  },
  {
    option: 'retryAfter',
    code: 'GRACEFUL_ERR_RETRY_AFTER',
    valid: () => fc.oneof(fc.constant(false), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    isValid: (v) => v === false || (Number.isSafeInteger(v) && (v as number) >= 0),
    resolved: (r) => r.retryAfter,
    expected: (v) => v === false ? null : String(v)
  },
  {
    option: 'readiness',
    code: 'GRACEFUL_ERR_READINESS',
    valid: () => fc.oneof(fc.constant(false), fc.record({ path: pathArb, check: fc.func(fc.boolean()) }, { requiredKeys: [] })),
    near: fc.record({ path: fc.oneof(fc.string(), pathNearMiss, anyValue), check: anyValue }, { requiredKeys: [] }),
    isValid: (v) => v === false || (isPlainObject(v) && onlyKeys(v, ['path', 'check']) &&
      (unset(v, 'path') || isPath(v.path)) && (unset(v, 'check') || isFn(v.check))),
    resolved: (r) => r.readiness,
    expected: (v) => v === false ? null : { path: (v as { path?: string }).path ?? '/readyz', check: (v as { check?: unknown }).check ?? null }
  },
  {
    option: 'liveness',
    code: 'GRACEFUL_ERR_LIVENESS',
    valid: () => fc.oneof(fc.constant(false), fc.record({ path: pathArb }, { requiredKeys: [] })),
    near: fc.record({ path: fc.oneof(fc.string(), pathNearMiss, anyValue) }),
    isValid: (v) => v === false || (isPlainObject(v) && onlyKeys(v, ['path']) && (unset(v, 'path') || isPath(v.path))),
    resolved: (r) => r.liveness,
    expected: (v) => v === false ? null : { path: (v as { path?: string }).path ?? '/livez' }
  },
  {
    option: 'logger',
    code: 'GRACEFUL_ERR_LOGGER',
    valid: () => fc.oneof(fc.constant(false), loggerArb),
    near: fc.record({ info: fc.oneof(fc.func(fc.anything()), anyValue), warn: fc.func(fc.anything()), error: fc.func(fc.anything()) }, { requiredKeys: [] }),
    isValid: (v) => v === false || isLogger(v),
    resolved: (r) => r.logger,
    expected: (v) => v === false ? null : v
  },
  {
    option: 'restart',
    code: 'GRACEFUL_ERR_RESTART',
    // A pid file that cannot work is GRACEFUL_ERR_PID_FILE, once the rest of the value is right.
    codeOf: (v) => isRestartShape(v) ? 'GRACEFUL_ERR_PID_FILE' : undefined,
    valid: (safe) => fc.oneof(fc.boolean(), fc.record({
      signal: signalArb(safe), timeout: msArb(1), pidFile: fc.stringMatching(/^[\w-][\w.-]{0,39}$/).map((s) => join(PID_DIR, s))
    }, { requiredKeys: [] })),
    near: fc.record({
      signal: fc.oneof(fc.string(), anyValue),
      timeout: anyValue,
      pidFile: fc.oneof(anyValue, fc.string().map((s) => join(PID_DIR, s)), fc.constantFrom('/nonexistent/app.pid', `${PID_DIR}/`, PID_DIR, 'a\0b'))
    }, { requiredKeys: [] }),
    isValid: (v) => typeof v === 'boolean' || (isRestartShape(v) && (unset(v, 'pidFile') || pidFileWorks(v.pidFile as string))),
    resolved: (r) => r.restart,
    expected: (v) => {
      if (v === false) return null
      const o = v === true ? {} : v as { signal?: string, timeout?: number, pidFile?: string }
      return { signal: o.signal ?? 'SIGHUP', timeout: o.timeout ?? 60_000, pidFile: o.pidFile ?? null }
    }
  }
]

// ---- the entry points ---------------------------------------------------------------------------------

type Outcome = { err: unknown } | { resolved: ResolvedOptions }

interface Entry {
  name: string
  runs: number
  /** Whether it installs real handlers (so fatal signals stay out of its valid values). */
  installs: boolean
  /** Options that are the adapter's own (not checked by the core). */
  own: string[]
  create (options: unknown): Promise<Outcome>
}

/** Instances that installed signal or restart handlers are shut down at once, which removes them. */
function installsHandlers (r: ResolvedOptions): boolean {
  return r.signals.length > 0 || r.restart !== null
}

const ENTRIES: Entry[] = [
  {
    name: 'resolveOptions() (core)',
    runs: RUNS.pure,
    installs: false,
    own: [],
    async create (options) {
      try {
        return { resolved: resolveOptions(options) }
      } catch (err) {
        return { err }
      }
    }
  },
  {
    name: 'new Graceful() (core)',
    runs: RUNS.instance,
    installs: true,
    own: [],
    async create (options) {
      let g: Graceful
      try {
        g = new Graceful(options as GracefulOptions)
      } catch (err) {
        return { err }
      }
      if (installsHandlers(g.options)) await g.shutdown()
      return { resolved: g.options }
    }
  },
  {
    name: 'graceful() (Express)',
    runs: RUNS.instance,
    installs: true,
    own: ['routes'],
    async create (options) {
      let g: ReturnType<typeof expressGraceful>
      try {
        g = expressGraceful(options as GracefulOptions)
      } catch (err) {
        return { err }
      }
      if (installsHandlers(g.instance.options)) await g.shutdown()
      return { resolved: g.instance.options }
    }
  },
  {
    name: 'app.register(graceful) (Fastify)',
    runs: RUNS.fastify,
    installs: true,
    own: ['prefix', 'logLevel', 'logSerializers'],
    async create (options) {
      const app = Fastify({ logger: false, pluginTimeout: 0 })
      try {
        await app.register(fastifyGraceful, options as GracefulOptions)
      } catch (err) {
        return { err }
      }
      const resolved = app.graceful.options
      if (installsHandlers(resolved)) await app.close()
      return { resolved }
    }
  }
]

const KNOWN = ['timeout', 'delay', 'hookTimeout', 'signals', 'exit', 'retryAfter', 'readiness', 'liveness', 'logger', 'restart']

// ---- checks -------------------------------------------------------------------------------------------

interface Failure {
  message: string
}

/** undefined when `err` is the TypeError we want, else what is wrong with it. */
function wrongError (err: unknown, code: ErrorCode, names: string, value: unknown): string | undefined {
  if (!(err instanceof TypeError)) return `expected a TypeError, got ${describe(err)}`
  const e = err as TypeError & { code?: unknown }
  if (e.code !== code) return `expected code ${code}, got ${String(e.code)}: ${e.message}`
  if (!e.message.includes(names)) return `the message does not name ${names}: ${e.message}`
  if (!e.message.includes(describe(value))) return `the message does not show the value ${describe(value)}: ${e.message}`
  return undefined
}

/** Runs a property and turns its outcome into one tap assertion with the counterexample, if any. */
async function holds<T> (t: Test, what: string, arb: fc.Arbitrary<T>, runs: number, check: (v: T) => Promise<Failure | undefined>): Promise<void> {
  const details = await fc.check(fc.asyncProperty(arb, async (v) => {
    const failure = await check(v)
    if (failure !== undefined) throw new Error(failure.message)
  }), { numRuns: runs })
  t.notOk(details.failed, `${what}${details.failed ? `\n${fc.defaultReportMessage(details) ?? ''}` : ''}`)
  t.equal(details.numRuns, runs, `${runs} values tried`)
}

for (const entry of ENTRIES) {
  t.test(entry.name, async (t) => {
    for (const d of DOMAINS) {
      t.test(`${d.option}: a value outside its domain throws ${d.code} naming the option and the value`, async (t) => {
        const outside = (d.near === undefined ? anyValue : fc.oneof(anyValue, d.near)).filter((v) => !d.isValid(v))
        await holds(t, `every ${d.option} outside the domain is rejected`, outside, entry.runs, async (v) => {
          const outcome = await entry.create({ signals: false, [d.option]: v })
          if (!('err' in outcome)) return { message: `accepted ${describe(v)} as ${describe(d.resolved(outcome.resolved))}` }
          const wrong = wrongError(outcome.err, d.codeOf?.(v) ?? d.code, `'${d.option}'`, v)
          return wrong === undefined ? undefined : { message: wrong }
        })
      })

      t.test(`${d.option}: a value inside its domain is accepted as it is`, async (t) => {
        await holds(t, `every ${d.option} inside the domain is accepted, not coerced`, d.valid(entry.installs), entry.runs, async (v) => {
          // signals: false unless the case is about signals; restart's signal may not be one of the signals.
          const outcome = await entry.create(d.option === 'signals' ? { [d.option]: v } : { signals: false, [d.option]: v })
          if ('err' in outcome) return { message: `rejected ${describe(v)}: ${String(outcome.err)}` }
          const got = d.resolved(outcome.resolved)
          return isDeepStrictEqual(got, d.expected(v)) ? undefined : { message: `${describe(v)} resolved to ${describe(got)}` }
        })
      })
    }

    t.test('an unknown option throws GRACEFUL_ERR_OPTION_UNKNOWN naming it', async (t) => {
      const key = fc.string({ minLength: 1 }).filter((k) => !KNOWN.includes(k) && !entry.own.includes(k))
      await holds(t, 'every unknown option is rejected', fc.tuple(key, anyValue), entry.runs, async ([k, v]) => {
        const outcome = await entry.create({ signals: false, [k]: v })
        if (!('err' in outcome)) return { message: `accepted the unknown option ${describe(k)}` }
        const err = outcome.err as TypeError & { code?: unknown }
        if (!(err instanceof TypeError) || err.code !== 'GRACEFUL_ERR_OPTION_UNKNOWN') return { message: `wrong error: ${String(err)}` }
        return err.message.includes(`'${k}'`) ? undefined : { message: `the message does not name ${k}: ${err.message}` }
      })
    })

    // Fastify itself decides what a non-object second argument of register() means (a function is called
    // for the options, null becomes {}): the adapter never sees those.
    if (entry.own.includes('prefix')) return
    t.test('options that are not a plain object throw GRACEFUL_ERR_OPTIONS', async (t) => {
      await holds(t, 'every non-object is rejected', anyValue.filter((v) => !isPlainObject(v)), entry.runs, async (v) => {
        const outcome = await entry.create(v)
        if (!('err' in outcome)) return { message: `accepted ${describe(v)}` }
        const wrong = wrongError(outcome.err, 'GRACEFUL_ERR_OPTIONS', 'options', v)
        return wrong === undefined ? undefined : { message: wrong }
      })
    })
  })
}

// ---- per-route options --------------------------------------------------------------------------------

interface RouteEntry {
  name: string
  runs: number
  /** Resolves with the error, or undefined when accepted. */
  check (route: unknown): Promise<unknown>
}

const ROUTE_ENTRIES: RouteEntry[] = [
  {
    name: 'resolveRouteOptions() (core)',
    runs: RUNS.pure,
    async check (route) {
      try {
        const r = resolveRouteOptions(route, 'route GET /x')
        const o = route as Record<string, unknown>
        // Kept as given: a valid value is never changed.
        if (!isDeepStrictEqual(r, { serveDuringDrain: o.serveDuringDrain ?? false, abortOnDrain: o.abortOnDrain ?? false, timeout: o.timeout ?? null })) {
          return new Error(`resolved to ${describe(r)}`)
        }
        return undefined
      } catch (err) {
        return err
      }
    }
  },
  {
    name: 'routes (Express)',
    runs: RUNS.instance,
    async check (route) {
      try {
        expressGraceful({ signals: false, routes: { 'GET /x': route as never } })
        return undefined
      } catch (err) {
        return err
      }
    }
  },
  {
    name: 'config.graceful (Fastify)',
    runs: RUNS.fastify,
    async check (route) {
      const app = Fastify({ logger: false })
      await app.register(fastifyGraceful, { signals: false })
      try {
        app.get('/x', { config: { graceful: route as never } }, async () => 'x')
        await app.ready()
        return undefined
      } catch (err) {
        return err
      }
    }
  }
]

const ROUTE_DOMAINS: Array<{ option: string, valid: fc.Arbitrary<unknown>, isValid: (v: unknown) => boolean }> = [
  { option: 'timeout', valid: msArb(0), isValid: (v: unknown) => isMs(v, 0) },
  { option: 'serveDuringDrain', valid: fc.boolean(), isValid: isBool },
  { option: 'abortOnDrain', valid: fc.boolean(), isValid: isBool }
]

for (const entry of ROUTE_ENTRIES) {
  t.test(`per-route options: ${entry.name}`, async (t) => {
    for (const d of ROUTE_DOMAINS) {
      t.test(`${d.option}: outside its domain throws GRACEFUL_ERR_ROUTE_OPTION naming it; inside is accepted`, async (t) => {
        await holds(t, `every ${d.option} outside is rejected`, anyValue.filter((v) => !d.isValid(v)), entry.runs, async (v) => {
          const err = await entry.check({ [d.option]: v })
          if (err === undefined) return { message: `accepted ${describe(v)}` }
          const wrong = wrongError(err, 'GRACEFUL_ERR_ROUTE_OPTION', `'${d.option}'`, v)
          return wrong === undefined ? undefined : { message: wrong }
        })
        await holds(t, `every ${d.option} inside is accepted`, d.valid, entry.runs, async (v) => {
          const err = await entry.check({ [d.option]: v })
          return err === undefined ? undefined : { message: `rejected ${describe(v)}: ${String(err)}` }
        })
      })
    }
  })
}

// ---- hook options -------------------------------------------------------------------------------------

interface HookTarget {
  beforeDrain (fn: unknown, options?: unknown): unknown
  afterDrain (fn: unknown, options?: unknown): unknown
}

t.test('hook options: { name?: non-empty string, timeout?: ms > 0 }, for every adapter', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(fastifyGraceful, { signals: false })
  const targets: Array<[string, HookTarget]> = [
    ['core', new Graceful({ signals: false }) as unknown as HookTarget],
    ['Express', expressGraceful({ signals: false }) as unknown as HookTarget],
    ['Fastify', app.graceful as unknown as HookTarget]
  ]
  const isHookOptions = (v: unknown): boolean => isPlainObject(v) && onlyKeys(v, ['name', 'timeout']) &&
    (unset(v, 'name') || (typeof v.name === 'string' && v.name.length > 0)) && (unset(v, 'timeout') || isMs(v.timeout, 0, true))
  const validHookOptions = fc.record({ name: fc.string({ minLength: 1 }), timeout: msArb(0, true) }, { requiredKeys: [] })
  const outside = fc.oneof(
    anyValue,
    fc.record({ name: anyValue }),
    fc.record({ timeout: anyValue })
  ).filter((v) => !isHookOptions(v))
  for (const [name, target] of targets) {
    for (const kind of ['beforeDrain', 'afterDrain'] as const) {
      await holds(t, `${name} ${kind}: bad hook options throw GRACEFUL_ERR_HOOK_OPTIONS`, outside, RUNS.instance, async (v) => {
        try {
          target[kind](() => {}, v)
        } catch (err) {
          const wrong = wrongError(err, 'GRACEFUL_ERR_HOOK_OPTIONS', kind, v)
          return wrong === undefined ? undefined : { message: wrong }
        }
        return { message: `accepted ${describe(v)}` }
      })
      await holds(t, `${name} ${kind}: good hook options are accepted`, validHookOptions, RUNS.instance, async (v) => {
        try {
          target[kind](() => {}, v)
          return undefined
        } catch (err) {
          return { message: `rejected ${describe(v)}: ${String(err)}` }
        }
      })
      await holds(t, `${name} ${kind}: a hook that is not a function throws GRACEFUL_ERR_HOOK`, anyValue.filter((v) => !isFn(v)), RUNS.instance, async (v) => {
        try {
          target[kind](v)
        } catch (err) {
          const wrong = wrongError(err, 'GRACEFUL_ERR_HOOK', kind, v)
          return wrong === undefined ? undefined : { message: wrong }
        }
        return { message: `accepted ${describe(v)}` }
      })
    }
  }
})

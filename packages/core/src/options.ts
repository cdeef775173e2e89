import { accessSync, constants, lstatSync, statSync } from 'node:fs'
import { basename, dirname, resolve as resolvePath } from 'node:path'
import { createError, describe } from './errors.js'

/** A pino-style logger: `log.info({ inFlight }, 'draining')`. */
export interface Logger {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}

export interface RouteOptions {
  /**
   * Serve new requests to this route during the drain (health checks, metrics), with `Connection: close`.
   * @default false
   */
  serveDuringDrain?: boolean
  /**
   * ms this route's in-flight requests may hold the drain, counted from the drain start; then they are
   * aborted and their connections destroyed.
   * @default the instance's `timeout`
   */
  timeout?: number
  /**
   * Abort the request's `shutdownSignal` the moment the drain starts (long-polls, SSE, streams).
   * @default false
   */
  abortOnDrain?: boolean
}

export interface ReadinessOptions {
  /** @default '/readyz' */
  path?: string
  /** Extra check while serving; the route answers 503 when it returns or resolves to anything but `true`. */
  check?: () => boolean | Promise<boolean>
}

export interface LivenessOptions {
  /** @default '/livez' */
  path?: string
}

export interface RestartOptions {
  /** @default 'SIGHUP' */
  signal?: NodeJS.Signals
  /** ms the successor has to say it is ready. @default 60000 */
  timeout?: number
  /** Written atomically with the serving process's PID. */
  pidFile?: string
}

export interface GracefulOptions {
  /** ms the drain may take after the lame-duck delay. @default 10000 */
  timeout?: number
  /** ms of lame-duck time before the drain: readiness answers 503, everything else is served. @default 0 */
  delay?: number
  /** ms each hook may run before it counts as failed. @default 5000 */
  hookTimeout?: number
  /** Signals that start a shutdown; `false`: none. @default ['SIGTERM', 'SIGINT'] */
  signals?: false | NodeJS.Signals[]
  /** `process.exit(report.exitCode)` after a shutdown that a signal started. @default true */
  exit?: boolean
  /** Seconds for `Retry-After` on 503s; `false`: no header. @default 1 */
  retryAfter?: false | number
  /** @default false */
  readiness?: false | ReadinessOptions
  /** @default false */
  liveness?: false | LivenessOptions
  /** pino-style logger; `false`: silent. @default the framework's (Fastify) or `console` (Express) */
  logger?: false | Logger
  /** Zero-downtime restart in place. @default false */
  restart?: boolean | RestartOptions
}

export interface ResolvedOptions {
  timeout: number
  delay: number
  hookTimeout: number
  signals: NodeJS.Signals[]
  exit: boolean
  retryAfter: string | null
  readiness: { path: string, check: (() => boolean | Promise<boolean>) | null } | null
  liveness: { path: string } | null
  logger: Logger | null | undefined
  restart: { signal: NodeJS.Signals, timeout: number, pidFile: string | null } | null
}

/** The signals close-with-grace can listen to; SIGUSR1 belongs to Node's inspector. */
export const SIGNALS: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT',
  'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGUSR2', 'SIGTERM']

export const DEFAULTS = {
  timeout: 10_000,
  delay: 0,
  hookTimeout: 5_000,
  signals: ['SIGTERM', 'SIGINT'] as NodeJS.Signals[],
  exit: true,
  retryAfter: 1,
  readinessPath: '/readyz',
  livenessPath: '/livez',
  restartSignal: 'SIGHUP' as NodeJS.Signals,
  restartTimeout: 60_000
} as const

export const OPTION_NAMES = ['timeout', 'delay', 'hookTimeout', 'signals', 'exit', 'retryAfter', 'readiness',
  'liveness', 'logger', 'restart'] as const

// setTimeout fires at once for anything above 2^31 - 1 ms, which would turn a long deadline into none.
const MAX_MS = 2 ** 31 - 1

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** A finite number of ms from `min` (or, with `exclusive`, above it) up to setTimeout's limit. */
export function isMs (value: unknown, min: number, exclusive = false): value is number {
  return typeof value === 'number' && Number.isFinite(value) && (exclusive ? value > min : value >= min) && value <= MAX_MS
}

// A literal path that both adapters match the same way: Fastify's router reads ':' and '*' as patterns
// and decodes '%xx', Express compares the raw URL; clients percent-encode spaces and non-ASCII.
const LITERAL_PATH = /^\/[A-Za-z0-9\-._~!$&'()+,;=@/]+$/

function checkPath (value: unknown): value is string {
  return typeof value === 'string' && LITERAL_PATH.test(value)
}

function pick<T> (obj: Record<string, unknown>, key: string, fallback: T): unknown {
  return Object.hasOwn(obj, key) && obj[key] !== undefined ? obj[key] : fallback
}

/**
 * Checks every option once, when the plugin or middleware is created, and returns them with defaults.
 * `extra` names options an adapter handles itself (Express `routes`).
 */
export function resolveOptions (input: unknown, extra: readonly string[] = []): ResolvedOptions {
  return readable(() => resolve(input, extra))
}

/**
 * Runs a validation whose reading of the user's value may itself throw (a getter that throws, a Proxy whose
 * traps do): that error comes out as a coded TypeError naming the problem, with the original as its `cause`.
 */
export function readable<T> (read: () => T): T {
  try {
    return read()
  } catch (err) {
    if (typeof (err as { code?: unknown } | null)?.code === 'string' && (err as { code: string }).code.startsWith('GRACEFUL_ERR_')) throw err
    throw createError('GRACEFUL_ERR_OPTIONS_UNREADABLE', [String(err)], { cause: err })
  }
}

function resolve (input: unknown, extra: readonly string[]): ResolvedOptions {
  if (input === undefined) input = {}
  if (!isPlainObject(input)) throw createError('GRACEFUL_ERR_OPTIONS', [describe(input)])
  const known = [...OPTION_NAMES, ...extra]
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) throw createError('GRACEFUL_ERR_OPTION_UNKNOWN', [key, known.join(', ')])
  }

  const timeout = pick(input, 'timeout', DEFAULTS.timeout)
  if (!isMs(timeout, 0)) throw createError('GRACEFUL_ERR_TIMEOUT', [describe(timeout)])
  const delay = pick(input, 'delay', DEFAULTS.delay)
  if (!isMs(delay, 0)) throw createError('GRACEFUL_ERR_DELAY', [describe(delay)])
  const hookTimeout = pick(input, 'hookTimeout', DEFAULTS.hookTimeout)
  if (!isMs(hookTimeout, 0, true)) throw createError('GRACEFUL_ERR_HOOK_TIMEOUT', [describe(hookTimeout)])

  const signals = pick(input, 'signals', DEFAULTS.signals)
  // Spread, not signals.every(): every() skips the holes of a sparse array, which would let `undefined` in.
  if (signals !== false && (!Array.isArray(signals) || signals.length === 0 ||
      ![...signals].every((s) => SIGNALS.includes(s)) || new Set(signals).size !== signals.length)) {
    throw createError('GRACEFUL_ERR_SIGNALS', [describe(signals)])
  }

  const exit = pick(input, 'exit', DEFAULTS.exit)
  if (typeof exit !== 'boolean') throw createError('GRACEFUL_ERR_EXIT', [describe(exit)])

  const retryAfter = pick(input, 'retryAfter', DEFAULTS.retryAfter)
  if (retryAfter !== false && !(Number.isSafeInteger(retryAfter) && (retryAfter as number) >= 0)) {
    throw createError('GRACEFUL_ERR_RETRY_AFTER', [describe(retryAfter)])
  }

  const readiness = pick(input, 'readiness', false)
  let resolvedReadiness: ResolvedOptions['readiness'] = null
  if (readiness !== false) {
    if (!isPlainObject(readiness) || Object.keys(readiness).some((k) => k !== 'path' && k !== 'check')) {
      throw createError('GRACEFUL_ERR_READINESS', [describe(readiness)])
    }
    const path = pick(readiness, 'path', DEFAULTS.readinessPath)
    // Left out or undefined: no check. Anything else must be a function (null included: nothing is coerced).
    const check = pick(readiness, 'check', undefined)
    if (!checkPath(path) || (check !== undefined && typeof check !== 'function')) {
      throw createError('GRACEFUL_ERR_READINESS', [describe(readiness)])
    }
    resolvedReadiness = { path, check: (check ?? null) as (() => boolean | Promise<boolean>) | null }
  }

  const liveness = pick(input, 'liveness', false)
  let resolvedLiveness: ResolvedOptions['liveness'] = null
  if (liveness !== false) {
    if (!isPlainObject(liveness) || Object.keys(liveness).some((k) => k !== 'path')) {
      throw createError('GRACEFUL_ERR_LIVENESS', [describe(liveness)])
    }
    const path = pick(liveness, 'path', DEFAULTS.livenessPath)
    if (!checkPath(path) || path === resolvedReadiness?.path) {
      throw createError('GRACEFUL_ERR_LIVENESS', [describe(liveness)])
    }
    resolvedLiveness = { path }
  }

  const logger = pick(input, 'logger', undefined)
  if (logger !== undefined && logger !== false && !isLogger(logger)) {
    throw createError('GRACEFUL_ERR_LOGGER', [describe(logger)])
  }

  const restart = pick(input, 'restart', false)
  let resolvedRestart: ResolvedOptions['restart'] = null
  if (restart !== false) {
    const r = restart === true ? {} : restart
    if (!isPlainObject(r) || Object.keys(r).some((k) => k !== 'signal' && k !== 'timeout' && k !== 'pidFile')) {
      throw createError('GRACEFUL_ERR_RESTART', [describe(restart)])
    }
    const signal = pick(r, 'signal', DEFAULTS.restartSignal)
    const timeout = pick(r, 'timeout', DEFAULTS.restartTimeout)
    const pidFile = pick(r, 'pidFile', undefined)
    if (!SIGNALS.includes(signal as NodeJS.Signals) || !isMs(timeout, 1) ||
        (pidFile !== undefined && (typeof pidFile !== 'string' || pidFile.length === 0))) {
      throw createError('GRACEFUL_ERR_RESTART', [describe(restart)])
    }
    if (signals !== false && (signals as string[]).includes(signal as string)) {
      throw createError('GRACEFUL_ERR_RESTART_SIGNAL', [signal, describe(signals), describe(restart)])
    }
    const problem = pidFile === undefined ? null : pidFileProblem(pidFile as string)
    if (problem !== null) throw createError('GRACEFUL_ERR_PID_FILE', [problem, describe(restart)])
    resolvedRestart = { signal: signal as NodeJS.Signals, timeout, pidFile: (pidFile ?? null) as string | null }
  }

  return {
    timeout,
    delay,
    hookTimeout,
    signals: signals === false ? [] : [...signals],
    exit,
    retryAfter: retryAfter === false ? null : String(retryAfter),
    readiness: resolvedReadiness,
    liveness: resolvedLiveness,
    logger: logger === false ? null : logger as Logger | undefined,
    restart: resolvedRestart
  }
}

/** Random bytes in the name of the pid file's temp file (restart.ts), written in hex. */
export const PID_TMP_RANDOM_BYTES = 8
// NAME_MAX on Linux and macOS, less what the temp file's name adds: '.', the random part, '.tmp'.
const PID_FILE_NAME_MAX = 255 - (1 + 2 * PID_TMP_RANDOM_BYTES + 4)

/**
 * Why a pid file path cannot work, or is unsafe, or null. The file itself may be missing (it is written once
 * the servers listen); its directory must exist, be writable by this process, and be changeable by nobody
 * else: in a world-writable directory without the sticky bit (/tmp has it) another user could replace the
 * file between our write and a later `kill -HUP $(cat pidfile)`.
 */
export function pidFileProblem (file: string): string | null {
  if (file.includes('\0')) return 'it contains a NUL byte'
  const name = basename(file)
  if (file.endsWith('/') || name === '.' || name === '..') return 'it names a directory, not a file'
  if (Buffer.byteLength(name) > PID_FILE_NAME_MAX) return `its file name is ${Buffer.byteLength(name)} bytes long, more than the ${PID_FILE_NAME_MAX} that fit beside its temp file's`
  const dir = dirname(resolvePath(file))
  try {
    const st = statSync(dir)
    if (!st.isDirectory()) return `'${dir}' is not a directory`
    if (process.platform !== 'win32' && (st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0) {
      return `its directory '${dir}' is world-writable without the sticky bit: another user could replace the file`
    }
    accessSync(dir, constants.W_OK | constants.X_OK)
    // A symlink is fine (the rename replaces it); a directory cannot be replaced by a file.
    if (lstatSync(file, { throwIfNoEntry: false })?.isDirectory() === true) return 'it is a directory'
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return `its directory '${dir}' does not exist`
    return `its directory '${dir}' cannot be used by this process (${String(code)})`
  }
  return null
}

function isLogger (value: unknown): value is Logger {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false
  const l = value as Record<string, unknown>
  return typeof l.info === 'function' && typeof l.warn === 'function' && typeof l.error === 'function'
}

export interface ResolvedRouteOptions {
  serveDuringDrain: boolean
  timeout: number | null
  abortOnDrain: boolean
}

/** Checks one route's options; `where` names the route in the error message. */
export function resolveRouteOptions (input: unknown, where: string): ResolvedRouteOptions {
  return readable(() => resolveRoute(input, where))
}

function resolveRoute (input: unknown, where: string): ResolvedRouteOptions {
  if (!isPlainObject(input)) {
    throw createError('GRACEFUL_ERR_ROUTE_OPTION', [`for ${where} must be an object`, describe(input)])
  }
  for (const key of Object.keys(input)) {
    if (key !== 'serveDuringDrain' && key !== 'timeout' && key !== 'abortOnDrain') {
      throw createError('GRACEFUL_ERR_ROUTE_OPTION',
        [`'${key}' for ${where} is unknown: expected serveDuringDrain, timeout or abortOnDrain`, describe(input[key])])
    }
  }
  const serveDuringDrain = pick(input, 'serveDuringDrain', false)
  if (typeof serveDuringDrain !== 'boolean') {
    throw createError('GRACEFUL_ERR_ROUTE_OPTION', [`'serveDuringDrain' for ${where} must be a boolean`, describe(serveDuringDrain)])
  }
  const abortOnDrain = pick(input, 'abortOnDrain', false)
  if (typeof abortOnDrain !== 'boolean') {
    throw createError('GRACEFUL_ERR_ROUTE_OPTION', [`'abortOnDrain' for ${where} must be a boolean`, describe(abortOnDrain)])
  }
  const timeout = pick(input, 'timeout', undefined)
  if (timeout !== undefined && !isMs(timeout, 0)) {
    throw createError('GRACEFUL_ERR_ROUTE_OPTION', [`'timeout' for ${where} must be a finite number of ms >= 0`, describe(timeout)])
  }
  return { serveDuringDrain, abortOnDrain, timeout: timeout ?? null }
}

import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import { createError, describe, type Logger } from '@graceful/core'

export interface SuperviseOptions {
  /** The app's entry point, the file `node app.js` would run. */
  exec: string
  /** The app's arguments (`process.argv.slice(2)` in a worker). @default [] */
  args?: string[]
  /** Workers to keep running, at most 4 × os.availableParallelism(). @default os.availableParallelism() */
  workers?: number
  /** ms a new worker has to report ready (listening) before it counts as failed. @default 60000 */
  readyTimeout?: number
  /** ms a worker told to drain or shut down has to exit before it is killed with SIGKILL. @default 30000 */
  killTimeout?: number
  /** Node.js options of the workers. @default process.execArgv */
  execArgv?: string[]
  /** Environment variables added to the workers' (they inherit the supervisor's). @default {} */
  env?: Record<string, string>
  /** pino-style `{ info, warn, error }`; `false`: silent. @default one JSON line per event on stdout */
  logger?: false | Logger
  /** SIGHUP rolls the workers, SIGTERM and SIGINT shut them down, a second one kills them. @default true */
  signals?: boolean
  /** Pipe the workers' stdout and stderr to `worker.process.stdout` / `stderr` instead of sharing ours. @default false */
  silent?: boolean
}

export interface ResolvedSuperviseOptions {
  exec: string
  args: string[]
  workers: number
  readyTimeout: number
  killTimeout: number
  execArgv: string[]
  env: Record<string, string>
  logger: Logger
  signals: boolean
  silent: boolean
}

export const CLUSTER_DEFAULTS = {
  readyTimeout: 60_000,
  killTimeout: 30_000
} as const

/**
 * The most workers a supervisor runs: 4 per core. Past the cores, more workers only compete for the CPU
 * (each already has its own event loop and libuv thread pool for I/O); each is a whole Node.js process
 * (tens of MB resident), so a slip of the keyboard (`--workers 1000000`) would fork until memory or
 * process ids ran out. Four per core leaves room for apps that block on synchronous work.
 */
export function maxWorkers (): number {
  return 4 * availableParallelism()
}

/** What `workers` must be, for error messages. */
export function workersRange (): string {
  return `a whole number from 1 to ${maxWorkers()} (4 × the ${availableParallelism()} cores Node.js sees)`
}

/**
 * The file node would run for `exec` (resolved from the working directory, as node:cluster forks it), or
 * a coded TypeError: a missing app is a typo to report at start-up, not a crash of every worker.
 */
export function resolveApp (exec: string): string {
  const path = resolve(exec)
  try {
    // CommonJS resolution is how node finds its main script: the file, the file with .js, .json or .node,
    // a folder's package.json main or index.js.
    return createRequire(join(process.cwd(), 'graceful-cluster.js')).resolve(path)
  } catch {
    throw createError('GRACEFUL_ERR_CLUSTER_APP', [exec, path])
  }
}

const NAMES = ['exec', 'args', 'workers', 'readyTimeout', 'killTimeout', 'execArgv', 'env', 'logger', 'signals', 'silent']
// setTimeout fires at once for anything above 2^31 - 1 ms.
export const MAX_MS = 2 ** 31 - 1
const MS = `a whole number of ms from 1 to ${MAX_MS}`

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const isStrings = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string')
const isMs = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_MS

function pick (obj: Record<string, unknown>, key: string, fallback: unknown): unknown {
  return obj[key] === undefined ? fallback : obj[key]
}

function bad (name: string, what: string, value: unknown): TypeError {
  return createError('GRACEFUL_ERR_CLUSTER_OPTION', [name, what, describe(value)])
}

/** Checks the options of `supervise()` once, and fills in the defaults. */
export function resolveSuperviseOptions (input: unknown): ResolvedSuperviseOptions {
  if (!isPlainObject(input)) throw createError('GRACEFUL_ERR_OPTIONS', [describe(input)])
  for (const key of Object.keys(input)) {
    if (!NAMES.includes(key)) throw createError('GRACEFUL_ERR_OPTION_UNKNOWN', [key, NAMES.join(', ')])
  }
  const exec = input.exec
  if (typeof exec !== 'string' || exec.length === 0) throw bad('exec', "the app's file path", exec)
  const args = pick(input, 'args', [])
  if (!isStrings(args)) throw bad('args', 'an array of strings', args)
  const workers = pick(input, 'workers', availableParallelism())
  if (!Number.isSafeInteger(workers) || (workers as number) < 1 || (workers as number) > maxWorkers()) throw bad('workers', workersRange(), workers)
  const readyTimeout = pick(input, 'readyTimeout', CLUSTER_DEFAULTS.readyTimeout)
  if (!isMs(readyTimeout)) throw bad('readyTimeout', MS, readyTimeout)
  const killTimeout = pick(input, 'killTimeout', CLUSTER_DEFAULTS.killTimeout)
  if (!isMs(killTimeout)) throw bad('killTimeout', MS, killTimeout)
  const execArgv = pick(input, 'execArgv', process.execArgv)
  if (!isStrings(execArgv)) throw bad('execArgv', 'an array of strings', execArgv)
  const env = pick(input, 'env', {})
  if (!isPlainObject(env) || !Object.values(env).every((v) => typeof v === 'string')) throw bad('env', 'an object of strings', env)
  const logger = pick(input, 'logger', jsonLogger())
  if (logger !== false && !isLogger(logger)) throw createError('GRACEFUL_ERR_LOGGER', [describe(logger)])
  const signals = pick(input, 'signals', true)
  if (typeof signals !== 'boolean') throw bad('signals', 'a boolean', signals)
  const silent = pick(input, 'silent', false)
  if (typeof silent !== 'boolean') throw bad('silent', 'a boolean', silent)
  // Last: the checks above are about the values as given; this one looks at the disk.
  resolveApp(exec)
  return {
    exec,
    args: [...args],
    workers: workers as number,
    readyTimeout,
    killTimeout,
    execArgv: [...execArgv],
    env: { ...env } as Record<string, string>,
    logger: logger === false ? quiet : logger,
    signals,
    silent
  }
}

function isLogger (value: unknown): value is Logger {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false
  const l = value as Record<string, unknown>
  return typeof l.info === 'function' && typeof l.warn === 'function' && typeof l.error === 'function'
}

const LEVELS = { info: 30, warn: 40, error: 50 } as const

/** One pino-shaped JSON line per event on stdout, beside the workers' own (Fastify's are pino too). */
export function jsonLogger (write: (line: string) => void = (line) => { process.stdout.write(line) }): Logger {
  const at = (level: keyof typeof LEVELS) => (obj: object, msg?: string): void => {
    write(`${JSON.stringify({ level: LEVELS[level], time: Date.now(), pid: process.pid, msg, ...obj })}\n`)
  }
  return { info: at('info'), warn: at('warn'), error: at('error') }
}

const noop = (): void => {}
const quiet: Logger = { info: noop, warn: noop, error: noop }

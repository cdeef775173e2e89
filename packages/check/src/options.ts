import type { ChildProcess } from 'node:child_process'
import { constants } from 'node:os'
import { createError, describe } from './errors.js'
import type { CheckEvent } from './events.js'

/** The clients that loop requests, each on its own connection (or a new one per request). */
export const LOOP_KINDS = ['keepAlive', 'busy', 'paused', 'newConnection', 'post', 'slow'] as const
export type LoopKind = (typeof LOOP_KINDS)[number]
/** Every kind of connection the workload opens. */
export const KINDS = [...LOOP_KINDS, 'pipelined', 'idle', 'preconnect', 'stream', 'readiness'] as const
export type Kind = (typeof KINDS)[number]

/** How many clients of each kind; a kind left out gets none. */
export type Clients = Partial<Record<LoopKind | 'pipelined' | 'idle' | 'preconnect', number>>

export interface RestartScenario {
  /** @default 'SIGHUP' */
  signal?: string
  /** @default 3 */
  times?: number
  /** The file the app writes its pid to once a successor is ready; without it the successor is found in the process tree. */
  pidFile?: string
}

export interface CheckOptions {
  /** The app to start, e.g. `['node', 'dist/app.js', '--port', '3000']`. It runs in a process group of its own. */
  command?: string[]
  /** The command's working directory. @default process.cwd() */
  cwd?: string
  /** Variables added to the command's environment (it inherits ours). @default {} */
  env?: Record<string, string>
  /** Attach to a running process instead of starting one (its exit code cannot be known). */
  pid?: number
  /** Attach to a child process you started yourself (its exit code is known). */
  child?: ChildProcess
  /** `http://127.0.0.1:3000/path`: where the app listens, and the path to load (loopback only). */
  url?: string
  /** The port on 127.0.0.1; without it (or `url`) the first listening socket the process opens is used (Linux). */
  port?: number
  /** The path the GET clients load. @default '/' (or the url's path) */
  path?: string
  /** The path the POST clients send JSON bodies to. @default path */
  postPath?: string
  /** A slow route to keep a request in flight on, e.g. '/slow'. @default false */
  slow?: string | false
  /** A streaming route (SSE, a long response) to hold open through the scenario, e.g. '/events'. @default false */
  stream?: string | false
  /** The readiness route to poll throughout, e.g. '/readyz'. @default false */
  readiness?: string | false
  /** The signal that ends the scenario. @default 'SIGTERM', or false with `restart` */
  signal?: string | false
  /** In-place restarts (or graceful-cluster rolls) under load, before the signal if there is one. @default false */
  restart?: RestartScenario | false
  /** ms of load before the first signal, and after each restart. @default 2000 */
  duration?: number
  /** ms to wait for the app to listen, for a response, for a restart, and for the exit after the signal. @default 30000 */
  timeout?: number
  /** Connections of the default mix of looping clients (see `clients`). @default 16 */
  connections?: number
  /** The exact workload instead of the default mix: clients per kind, the others none. */
  clients?: Clients
  /** Called with each line the app prints; by default they are kept (the last 50 are in the result). */
  output?: (line: string) => void
  /** What the check sees, as it happens (the CLI's live lines). */
  onEvent?: (event: CheckEvent) => void
  /** Ends the check early: the app it started is killed and the result says `interrupted`. */
  abort?: AbortSignal
}

export interface ResolvedCheckOptions {
  command: string[] | null
  cwd: string
  env: Record<string, string>
  pid: number | null
  child: ChildProcess | null
  host: string | null
  port: number | null
  /** Where host and port came from; null: to be found from the process. */
  portFrom: 'url' | 'port' | null
  path: string
  postPath: string
  slow: string | null
  stream: string | null
  readiness: string | null
  signal: NodeJS.Signals | null
  restart: { signal: NodeJS.Signals, times: number, pidFile: string | null } | null
  duration: number
  timeout: number
  clients: Required<Clients>
  output: ((line: string) => void) | null
  onEvent: (event: CheckEvent) => void
  abort: AbortSignal | null
}

export const CHECK_DEFAULTS = {
  path: '/',
  signal: 'SIGTERM',
  restartSignal: 'SIGHUP',
  times: 3,
  duration: 2000,
  timeout: 30_000,
  connections: 16
} as const

// setTimeout fires at once for anything above 2^31 - 1 ms.
export const MAX_MS = 2 ** 31 - 1
/** One client of each looping kind at least. */
export const MIN_CONNECTIONS = 5
/** More than this many is a load test, not a check. */
export const MAX_CONNECTIONS = 1000
export const MAX_TIMES = 100

const NAMES = ['command', 'cwd', 'env', 'pid', 'child', 'url', 'port', 'path', 'postPath', 'slow', 'stream', 'readiness',
  'signal', 'restart', 'duration', 'timeout', 'connections', 'clients', 'output', 'onEvent', 'abort']
const CLIENT_NAMES = [...LOOP_KINDS, 'pipelined', 'idle', 'preconnect']

/**
 * The default mix for `connections` N (>= 5): a quarter busy, an eighth each paused, new-connection and
 * POST (one at least), the rest keep-alive loops; plus a slow loop when there is a slow path, and one
 * pipelined, one idle and one preconnect connection.
 */
export function mix (connections: number, slow: boolean): Required<Clients> {
  const share = (fraction: number): number => Math.max(1, Math.round(connections * fraction))
  const busy = share(1 / 4)
  const paused = share(1 / 8)
  const newConnection = share(1 / 8)
  const post = share(1 / 8)
  const keepAlive = Math.max(1, connections - busy - paused - newConnection - post)
  return { keepAlive, busy, paused, newConnection, post, slow: slow ? 1 : 0, pipelined: 1, idle: 1, preconnect: 1 }
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function bad (name: string, what: string, value: unknown): TypeError {
  return createError('GRACEFUL_ERR_CHECK_OPTION', [name, what, describe(value)])
}

const isWhole = (value: unknown, min: number, max: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max

/** A path as a request line carries it: starts with '/', no spaces or control characters. */
export const isPath = (value: unknown): value is string => typeof value === 'string' && /^\/[\x21-\x7e]*$/.test(value)
const PATH = "a path starting with '/' (no spaces)"

/** A signal name Node knows, such as 'SIGTERM'. */
export const isSignal = (value: unknown): value is NodeJS.Signals =>
  typeof value === 'string' && /^SIG[A-Z0-9]+$/.test(value) && value in constants.signals

/** 127.0.0.0/8, ::1 and localhost: the check sends real traffic, and only to this machine. */
export function loopbackHost (hostname: string): string | null {
  if (hostname === 'localhost') return '127.0.0.1'
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)) return hostname
  if (hostname === '[::1]' || hostname === '::1') return '::1'
  return null
}

/** Reads `http://127.0.0.1:3000/path`; null when it is not a loopback http URL with a port. */
export function parseUrl (value: string): { host: string, port: number, path: string } | null {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return null
  }
  const host = loopbackHost(url.hostname)
  const port = Number(url.port === '' ? 80 : url.port)
  if (url.protocol !== 'http:' || host === null || url.username !== '' || url.hash !== '') return null
  return { host, port, path: url.pathname + url.search }
}

const URL_WHAT = "an http:// URL on a loopback address (127.0.0.1, [::1], localhost), such as 'http://127.0.0.1:3000'"

function optionalPath (input: Record<string, unknown>, name: string): string | null {
  const value = input[name]
  if (value === undefined || value === false) return null
  if (!isPath(value)) throw bad(name, `false or ${PATH}`, value)
  return value
}

/** Checks `check()`'s options once, before anything starts, and fills in the defaults. */
export function resolveCheckOptions (input: unknown): ResolvedCheckOptions {
  if (!isPlainObject(input)) throw createError('GRACEFUL_ERR_CHECK_OPTIONS', [describe(input)])
  for (const key of Object.keys(input)) {
    if (!NAMES.includes(key)) throw createError('GRACEFUL_ERR_CHECK_OPTION_UNKNOWN', [key, NAMES.join(', ')])
  }
  const { command, pid, child } = input
  const given = (['command', 'pid', 'child'] as const).filter((k) => input[k] !== undefined)
  if (given.length !== 1) throw createError('GRACEFUL_ERR_CHECK_TARGET', [given.length === 0 ? 'none' : given.join(' and ')])
  if (command !== undefined && (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string') || command[0] === '')) {
    throw bad('command', 'a non-empty array of strings, the program first', command)
  }
  if (pid !== undefined && !isWhole(pid, 1, 2 ** 31 - 1)) throw bad('pid', 'a process id (a whole number >= 1)', pid)
  if (child !== undefined && (child === null || typeof child !== 'object' || typeof (child as ChildProcess).pid !== 'number' ||
      typeof (child as ChildProcess).once !== 'function')) {
    throw bad('child', 'a started ChildProcess', child)
  }
  const cwd = input.cwd ?? process.cwd()
  if (typeof cwd !== 'string' || cwd === '') throw bad('cwd', 'a directory path', cwd)
  const env = input.env ?? {}
  if (!isPlainObject(env) || !Object.values(env).every((v) => typeof v === 'string')) throw bad('env', 'an object of strings', env)

  let host: string | null = null
  let port: number | null = null
  let portFrom: 'url' | 'port' | null = null
  let path: string = CHECK_DEFAULTS.path
  if (input.url !== undefined) {
    const parsed = typeof input.url === 'string' ? parseUrl(input.url) : null
    if (parsed === null || !isWhole(parsed.port, 1, 65535)) throw bad('url', URL_WHAT, input.url)
    ;({ host, port, path } = parsed)
    portFrom = 'url'
  }
  if (input.port !== undefined) {
    if (!isWhole(input.port, 1, 65535)) throw bad('port', 'a port number from 1 to 65535', input.port)
    if (port !== null && port !== input.port) throw bad('port', `the url's port (${port}) or left out`, input.port)
    port = input.port
    host ??= '127.0.0.1'
    portFrom ??= 'port'
  }
  if (input.path !== undefined) {
    if (!isPath(input.path)) throw bad('path', PATH, input.path)
    path = input.path
  }
  const postPath = input.postPath ?? path
  if (!isPath(postPath)) throw bad('postPath', PATH, postPath)

  const restartIn = input.restart ?? false
  let restart: ResolvedCheckOptions['restart'] = null
  if (restartIn !== false) {
    const what = "false or { signal?: 'SIGHUP', times?: 1 to 100, pidFile?: path }"
    if (!isPlainObject(restartIn) || Object.keys(restartIn).some((k) => !['signal', 'times', 'pidFile'].includes(k))) throw bad('restart', what, restartIn)
    const signal = restartIn.signal ?? CHECK_DEFAULTS.restartSignal
    const times = restartIn.times ?? CHECK_DEFAULTS.times
    const pidFile = restartIn.pidFile ?? null
    if (!isSignal(signal) || !isWhole(times, 1, MAX_TIMES) || (pidFile !== null && (typeof pidFile !== 'string' || pidFile === ''))) {
      throw bad('restart', what, restartIn)
    }
    restart = { signal, times, pidFile }
  }
  const signalIn = input.signal ?? (restart === null ? CHECK_DEFAULTS.signal : false)
  if (signalIn !== false && !isSignal(signalIn)) throw bad('signal', "false or a signal name such as 'SIGTERM'", signalIn)
  const signal = signalIn === false ? null : signalIn
  if (signal === null && restart === null) throw bad('signal', "a signal name when there is no restart (the check needs a scenario)", signalIn)

  const duration = input.duration ?? CHECK_DEFAULTS.duration
  if (!isWhole(duration, 0, MAX_MS)) throw bad('duration', `a whole number of ms from 0 to ${MAX_MS}`, duration)
  const timeout = input.timeout ?? CHECK_DEFAULTS.timeout
  if (!isWhole(timeout, 1, MAX_MS)) throw bad('timeout', `a whole number of ms from 1 to ${MAX_MS}`, timeout)
  const slow = optionalPath(input, 'slow')
  const stream = optionalPath(input, 'stream')
  const readiness = optionalPath(input, 'readiness')

  let clients: Required<Clients>
  if (input.clients !== undefined) {
    if (input.connections !== undefined) throw bad('connections', 'left out when clients is given', input.connections)
    const c = input.clients
    const what = `{ ${CLIENT_NAMES.join(', ')} } with whole numbers from 0 to ${MAX_CONNECTIONS}, at least one client in all`
    if (!isPlainObject(c) || !Object.entries(c).every(([k, v]) => CLIENT_NAMES.includes(k) && isWhole(v, 0, MAX_CONNECTIONS)) ||
        Object.values(c).every((v) => v === 0)) {
      throw bad('clients', what, c)
    }
    clients = Object.fromEntries(CLIENT_NAMES.map((k) => [k, (c[k] as number | undefined) ?? 0])) as Required<Clients>
    if (clients.slow > 0 && slow === null) throw bad('clients', 'without slow clients when there is no slow path', c)
  } else {
    const connections = input.connections ?? CHECK_DEFAULTS.connections
    if (!isWhole(connections, MIN_CONNECTIONS, MAX_CONNECTIONS)) throw bad('connections', `a whole number from ${MIN_CONNECTIONS} to ${MAX_CONNECTIONS}`, connections)
    clients = mix(connections, slow !== null)
  }
  const output = input.output ?? null
  if (output !== null && typeof output !== 'function') throw bad('output', 'a function called with each line the app prints', output)
  const onEvent = input.onEvent ?? noop
  if (typeof onEvent !== 'function') throw bad('onEvent', 'a function', onEvent)
  const abort = input.abort ?? null
  if (abort !== null && !(abort instanceof AbortSignal)) throw bad('abort', 'an AbortSignal', abort)

  return {
    command: command === undefined ? null : [...command as string[]],
    cwd,
    env: { ...env } as Record<string, string>,
    pid: pid === undefined ? null : pid as number,
    child: child === undefined ? null : child as ChildProcess,
    host,
    port,
    portFrom,
    path,
    postPath,
    slow,
    stream,
    readiness,
    signal,
    restart,
    duration,
    timeout,
    clients,
    output: output as ((line: string) => void) | null,
    onEvent: onEvent as (event: CheckEvent) => void,
    abort
  }
}

function noop (): void {}

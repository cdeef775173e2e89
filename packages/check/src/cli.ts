import { check } from './check.js'
import { createError, type CheckError } from './errors.js'
import { CHECK_DEFAULTS, MAX_CONNECTIONS, MAX_MS, MAX_TIMES, MIN_CONNECTIONS, isPath, isSignal, parseUrl, type CheckOptions } from './options.js'
import { formatEvent, formatProgress, formatResult } from './report.js'
import type { CheckEvent } from './events.js'
import type { CheckResult } from './types.js'

export const USAGE = `NAME
    graceful-check - put real traffic on a Node.js server, signal it, say what was lost and why

SYNOPSIS
    graceful-check [options] -- command [args…]
    graceful-check [options] --pid PID [--url URL | --port N]

DESCRIPTION
    Starts the command (in a process group of its own) or attaches to a running process, waits
    until it accepts connections, and drives a mixed workload at it on loopback: keep-alive GET
    loops, keep-alive clients whose event loop is blocked 0–300 ms or 300–900 ms between requests
    (a busy proxy, a GC pause), a new connection per request, POSTs with bodies, a pipelined pair,
    an idle keep-alive connection, a preconnect that sends nothing, and if asked a slow request, a
    stream and readiness polls. Under that load it sends the signal (after the restarts, if any)
    and watches to the end. Every request is answered (2xx, 503 with or without Connection: close
    and Retry-After, another status) or lost (reset, hang-up, refused after accept, truncated
    body, timeout), with when it happened relative to the signal and on what kind of connection.
    The report ends with a verdict: the likely cause of each kind of loss, and what fixes it.

    The app needs nothing from graceful: any Node.js server will do (Fastify, Express, Koa, plain
    http). Run the app's own process (node …), not a wrapper that may not pass signals on (npm,
    npx, sh).

OPTIONS
    --url URL          Where the app listens, on loopback: http://127.0.0.1:3000/path. Its path is
                       the path loaded.
    --port N           The app's port on 127.0.0.1. Without --port or --url, the first listening
                       socket the process (or one below it) opens is used: Linux only (/proc).
    --path PATH        The path the GET clients load. Default: ${CHECK_DEFAULTS.path}
    --post-path PATH   The path the POST clients send a 1 KB JSON body to. Default: --path. A
                       status it answered before the signal (404, say) is its normal answer.
    --slow PATH        A slow route: one more client keeps a request in flight on it.
    --stream PATH      A streaming route (SSE): one request held open through the scenario; the
                       report says how it ended.
    --readiness PATH   The readiness route, polled every 100 ms on a new connection (as a probe
                       does); the report says when it stopped answering 2xx.
    --signal SIG       The signal whose shutdown is watched to the exit. Default: ${CHECK_DEFAULTS.signal}; with
                       --restart, none unless given (then it comes after the restarts).
    --restart SIG      Restart the app with SIG under load (SIGHUP): in place (a new process takes
                       over the socket, the old one exits) or a roll of graceful-cluster's workers.
    --times N          How many restarts. Default: ${CHECK_DEFAULTS.times}
    --pid-file PATH    The file the app writes its pid to, to find a restart's new process.
                       Default: the old process's child that holds the listening socket (Linux).
    --pid PID          Attach to this running process instead of starting one. Its exit code
                       cannot be read (it is not our child), and it is never killed.
    --duration MS      Load before the first signal, and after each restart. Default: ${CHECK_DEFAULTS.duration}
                       (units work too: 2s, 500ms)
    --connections N    Looping clients, ${MIN_CONNECTIONS} to ${MAX_CONNECTIONS}. Default: ${CHECK_DEFAULTS.connections}: a quarter busy 0–300 ms,
                       an eighth each paused 300–900 ms, new-connection and POST, the rest
                       keep-alive loops.
    --timeout MS       The bound on every wait: the app listening, a response, a restart, the exit
                       after the signal. Default: ${CHECK_DEFAULTS.timeout}
    --json             Print the result as JSON on stdout (docs/check.md describes it); the live
                       lines still go to stderr.
    --app-output       Show the app's output as it comes (on stderr); by default only its last
                       lines are shown, when it could not be checked.
    -h, --help         This text.

OUTPUT
    Live lines on stderr (and a progress line on a terminal), then the report on stdout: requests
    by kind of connection, answers, restarts, the timeline from the signal (readiness, first 503,
    first Connection: close, listener closed, last response, exit), how the idle connection, the
    preconnect and the stream ended, the lost requests, and the verdict.

EXIT STATUS
    0    nothing was lost, and the scenario ran to its end
    1    something was lost, a restart failed, the process did not exit, or the app could not be
         checked
    2    bad usage (a GRACEFUL_ERR_CHECK_* code names the flag)
    130  interrupted (Ctrl-C); the app it started is killed

EXAMPLES
    graceful-check -- node dist/app.js
    graceful-check --readiness /readyz --stream /events -- node dist/app.js --port 3000
    graceful-check --restart SIGHUP --times 3 --pid-file /tmp/app.pid -- node dist/app.js
    graceful-check --restart SIGHUP -- node_modules/.bin/graceful-cluster --workers 2 dist/app.js
    graceful-check --json --pid 1234 --url http://127.0.0.1:3000/ > check.json
`

type Kind = 'url' | 'port' | 'path' | 'signal' | 'ms' | 'duration' | 'connections' | 'times' | 'pid' | 'file'
const FLAGS: Record<string, { option: string, kind: Kind }> = {
  '--url': { option: 'url', kind: 'url' },
  '--port': { option: 'port', kind: 'port' },
  '--path': { option: 'path', kind: 'path' },
  '--post-path': { option: 'postPath', kind: 'path' },
  '--slow': { option: 'slow', kind: 'path' },
  '--stream': { option: 'stream', kind: 'path' },
  '--readiness': { option: 'readiness', kind: 'path' },
  '--signal': { option: 'signal', kind: 'signal' },
  '--restart': { option: 'restart.signal', kind: 'signal' },
  '--times': { option: 'restart.times', kind: 'times' },
  '--pid-file': { option: 'restart.pidFile', kind: 'file' },
  '--pid': { option: 'pid', kind: 'pid' },
  '--duration': { option: 'duration', kind: 'duration' },
  '--connections': { option: 'connections', kind: 'connections' },
  '--timeout': { option: 'timeout', kind: 'ms' }
}

const WHAT: Record<Kind, string> = {
  url: 'an http:// URL on a loopback address, such as http://127.0.0.1:3000/',
  port: 'a port from 1 to 65535',
  path: "a path starting with '/' (no spaces)",
  signal: "a signal name such as 'SIGTERM'",
  ms: `a whole number of ms from 1 to ${MAX_MS} (or with a unit: 2s, 500ms)`,
  duration: `a whole number of ms from 0 to ${MAX_MS} (or with a unit: 2s, 500ms)`,
  connections: `a whole number from ${MIN_CONNECTIONS} to ${MAX_CONNECTIONS}`,
  times: `a whole number from 1 to ${MAX_TIMES}`,
  pid: 'a process id',
  file: 'a file path'
}

/** ms from '2000', '2000ms', '2s' or '1.5s'; NaN when it is none of them or not a whole number of ms. */
export function parseMs (value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(value)
  if (match === null) return NaN
  const ms = Number(match[1]) * (match[2] === 's' ? 1000 : 1)
  return Number.isInteger(ms) ? ms : NaN
}

function parseValue (kind: Kind, value: string): unknown {
  const whole = /^\d+$/.test(value) ? Number(value) : NaN
  switch (kind) {
    case 'url': return parseUrl(value) === null ? undefined : value
    case 'path': return isPath(value) ? value : undefined
    case 'signal': return isSignal(value) ? value : undefined
    case 'file': return value === '' ? undefined : value
    case 'port': return whole >= 1 && whole <= 65535 ? whole : undefined
    case 'connections': return whole >= MIN_CONNECTIONS && whole <= MAX_CONNECTIONS ? whole : undefined
    case 'times': return whole >= 1 && whole <= MAX_TIMES ? whole : undefined
    case 'pid': return whole >= 1 && whole <= 2 ** 31 - 1 ? whole : undefined
    default: {
      const ms = parseMs(value)
      return ms >= (kind === 'ms' ? 1 : 0) && ms <= MAX_MS ? ms : undefined
    }
  }
}

export type ParsedArgs = { help: true } | { help: false, json: boolean, appOutput: boolean, options: CheckOptions }

/**
 * Reads the command line: flags (--flag value or --flag=value), then the app's command after `--` (or
 * from the first argument that is not a flag). Throws a TypeError whose code names what is wrong.
 */
export function parseArgs (argv: readonly string[]): ParsedArgs {
  const options: Record<string, unknown> = {}
  const restart: Record<string, unknown> = {}
  let json = false
  let appOutput = false
  let i = 0
  for (; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') {
      i++
      break
    }
    if (!arg.startsWith('-')) break
    if (arg === '--help' || arg === '-h') return { help: true }
    if (arg === '--json') {
      json = true
      continue
    }
    if (arg === '--app-output') {
      appOutput = true
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const flag = FLAGS[name]
    if (flag === undefined) throw createError('GRACEFUL_ERR_CHECK_FLAG_UNKNOWN', [arg])
    const raw = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    const value = raw === undefined ? undefined : parseValue(flag.kind, raw)
    if (value === undefined) throw createError('GRACEFUL_ERR_CHECK_FLAG', [name, WHAT[flag.kind], raw ?? '(nothing)'])
    if (flag.option.startsWith('restart.')) restart[flag.option.slice('restart.'.length)] = value
    else options[flag.option] = value
  }
  const command = argv.slice(i)
  if (Object.keys(restart).length > 0) {
    if (restart.signal === undefined) throw createError('GRACEFUL_ERR_CHECK_FLAG', [restart.times !== undefined ? '--times' : '--pid-file', 'used with --restart SIG', 'no --restart'])
    options.restart = restart
  }
  if (command.length > 0 && options.pid !== undefined) {
    throw createError('GRACEFUL_ERR_CHECK_NO_APP', ['either a command or --pid, not both', command.join(' ')])
  }
  if (command.length === 0 && options.pid === undefined) throw createError('GRACEFUL_ERR_CHECK_NO_APP', ['no app to check', argv.join(' ')])
  if (command[0] === '') throw createError('GRACEFUL_ERR_CHECK_NO_APP', ['the command is empty', command.join(' ')])
  if (command.length > 0) options.command = command
  return { help: false, json, appOutput, options: options as CheckOptions }
}

export interface Io {
  stdout (text: string): void
  stderr (text: string): void
  exit (code: number): void
  /** stderr is a terminal: the progress line is drawn in place there. */
  isTTY: boolean
  /** Calls `handler` on Ctrl-C (SIGINT) or SIGTERM; returns what removes it. */
  onInterrupt (handler: () => void): () => void
}

export const PROCESS_IO: Io = {
  stdout: (text) => { process.stdout.write(text) },
  stderr: (text) => { process.stderr.write(text) },
  exit: (code) => { process.exit(code) },
  isTTY: process.stderr.isTTY === true,
  onInterrupt (handler) {
    process.on('SIGINT', handler)
    process.on('SIGTERM', handler)
    return () => {
      process.off('SIGINT', handler)
      process.off('SIGTERM', handler)
    }
  }
}

/**
 * The bin: parse, check (live lines and the progress line on stderr), print the report (or the JSON) on
 * stdout, exit 0 when nothing was lost, 1 when something was, 2 for bad usage, 130 when interrupted.
 * Resolves with the result, when a check ran.
 */
export async function main (argv: readonly string[], io: Io = PROCESS_IO): Promise<CheckResult | undefined> {
  let parsed: ParsedArgs
  try {
    parsed = parseArgs(argv)
  } catch (err) {
    return usage(err as CheckError, io)
  }
  if (parsed.help) {
    io.stdout(USAGE)
    io.exit(0)
    return undefined
  }
  let lost = 0
  let drawn = false
  const clear = (): void => {
    if (drawn) io.stderr('\r\x1b[2K')
    drawn = false
  }
  const onEvent = (event: CheckEvent): void => {
    if (event.type === 'progress') {
      if (!io.isTTY) return
      io.stderr(`\r\x1b[2K${formatProgress(event.progress)}`)
      drawn = true
      return
    }
    if (event.type === 'lost') lost++
    const line = formatEvent(event, lost)
    if (line === null) return
    clear()
    io.stderr(`${line}\n`)
  }
  const output = parsed.appOutput ? (line: string): void => { clear(); io.stderr(`  │ ${line}\n`) } : undefined
  const controller = new AbortController()
  const off = io.onInterrupt(() => controller.abort())
  let result: CheckResult
  try {
    result = await check({ ...parsed.options, onEvent, abort: controller.signal, ...(output === undefined ? {} : { output }) })
  } catch (err) {
    // Options each flag alone allowed but not together (--port with a --url of another port).
    return usage(err as CheckError, io)
  } finally {
    off()
  }
  clear()
  io.stdout(parsed.json ? `${JSON.stringify(result, null, 2)}\n` : formatResult(result))
  io.exit(result.error?.code === 'GRACEFUL_ERR_CHECK_INTERRUPTED' ? 130 : result.ok ? 0 : 1)
  return result
}

function usage (err: CheckError, io: Io): undefined {
  io.stderr(`${err.message} (${err.code})\n\nUsage: graceful-check [options] -- command [args…]; graceful-check --help says more.\n`)
  io.exit(2)
  return undefined
}

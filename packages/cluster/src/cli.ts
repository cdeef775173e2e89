import { createError, describe } from '@graceful/core'
import { MAX_MS, jsonLogger, maxWorkers, workersRange, type SuperviseOptions } from './options.js'
import { supervise, type Supervisor } from './supervisor.js'

export const USAGE = `usage: graceful-cluster [--workers N] [--ready-timeout ms] [--kill-timeout ms] app.js [args…]

Runs N copies of app.js (default: one per core) on node:cluster. The app uses @graceful/fastify or
@graceful/express, which report each worker ready and drain it when told.
  SIGHUP           roll: start a new worker, wait until it is ready, drain an old one; one at a time
  SIGTERM, SIGINT  drain every worker; exit 0 when all exited cleanly, else 1; a second signal kills them
  --workers N          workers to run (default: os.availableParallelism(); at most 4 times that)
  --ready-timeout ms   a new worker not ready by then fails the roll (default: 60000)
  --kill-timeout ms    a worker told to drain and still running by then is killed (default: 30000)
`

const MS = `a whole number of ms from 1 to ${MAX_MS}`
const FLAGS = {
  '--workers': { option: 'workers', what: workersRange, max: maxWorkers },
  '--ready-timeout': { option: 'readyTimeout', what: () => MS, max: () => MAX_MS },
  '--kill-timeout': { option: 'killTimeout', what: () => MS, max: () => MAX_MS }
} as const

export type ParsedArgs = { help: true } | { help: false, options: SuperviseOptions }

/**
 * Reads the command line: flags, then the app and its arguments (everything from the app on is the app's,
 * flags included). Throws a TypeError with a code naming the flag and the value.
 */
export function parseArgs (argv: readonly string[]): ParsedArgs {
  const options: Record<string, unknown> = {}
  let i = 0
  for (; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') {
      i++
      break
    }
    if (!arg.startsWith('-')) break
    if (arg === '--help' || arg === '-h') return { help: true }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const flag = FLAGS[name as keyof typeof FLAGS]
    if (flag === undefined) throw createError('GRACEFUL_ERR_CLUSTER_FLAG_UNKNOWN', [arg])
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    // Digits only: Number('') is 0, Number('1e3') is 1000, Number(' 2') is 2; none of them is what was meant.
    if (value === undefined || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > flag.max()) {
      throw createError('GRACEFUL_ERR_CLUSTER_FLAG', [name, flag.what(), value ?? '(nothing)'])
    }
    options[flag.option] = Number(value)
  }
  const exec = argv[i]
  if (exec === undefined || exec === '') throw createError('GRACEFUL_ERR_CLUSTER_NO_APP', [describe(argv.join(' '))])
  return { help: false, options: { ...options, exec, args: argv.slice(i + 1) } as SuperviseOptions }
}

export interface Io {
  stdout (text: string): void
  stderr (text: string): void
  exit (code: number): void
}

const PROCESS_IO: Io = {
  stdout: (text) => { process.stdout.write(text) },
  stderr: (text) => { process.stderr.write(text) },
  exit: (code) => { process.exit(code) }
}

/**
 * The bin: parse, supervise (logging to `io.stdout`), exit with the supervisor's code once every worker is
 * gone. Bad arguments exit 2, as usage errors do. Returns the supervisor, if one started.
 */
export function main (argv: readonly string[], io: Io = PROCESS_IO): Supervisor | undefined {
  let supervisor: Supervisor
  try {
    const parsed = parseArgs(argv)
    if (parsed.help) {
      io.stdout(USAGE)
      io.exit(0)
      return undefined
    }
    supervisor = supervise({ ...parsed.options, logger: jsonLogger(io.stdout) })
  } catch (err) {
    const e = err as Error & { code?: string }
    io.stderr(`${e.message} (${String(e.code)})\n\n${USAGE}`)
    io.exit(2)
    return undefined
  }
  void supervisor.closed.then((code) => io.exit(code))
  return supervisor
}

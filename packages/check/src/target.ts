// The app's processes: starting the command (or adopting a child or a pid), reading its output, knowing
// when a process exits, and following a restart to the process that serves after it.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { alive, holders, readPidFile, tree, workers as clusterWorkers } from './proc.js'
import type { RestartRecord } from './types.js'

export interface Exit {
  code: number | null
  signal: string | null
  /** false: not our child, so only "it has gone" is known. */
  known: boolean
  at: number
}

const now = (): number => performance.timeOrigin + performance.now()
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
/** How often another process's state is polled (no event exists for a pid that is not our child). */
export const POLL_MS = 20
export const OUTPUT_LINES = 50

/** Process groups started by a check that has not ended: killed if this process exits first. */
const owned = new Set<number>()

/** Kills every process group a check started and has not closed yet (this process is exiting). */
export function killOwned (): void {
  for (const pid of owned) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // Gone already.
    }
  }
  owned.clear()
}

export class App {
  /** The first process: the one started or adopted. */
  readonly pid: number
  readonly command: string[] | null
  /** Our child (started here, or given): its exit code can be read. */
  readonly child: ChildProcess | null
  /** We started it, in a process group of its own, and must not leave anything of it running. */
  readonly owned: boolean
  readonly output: string[] = []
  /** Settles when the first process exits (for a pid, when it is seen gone). */
  readonly exited: Promise<Exit>
  /** The spawn itself failed (ENOENT, EACCES). */
  startError: Error | null = null
  #done = false

  constructor (options: { command: string[] | null, cwd: string, env: Record<string, string>, pid: number | null, child: ChildProcess | null, output: ((line: string) => void) | null }) {
    this.command = options.command
    let child = options.child
    if (options.command !== null) {
      const [file, ...args] = options.command as [string, ...string[]]
      // A process group of its own: our terminal's Ctrl-C does not reach it (we send the signals), and
      // whatever it starts (a restart's successor) can be killed with it at the end.
      child = spawn(file, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    }
    this.child = child
    this.owned = options.command !== null
    if (this.owned && (child as ChildProcess).pid !== undefined) {
      // Detached, the app would outlive us: a check cut short (process.exit, a test runner's timeout) kills it.
      if (owned.size === 0) process.once('exit', killOwned)
      owned.add((child as ChildProcess).pid as number)
    }
    if (child !== null) {
      this.pid = child.pid ?? -1
      this.exited = new Promise((resolve) => {
        const done = (code: number | null, signal: string | null): void => resolve({ code, signal, known: true, at: now() })
        if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode, child.signalCode)
        child.once('exit', done)
        child.once('error', (err) => {
          this.startError = err
          done(null, null)
        })
      })
      for (const stream of [child.stdout, child.stderr]) {
        if (stream === null) continue
        createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
          this.output.push(line)
          if (this.output.length > OUTPUT_LINES) this.output.shift()
          options.output?.(line)
        })
      }
    } else {
      this.pid = options.pid as number
      this.exited = this.gone(this.pid)
    }
  }

  /** Resolves once `pid` has exited: from the exit event for our child, else by polling. */
  gone (pid: number): Promise<Exit> {
    if (pid === this.pid && this.child !== null) return this.exited
    return (async () => {
      while (alive(pid) && !this.#done) await sleep(POLL_MS)
      return { code: null, signal: null, known: false, at: now() }
    })()
  }

  /** Sends `signal` to `pid`; false when it is not there. */
  kill (pid: number, signal: string): boolean {
    try {
      process.kill(pid, signal)
      return true
    } catch {
      return false
    }
  }

  /**
   * The end of the check: whatever we started is killed (its process group, where a successor lives
   * too); an adopted process is left as it is. Stops every poll.
   */
  async close (): Promise<void> {
    this.#done = true
    owned.delete(this.pid)
    if (owned.size === 0) process.off('exit', killOwned)
    if (this.owned && this.pid > 0) {
      try {
        process.kill(-this.pid, 'SIGKILL')
      } catch {
        // Already gone, every one of them.
      }
      await this.exited
    }
    this.child?.stdout?.destroy()
    this.child?.stderr?.destroy()
  }
}

export interface FollowOptions {
  app: App
  n: number
  signal: string
  from: number
  at: number
  pidFile: string | null
  /** The listening socket's inodes: a successor that inherited it holds one. */
  inodes: Set<number>
  /** The old process's node:cluster workers just before the signal (a supervisor's). */
  workers: number[]
  timeout: number
  stopped: () => boolean
}

/**
 * Watches a restart to its end: in place (a new process takes the socket, from the pid file or found in
 * the old one's process tree, and the old one exits) or a graceful-cluster roll (the process stays, every
 * worker it had is replaced).
 */
export async function follow (o: FollowOptions): Promise<RestartRecord> {
  const record: RestartRecord = {
    n: o.n, signal: o.signal, from: o.from, to: null, mode: null, successorMs: null, doneMs: null, error: null,
    refused: 0, refusedFromMs: null, refusedToMs: null
  }
  const workers = o.workers
  const since = (): number => Math.round(now() - o.at)
  const oldExit = o.app.gone(o.from)
  let exited: Exit | null = null
  void oldExit.then((e) => { exited = e })
  while (!o.stopped()) {
    if (record.to === null) {
      const fromFile = o.pidFile === null ? null : readPidFile(o.pidFile)
      const found = o.pidFile !== null
        ? (fromFile !== null && fromFile !== o.from && alive(fromFile) ? fromFile : null)
        : (holders(tree(o.from).slice(1).filter((pid) => !workers.includes(pid)), o.inodes)[0] ?? null)
      if (found !== null) {
        record.to = found
        record.successorMs = since()
      }
    }
    const gone = exited as Exit | null
    if (gone !== null) {
      if (record.to !== null && alive(record.to)) {
        record.mode = 'in-place'
        record.doneMs = Math.round(gone.at - o.at)
      } else {
        record.error = `the process exited (${describeExit(gone)}) and no new process took over`
      }
      return record
    }
    // A supervisor that stays and replaces every worker it had: a roll (its workers may hold the socket
    // too, so a "successor" seen on the way is one of the new workers).
    const current = workers.length === 0 ? [] : clusterWorkers(o.from)
    if (workers.length > 0 && workers.every((w) => !current.includes(w)) && current.length >= workers.length) {
      record.mode = 'roll'
      record.to = o.from
      record.doneMs = since()
      return record
    }
    if (since() > o.timeout) {
      record.error = `not complete within ${o.timeout} ms (${record.to === null ? 'no new process seen' : `pid ${record.to} started, pid ${o.from} still runs`})`
      return record
    }
    await sleep(POLL_MS)
  }
  record.error = 'interrupted'
  return record
}

export function describeExit (exit: Exit): string {
  if (!exit.known) return 'exit code unknown: not our child'
  return exit.signal !== null ? `killed by ${exit.signal}` : `code ${String(exit.code)}`
}

// One spawned Node process — an app, the first process of a restart family, or graceful-cluster — and every
// process it starts: restart successors and cluster workers share its stdout and its process group. Its
// JSON log lines ({ msg, pid, data } from the fixtures, { msg, pid, ...fields } from graceful-cluster) are
// parsed as they come, to wait on. Used by test/proxies.test.ts and bench/proxy.ts.
import { spawn, type ChildProcess } from 'node:child_process'
import { settleWithin } from './bounded.js'

export interface Entry {
  msg: string
  /** The process that logged it. */
  pid: number
  /** The logged object: a fixture's `data`, or graceful-cluster's fields. */
  data: Record<string, unknown>
}

export class AppGroup {
  readonly proc: ChildProcess
  readonly entries: Entry[] = []
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** stdout and stderr have ended: every process that shared them has exited. */
  readonly closed: Promise<void>
  output = ''
  #ended = false
  #waiters: Array<() => void> = []

  /**
   * Runs `node <execArgv> <args>` in a process group of its own. `boundMs` bounds every wait. The caller
   * kills the group (killAll() or end()) when done.
   */
  constructor (execArgv: string[], args: string[], env: NodeJS.ProcessEnv, readonly boundMs = 30_000) {
    this.proc = spawn(process.execPath, [...execArgv, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own: killAll() ends it and whatever it started at once.
      detached: true
    })
    let partial = ''
    let open = 2
    this.closed = new Promise((resolve) => {
      const ended = (): void => {
        if (--open > 0) return
        this.#ended = true
        this.#wake()
        resolve()
      }
      this.proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        this.output += chunk
        const lines = (partial + chunk).split('\n')
        partial = lines.pop() as string
        for (const line of lines) this.#parse(line)
        this.#wake()
      }).on('end', ended)
      this.proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.output += chunk }).on('end', ended)
    })
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })))
  }

  get pid (): number {
    return this.proc.pid as number
  }

  #parse (line: string): void {
    if (!line.startsWith('{')) return
    try {
      const { msg, pid, data, level: _level, time: _time, ...rest } = JSON.parse(line) as Record<string, unknown>
      this.entries.push({ msg: String(msg), pid: pid as number, data: (data as Record<string, unknown> | undefined) ?? rest })
    } catch {}
  }

  #wake (): void {
    for (const w of this.#waiters.splice(0)) w()
  }

  /** Resolves with the `n`th (from 1) entry with this message that passes `match`; rejects if every process ended first, or after boundMs. */
  waitLog (msg: string, match: (e: Entry) => boolean = () => true, n = 1): Promise<Entry> {
    let over = false
    return settleWithin(new Promise<Entry>((resolve, reject) => {
      const test = (): void => {
        if (over) return
        const found = this.entries.filter((e) => e.msg === msg && match(e))[n - 1]
        if (found !== undefined) return resolve(found)
        if (this.#ended) return reject(new Error(`every process ended before log line '${msg}' #${n}; output:\n${this.output.slice(-4000)}`))
        this.#waiters.push(test)
      }
      test()
    }), `log line '${msg}' #${n}`, this.boundMs).finally(() => { over = true })
  }

  logged (msg: string): Entry[] {
    return this.entries.filter((e) => e.msg === msg)
  }

  /** graceful-cluster: the workers that are ready and have not exited. */
  workers (): number[] {
    const exited = new Set(this.logged('graceful-cluster: worker exited').map((e) => e.data.workerPid))
    return this.logged('graceful-cluster: worker ready').map((e) => e.data.workerPid as number).filter((p) => !exited.has(p))
  }

  killAll (): void {
    try {
      process.kill(-this.pid, 'SIGKILL')
    } catch {}
  }

  /** Kills every process of the group and resolves once their output has ended. */
  async end (): Promise<void> {
    this.killAll()
    await settleWithin(this.closed, 'the apps\' output ending', this.boundMs)
  }
}

// A forked fixture app (test/fixtures/*.ts) for the process-level tests: its output, IPC messages and exit,
// with waits that synchronise on them and fail (with the output) if the child ends first.
import type { Test } from 'tap'
import { fork, type ChildProcess } from 'node:child_process'
import type { ShutdownReport } from '@graceful/core'
import type { ProcessReport } from '../../packages/core/src/signals.js'
import { FIXTURE_EXEC_ARGV, fixtureEnv } from './fork.js'

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** ms from the last kill() (or the fork) to the exit. */
  ms: number
}

/** A log line as JSON: pino's on Fastify, the fixtures' own JSON logger, or the Express console line's object. */
export interface LogLine {
  msg?: string
  [key: string]: unknown
}

export class Child {
  readonly proc: ChildProcess
  readonly exited: Promise<Exit>
  /** stdout and stderr, interleaved as they arrive. */
  output = ''
  stdout = ''
  stderr = ''
  readonly messages: object[] = []
  #waiters: Array<() => void> = []
  #mark = performance.now()
  #closed = false

  constructor (fixture: string, config: object) {
    this.proc = fork(new URL(`../fixtures/${fixture}`, import.meta.url), [], {
      execArgv: FIXTURE_EXEC_ARGV,
      env: fixtureEnv({ GRACEFUL_FIXTURE: JSON.stringify(config) }),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc']
    })
    this.proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk
      this.#seen(chunk)
    })
    this.proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk
      this.#seen(chunk)
    })
    this.proc.on('message', (message: object) => {
      this.messages.push(message)
      this.#wake()
    })
    this.exited = new Promise((resolve) => {
      // 'close' comes after 'exit' and after stdout and stderr have ended: the output is complete.
      this.proc.on('close', (code, signal) => {
        this.#closed = true
        resolve({ code, signal, ms: performance.now() - this.#mark })
        this.#wake()
      })
    })
  }

  get alive (): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  #seen (chunk: string): void {
    this.output += chunk
    this.#wake()
  }

  #wake (): void {
    for (const w of this.#waiters.splice(0)) w()
  }

  /** Resolves once `check` passes; rejects, with the output, if the child ends first. */
  #until<T> (check: () => T | undefined, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const test = (): void => {
        const value = check()
        if (value !== undefined) return resolve(value)
        if (this.#closed) {
          return reject(new Error(`child ended before ${what}; output:\n${this.output}`))
        }
        this.#waiters.push(test)
      }
      test()
    })
  }

  /** The first IPC message that matches. */
  message<T extends object> (match: (m: object) => m is T): Promise<T> {
    return this.#until(() => this.messages.find(match) as T | undefined, 'the expected IPC message')
  }

  /** Resolves once `n` IPC messages match. */
  messageCount (match: (m: object) => boolean, n: number): Promise<void> {
    return this.#until(() => this.messages.filter(match).length >= n ? true : undefined, `${n} matching IPC messages`).then(() => {})
  }

  /** Resolves once the output holds `pattern`. */
  waitFor (pattern: RegExp): Promise<void> {
    return this.#until(() => pattern.test(this.output) ? true : undefined, `output matching ${pattern}`).then(() => {})
  }

  /** Starts the clock that `exited`'s `ms` counts from (kill() starts it too). */
  mark (): void {
    this.#mark = performance.now()
  }

  kill (signal: NodeJS.Signals): void {
    this.mark()
    this.proc.kill(signal)
  }

  send (message: object): void {
    this.proc.send(message)
  }

  /** Fixture lines ('fixture: …'), in order. */
  lines (): string[] {
    return this.output.split('\n').filter((l) => l.startsWith('fixture: ')).map((l) => l.slice('fixture: '.length))
  }

  /** Every log line that is JSON, or a console line 'msg {json}' (Express's default logger), as an object with its msg. */
  logLines (): LogLine[] {
    const entries: LogLine[] = []
    for (const l of this.output.split('\n')) {
      try {
        if (l.startsWith('{')) {
          entries.push(JSON.parse(l) as LogLine)
          continue
        }
        const m = /^(graceful: [^{]*?) (\{.*\})$/.exec(l)
        if (m !== null) entries.push({ ...(JSON.parse(m[2] as string) as object), msg: m[1] })
      } catch {
        // Not a log line (a stack trace, a fixture's own output): not ours to read.
      }
    }
    return entries
  }

  /** Reports of every 'graceful: shutdown complete' line, one per instance. */
  reports (): ShutdownReport[] {
    return this.logLines().filter((l) => l.msg?.startsWith('graceful: shutdown complete') === true).map((l) => l.report as ShutdownReport)
  }

  /** Reports of every 'graceful: process shutdown complete' line. */
  processReports (): ProcessReport[] {
    return this.logLines().filter((l) => l.msg?.startsWith('graceful: process shutdown complete') === true).map((l) => l.report as ProcessReport)
  }

  /** Lines of output that contain `text` (pino JSON on Fastify, console lines on Express). */
  logged (text: string): string[] {
    return this.output.split('\n').filter((l) => l.includes(text))
  }
}

/** Forks `fixture` with `config` and kills it at teardown if it is still running. */
export function forkFixture (t: Test, fixture: string, config: object): Child {
  const child = new Child(fixture, config)
  t.teardown(() => {
    if (child.alive) child.proc.kill('SIGKILL')
  })
  return child
}

// A forked example app (examples/**/*.ts) as users would run it: its output, its port (sent over IPC),
// waits that synchronise on its output, and its shutdown reports.
import type { Test } from 'tap'
import { fork, type ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import type { ShutdownReport } from '@graceful/core'
import { FIXTURE_EXEC_ARGV, fixtureEnv } from './fork.js'

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** ms from kill() to the exit. */
  ms: number
}

export class Example {
  readonly proc: ChildProcess
  readonly ready: Promise<number>
  readonly exited: Promise<Exit>
  /** stdout and stderr, interleaved as they arrive. */
  output = ''
  #waiters: Array<() => void> = []
  #mark = performance.now()
  #closed = false

  /** `file`: a path under examples/, such as 'nest/express.ts'. */
  constructor (file: string, env: NodeJS.ProcessEnv = {}) {
    this.proc = fork(new URL(`../../examples/${file}`, import.meta.url), [], {
      execArgv: FIXTURE_EXEC_ARGV,
      env: fixtureEnv({ HOST: '127.0.0.1', PORT: '0', ...env }),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc']
    })
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      stream?.setEncoding('utf8').on('data', (chunk: string) => {
        this.output += chunk
        this.#wake()
      })
    }
    this.exited = new Promise((resolve) => {
      // 'close' comes after 'exit' and after stdout and stderr have ended: the output is complete.
      this.proc.on('close', (code, signal) => {
        this.#closed = true
        resolve({ code, signal, ms: performance.now() - this.#mark })
        this.#wake()
      })
    })
    this.ready = new Promise((resolve, reject) => {
      this.proc.on('message', (m: { port?: unknown }) => {
        if (typeof m.port === 'number') resolve(m.port)
      })
      this.exited.then(() => reject(new Error(`${file} ended before it listened; output:\n${this.output}`)))
    })
  }

  get alive (): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  #wake (): void {
    for (const w of this.#waiters.splice(0)) w()
  }

  /** Resolves once the output holds `pattern`; rejects, with the output, if the child ends first. */
  waitFor (pattern: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = (): void => {
        if (pattern.test(this.output)) return resolve()
        if (this.#closed) return reject(new Error(`child ended before output matching ${pattern}; output:\n${this.output}`))
        this.#waiters.push(test)
      }
      test()
    })
  }

  kill (signal: NodeJS.Signals): void {
    this.#mark = performance.now()
    this.proc.kill(signal)
  }

  /** Reports of every 'graceful: shutdown complete' line: pino JSON, or the console line 'msg {json}'. */
  reports (): ShutdownReport[] {
    const reports: ShutdownReport[] = []
    for (const l of this.output.split('\n')) {
      if (l.startsWith('{')) {
        const entry = JSON.parse(l) as { msg?: string, report?: ShutdownReport }
        if (entry.msg?.startsWith('graceful: shutdown complete') === true) reports.push(entry.report as ShutdownReport)
        continue
      }
      const m = /^graceful: shutdown complete(?:, not clean)? (\{.*\})$/.exec(l)
      if (m !== null) reports.push((JSON.parse(m[1] as string) as { report: ShutdownReport }).report)
    }
    return reports
  }

  /** Pino log entries (Fastify examples). */
  entries (): Array<{ level: number, msg: string } & Record<string, unknown>> {
    return this.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  }

  /** Lines that contain `text`, in order. */
  logged (text: string): string[] {
    return this.output.split('\n').filter((l) => l.includes(text))
  }

  /** Lines that start with one of `prefixes` ('app: ', 'nest: '), in order, without the prefix's colon. */
  lines (...prefixes: string[]): string[] {
    return this.output.split('\n').filter((l) => prefixes.some((p) => l.startsWith(p)))
  }
}

/** Forks an example, kills it at teardown if it is still running, and waits until it listens. */
export async function startExample (t: Test, file: string, env: NodeJS.ProcessEnv = {}): Promise<{ child: Example, port: number }> {
  const child = new Example(file, env)
  t.teardown(() => {
    if (child.alive) child.proc.kill('SIGKILL')
  })
  return { child, port: await child.ready }
}

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** A GET on a connection of its own; rejects on a reset. `onResponse` runs when the head has arrived. */
export function get (port: number, path: string, onResponse?: () => void): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }))
      res.on('error', reject)
      onResponse?.()
    })
    req.on('error', reject)
    req.end()
  })
}

// Generous: a forked child compiles TypeScript (and Nest its module graph) on a loaded 2-core machine.
// Only proves "no hang".
export const BOUND_MS = 20_000

/** Exit 0 in bound, with exactly one clean report of a SIGTERM whose hooks are `hooks`, all passed. */
export async function cleanExit (t: Test, child: Example, hooks: string[]): Promise<ShutdownReport | undefined> {
  const exit = await child.exited
  t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'exits with code 0')
  t.ok(exit.ms < BOUND_MS, 'exits without hanging')
  const reports = child.reports()
  t.equal(reports.length, 1, 'logs one shutdown complete line')
  const report = reports[0]
  t.match(report, { reason: 'SIGTERM', exitCode: 0, timedOut: false, aborted: 0, destroyedSockets: 0 })
  t.same(report?.hooks.map((h) => [h.name, h.error]), hooks.map((name) => [name, undefined]), 'every hook ran and passed')
  return report
}

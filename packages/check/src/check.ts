// check(): start (or adopt) the app, find where it listens, put the workload on it, run the scenario
// (restarts, then the final signal) under load, watch to the end, and count.
import type { CheckErrorCode } from './errors.js'
import type { OutsidePhase, Progress } from './events.js'
import { resolveCheckOptions, type CheckOptions, type ResolvedCheckOptions } from './options.js'
import { alive, firstListening, listeningSockets, tree, workers as clusterWorkers } from './proc.js'
import { connectOnce, startListenerProbe, type Endpoint } from './probes.js'
import { bracketed } from './raw.js'
import { result, toFailure } from './result.js'
import { App, describeExit, follow, POLL_MS, type Exit } from './target.js'
import { PAUSES, Traffic } from './traffic.js'
import type { CheckResult, RestartRecord, SignalRecord } from './types.js'

const now = (): number => performance.timeOrigin + performance.now()
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
/** How often the listener probe connects once the first signal is out. */
export const PROBE_MS = 20
const TICK_MS = 50
const PROGRESS_MS = 250

class Interrupted extends Error {}

/**
 * Checks what an app loses when it is signalled (or restarted) under load. Throws a TypeError with a
 * `GRACEFUL_ERR_CHECK_…` code for bad options, before anything starts; everything else ends in the result
 * (`error` set when the app could not be checked at all).
 */
export async function check (options: CheckOptions): Promise<CheckResult> {
  const resolved = resolveCheckOptions(options)
  return await new Run(resolved).run()
}

export interface Located extends Endpoint {
  url: string
  from: 'url' | 'port' | 'proc'
}

/** One check, start to end; its fields are what the result is made of (result.ts). */
export class Run {
  readonly o: ResolvedCheckOptions
  app!: App
  traffic: Traffic | null = null
  endpoint: Located | null = null
  servingPid = 0
  phase: OutsidePhase = 'starting'
  readonly signals: SignalRecord[] = []
  readonly restarts: RestartRecord[] = []
  /** Absolute times of the refused probe connects. */
  readonly refusals: number[] = []
  listenerClosedAt = 0
  exit: Exit | null = null
  finalSent = false
  error: { code: string, message: string } | null = null
  loadStart = 0
  readonly #seen = new Set<string>()
  #aborted = false

  constructor (o: ResolvedCheckOptions) {
    this.o = o
  }

  async run (): Promise<CheckResult> {
    let probe: { stop: () => Promise<void> } | null = null
    let ticker: NodeJS.Timeout | undefined
    const onAbort = (): void => { this.#aborted = true }
    this.o.abort?.addEventListener('abort', onAbort, { once: true })
    if (this.o.abort?.aborted === true) this.#aborted = true
    // A command spawn() rejects at once (a NUL byte in it) makes check() reject: a usage error.
    const app = new App(this.o)
    this.app = app
    try {
      if (!await this.#started(app)) return result(this)
      const endpoint = await this.#locate(app)
      if (endpoint === null) return result(this)
      this.endpoint = endpoint
      if (!await this.#until(async () => await connectOnce(endpoint) === 'accepted', 'the app accepting a connection')) return result(this)

      const { duration, timeout, restart } = this.o
      const traffic = new Traffic({
        ...endpoint,
        path: this.o.path,
        postPath: this.o.postPath,
        slow: this.o.slow,
        stream: this.o.stream,
        readiness: this.o.readiness,
        clients: this.o.clients,
        timeout,
        // The clients stop by then whatever happens here (every wait below is bounded well within it).
        until: now() + (duration + 3 * timeout) * ((restart?.times ?? 0) + 2) + 60_000
      }, (failure) => this.o.onEvent({ type: 'lost', failure: toFailure(this, failure) }))
      this.traffic = traffic
      traffic.tally.onRecord = () => { if (this.finalSent) this.#tick() }
      traffic.start()
      this.loadStart = now()
      this.phase = 'serving'
      this.o.onEvent({ type: 'load', connections: Object.values(this.o.clients).reduce((a, b) => a + b, 0) })
      let lastProgress = 0
      ticker = setInterval(() => {
        this.#tick()
        if (now() - lastProgress < PROGRESS_MS) return
        lastProgress = now()
        this.o.onEvent({ type: 'progress', progress: this.progress() })
      }, TICK_MS)

      if (!await this.#load(duration, 'the load before the first signal')) return result(this)
      // Not required: a client that never gets an answer is what the check is there to show.
      await this.#until(() => traffic.warmed(), 'an answer for every client', false)
      probe = startListenerProbe(endpoint, PROBE_MS, (at) => this.#refused(at))
      if (restart !== null) await this.#restarts(restart, endpoint)
      if (this.o.signal !== null) await this.#final(this.o.signal)
      await traffic.stop()
      this.#tick()
      if (this.o.signal === null && app.owned && alive(this.servingPid)) {
        // A restart-only check: the app it started is stopped, outside the count.
        app.kill(this.servingPid, 'SIGTERM')
        await this.#until(() => !alive(this.servingPid), 'the app stopping after the check', false)
      }
    } catch (err) {
      if (!(err instanceof Interrupted)) throw err
      this.#fail('GRACEFUL_ERR_CHECK_INTERRUPTED', 'interrupted: the check was aborted before its end')
    } finally {
      this.o.abort?.removeEventListener('abort', onAbort)
      clearInterval(ticker)
      await probe?.stop()
      await this.traffic?.stop()
      await app.close()
    }
    return result(this)
  }

  /** What the progress line shows (once the load runs). */
  progress (): Progress {
    const t = (this.traffic as Traffic).tally
    return {
      elapsedMs: Math.round(now() - this.loadStart),
      sent: t.totals.sent,
      inFlight: t.inFlight,
      ok: t.totals.ok,
      unavailable: t.totals.unavailableClose + t.totals.unavailableKeep,
      lost: t.totals.lost,
      phase: this.phase
    }
  }

  async #started (app: App): Promise<boolean> {
    if (app.pid <= 0) {
      await app.exited
      const file = (this.o.command as string[])[0] as string
      this.#fail('GRACEFUL_ERR_CHECK_START', `could not start '${file}': ${(app.startError as Error).message}`)
      return false
    }
    if (!alive(app.pid)) {
      this.#fail('GRACEFUL_ERR_CHECK_START', `no process with pid ${app.pid} is running`)
      return false
    }
    this.servingPid = app.pid
    this.o.onEvent({ type: 'started', pid: app.pid, command: this.o.command })
    return true
  }

  /** Where the app listens: as given, or its first listening socket (Linux). */
  async #locate (app: App): Promise<Located | null> {
    const url = (host: string, port: number): string => `http://${bracketed(host)}:${port}${this.o.path}`
    const { host, port, portFrom } = this.o
    let located: Located
    let note: string | null = null
    if (host !== null && port !== null && portFrom !== null) {
      located = { host, port, url: url(host, port), from: portFrom }
    } else if (process.platform !== 'linux') {
      this.#fail('GRACEFUL_ERR_CHECK_PORT', "finding the app's port needs Linux's /proc: give --port or --url")
      return null
    } else {
      let found: ReturnType<typeof firstListening> = null
      if (!await this.#until(() => (found = firstListening(tree(app.pid))) !== null, 'a listening socket on an address loopback reaches (0.0.0.0, 127.x, ::, ::1)')) return null
      const { socket, host: connect, count } = found as unknown as NonNullable<ReturnType<typeof firstListening>>
      if (count > 1) note = `the first of ${count} listening sockets it holds; --port chooses another`
      located = { host: connect, port: socket.port, url: url(connect, socket.port), from: 'proc' }
    }
    this.o.onEvent({ type: 'listening', url: located.url, from: located.from, note })
    return located
  }

  /** `ms` of load, watching the app; false (and the error set) when it exits meanwhile. */
  async #load (ms: number, what: string): Promise<boolean> {
    const end = now() + ms
    return await this.#until(() => now() >= end, what, true, ms + this.o.timeout)
  }

  /**
   * Polls `condition` until it holds. Gives up (false) when the serving process exits or `limit` ms pass,
   * setting the error when `required`; throws Interrupted on an abort.
   */
  async #until (condition: () => boolean | Promise<boolean>, what: string, required = true, limit = this.o.timeout): Promise<boolean> {
    const start = now()
    for (;;) {
      if (this.#aborted) throw new Interrupted()
      if (await condition()) return true
      if (!alive(this.servingPid)) {
        if (required) {
          const exit = await (this.app as App).gone(this.servingPid)
          this.#fail('GRACEFUL_ERR_CHECK_START', `the app exited (${describeExit(exit)}) before ${what}`)
        }
        return false
      }
      if (now() - start > limit) {
        if (required) this.#fail('GRACEFUL_ERR_CHECK_START', `${what}: not within ${limit} ms`)
        return false
      }
      await sleep(POLL_MS)
    }
  }

  /** Sends the signal to the serving process; `sent` false when it had gone (follow() then sees it gone). */
  #signal (signal: string, final: boolean): { at: number, sent: boolean } {
    const at = now()
    if (!(this.app as App).kill(this.servingPid, signal)) return { at, sent: false }
    // Marked at once, before any record can arrive: refused connects are expected after a final signal.
    const traffic = this.traffic as Traffic
    if (final) traffic.final()
    traffic.tally.signal(at, final)
    const n = this.signals.length + 1
    this.signals.push({ n, signal, pid: this.servingPid, atMs: Math.round(at - this.loadStart), final })
    this.#seen.clear()
    this.o.onEvent({ type: 'signal', n, signal, pid: this.servingPid, final })
    this.phase = final ? 'signalled' : 'restarting'
    return { at, sent: true }
  }

  async #restarts (restart: NonNullable<ResolvedCheckOptions['restart']>, endpoint: Located): Promise<void> {
    const app = this.app as App
    let inodes = new Set(listeningSockets(this.servingPid).filter((s) => s.port === endpoint.port).map((s) => s.inode))
    for (let n = 1; n <= restart.times; n++) {
      // Before the signal: a successor can be born before a poll after it could tell it from a worker.
      const workers = clusterWorkers(this.servingPid)
      const { at } = this.#signal(restart.signal, false)
      const record = await follow({
        app, n, signal: restart.signal, from: this.servingPid, at, pidFile: restart.pidFile, inodes, workers,
        timeout: this.o.timeout, stopped: () => this.#aborted
      })
      // The probe may not have run between an exit and now: one connect of our own says whether it is served.
      if (await connectOnce(endpoint) === 'refused') this.refusals.push(now())
      this.#countRefused(record, at)
      this.restarts.push(record)
      if (this.#aborted) throw new Interrupted()
      this.o.onEvent({ type: 'restarted', restart: record })
      if (record.error !== null) return
      this.servingPid = record.to as number
      // A successor that bound a socket of its own (rather than inheriting ours) has new inodes.
      inodes = new Set([...inodes, ...listeningSockets(this.servingPid).filter((s) => s.port === endpoint.port).map((s) => s.inode)])
      this.phase = 'successor up'
      if (!await this.#load(this.o.duration, `the load after restart #${n}`)) return
      this.phase = 'serving'
    }
  }

  #countRefused (record: RestartRecord, at: number): void {
    const end = at + (record.doneMs ?? this.o.timeout)
    const within = this.refusals.filter((t) => t >= at && t <= end)
    record.refused = within.length
    if (within.length === 0) return
    record.refusedFromMs = Math.round((within[0] as number) - at)
    record.refusedToMs = Math.round((within[within.length - 1] as number) - at)
  }

  async #final (signal: string): Promise<void> {
    if (this.error !== null) return
    if (!this.#signal(signal, true).sent) return
    this.finalSent = true
    const pid = this.servingPid
    // false once it has gone (seen by polling; its exit event may still be on its way) or at the timeout.
    await this.#until(() => false, `the exit after ${signal}`, false)
    if (alive(pid)) return
    this.exit = await (this.app as App).gone(pid)
    this.#tick()
    // The idle connection and the preconnect end with the process; the clients after their next request.
    await (this.traffic as Traffic).settle(PAUSES.paused[1] + 1000)
  }

  #refused (at: number): void {
    this.refusals.push(at)
    if (!this.finalSent || this.listenerClosedAt !== 0) return
    this.listenerClosedAt = at
    this.#tick()
  }

  /** Turns what the tally and the probes have seen since the latest signal into live events and phases. */
  #tick (): void {
    const traffic = this.traffic as Traffic
    const m = traffic.tally.marks
    const last = traffic.tally.signals[traffic.tally.signals.length - 1]
    if (last === undefined) return
    const see = (key: string, at: number, phase: OutsidePhase | null, text: string): void => {
      if (at === 0 || this.#seen.has(key)) return
      this.#seen.add(key)
      if (phase !== null) this.phase = phase
      this.o.onEvent({ type: 'seen', atMs: Math.round(at - last), phase: this.phase, text })
    }
    const early = this.phase === 'signalled' || this.phase === 'lame duck'
    if (this.finalSent) {
      see('readiness', m.readinessFlip, this.phase === 'signalled' ? 'lame duck' : null,
        `readiness ${this.o.readiness as string} answered ${m.readinessStatus === 0 ? 'nothing (refused or failed)' : m.readinessStatus}`)
      see('503', m.first503, early ? 'draining' : null, 'the first 503')
      see('close', m.firstClose, early ? 'draining' : null, 'the first answer with Connection: close on a kept-alive connection')
      see('listener', this.listenerClosedAt, 'listener closed', 'a new connection was refused: the listener is closed')
      if (this.exit !== null) see('exit', this.exit.at, 'exited', `pid ${this.servingPid} exited (${describeExit(this.exit)})`)
    } else {
      const refused = this.refusals.find((t) => t >= last) ?? 0
      see('refused', refused, null, 'a new connection was refused: nothing is accepting connections')
    }
  }

  #fail (code: CheckErrorCode, message: string): void {
    this.error ??= { code, message }
  }
}

// The workload: every client of the plan started at once, counted into one Tally, stopped together.
import { FLAG_FINAL, createFlags, runClient, stopClients, type LoopSpec } from './client.js'
import type { Clients, Kind, LoopKind } from './options.js'
import { StreamWatch, type Endpoint } from './probes.js'
import { WatchedConnection, pipelinedClient } from './raw.js'
import { Tally, type RawFailure } from './tally.js'

export interface TrafficPlan extends Endpoint {
  path: string
  postPath: string
  slow: string | null
  stream: string | null
  readiness: string | null
  clients: Required<Clients>
  timeout: number
  /** Absolute ms by which every client stops on its own. */
  until: number
}

/** The pause ranges of the paused keep-alive clients, ms. */
export const PAUSES: Record<'busy' | 'paused', [number, number]> = { busy: [0, 300], paused: [300, 900] }
export const READINESS_EVERY_MS = 100
// About 1 KB of JSON: a body that takes more than one small read.
const BODY = JSON.stringify({ check: 'graceful-check', pad: 'x'.repeat(1000) })

export function loopSpecs (plan: TrafficPlan): LoopSpec[] {
  const specs: LoopSpec[] = []
  const base = { host: plan.host, port: plan.port, timeout: plan.timeout, until: plan.until, pause: null, gap: 0, body: null, method: 'GET' as const, keepAlive: true }
  const kinds: Array<[LoopKind, Partial<LoopSpec>]> = [
    ['keepAlive', { path: plan.path }],
    ['busy', { path: plan.path, pause: PAUSES.busy }],
    ['paused', { path: plan.path, pause: PAUSES.paused }],
    ['newConnection', { path: plan.path, keepAlive: false }],
    ['post', { path: plan.postPath, method: 'POST', body: BODY }],
    ['slow', { path: plan.slow ?? plan.path }]
  ]
  for (const [kind, spec] of kinds) {
    for (let client = 0; client < plan.clients[kind]; client++) specs.push({ ...base, path: plan.path, ...spec, kind, client })
  }
  if (plan.readiness !== null) {
    specs.push({ ...base, kind: 'readiness', client: 0, path: plan.readiness, keepAlive: false, gap: READINESS_EVERY_MS })
  }
  return specs
}

export class Traffic {
  readonly flags = createFlags()
  readonly tally: Tally
  readonly plan: TrafficPlan
  readonly watched: WatchedConnection[] = []
  stream: StreamWatch | null = null
  /** Loop clients (readiness aside) that have had an answer of any kind. */
  readonly #answered = new Set<string>()
  #loops = 0
  readonly #runs: Array<Promise<void>> = []
  /** A client that could not run (a worker thread that failed to start). */
  errors: Error[] = []

  constructor (plan: TrafficPlan, onLost: (failure: RawFailure) => void) {
    this.plan = plan
    this.tally = new Tally(plan.timeout, onLost)
  }

  start (): void {
    const specs = loopSpecs(this.plan)
    this.#loops = specs.filter((s) => s.kind !== 'readiness').length + (this.plan.clients.pipelined > 0 ? 1 : 0)
    const record = (kind: Kind, client: number) => (r: Parameters<Tally['add']>[0]): void => {
      if (r.complete) this.#answered.add(`${kind}:${client}`)
      this.tally.add(r)
    }
    for (const spec of specs) {
      const done = record(spec.kind, spec.client)
      this.#runs.push(runClient(spec, this.flags, (message) => {
        if (message.type === 'start') this.tally.start()
        else done(message.record)
      }).catch((err: Error) => { this.errors.push(err) }))
    }
    if (this.plan.clients.pipelined > 0) {
      this.#runs.push(pipelinedClient(this.plan, this.plan.path, this.flags, this.plan.until, (n) => this.tally.start(n), record('pipelined', 0)))
    }
    for (let i = 0; i < this.plan.clients.idle; i++) this.#watch(new WatchedConnection('idle', this.plan, this.plan.path))
    for (let i = 0; i < this.plan.clients.preconnect; i++) this.#watch(new WatchedConnection('preconnect', this.plan, this.plan.path))
    if (this.plan.stream !== null) {
      const stream = new StreamWatch(this.plan, this.plan.stream)
      this.stream = stream
      this.tally.start()
      this.#runs.push(stream.done.then((r) => {
        // Still open when we ended it: nothing was lost, it simply had not ended.
        if (stream.stopped) r.complete = true
        this.tally.add(r)
      }))
    }
  }

  #watch (w: WatchedConnection): void {
    this.watched.push(w)
    if (w.first === null) return
    this.tally.start()
    this.#runs.push(w.first.then(([r]) => this.tally.add(r as Parameters<Tally['add']>[0])))
  }

  /** Every looping client has had an answer (so each has a connection in use at the signal). */
  warmed (): boolean {
    return this.#answered.size >= this.#loops
  }

  /** The final signal goes out: from now on a refused connection ends a client. */
  final (): void {
    Atomics.store(this.flags, FLAG_FINAL, 1)
  }

  /**
   * After the final signal's exit: every client ends on its own (its next request is refused, or fails on
   * the connection the exit left dead: a paused client finishes its pause first, as a real one would).
   * Stops the rest after `ms`.
   */
  async settle (ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(this.#runs), new Promise((resolve) => { timer = setTimeout(resolve, ms) })])
    clearTimeout(timer)
    await this.stop()
  }

  /** Stops every client and watcher; resolves once every request has ended (each is bounded by the timeout). */
  async stop (): Promise<void> {
    stopClients(this.flags)
    for (const w of this.watched) w.stop()
    this.stream?.stop()
    await Promise.all(this.#runs)
  }
}

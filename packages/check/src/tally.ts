// Counting: every request record, classified as it arrives (answered, refused, or a failure of one class),
// into totals, per-kind counts, failures, and the marks the timeline is made of.
import type { Kind } from './options.js'
import { FAILURE_CLASSES, type FailureClass, type RequestRecord, type StatusCounts, type Totals } from './types.js'

/** How one request ended. */
export function classify (r: RequestRecord): 'answered' | 'refused' | Exclude<FailureClass, 'refused' | 'serverError'> {
  if (r.complete) return 'answered'
  // Not connected: no request went out (Node's client writes it once connected), whatever the error.
  if (!r.connected) return 'refused'
  if (r.timedOut) return 'timeout'
  if (r.started) return 'truncated'
  if (r.fresh) return 'refusedAfterAccept'
  return r.fin ? 'hangUp' : 'reset'
}

/** What the client saw, in a few words. */
export function detail (r: RequestRecord, klass: FailureClass, timeout: number): string {
  const how = r.fin ? 'closed (FIN)' : `reset (${r.code || 'no error code'})`
  switch (klass) {
    case 'hangUp': return 'the server closed the connection (FIN) without answering'
    case 'refusedAfterAccept': return `accepted, then ${how} before any answer`
    case 'truncated': return `the ${r.status} response was cut short: ${how}`
    case 'timeout': return `no answer within ${timeout} ms`
    case 'refused': return r.code === 'ECONNREFUSED' ? 'refused (ECONNREFUSED): nothing accepted connections' : `the connection failed before the request went out (${r.code || 'no error code'})`
    case 'serverError': return `answered ${r.status}`
    default: return `${r.code} ${r.message}`.trim()
  }
}

export interface RawFailure {
  class: FailureClass
  record: RequestRecord
  detail: string
}

function countAnswer (c: StatusCounts, r: RequestRecord): void {
  c.answered++
  if (r.status >= 200 && r.status < 300) {
    c.ok++
    if (r.close) c.okClose++
  } else if (r.status === 503) {
    if (r.close) c.unavailableClose++
    else c.unavailableKeep++
    if (r.retryAfter) c.retryAfter++
  } else {
    c.other[r.status] = (c.other[r.status] ?? 0) + 1
  }
}

export function emptyTotals (): Totals {
  return { ...emptyCounts(), lostByClass: Object.fromEntries(FAILURE_CLASSES.map((c) => [c, 0])) as Record<FailureClass, number> }
}

export function emptyCounts (): StatusCounts {
  return { sent: 0, answered: 0, ok: 0, okClose: 0, unavailableClose: 0, unavailableKeep: 0, retryAfter: 0, other: {}, refused: 0, lost: 0 }
}

/** Times of what was seen since the latest signal (absolute ms; 0: not seen). */
export interface Marks {
  first503: number
  firstClose: number
  lastResponse: number
  last2xx: number
  readinessFlip: number
  readinessStatus: number
}

const noMarks = (): Marks => ({ first503: 0, firstClose: 0, lastResponse: 0, last2xx: 0, readinessFlip: 0, readinessStatus: 0 })

export class Tally {
  readonly totals: Totals = emptyTotals()
  readonly kinds = new Map<Kind, StatusCounts>()
  readonly failures: RawFailure[] = []
  /** Absolute times of the signals sent. */
  readonly signals: number[] = []
  finalAt = 0
  marks: Marks = noMarks()
  readiness = { polls: 0, notReadyBefore: 0 }
  /** 503s answered after a restart's signal and before the final one. */
  restart503 = 0
  inFlight = 0
  /** Statuses each kind was answered with before the first signal. */
  readonly #baseline = new Map<Kind, Set<number>>()
  readonly #timeout: number
  readonly #onLost: (failure: RawFailure) => void
  /** Called after each record: a mark may have been seen for the first time. */
  onRecord: (() => void) | null = null

  constructor (timeout: number, onLost: (failure: RawFailure) => void) {
    this.#timeout = timeout
    this.#onLost = onLost
  }

  /** A signal goes out: the marks start again from it. */
  signal (at: number, final: boolean): void {
    this.signals.push(at)
    if (final) this.finalAt = at
    this.marks = noMarks()
  }

  start (requests = 1): void {
    this.inFlight += requests
  }

  add (r: RequestRecord): void {
    this.inFlight--
    this.#add(r)
    this.onRecord?.()
  }

  #add (r: RequestRecord): void {
    if (r.kind === 'readiness') return this.#readiness(r)
    const counts = this.#counts(r.kind)
    const klass = classify(r)
    if (klass === 'refused') {
      if (this.finalAt !== 0 && r.endAt >= this.finalAt) {
        counts.refused++
        this.totals.refused++
        return
      }
      return this.#fail(counts, r, 'refused')
    }
    for (const c of [counts, this.totals]) c.sent++
    if (klass !== 'answered') return this.#fail(counts, r, klass)
    this.#mark(r)
    const afterSignal = this.signals.length > 0 && r.endAt >= (this.signals[0] as number)
    if (r.status >= 500 && r.status !== 503 && afterSignal && !(this.#baseline.get(r.kind)?.has(r.status) ?? false)) {
      return this.#fail(counts, r, 'serverError')
    }
    if (!afterSignal) {
      const seen = this.#baseline.get(r.kind) ?? new Set<number>()
      seen.add(r.status)
      this.#baseline.set(r.kind, seen)
    }
    if (r.status === 503 && afterSignal && (this.finalAt === 0 || r.endAt < this.finalAt)) this.restart503++
    countAnswer(counts, r)
    countAnswer(this.totals, r)
  }

  /** An answer (any status) since the latest signal: the marks. */
  #mark (r: RequestRecord): void {
    const m = this.marks
    if (this.signals.length === 0 || r.endAt < (this.signals[this.signals.length - 1] as number)) return
    m.lastResponse = Math.max(m.lastResponse, r.endAt)
    if (r.status >= 200 && r.status < 300) m.last2xx = Math.max(m.last2xx, r.endAt)
    if (r.status === 503 && (m.first503 === 0 || r.endAt < m.first503)) m.first503 = r.endAt
    if (r.close && r.kind !== 'newConnection' && (m.firstClose === 0 || r.endAt < m.firstClose)) m.firstClose = r.endAt
  }

  #readiness (r: RequestRecord): void {
    this.readiness.polls++
    const counts = this.#counts('readiness')
    counts.sent++
    const klass = classify(r)
    if (klass === 'answered') countAnswer(counts, r)
    const ready = klass === 'answered' && r.status >= 200 && r.status < 300
    const afterFinal = this.finalAt !== 0 && r.endAt >= this.finalAt
    if (!ready && afterFinal && (this.marks.readinessFlip === 0 || r.endAt < this.marks.readinessFlip)) {
      this.marks.readinessFlip = r.endAt
      this.marks.readinessStatus = klass === 'answered' ? r.status : 0
    }
    if (!ready && !afterFinal) this.readiness.notReadyBefore++
    // A refused poll after the final signal is the listener closing, as expected; an answer is an answer.
    if (klass === 'answered' || (klass === 'refused' && afterFinal)) return
    this.#fail(counts, r, klass)
  }

  #counts (kind: Kind): StatusCounts {
    let counts = this.kinds.get(kind)
    if (counts === undefined) {
      counts = emptyCounts()
      this.kinds.set(kind, counts)
    }
    return counts
  }

  #fail (counts: StatusCounts, record: RequestRecord, klass: FailureClass): void {
    const failure = { class: klass, record, detail: detail(record, klass, this.#timeout) }
    this.failures.push(failure)
    counts.lost++
    this.totals.lost++
    this.totals.lostByClass[klass]++
    this.#onLost(failure)
  }
}

// Row 5, what each gets right: the project's contract (test/connections.contract.test.ts and
// test/lifecycle.contract.test.ts), black-box, against every library. Each run forks one server with the
// same options (BENCH_PROBES=1: a readiness route and a health route, for the libraries that have them),
// drives it over real sockets and sends a real SIGTERM. A library without the feature a scenario needs
// gets "—" (counted as not passed); every other cell is what the run showed.
//
// The libraries give no event for "the drain has started", so the runs observe it as a client would: new
// connections are opened one after another from the signal on, and the first that is not served as usual
// (refused, reset, or answered 503) marks the drain start.
import { CONTENDERS, type Kind } from './lib/kinds.js'
import { startServer, within, type Exit, type Server } from './lib/child.js'
import { RawClient, get, request, type Closed, type RawResponse } from '../test/helpers/client.js'

export type Verdict = { pass: true, note?: string } | { pass: false, note: string } | { pass: null, note: string }

export interface Scenario {
  id: string
  /** What passing means, as the table's row label. */
  title: string
}

export const SCENARIOS: Scenario[] = [
  { id: 'inflight', title: 'a request in flight at SIGTERM completes (200)' },
  { id: 'inflight-close', title: 'its response says `Connection: close`' },
  { id: 'refuse', title: 'new connections are refused during the drain, never accepted and then reset' },
  { id: 'idle', title: 'an idle keep-alive connection is closed with a FIN while a request is still in flight' },
  { id: 'reject', title: 'a request on an open keep-alive connection during the drain gets 503, `Connection: close`, `Retry-After`' },
  { id: 'partial', title: 'a request whose head was half sent at SIGTERM is answered, not reset' },
  { id: 'load', title: 'no failed request, 32 keep-alive clients looping at SIGTERM (row 3)' },
  { id: 'deadline', title: 'a hung request is cut at the deadline and the process exits (timeout 1 s, exit within 3 s)' },
  { id: 'exit-clean', title: 'exit code 0 after a clean shutdown' },
  { id: 'exit-cut', title: 'exit code ≠ 0 when a request had to be cut' },
  { id: 'hooks', title: 'a cleanup step that throws does not stop the next one, and the exit code is ≠ 0' },
  { id: 'lameduck', title: 'lame-duck delay: readiness answers 503 while other requests are still served' },
  { id: 'per-route', title: 'per-route control: a health route is served during the drain while others get 503' },
  { id: 'restart', title: 'zero-downtime restart: no failed request across restarts (row 3)' }
]

export type Matrix = Map<Kind, Map<string, Verdict>>

const pass = (ok: boolean, note: string): Verdict => ok ? { pass: true, note } : { pass: false, note }
const na = (note: string): Verdict => ({ pass: null, note })

type Outcome = { response: RawResponse } | { error: string }
const describe = (o: Outcome | undefined): string => o === undefined
  ? 'nothing sent'
  : 'error' in o ? o.error : `${o.response.status}, Connection: ${o.response.headers.connection ?? '(none)'}, Retry-After: ${o.response.headers['retry-after'] ?? '(none)'}`

async function outcome (c: RawClient): Promise<Outcome> {
  try {
    return { response: await c.response() }
  } catch (err) {
    return { error: (err as Error & { code?: string }).code ?? (err as Error).message }
  }
}

/** An idle keep-alive connection: one request answered, kept open. */
async function idleConnection (port: number, path = '/'): Promise<RawClient> {
  const c = await RawClient.connect(port)
  await c.write(get(path))
  const res = await c.response()
  if (res.status !== 200 || res.headers.connection === 'close') throw new Error(`unexpected response ${res.head}`)
  return c
}

type Probe = 'served' | 'rejected' | 'refused' | 'broken'

/** A new connection with one request: served, answered 503, refused, or accepted and then broken (how). */
async function probe (port: number): Promise<{ probe: Probe, detail: string }> {
  let c: RawClient
  try {
    c = await RawClient.connect(port)
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).message
    return { probe: code === 'ECONNREFUSED' ? 'refused' : 'broken', detail: `connect: ${code}` }
  }
  try {
    await c.write(get('/'))
    const res = await within(c.response(), 'a probe', 10_000)
    return { probe: res.status === 200 ? 'served' : res.status === 503 ? 'rejected' : 'broken', detail: String(res.status) }
  } catch (err) {
    return { probe: 'broken', detail: `accepted, then ${(err as { code?: string }).code ?? (err as Error).message}` }
  } finally {
    c.destroy()
  }
}

const SIGNAL_BOUND_MS = 20_000
/** Every library's timeout in these runs (the deadline run sets 1 s): long enough for the 1.5 s request. */
export const SCENARIO_TIMEOUT_MS = 5000

async function exitOf (s: Server, ms = SIGNAL_BOUND_MS): Promise<Exit | undefined> {
  try {
    return await within(s.exited, 'exit', ms)
  } catch {
    await s.kill()
    return undefined
  }
}

const showExit = (e: Exit | undefined): string => e === undefined ? 'did not exit' : e.signal !== null ? `killed by ${e.signal}` : `exit code ${String(e.code)}`

/** The drain run: one in-flight request, idle connections, a half-sent head, new connections. */
async function drainRun (k: Kind, m: Map<string, Verdict>): Promise<void> {
  const s = await startServer(k.id, { env: { BENCH_PROBES: '1', BENCH_TIMEOUT: String(SCENARIO_TIMEOUT_MS) } })
  const clients: RawClient[] = []
  try {
    const idle = await idleConnection(s.port)
    const reuse = await idleConnection(s.port)
    const health = await idleConnection(s.port, '/healthz')
    const partial = await RawClient.connect(s.port)
    const held = await RawClient.connect(s.port)
    clients.push(idle, reuse, health, partial, held)
    const head = get('/')
    await partial.write(head.slice(0, 20))
    await held.write(get('/slow?ms=1500'))
    await within(s.line('entered /slow'), 'the slow request', 10_000)

    let heldAt = Infinity
    const heldOutcome = outcome(held).then((o) => { heldAt = performance.now(); return o })
    let idleAt = Infinity
    const idleClosed: Promise<Closed> = idle.closed.then((c) => { idleAt = performance.now(); return c })
    let exited = false
    void s.exited.then(() => { exited = true })

    s.child.kill('SIGTERM')
    // The probe that first sees the drain may have been in the kernel's accept queue when the listener
    // closed, which resets it whatever the library does; the verdict is on the probes after it.
    let first: Probe | undefined
    let served = 0
    const after: Record<Probe, number> = { served: 0, rejected: 0, refused: 0, broken: 0 }
    let reuseOutcome: Promise<Outcome> | undefined
    let healthOutcome: Promise<Outcome> | undefined
    let partialOutcome: Promise<Outcome> | undefined
    // Bounded: stops ten probes after the drain was seen, or once the held request is done.
    const brokenHow = new Set<string>()
    for (let n = 0, later = 0; n < 5000 && later < 10 && heldAt === Infinity && !exited; n++) {
      const { probe: p, detail } = await probe(s.port)
      if (first === undefined) {
        if (p === 'served') {
          served++
          continue
        }
        first = p
        // The drain has started, as a client sees it: now use the connections opened before it.
        const send = async (c: RawClient, data: string): Promise<Outcome> => {
          if (c.ended) return { error: 'closed by the server before the request could be sent' }
          try {
            await c.write(data)
          } catch (err) {
            return { error: (err as { code?: string }).code ?? 'write failed' }
          }
          return await outcome(c)
        }
        reuseOutcome = send(reuse, get('/'))
        healthOutcome = send(health, get('/healthz'))
        partialOutcome = send(partial, head.slice(20))
        continue
      }
      after[p]++
      if (p === 'broken') brokenHow.add(detail)
      later++
    }
    const h = await within(heldOutcome, 'the held request', SIGNAL_BOUND_MS)
    const idleResult = await within(idleClosed, 'the idle connection', SIGNAL_BOUND_MS)
    const r = await within(reuseOutcome ?? Promise.resolve(undefined), 'the request on the open connection', SIGNAL_BOUND_MS)
    const hz = await within(healthOutcome ?? Promise.resolve(undefined), 'the health request', SIGNAL_BOUND_MS)
    const p = await within(partialOutcome ?? Promise.resolve(undefined), 'the half-sent request', SIGNAL_BOUND_MS)
    const exit = await exitOf(s)

    m.set('inflight', pass('response' in h && h.response.status === 200, describe(h)))
    m.set('inflight-close', pass('response' in h && h.response.headers.connection === 'close', describe(h)))
    const probeNote = `after the drain start: ${after.refused} refused, ${after.broken} accepted then reset or closed, ` +
      `${after.rejected} answered 503, ${after.served} served${brokenHow.size === 0 ? '' : ` (${[...brokenHow].join(', ')})`}`
    m.set('refuse', first === undefined
      ? { pass: false, note: `every new connection was served until the end (${served})` }
      : pass(after.refused > 0 && after.broken === 0, probeNote))
    const idleNote = `idle connection ${idleResult.reset ? 'reset' : idleResult.fin ? 'closed with a FIN' : 'closed'} ` +
      (idleAt < heldAt ? 'before the in-flight request ended' : 'only after the in-flight request ended')
    m.set('idle', pass(idleResult.fin && !idleResult.reset && idleAt < heldAt, idleNote))
    m.set('reject', pass(r !== undefined && 'response' in r && r.response.status === 503 &&
      r.response.headers.connection === 'close' && r.response.headers['retry-after'] !== undefined, describe(r)))
    m.set('partial', pass(p !== undefined && 'response' in p, describe(p)))
    m.set('exit-clean', pass(exit?.code === 0, showExit(exit)))
    m.set('per-route', k.has.perRoute
      ? pass(hz !== undefined && 'response' in hz && hz.response.status === 200 && hz.response.headers.connection === 'close' &&
        r !== undefined && 'response' in r && r.response.status === 503, `health: ${describe(hz)}; other route: ${describe(r)}`)
      : na('no per-route options'))
  } finally {
    for (const c of clients) c.destroy()
    await s.kill()
  }
}

/** The deadline run: a request that never ends, a 1 s timeout. */
async function deadlineRun (k: Kind, m: Map<string, Verdict>): Promise<void> {
  const timeout = 1000
  const s = await startServer(k.id, { env: { BENCH_PROBES: '1', BENCH_TIMEOUT: String(timeout) } })
  const hung = await RawClient.connect(s.port)
  try {
    await hung.write(get('/hang'))
    await within(s.line('entered /hang'), 'the hung request', 10_000)
    const start = performance.now()
    s.child.kill('SIGTERM')
    const exit = await exitOf(s, 15_000)
    const ms = performance.now() - start
    const when = exit === undefined ? 'still running after 15 s' : `${showExit(exit)} after ${Math.round(ms)} ms`
    m.set('deadline', pass(exit !== undefined && ms < timeout + 2000, when))
    m.set('exit-cut', pass(exit !== undefined && exit.code !== 0, when))
  } finally {
    hung.destroy()
    await s.kill()
  }
}

/** The hooks run: the first cleanup step throws, the second prints a line. */
async function hooksRun (k: Kind, m: Map<string, Verdict>): Promise<void> {
  if (!k.has.hooks) {
    m.set('hooks', na('no cleanup hooks'))
    return
  }
  const s = await startServer(k.id, { env: { BENCH_PROBES: '1', BENCH_HOOKS: '1', BENCH_TIMEOUT: String(SCENARIO_TIMEOUT_MS) } })
  try {
    s.child.kill('SIGTERM')
    const exit = await exitOf(s)
    const ran = s.lines.includes('second hook ran')
    m.set('hooks', pass(ran && exit !== undefined && exit.code !== 0, `second step ${ran ? 'ran' : 'did not run'}, ${showExit(exit)}`))
  } finally {
    await s.kill()
  }
}

/** The lame-duck run: a 1 s delay; readiness and an ordinary route asked on new connections. */
async function lameDuckRun (k: Kind, m: Map<string, Verdict>): Promise<void> {
  if (!k.has.lameDuck) {
    m.set('lameduck', na('no lame-duck delay or readiness route'))
    return
  }
  const s = await startServer(k.id, { env: { BENCH_PROBES: '1', BENCH_DELAY: '1000', BENCH_TIMEOUT: String(SCENARIO_TIMEOUT_MS) } })
  try {
    const before = await request(s.port, false, { path: '/readyz' })
    s.child.kill('SIGTERM')
    let ready = before.status
    let other: string | undefined
    // Bounded by the 1 s delay: readiness turns 503 at the signal, the drain starts a second later.
    for (let n = 0; n < 1000 && other === undefined; n++) {
      try {
        ready = (await request(s.port, false, { path: '/readyz' })).status
        if (ready === 503) other = String((await request(s.port, false, { path: '/' })).status)
      } catch (err) {
        other = `readiness never answered 503 before new requests failed (${(err as { code?: string }).code ?? ''})`
      }
    }
    await exitOf(s)
    m.set('lameduck', pass(before.status === 200 && ready === 503 && other === '200',
      `readiness ${before.status} before the signal, then ${ready}; another route then: ${other ?? 'not asked'}`))
  } finally {
    await s.kill()
  }
}

export interface ScenarioInputs {
  /** Row 3's outcome at SIGTERM for each kind: failed requests over every round (NaN if a run broke). */
  load: Map<Kind, { failed: number, requests: number }>
  /** Row 3's restart outcome for the kinds that restart. */
  restart: Map<Kind, { failed: number, requests: number }>
}

export async function scenarios (inputs: ScenarioInputs, log: (line: string) => void): Promise<Matrix> {
  const matrix: Matrix = new Map()
  for (const k of CONTENDERS) {
    const m = new Map<string, Verdict>()
    matrix.set(k, m)
    for (const run of [drainRun, deadlineRun, hooksRun, lameDuckRun]) {
      try {
        await run(k, m)
      } catch (err) {
        log(`scenarios ${k.id}: ${run.name} broke: ${(err as Error).message}`)
      }
    }
    const load = inputs.load.get(k)
    m.set('load', load === undefined ? na('not run') : pass(load.failed === 0, `${load.failed} failed of ${load.requests}`))
    const restart = inputs.restart.get(k)
    m.set('restart', !k.has.restart ? na('no restart') : restart === undefined ? na('not run') : pass(restart.failed === 0, `${restart.failed} failed of ${restart.requests}`))
    for (const sc of SCENARIOS) if (!m.has(sc.id)) m.set(sc.id, { pass: false, note: 'the run broke (see the log)' })
    log(`scenarios ${k.id}: ${SCENARIOS.map((sc) => { const v = m.get(sc.id); return `${sc.id} ${v?.pass === true ? 'pass' : v?.pass === false ? 'FAIL' : '—'}` }).join(', ')}`)
  }
  return matrix
}


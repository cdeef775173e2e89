// A bounded keep-alive load generator: N clients, one connection each, each looping one request as fast
// as it can until the server turns it away. Used by the contract suite to prove a drain under load
// fails no request, and reusable by benchmarks (it counts requests and time).
import http from 'node:http'
import { HOST } from './client.js'

export interface LoadOptions {
  port: number
  host?: string
  /** Concurrent clients, each with a keep-alive agent of one socket. */
  clients: number
  /** @default '/' */
  path?: string
  /** Upper bound on the requests each client sends. */
  maxRequests: number
  /** Upper bound on the run, ms: then every client stops and a request still open counts as a failure. */
  maxMs: number
  /**
   * ms a client waits between a response and its next request (a busy proxy, a slow caller), drawn anew
   * each time. @default none: the next request goes out at once
   */
  pause?: () => number
}

export interface Failure {
  client: number
  /** The client's request number, from 1. */
  request: number
  /** 'error': no complete response (reset, hang-up, parse error); 'status': neither 200 nor 503;
   * 'no-close': a 503 without `Connection: close`; 'unfinished': still open at the time bound. */
  kind: 'error' | 'status' | 'no-close' | 'unfinished'
  detail: string
}

export type StopReason = 'rejected' | 'refused' | 'failure' | 'max-requests' | 'max-ms' | 'stopped'

export interface ClientResult {
  /** 200 responses. */
  ok: number
  /** 503 responses with `Connection: close` (the client stops at the first). */
  rejected: number
  /** Responses that said `Connection: close` (200s during the drain, and the 503). */
  closed: number
  /** Connections the client opened (the agent opens another after a `Connection: close`). */
  connections: number
  stop: StopReason
}

export interface LoadResult {
  clients: ClientResult[]
  requests: number
  ok: number
  rejected: number
  /** Clients that stopped because a new connection was refused (the server never accepted it). */
  refused: number
  failures: Failure[]
  durationMs: number
  /** The run hit `maxMs`. */
  timedOut: boolean
}

export interface LoadRun {
  /** Resolves once every client has had at least `n` 200s; rejects if the run ends first. */
  reached (n: number): Promise<void>
  /** Stops sending new requests; those in flight finish. */
  stop (): void
  readonly done: Promise<LoadResult>
}

export function startLoad (options: LoadOptions): LoadRun {
  const { port, clients, maxRequests, maxMs } = options
  const host = options.host ?? HOST
  const path = options.path ?? '/'
  const start = performance.now()
  const results: ClientResult[] = []
  const failures: Failure[] = []
  const agents: http.Agent[] = []
  const waiters: Array<{ n: number, resolve: () => void, reject: (err: Error) => void }> = []
  let stopping: StopReason | null = null
  let finished = false

  function checkWaiters (): void {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i] as (typeof waiters)[number]
      if (results.every((r) => r.ok >= w.n)) {
        waiters.splice(i, 1)
        w.resolve()
      } else if (finished) {
        waiters.splice(i, 1)
        w.reject(new Error(`the load ended before every client had ${w.n} 200s: ${results.map((r) => r.ok).join(',')}`))
      }
    }
  }

  type Outcome = { status: number, connection: string | undefined } | { error: Error & { code?: string } }

  function send (agent: http.Agent, r: ClientResult): Promise<Outcome> {
    return new Promise((resolve) => {
      const req = http.request({ host, port, path, agent }, (res) => {
        res.on('data', () => {})
        res.on('end', () => {
          if (res.complete) resolve({ status: res.statusCode ?? 0, connection: res.headers.connection })
          else resolve({ error: new Error('response ended before it was complete') })
        })
        res.on('error', (error) => resolve({ error }))
      })
      req.on('error', (error) => resolve({ error }))
      req.once('socket', () => { if (!req.reusedSocket) r.connections++ })
      req.end()
    })
  }

  async function client (id: number): Promise<void> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    const r: ClientResult = { ok: 0, rejected: 0, closed: 0, connections: 0, stop: 'max-requests' }
    results.push(r)
    for (let n = 1; n <= maxRequests; n++) {
      if (stopping !== null) {
        r.stop = stopping
        return
      }
      const outcome = await send(agent, r)
      if ('error' in outcome) {
        const code = outcome.error.code
        if (code === 'ECONNREFUSED') {
          r.stop = 'refused'
          return
        }
        if (stopping === 'max-ms') {
          failures.push({ client: id, request: n, kind: 'unfinished', detail: `${code ?? ''} ${outcome.error.message}` })
          r.stop = 'max-ms'
          return
        }
        failures.push({ client: id, request: n, kind: 'error', detail: `${code ?? ''} ${outcome.error.message}` })
        r.stop = 'failure'
        return
      }
      const close = outcome.connection?.toLowerCase() === 'close'
      if (close) r.closed++
      if (outcome.status === 200) {
        r.ok++
        if (waiters.length > 0) checkWaiters()
        if (options.pause !== undefined) await new Promise((resolve) => setTimeout(resolve, options.pause?.()))
      } else if (outcome.status === 503 && close) {
        r.rejected++
        r.stop = 'rejected'
        return
      } else {
        failures.push({
          client: id,
          request: n,
          kind: outcome.status === 503 ? 'no-close' : 'status',
          detail: `status ${outcome.status}, connection: ${outcome.connection ?? '(none)'}`
        })
        r.stop = 'failure'
        return
      }
    }
  }

  const bound = setTimeout(() => {
    stopping = 'max-ms'
    // A request still open now gets no response: destroying its socket makes it fail, as a failure.
    for (const agent of agents) agent.destroy()
  }, maxMs)

  const done = Promise.all(Array.from({ length: clients }, (_, i) => client(i))).then(() => {
    clearTimeout(bound)
    finished = true
    checkWaiters()
    for (const agent of agents) agent.destroy()
    const sum = (f: (r: ClientResult) => number) => results.reduce((a, r) => a + f(r), 0)
    return {
      clients: results,
      requests: sum((r) => r.ok + r.rejected) + failures.length,
      ok: sum((r) => r.ok),
      rejected: sum((r) => r.rejected),
      refused: results.filter((r) => r.stop === 'refused').length,
      failures,
      durationMs: Math.round(performance.now() - start),
      timedOut: stopping === 'max-ms'
    }
  })

  return {
    reached (n: number) {
      return new Promise<void>((resolve, reject) => {
        waiters.push({ n, resolve, reject })
        checkWaiters()
      })
    },
    stop () {
      if (stopping === null) stopping = 'stopped'
    },
    done
  }
}

// Traffic through one or more proxies for a whole scenario: per proxy, keep-alive clients (one connection
// each, a new one after `Connection: close`) and clients that open a new connection for every request,
// alternating GET / (or `getPath`) and POST /echo with a JSON { id }, each pausing a random 0…pauseMs between requests (a
// busy caller; it also leaves the proxy's pooled connections idle for every length of time). Every request
// that does not end in a complete 200 with the right body is counted by what it was: the status ('502',
// '503', '504', …) or the error ('ECONNRESET', 'timeout', …). Clients go on after a failure.
// The answers are the apps' `{ pid }`, so the result says which processes served through which proxy.
import { Agent, request } from 'node:http'
import { settleWithin } from './bounded.js'

const HOST = '127.0.0.1'

export interface LoadTarget {
  /** The proxy's name in the results. */
  name: string
  port: number
}

export interface ProxyLoadOptions {
  targets: LoadTarget[]
  /** Keep-alive clients per target. @default 4 */
  keepAlive?: number
  /** Clients per target that open a new connection for every request. @default 2 */
  fresh?: number
  /** Each client pauses a random 0…pauseMs ms between two requests. @default 150 */
  pauseMs?: number
  /** The GET's path; it must answer `{ pid }`. @default '/' */
  getPath?: string
  /** Upper bound on one request: then it counts as 'timeout'. @default 15000 */
  requestTimeoutMs?: number
  /** Upper bound on the run. @default 120000 */
  maxMs?: number
  /** Upper bound on seen() and progress(). @default 30000 */
  boundMs?: number
}

export interface LoadFailure {
  /** ms since the load started (the clock of mark()). */
  at: number
  client: string
  method: 'GET' | 'POST'
  /** '502', 'ECONNRESET', … */
  what: string
  detail: string
}

export interface TargetResult {
  name: string
  requests: number
  ok: number
  gets: number
  posts: number
  /** Failed requests by what they were: a status ('502') or an error ('ECONNRESET', 'timeout'). */
  failed: Record<string, number>
  /** The first 20 failures. */
  failures: LoadFailure[]
  /** 200s per serving pid. */
  pids: Map<number, number>
  /** Ids of the POSTs that were answered 200. */
  postsOk: Set<string>
  /** Ids of the POSTs that were not. */
  postsFailed: Set<string>
}

export interface ProxyLoad {
  /** ms since the load started. */
  now (): number
  /** Notes an event on the load's clock (a signal sent), for the timeline printed with failures. */
  mark (label: string): void
  readonly marks: Array<{ at: number, label: string }>
  /**
   * Resolves once a 200 from `pid` has come through every target, or with `'any'` through one of them
   * (bounded). Behind one address served by several processes (graceful-cluster's workers), a proxy that
   * keeps its pooled connections may never open one to a given worker: 'any' is what can be waited for.
   */
  seen (pid: number, through?: 'every' | 'any'): Promise<void>
  /** Resolves once every target has completed `n` more requests than when called (bounded). */
  progress (n: number): Promise<void>
  readonly results: TargetResult[]
  /** Stops sending; resolves once every request in flight has ended. */
  stop (): Promise<TargetResult[]>
}

interface Answer { status: number, body: string }

export function startProxyLoad (options: ProxyLoadOptions): ProxyLoad {
  const { targets, keepAlive = 4, fresh = 2, pauseMs = 150, getPath = '/', requestTimeoutMs = 15_000, maxMs = 120_000, boundMs = 30_000 } = options
  const start = performance.now()
  const now = (): number => Math.round(performance.now() - start)
  const marks: Array<{ at: number, label: string }> = []
  const results: TargetResult[] = targets.map((t) => ({
    name: t.name, requests: 0, ok: 0, gets: 0, posts: 0, failed: {}, failures: [], pids: new Map(), postsOk: new Set(), postsFailed: new Set()
  }))
  const waiters: Array<() => void> = []
  let stopped = false
  const wake = (): void => { for (const w of waiters.splice(0)) w() }

  function send (port: number, agent: Agent | false, method: 'GET' | 'POST', id: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const body = method === 'POST' ? JSON.stringify({ id }) : undefined
      const headers: Record<string, string> = {}
      if (agent === false) headers.connection = 'close'
      if (body !== undefined) {
        headers['content-type'] = 'application/json'
        headers['content-length'] = String(Buffer.byteLength(body))
      }
      const req = request({ host: HOST, port, method, path: method === 'POST' ? '/echo' : getPath, agent, headers }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { text += chunk })
        res.on('end', () => {
          if (res.complete) resolve({ status: res.statusCode as number, body: text })
          else reject(Object.assign(new Error('response ended before it was complete'), { code: 'INCOMPLETE' }))
        })
        res.on('error', reject)
      })
      req.setTimeout(requestTimeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${requestTimeoutMs} ms`), { code: 'timeout' })))
      req.on('error', reject)
      req.end(body)
    })
  }

  function fail (r: TargetResult, f: LoadFailure): void {
    r.failed[f.what] = (r.failed[f.what] ?? 0) + 1
    if (r.failures.length < 20) r.failures.push(f)
  }

  async function loop (target: LoadTarget, r: TargetResult, client: string, agent: Agent | false): Promise<void> {
    let n = 0
    while (!stopped && performance.now() - start < maxMs) {
      n++
      const method = n % 2 === 0 ? 'POST' : 'GET'
      const id = `${target.name}/${client}/${n}`
      r.requests++
      if (method === 'POST') r.posts++
      else r.gets++
      const at = now()
      try {
        const answer = await send(target.port, agent, method, id)
        let pid: number | undefined
        try {
          const parsed = JSON.parse(answer.body) as { pid?: unknown, id?: unknown }
          if (typeof parsed.pid === 'number' && (method === 'GET' || parsed.id === id)) pid = parsed.pid
        } catch {}
        if (answer.status === 200 && pid !== undefined) {
          r.ok++
          r.pids.set(pid, (r.pids.get(pid) ?? 0) + 1)
          if (method === 'POST') r.postsOk.add(id)
        } else {
          fail(r, { at, client, method, what: String(answer.status), detail: `status ${answer.status}: ${answer.body.slice(0, 200)}` })
          if (method === 'POST') r.postsFailed.add(id)
        }
      } catch (err) {
        const e = err as NodeJS.ErrnoException
        fail(r, { at, client, method, what: e.code ?? e.message, detail: e.message })
        if (method === 'POST') r.postsFailed.add(id)
      }
      wake()
      if (pauseMs > 0 && !stopped) await new Promise((resolve) => setTimeout(resolve, Math.random() * pauseMs))
    }
  }

  const agents: Agent[] = []
  const loops: Array<Promise<void>> = []
  targets.forEach((target, i) => {
    const r = results[i] as TargetResult
    for (let c = 0; c < keepAlive; c++) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      agents.push(agent)
      loops.push(loop(target, r, `keep-alive ${c}`, agent))
    }
    for (let c = 0; c < fresh; c++) loops.push(loop(target, r, `new connection ${c}`, false))
  })

  /** Resolves once `check` passes, re-checked after every request; rejects after boundMs saying what it saw. */
  function until (check: () => boolean, what: () => string): Promise<void> {
    let over = false
    const met = new Promise<void>((resolve) => {
      const test = (): void => {
        if (over) return
        if (check()) resolve()
        else waiters.push(test)
      }
      test()
    })
    return settleWithin(met, 'the load', boundMs).catch((err: Error) => {
      throw new Error(`${what()}: ${err.message}`)
    }).finally(() => { over = true })
  }

  return {
    now,
    mark (label) { marks.push({ at: now(), label }) },
    marks,
    results,
    seen (pid, through = 'every') {
      return until(() => through === 'every' ? results.every((r) => r.pids.has(pid)) : results.some((r) => r.pids.has(pid)),
        () => `a 200 from pid ${pid} through ${through} proxy (so far ${results.map((r) => `${r.name}: ${JSON.stringify([...r.pids.keys()])}`).join('; ')})`)
    },
    progress (n) {
      const from = results.map((r) => r.requests)
      return until(() => results.every((r, i) => r.requests - (from[i] as number) >= n),
        () => `${n} more requests through every proxy (so far ${results.map((r, i) => `${r.name}: ${r.requests - (from[i] as number)}`).join(', ')})`)
    },
    async stop () {
      stopped = true
      await Promise.all(loops)
      for (const agent of agents) agent.destroy()
      return results
    }
  }
}

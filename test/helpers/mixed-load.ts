// Steady load through restarts and rolls: keep-alive clients, one connection each (a new one after a
// `Connection: close`), plus clients opening a new connection per request, all looping GET / until stopped.
// Unlike load.ts, clients go on after a failure: every error or non-200 is counted, none ends the run.
// Answers are the fixtures' `{ pid }`, so the result says which processes served.
import { Agent, request } from 'node:http'
import { settleWithin } from './bounded.js'

const HOST = '127.0.0.1'

export interface MixedFailure {
  client: string
  detail: string
}

export interface MixedLoadResult {
  requests: number
  ok: number
  failures: MixedFailure[]
  /** Responses per serving pid, in the order the pids were first seen. */
  pids: Map<number, number>
  /** Responses that said `Connection: close` to a keep-alive client. */
  closes: number
  /** New connections the keep-alive clients opened (after their first). */
  reconnects: number
}

export interface MixedLoad {
  /** Resolves once a response has come from `pid` (bounded). */
  seen (pid: number): Promise<void>
  /** Stops sending; resolves once every request in flight has ended. */
  stop (): Promise<MixedLoadResult>
  readonly result: MixedLoadResult
}

export interface MixedLoadOptions {
  port: number
  keepAlive: number
  fresh: number
  /** Upper bound on the run. @default 120000 */
  maxMs?: number
  /** Upper bound on one request, and on `seen()`. @default 20000 */
  boundMs?: number
}

export function startMixedLoad ({ port, keepAlive, fresh, maxMs = 120_000, boundMs = 20_000 }: MixedLoadOptions): MixedLoad {
  const result: MixedLoadResult = { requests: 0, ok: 0, failures: [], pids: new Map(), closes: 0, reconnects: 0 }
  const start = performance.now()
  const waiters: Array<{ pid: number, resolve: () => void }> = []
  let stopped = false

  function once (agent: Agent | false, onSocket: (socket: unknown) => void): Promise<{ status: number, connection: string | undefined, body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: HOST, port, path: '/', agent, headers: agent === false ? { connection: 'close' } : {} }, (res) => {
        onSocket(res.socket)
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { body += chunk })
        res.on('end', () => resolve({ status: res.statusCode as number, connection: res.headers.connection, body }))
        res.on('error', reject)
      })
      req.setTimeout(boundMs, () => req.destroy(new Error(`no answer within ${boundMs} ms`)))
      req.on('error', reject)
      req.end()
    })
  }

  async function loop (client: string, agent: Agent | false): Promise<void> {
    let socket: unknown = null
    while (!stopped && performance.now() - start < maxMs) {
      result.requests++
      try {
        const answer = await once(agent, (s) => {
          if (agent !== false && socket !== null && s !== socket) result.reconnects++
          socket = s
        })
        if (answer.status !== 200) {
          result.failures.push({ client, detail: `status ${answer.status}: ${answer.body}` })
          continue
        }
        const pid = (JSON.parse(answer.body) as { pid: number }).pid
        result.ok++
        if (agent !== false && answer.connection === 'close') result.closes++
        result.pids.set(pid, (result.pids.get(pid) ?? 0) + 1)
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i] as (typeof waiters)[number]
          if (w.pid === pid) {
            waiters.splice(i, 1)
            w.resolve()
          }
        }
      } catch (err) {
        result.failures.push({ client, detail: `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}` })
      }
    }
  }

  const agents: Agent[] = []
  const loops: Array<Promise<void>> = []
  for (let i = 0; i < keepAlive; i++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    loops.push(loop(`keep-alive ${i}`, agent))
  }
  for (let i = 0; i < fresh; i++) loops.push(loop(`new connection ${i}`, false))

  return {
    result,
    seen (pid) {
      if (result.pids.has(pid)) return Promise.resolve()
      return settleWithin(new Promise<void>((resolve) => waiters.push({ pid, resolve })), `a response from pid ${pid}`, boundMs)
    },
    async stop () {
      stopped = true
      await Promise.all(loops)
      for (const agent of agents) agent.destroy()
      return result
    }
  }
}

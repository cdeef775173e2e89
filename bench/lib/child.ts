// Starting a server under test in a child process of its own (10,000 client sockets and 10,000 server
// sockets would not fit one process's file descriptors), and talking to it.
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import type { Reply, Request } from '../servers/common.js'
import type { HolderReply, HoldRequest, HoldStats } from '../clients/holder.js'
import type { LoadReply, LoadRequest } from '../clients/load.js'

const SOURCES = ['servers', 'clients']
// Inside bench/, so the servers resolve bench/node_modules and "type": "module" applies.
const BUILT = new URL('../.build/', import.meta.url)
let isBuilt = false

/**
 * The servers run as plain JavaScript, transpiled here once per run: a child starts 0.5 s sooner than
 * through a TypeScript loader on a busy machine, and a restart successor inherits no loader. They import
 * the built packages (dist), as users do.
 */
function buildServers (): void {
  if (isBuilt) return
  for (const dir of SOURCES) {
    const source = new URL(`../${dir}/`, import.meta.url)
    const target = new URL(`${dir}/`, BUILT)
    mkdirSync(target, { recursive: true })
    for (const name of readdirSync(source)) {
      if (!name.endsWith('.ts')) continue
      const { outputText } = ts.transpileModule(readFileSync(new URL(name, source), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        fileName: name
      })
      writeFileSync(new URL(name.replace(/\.ts$/, '.js'), target), outputText)
    }
  }
  isBuilt = true
}

/** A JavaScript file built from bench/servers or bench/clients, e.g. built('clients/holder'). */
export function built (name: string): string {
  buildServers()
  return fileURLToPath(new URL(`${name}.js`, BUILT))
}

const EXEC_ARGV = ['--expose-gc']

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Server {
  child: ChildProcess
  pid: number
  port: number
  /** Settles when the process has exited. */
  exited: Promise<Exit>
  /** Every line the server printed with 'bench: ', without the prefix. */
  lines: string[]
  /** Resolves once the server has printed `line` (counting lines printed before the call). */
  line (line: string, nth?: number): Promise<void>
  ask (msg: 'cpu'): Promise<number>
  ask (msg: 'heap'): Promise<number>
  send (msg: Request): void
  /** Sends SIGKILL unless it has exited; resolves once it has. */
  kill (): Promise<Exit>
}

export interface StartOptions {
  env?: Record<string, string>
  /** A process group of its own, so it and whatever it starts can be killed together (restart). */
  detached?: boolean
}

const live = new Set<ChildProcess>()
// A benchmark stopped half-way leaves no server running.
process.once('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL') } catch {}
  }
})

export async function startServer (id: string, options: StartOptions = {}): Promise<Server> {
  const file = built(`servers/${id}`)
  const child = fork(file, [], {
    execArgv: EXEC_ARGV,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    detached: options.detached ?? false
  })
  live.add(child)
  let exit: Exit | undefined
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child)
      exit = { code, signal }
      resolve(exit)
    })
  })
  const lines: string[] = []
  const waiters: Array<{ line: string, nth: number, resolve: () => void }> = []
  let partial = ''
  child.stdout?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    for (const l of parts) {
      if (!l.startsWith('bench: ')) continue
      lines.push(l.slice('bench: '.length))
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i] as (typeof waiters)[number]
        if (lines.filter((x) => x === w.line).length >= w.nth) {
          waiters.splice(i, 1)
          w.resolve()
        }
      }
    }
  })

  const first = once(child, 'message') as Promise<[Reply]>
  const [hello] = await Promise.race([
    first,
    exited.then((e) => { throw new Error(`server ${id} exited before listening (${JSON.stringify(e)})`) })
  ])
  if (!('port' in hello)) throw new Error(`server ${id}: expected its port, got ${JSON.stringify(hello)}`)

  const ask = async (msg: 'cpu' | 'heap'): Promise<number> => {
    const reply = once(child, 'message') as Promise<[Reply]>
    child.send(msg)
    const [r] = await reply
    if (msg === 'cpu' && 'cpu' in r) return r.cpu
    if (msg === 'heap' && 'heap' in r) return r.heap
    throw new Error(`server ${id}: asked ${msg}, got ${JSON.stringify(r)}`)
  }

  return {
    child,
    pid: child.pid as number,
    port: hello.port,
    exited,
    lines,
    line (line, nth = 1) {
      if (lines.filter((x) => x === line).length >= nth) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        waiters.push({ line, nth, resolve })
        exited.then(() => reject(new Error(`server ${id} exited before printing '${line}'`)), () => {})
      })
    },
    ask,
    send (msg) { child.send(msg) },
    async kill () {
      if (exit !== undefined) return exit
      child.kill('SIGKILL')
      return await exited
    }
  }
}

/** Rejects with `what` when `promise` has not settled within `ms`: a bound, never a pause. */
export async function within<T> (promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, limit])
  } finally {
    clearTimeout(timer)
  }
}

export const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** Round r's order of `items`: rotated by r, so no item is always first or always last. */
export function rotation<T> (items: T[], r: number): T[] {
  const n = items.length
  return items.map((_, i) => items[(i + r) % n] as T)
}

export interface Holder {
  /** Opens the connections; resolves once they are all set (see clients/holder.ts). */
  hold (request: HoldRequest): Promise<{ opened: number, closedWhileOpening: number }>
  stats (): Promise<HoldStats>
  /** Closes every connection and ends the process. */
  close (): Promise<void>
}

/**
 * A process of bench/clients (`name`, e.g. 'holder') that answers each message with one reply, and exits when
 * this process disconnects from it. `ask` rejects, naming `what`, if it exits before it has replied.
 */
function startClient<Reply> (name: string, label: string): { pid: number, ask (msg: unknown, what: string): Promise<Reply>, close (): Promise<void> } {
  const child = fork(built(`clients/${name}`), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  live.add(child)
  const exited = once(child, 'exit').then(() => { live.delete(child) })
  return {
    pid: child.pid as number,
    async ask (msg, what) {
      const reply = Promise.race([
        once(child, 'message') as Promise<[Reply]>,
        exited.then(() => { throw new Error(`the ${label} exited while ${what}`) })
      ])
      child.send(msg as object)
      const [r] = await reply
      return r
    },
    async close () {
      if (child.connected) child.disconnect()
      await exited
    }
  }
}

/** A client process holding connections (clients/holder.ts). */
export async function startHolder (): Promise<Holder> {
  const client = startClient<HolderReply>('holder', 'connection holder')
  return {
    async hold (request) {
      const r = await client.ask(request, 'opening connections')
      if (!('opened' in r)) throw new Error(`holder: expected opened, got ${JSON.stringify(r)}`)
      return r
    },
    async stats () {
      const r = await client.ask('stats', 'counting')
      if (!('stats' in r)) throw new Error(`holder: expected stats, got ${JSON.stringify(r)}`)
      return r.stats
    },
    close: client.close
  }
}

export interface LoadGenerator {
  pid: number
  run (request: LoadRequest): Promise<LoadReply>
  close (): Promise<void>
}

/** A load generator (bench/clients/load.ts) in a process of its own. */
export async function startLoadGenerator (): Promise<LoadGenerator> {
  const client = startClient<LoadReply>('load', 'load generator')
  return { pid: client.pid, run: (request) => client.ask(request, 'running'), close: client.close }
}

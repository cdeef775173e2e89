// What every benchmark server shares: its configuration (from the environment, so a restart successor
// inherits it), the hello-world routes for Fastify and Express, and the IPC the benchmark drives it with.
// Each file next to this one sets up one library the way its README says, then calls `ready(server)`.
//
// Environment (all optional):
// - BENCH_TIMEOUT   ms; each library's own deadline option (default 10000)
// - BENCH_DELAY     ms of lame-duck time, for the libraries that have one (default 0)
// - BENCH_PROBES=1  a readiness route at /readyz and a health route /healthz served during the drain,
//                   for the libraries that have them
// - BENCH_NOOP=1    bare frameworks only: one onRequest hook / middleware that does nothing (a reference)
// - BENCH_LOAD=1    bare frameworks only: graceful's package for that framework is imported, and not used
// - BENCH_HOOKS=1   two cleanup steps: the first throws, the second prints 'bench: second hook ran'
// - BENCH_PID_FILE  graceful only: `restart: { pidFile }` (zero-downtime restart on SIGHUP)
import type { Express } from 'express'
import type { FastifyInstance, RouteShorthandOptions } from 'fastify'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export const HOST = '127.0.0.1'
const env = process.env

export const config = {
  timeout: Number(env.BENCH_TIMEOUT ?? 10_000),
  delay: Number(env.BENCH_DELAY ?? 0),
  probes: env.BENCH_PROBES === '1',
  noop: env.BENCH_NOOP === '1',
  load: env.BENCH_LOAD === '1',
  hooks: env.BENCH_HOOKS === '1',
  pidFile: env.BENCH_PID_FILE
}

/** Lines the benchmark reads from stdout. Writes to a pipe are synchronous on Linux: none is lost at exit. */
export function say (line: string): void {
  process.stdout.write(`bench: ${line}\n`)
}

export const FIRST_HOOK_ERROR = 'bench: the first hook fails on purpose'
export function firstHook (): never {
  throw new Error(FIRST_HOOK_ERROR)
}
export function secondHook (): void {
  say('second hook ran')
}

const HELLO = { hello: 'world' }

// /gate: held until `expected` gate requests have arrived, then all answered 100 ms later. The benchmark
// sends SIGTERM when told they are all in, so every request ends within 100 ms of the signal.
let gateExpected = Infinity
let gateEntered = 0
let gateOpen: Promise<void> | undefined
let openGate: () => void = () => {}
function gate (): Promise<void> {
  gateOpen ??= new Promise<void>((resolve) => { openGate = resolve })
  if (++gateEntered === gateExpected) {
    setTimeout(openGate, 100)
    process.send?.({ gated: gateEntered })
  }
  return gateOpen
}

function slowMs (query: unknown): number {
  const ms = Number((query as { ms?: string } | undefined)?.ms ?? 1000)
  return Number.isFinite(ms) && ms >= 0 ? ms : 1000
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** POST /echo (row 6, behind a proxy): { id } in, { pid, id } out 20 ms later (a request doing some work). */
async function echo (body: string): Promise<{ pid: number, id: unknown }> {
  let id: unknown
  try { id = (JSON.parse(body) as { id?: unknown }).id } catch {}
  await sleep(20)
  return { pid: process.pid, id }
}

/** GET / (hello world), /slow?ms= (announced on stdout), /hang (never answers), /gate, /healthz, /pid, POST /echo. */
export function fastifyRoutes (app: FastifyInstance, healthz: RouteShorthandOptions = {}): void {
  app.get('/', async () => HELLO)
  app.get('/slow', async (request) => {
    say('entered /slow')
    await sleep(slowMs(request.query))
    return { slow: true }
  })
  app.get('/hang', (_request, _reply) => { say('entered /hang') })
  app.get('/gate', async () => { await gate(); return HELLO })
  app.get('/healthz', healthz, async () => ({ healthy: true }))
  app.get('/pid', async () => ({ pid: process.pid }))
  app.post('/echo', async (request) => await echo(JSON.stringify(request.body)))
}

export function expressRoutes (app: Express): void {
  app.get('/', (_req, res) => { res.json(HELLO) })
  app.get('/slow', (req, res) => {
    say('entered /slow')
    sleep(slowMs(req.query)).then(() => res.json({ slow: true }), () => {})
  })
  app.get('/hang', () => { say('entered /hang') })
  app.get('/gate', (_req, res) => { gate().then(() => res.json(HELLO), () => {}) })
  app.get('/healthz', (_req, res) => { res.json({ healthy: true }) })
  app.get('/pid', (_req, res) => { res.json({ pid: process.pid }) })
  app.post('/echo', (req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => {
      echo(body).then((answer) => res.json(answer), () => {})
    })
  })
}

export type Request = 'cpu' | 'heap' | { gate: number }
export type Reply = { port: number } | { cpu: number } | { heap: number } | { gated: number }

const gc = (globalThis as { gc?: () => void }).gc

/** Tells the benchmark the port, and answers its questions over IPC. */
export function ready (server: Server): void {
  // Every server keeps idle connections 72 s (Fastify's default; Node's, which Express uses, is 5 s), so the
  // 10,000 connections of the exit-time and memory runs are all still open when they are measured.
  server.keepAliveTimeout = 72_000
  // A restart successor's IPC channel leads to its predecessor, which expects graceful's messages only.
  if (env.GRACEFUL_RESTART_PARENT !== undefined) return
  process.on('message', (msg: Request) => {
    if (msg === 'cpu') {
      const { user, system } = process.cpuUsage()
      process.send?.({ cpu: user + system } satisfies Reply)
    } else if (msg === 'heap') {
      if (gc === undefined) throw new Error('bench: heap needs --expose-gc')
      // Twice: the first pass may leave objects whose finalizers free more.
      gc()
      gc()
      process.send?.({ heap: process.memoryUsage().heapUsed } satisfies Reply)
    } else if (typeof msg === 'object' && msg !== null && 'gate' in msg) {
      gateExpected = msg.gate
    }
  })
  process.send?.({ port: (server.address() as AddressInfo).port } satisfies Reply)
}

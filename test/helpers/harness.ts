// One harness per adapter. The contract suite in test/contract/ drives both through this interface only,
// so every behavioural case runs unchanged against Fastify and Express.
import type { Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { GracefulOptions, Phase, RouteOptions, ShutdownReport, HookFn, HookOptions, Stats } from '@graceful/core'

export interface LogEntry {
  level: 'info' | 'warn' | 'error'
  msg: string | undefined
  obj: Record<string, unknown>
}

export interface StartOptions {
  /** Graceful options; `signals` defaults to false here so in-process tests install no handlers. */
  options?: GracefulOptions
  /** Per-route options by route path ('/health', '/hold/:id', '/sse', …); each adapter applies them its own way. */
  routes?: Record<string, RouteOptions>
  /** Answer upgrade requests with 101 and keep the socket (a stand-in for a WebSocket server). */
  upgrade?: boolean
}

export interface GracefulLike {
  readonly phase: Phase
  beforeDrain (fn: HookFn, options?: HookOptions): unknown
  afterDrain (fn: HookFn, options?: HookOptions): unknown
  shutdown (reason?: string): Promise<ShutdownReport>
  stats (): Stats
}

export interface TestApp {
  adapter: 'fastify' | 'express'
  port: number
  server: Server
  graceful: GracefulLike
  logs: LogEntry[]
  /** Resolves once a request to /hold/:id (or /stream/:id) has reached its handler. */
  entered (id: string): Promise<void>
  /** Lets /hold/:id (or /stream/:id) finish. */
  release (id: string): void
  /** The `shutdownSignal` each /hold/:id request saw, by id. */
  signals: Map<string, AbortSignal>
  /** Sockets upgraded through the 'upgrade' event (with `upgrade: true`). */
  upgraded: Socket[]
  /** Shuts down (if not yet) and waits until it has finished. */
  close (): Promise<void>
}

/**
 * The standard routes every harness serves:
 * - GET  /            → 200 'hello'
 * - GET  /hold/:id    → waits for release(id), then 200 'released <id>'
 * - GET  /stream/:id  → sends its head and a first chunk at once, then ends on release(id)
 * - GET  /health      → 200 'ok' (give it serveDuringDrain through `routes`)
 * - GET  /sse         → an event stream that says 'event: bye' and ends when its shutdownSignal aborts
 * - POST /upload      → reads the whole body, answers `{"bytes":n}`
 */
export interface Harness {
  name: 'fastify' | 'express'
  start (opts?: StartOptions): Promise<TestApp>
}

export interface Deferred<T = void> {
  promise: Promise<T>
  resolve (value: T): void
}

export function deferred<T = void> (): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => { resolve = r })
  return { promise, resolve }
}

/** Shared bookkeeping of /hold/:id requests for both harnesses. */
export class Holds {
  #entered = new Map<string, Deferred>()
  #released = new Map<string, Deferred>()
  signals = new Map<string, AbortSignal>()

  #get (map: Map<string, Deferred>, id: string): Deferred {
    let d = map.get(id)
    if (d === undefined) {
      d = deferred()
      map.set(id, d)
    }
    return d
  }

  entered (id: string): Promise<void> {
    return this.#get(this.#entered, id).promise
  }

  release (id: string): void {
    this.#get(this.#released, id).resolve()
  }

  /** Called by a handler: marks it entered and waits for its release. */
  async hold (id: string, signal?: AbortSignal): Promise<void> {
    if (signal !== undefined) this.signals.set(id, signal)
    this.#get(this.#entered, id).resolve()
    await this.#get(this.#released, id).promise
  }
}

export function captureLogger (logs: LogEntry[]) {
  const at = (level: LogEntry['level']) => (obj: object, msg?: string) => {
    logs.push({ level, msg, obj: obj as Record<string, unknown> })
  }
  return { info: at('info'), warn: at('warn'), error: at('error') }
}

export function portOf (server: Server): number {
  return (server.address() as AddressInfo).port
}

export const UPGRADE_RESPONSE = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n'

import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { Server } from 'node:net'
import { match } from 'path-to-regexp'
import { IncomingMessage as NodeIncomingMessage, type IncomingMessage, type ServerResponse } from 'node:http'
import {
  Graceful, consoleLogger, createError, describe, probe, readable, resolveRouteOptions, type GracefulOptions, type HookFn, type HookOptions, type Logger, type Phase,
  type ResolvedRouteOptions, type RouteOptions, type ShutdownReport, type Stats
} from '@graceful/core'

export type {
  GracefulOptions, HookContext, HookOptions, HookResult, Logger, Phase, RouteOptions, ShutdownReport, Stats
} from '@graceful/core'
export { CHANNELS, Graceful, IDLE_GRACE_MS, codes } from '@graceful/core'
export type { HookMessage, PhaseMessage, ReportMessage, RestartMessage } from '@graceful/core'

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Aborts when this request must wrap up: at the drain start (`abortOnDrain`) or at its deadline. */
      readonly shutdownSignal: AbortSignal
    }
  }
}

export interface ExpressGracefulOptions extends GracefulOptions {
  /** Per-route options by Express path, with an optional method: `{ 'GET /healthz': {…}, '/users/:id': {…} }`. */
  routes?: Record<string, RouteOptions>
}

type Next = (err?: unknown) => void

/** The middleware, which is also the graceful instance (`phase`, `beforeDrain`, `afterDrain`, `shutdown`, `attach`). */
export interface GracefulMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: Next): void
  readonly phase: Phase
  /** The core instance behind the middleware. */
  readonly instance: Graceful
  beforeDrain (fn: HookFn, options?: HookOptions): GracefulMiddleware
  afterDrain (fn: HookFn, options?: HookOptions): GracefulMiddleware
  shutdown (reason?: string): Promise<ShutdownReport>
  /** For servers made with http.createServer(app) or https.createServer(opts, app); app.listen() needs nothing. */
  attach (server: Server): GracefulMiddleware
  isReady (): Promise<boolean>
  /** A live view: phase, requests in flight, open connections. */
  stats (): Stats
}

interface CompiledRoute {
  method: string | null
  matches: (path: string) => boolean
  options: ResolvedRouteOptions
}

// The core's mark on a server it drains: for the shutdownSignal getter shared by every app of one copy of Express.
const kEngine = Symbol.for('graceful.engine')
const METHODS = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|CONNECT|ALL) +(\/.*)$/i
// Node's own diagnostics: published once a server is bound, so we find the server app.listen() made.
const LISTEN_CHANNEL = 'tracing:net.server.listen:asyncEnd'

function compileRoutes (routes: unknown): CompiledRoute[] {
  if (routes === undefined) return []
  // A Map, a Date or a class instance has no own enumerable keys to read: it would be silently ignored.
  const proto = routes !== null && typeof routes === 'object' ? Object.getPrototypeOf(routes) as unknown : undefined
  if (proto !== Object.prototype && proto !== null) throw createError('GRACEFUL_ERR_ROUTES', [describe(routes)])
  return Object.entries(routes as Record<string, unknown>).map(([key, value]) => {
    const m = METHODS.exec(key)
    const method = m === null ? null : (m[1] as string).toUpperCase()
    const path = m === null ? key : m[2] as string
    if (path[0] !== '/') throw createError('GRACEFUL_ERR_ROUTE_KEY', [key, 'the path must start with /'])
    let test: ReturnType<typeof match>
    try {
      // The same matcher and settings Express 5's router uses for app.get('/users/:id').
      test = match(path, { sensitive: false, end: true, trailing: true, decode: false })
    } catch (cause) {
      throw createError('GRACEFUL_ERR_ROUTE_KEY', [key, (cause as Error).message], { cause })
    }
    return {
      method: method === 'ALL' ? null : method,
      matches: (p: string) => test(p) !== false,
      options: resolveRouteOptions(value, `route '${key}'`)
    }
  })
}

function pathOf (url: string | undefined): string {
  /* c8 ignore next - defensive: node:http always sets req.url; its type only says optional */
  if (url === undefined) return '/'
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** Does this Express app (or a router mounted in it) use `fn`? */
function usesMiddleware (app: unknown, fn: unknown, depth = 0): boolean {
  if (app === null || (typeof app !== 'function' && typeof app !== 'object') || depth > 8) return false
  const a = app as { router?: unknown, _router?: unknown, stack?: unknown }
  // Express 5 keeps its router on `router`, Express 4 on `_router`; a Router is itself a stack.
  const stack = Array.isArray(a.stack)
    ? a.stack
    : (a.router as { stack?: unknown } | undefined)?.stack ?? (a._router as { stack?: unknown } | undefined)?.stack
  if (!Array.isArray(stack)) return false
  return stack.some((layer: { handle?: unknown }) => layer.handle === fn || usesMiddleware(layer.handle, fn, depth + 1))
}

/** Request prototypes that have the `shutdownSignal` getter (Express's own request object, one per copy of Express). */
const withSignal = new WeakSet<object>()

/** `app.use(graceful(options))`: graceful shutdown for Express 5. */
export function graceful (options: ExpressGracefulOptions = {}): GracefulMiddleware {
  const routes = readable(() => compileRoutes((options as Record<string, unknown> | null)?.routes))
  // console's methods take (obj, msg) the wrong way round for us: give it one readable line instead.
  const opts = readable(() => (options as Record<string, unknown> | null)?.logger === console ? { ...options, logger: consoleLogger() } : options)
  const engine = new Graceful(opts, {
    allow: ['routes'],
    logger: consoleLogger(),
    routeOf (req) {
      const path = pathOf(req.url)
      for (const r of routes) {
        if ((r.method === null || r.method === req.method || (r.method === 'GET' && req.method === 'HEAD')) && r.matches(path)) return r.options
      }
      return undefined
    }
  })
  const { readiness, liveness } = engine.options
  // While serving, the middleware compares req.url with the probe paths and calls next(): nothing else.
  const readinessQuery = readiness === null ? null : `${readiness.path}?`
  const livenessQuery = liveness === null ? null : `${liveness.path}?`
  let lastServer: Server | undefined

  const gracefulMiddleware = function gracefulMiddleware (req: IncomingMessage, res: ServerResponse, next: Next): void {
    const server = (req.socket as unknown as { server: Server }).server
    if (server !== lastServer) seen(req, server)
    const url = req.url as string
    if ((readiness !== null && (url === readiness.path || url.startsWith(readinessQuery as string))) ||
        (liveness !== null && (url === liveness.path || url.startsWith(livenessQuery as string)))) {
      probe(engine, req, res)
      return
    }
    next()
  } as GracefulMiddleware

  /** A request from a server not seen just before: the server is drained, the request has its signal. */
  function seen (req: IncomingMessage, server: Server): void {
    lastServer = server
    // Servers are found at listen time; this catches one that was listening before app.use(g).
    if (!attached.has(server)) adopt(server)
    // On Express's own request object, once: every app's request prototype (and a mounted app's) inherits
    // from it. A property per request would cost every request.
    let proto = Object.getPrototypeOf(req) as object | null
    while (proto !== null && Object.getPrototypeOf(proto) !== NodeIncomingMessage.prototype) proto = Object.getPrototypeOf(proto) as object | null
    const target = proto ?? Object.getPrototypeOf(req) as object
    if (withSignal.has(target)) return
    withSignal.add(target)
    Object.defineProperty(target, 'shutdownSignal', {
      configurable: true,
      get (this: IncomingMessage) {
        // The instance that drains the request's server (one of several middlewares, or a core instance).
        const owner = (this.socket as unknown as { server: Record<symbol, Graceful | undefined> }).server[kEngine]
        /* c8 ignore next - defensive: a server a request reaches the middleware through is adopted on that request */
        return (owner ?? engine).signalFor(this)
      }
    })
  }

  const attached = new WeakSet<Server>()
  function attach (server: Server): GracefulMiddleware {
    engine.attach(server)
    attached.add(server)
    return gracefulMiddleware
  }

  /** Found on our own (listen or first request): a second instance on the same server is logged, not thrown per request. */
  function adopt (server: Server): void {
    try {
      attach(server)
    } catch (err) {
      attached.add(server)
      engine.log.error({ err }, 'graceful: this server is drained by another graceful instance; this middleware will not drain it')
    }
  }

  const onListen = (message: unknown): void => {
    const server = (message as { server?: Server }).server
    // The first listen() after the shutdown is the last we watch (an app whose listen was delayed past a
    // SIGTERM): a server of ours is still attached, and so closed at once.
    if (engine.phase === 'closed') unsubscribe(LISTEN_CHANNEL, onListen)
    if (server === undefined || attached.has(server)) return
    const app = server.listeners('request')[0]
    if (usesMiddleware(app, gracefulMiddleware)) adopt(server)
  }
  subscribe(LISTEN_CHANNEL, onListen)

  Object.defineProperties(gracefulMiddleware, {
    phase: { get: () => engine.phase, enumerable: true },
    instance: { value: engine, enumerable: true }
  })
  gracefulMiddleware.beforeDrain = function beforeDrain (fn, hookOptions) {
    engine.beforeDrain(fn, hookOptions)
    return gracefulMiddleware
  }
  gracefulMiddleware.afterDrain = function afterDrain (fn, hookOptions) {
    engine.afterDrain(fn, hookOptions)
    return gracefulMiddleware
  }
  gracefulMiddleware.shutdown = function shutdown (reason?: string) {
    return engine.shutdown(reason)
  }
  gracefulMiddleware.attach = attach
  gracefulMiddleware.isReady = function isReady () {
    return engine.isReady()
  }
  gracefulMiddleware.stats = function stats () {
    return engine.stats()
  }
  return gracefulMiddleware
}

export default graceful

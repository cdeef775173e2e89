import type { IncomingMessage } from 'node:http'
import type { Server } from 'node:net'
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest, RouteOptions as FastifyRouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import { Graceful, REJECT_BODY, resolveRouteOptions, type GracefulOptions, type ResolvedRouteOptions } from '@graceful/core'

export type {
  GracefulOptions, HookContext, HookOptions, HookResult, Logger, Phase, RouteOptions, ShutdownReport, Stats
} from '@graceful/core'
export { CHANNELS, Graceful, IDLE_GRACE_MS, codes } from '@graceful/core'
export type { HookMessage, PhaseMessage, ReportMessage, RestartMessage } from '@graceful/core'

export type FastifyGracefulOptions = GracefulOptions
export type { FastifyGracefulInstance, GracefulRouteOptions } from './types.js'

// Options that Fastify's register() itself understands; they reach the plugin too and are not ours to check.
const REGISTER_OPTIONS = ['prefix', 'logLevel', 'logSerializers']
const kResolved = Symbol('graceful.route-options')

type Config = Record<string | symbol, unknown> & { [kResolved]?: ResolvedRouteOptions }

const plugin: FastifyPluginCallback<FastifyGracefulOptions> = function gracefulPlugin (fastify, options, done) {
  try {
    setup(fastify, options)
  } catch (err) {
    // A bad option must fail register()/ready(), not escape as an uncaught exception.
    return done(err as Error)
  }
  done()
}

function setup (fastify: FastifyInstance, options: FastifyGracefulOptions): void {
  const originalClose = fastify.close
  // True while Fastify's own close runs (app.close() before our override was installed, or from our cleanup).
  let frameworkClosing = false
  // What Fastify's own close rejected with (an onClose hook that threw): app.close() rejects with it too.
  let closeError: Error | undefined
  // Fastify itself listened on fastify.server (not the app, on a server from serverFactory).
  let listening = false
  const routes = routeTable(fastify)
  // Routes declared before this plugin loaded (an un-awaited register, plugins registered before it) never
  // reach our onRoute hook: for them the drain needs Fastify's own routing, through an onRequest hook.
  const earlier = fastify.printRoutes() !== '(empty tree)'
  const graceful = new Graceful(options, {
    allow: REGISTER_OPTIONS,
    logger: fastify.log,
    listens: true,
    routeOf: (req) => routes.find(req) ?? undefined,
    defers: (req) => earlier && routes.find(req) === undefined,
    // Plain Fastify leaves a server from serverFactory that the app listened on itself open at close; so do we.
    // (A listen() still on its way when the drain starts is Fastify's own: closed once it completes.)
    closesListener: (server) => server !== fastify.server || listening || !server.listening,
    close: { name: 'fastify.close', fn: closeFramework }
  })

  let frameworkClose: Promise<unknown> | null = null
  /** Fastify's own close (its onClose hooks), once: from our cleanup phase, or at once from an afterDrain hook. */
  function closeFramework (): Promise<unknown> {
    if (frameworkClose !== null) return frameworkClose
    if (frameworkClosing) return Promise.resolve()
    frameworkClosing = true
    frameworkClose = (originalClose as () => Promise<undefined>).call(fastify).catch((err: Error) => {
      closeError = err
      throw err
    })
    return frameworkClose
  }

  fastify.decorate('graceful', graceful)
  fastify.decorateRequest('shutdownSignal', {
    getter (this: FastifyRequest) {
      // Fastify knows this request's route exactly; the table is for requests it has not routed yet.
      graceful.setRoute(this.raw, routeOptionsOf(this))
      return graceful.signalFor(this.raw)
    }
  })

  fastify.addHook('onRoute', function gracefulOnRoute (route: FastifyRouteOptions) {
    const config = route.config as Config | undefined
    const resolved = config?.graceful === undefined
      ? undefined
      : resolveRouteOptions(config.graceful, `route ${String(route.method)} ${route.url}`)
    if (resolved !== undefined) route.config = { ...config, [kResolved]: resolved } as typeof route.config
    routes.add(route, resolved)
  })

  if (earlier) {
    graceful.log.warn({}, 'graceful: routes were declared before @graceful/fastify loaded; their config.graceful is applied by an onRequest hook that every request pays for. Register the plugin first (await app.register(graceful)) to avoid it')
    fastify.addHook('onRequest', function gracefulEarlierRoutes (request, reply, next) {
      // Their route timeouts and abortOnDrain apply to requests in flight at the drain start too.
      graceful.setRoute(request.raw, routeOptionsOf(request))
      if (!graceful.undecided(request.raw) || graceful.admit(request.raw, reply.raw)) return next()
      reply.code(503).headers(graceful.rejectHeaders(request.raw)).send(REJECT_BODY)
    })
  }

  // With host 'localhost' Fastify listens on more than one address, each with a server of its own.
  fastify.addHook('onListen', function gracefulOnListen (next) {
    listening = true
    for (const server of secondaryServers(fastify)) graceful.attach(server)
    graceful.listened()
    next()
  })

  // app.close() called directly, before our override existed: drain all the same.
  fastify.addHook('preClose', function gracefulPreClose (next) {
    if (graceful.phase !== 'serving') return next()
    frameworkClosing = true
    graceful.shutdown('close').then(() => next(), next)
  })

  const { readiness, liveness } = graceful.options
  if (readiness !== null) {
    fastify.get(readiness.path, { config: { graceful: { serveDuringDrain: true } }, logLevel: 'warn' }, async function readinessRoute (_request, reply) {
      const ready = await graceful.isReady()
      reply.code(ready ? 200 : 503).header('cache-control', 'no-store')
      return { status: ready ? 'ready' : 'unavailable', phase: graceful.phase }
    })
  }
  if (liveness !== null) {
    fastify.get(liveness.path, { config: { graceful: { serveDuringDrain: true } }, logLevel: 'warn' }, async function livenessRoute (_request, reply) {
      reply.header('cache-control', 'no-store')
      return { status: 'alive', phase: graceful.phase }
    })
  }

  // app.close() runs the same drain as a signal; Fastify's own close (and its onClose hooks) runs in its
  // cleanup phase. Closing first would let return503OnClosing answer every route, serveDuringDrain ones too.
  // Like Fastify's own, it rejects when an onClose hook failed (the report records it as well).
  fastify.close = function gracefulClose (this: FastifyInstance, callback?: (err?: Error) => void) {
    // From an afterDrain hook (NestJS's app.close() on its Fastify platform) the shutdown is waiting for that
    // very hook: Fastify closes now instead.
    const done = graceful.phase === 'cleanup' ? closeFramework().catch(() => {}) : graceful.shutdown('close')
    const closed = done.then(() => { if (closeError !== undefined) throw closeError })
    if (typeof callback === 'function') {
      closed.then(() => callback(), callback)
      return this
    }
    return closed
  } as FastifyInstance['close']

  graceful.attach(fastify.server)

  /**
   * A route's options, resolved when the route was added; or, for a route added before our onRoute hook
   * existed (`app.register(graceful)` not awaited), resolved now — a bad value is logged, not thrown, since
   * throwing during a shutdown would lose the request.
   */
  function routeOptionsOf (request: FastifyRequest): ResolvedRouteOptions | undefined {
    const config = request.routeOptions.config as unknown as Config | undefined
    /* c8 ignore next - defensive: Fastify 5 sets routeOptions.config on every request, {} for its 404 */
    if (config === undefined) return undefined
    if (config[kResolved] !== undefined || config.graceful === undefined) return config[kResolved]
    try {
      return resolveRouteOptions(config.graceful, `route ${request.routeOptions.method as string} ${request.routeOptions.url as string}`)
    } catch (err) {
      graceful.log.error({ err }, 'graceful: bad per-route options ignored; await app.register(graceful) before adding routes to have them checked at start-up')
      return undefined
    }
  }
}

/**
 * The routes' drain options by method and URL, for requests the drain decides before Fastify routes them
 * (Fastify's own findRoute() does not return a route's config). Fed from onRoute into find-my-way, Fastify's
 * own router, with Fastify's matching options, so a request finds the route Fastify would give it. Routes
 * that differ only by a trailing slash or by a custom constraint share the options of the first one added.
 */
function routeTable (fastify: FastifyInstance): { add: (route: FastifyRouteOptions, options: ResolvedRouteOptions | undefined) => void, find: (req: IncomingMessage) => ResolvedRouteOptions | null | undefined } {
  // Fastify's router options as it resolved them (initialConfig's copies warn FSTDEP022 when read).
  const r = (fastifyInternal(fastify, 'fastify.options') as { routerOptions: Record<string, unknown> }).routerOptions
  // Custom constraint strategies too, but for those that derive asynchronously (a lookup would need a callback).
  const strategies = Object.entries((r.constraints ?? {}) as Record<string, FindMyWay.ConstraintStrategy<FindMyWay.HTTPVersion.V1>>)
    .filter(([, strategy]) => strategy.deriveConstraint.length < 3)
  // find-my-way's own (host, version) and the custom ones it can derive synchronously.
  const known = new Set(['host', 'version', ...strategies.map(([name]) => name)])
  const router = FindMyWay({
    // Fastify's prefixed '/' routes exist with and without the slash but reach onRoute once.
    ignoreTrailingSlash: true,
    ignoreDuplicateSlashes: r.ignoreDuplicateSlashes as boolean,
    caseSensitive: r.caseSensitive as boolean,
    maxParamLength: r.maxParamLength as number,
    useSemicolonDelimiter: r.useSemicolonDelimiter as boolean,
    constraints: Object.fromEntries(strategies),
    allowUnsafeRegex: true,
    defaultRoute: () => undefined,
    onBadUrl: () => undefined
  } as FindMyWay.Config<FindMyWay.HTTPVersion.V1>)
  return {
    add (route, options) {
      const constraints: Record<string, unknown> = {}
      for (const [name, value] of Object.entries(route.constraints ?? {})) {
        if (known.has(name)) constraints[name] = value
      }
      try {
        router.on(route.method as HTTPMethod | HTTPMethod[], route.url, { constraints }, (_req, _res, _params, store) => store, options ?? null)
      } catch {
        // Already there (a HEAD route Fastify added for a GET, a trailing slash twin): the first one stands.
      }
    },
    /** The options of the route `req` goes to; null for a route without any; undefined when no route matches. */
    find (req) {
      return router.lookup(req, null as never) as ResolvedRouteOptions | null | undefined
    }
  }
}

function secondaryServers (fastify: FastifyInstance): Server[] {
  return (fastifyInternal(fastify, 'fastify.serverBindings') as Server[]).filter((s) => s !== fastify.server)
}

/** A value Fastify 5 keeps under one of its own symbols on the instance (`Symbol(fastify.options)`, …). */
function fastifyInternal (fastify: FastifyInstance, description: string): unknown {
  const key = Object.getOwnPropertySymbols(fastify).find((s) => s.description === description) as symbol
  return (fastify as unknown as Record<symbol, unknown>)[key]
}

/** `app.register(graceful, options)`: graceful shutdown for Fastify 5. */
export const graceful = fp(plugin, { fastify: '5.x', name: '@graceful/fastify' })
export default graceful

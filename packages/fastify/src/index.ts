import type { Server } from 'node:net'
import type {
  FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions as FastifyRouteOptions
} from 'fastify'
import fp from 'fastify-plugin'
import { Graceful, REJECT_BODY, resolveRouteOptions, type GracefulOptions, type ResolvedRouteOptions } from '@graceful/core'

export type {
  GracefulOptions, HookContext, HookOptions, HookResult, Logger, Phase, RouteOptions, ShutdownReport
} from '@graceful/core'
export { Graceful, codes } from '@graceful/core'

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
  const graceful = new Graceful(options, {
    allow: REGISTER_OPTIONS,
    logger: fastify.log,
    listens: true,
    close: {
      name: 'fastify.close',
      fn: () => {
        if (frameworkClosing) return Promise.resolve()
        frameworkClosing = true
        return (originalClose as () => Promise<undefined>).call(fastify)
      }
    }
  })

  fastify.decorate('graceful', graceful)
  fastify.decorateRequest('shutdownSignal', {
    getter (this: FastifyRequest) {
      if (graceful.routeOf(this.raw) === undefined) {
        const route = routeOptionsOf(this)
        if (route !== undefined) graceful.setRoute(this.raw, route)
      }
      return graceful.signalFor(this.raw)
    }
  })

  fastify.addHook('onRoute', function gracefulOnRoute (route: FastifyRouteOptions) {
    const config = route.config as Config | undefined
    if (config?.graceful === undefined) return
    const resolved = resolveRouteOptions(config.graceful, `route ${String(route.method)} ${route.url}`)
    // Only routes with options pay for a hook: it tells the core the route of each request it tracks.
    const remember = function gracefulRoute (request: FastifyRequest, _reply: FastifyReply, next: HookHandlerDoneFunction) {
      graceful.setRoute(request.raw, resolved)
      next()
    }
    route.config = { ...config, [kResolved]: resolved } as typeof route.config
    route.onRequest = route.onRequest === undefined ? [remember] : [remember, ...[route.onRequest].flat()] as typeof route.onRequest
  })

  fastify.addHook('onRequest', function gracefulOnRequest (request, reply, next) {
    if (!graceful.closing) return next()
    if (graceful.admit(request.raw, reply.raw, routeOptionsOf(request))) return next()
    // Fastify's own return503OnClosing never sees this request: our drain runs before app.close().
    reply.code(503).headers(graceful.rejectHeaders(request.raw)).send(REJECT_BODY)
  })

  // With host 'localhost' Fastify listens on more than one address, each with a server of its own.
  fastify.addHook('onListen', function gracefulOnListen (next) {
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
  fastify.close = function gracefulClose (this: FastifyInstance, callback?: (err?: Error) => void) {
    const closed = graceful.shutdown('close').then(() => undefined)
    if (typeof callback === 'function') {
      closed.then(() => callback(), callback)
      return this
    }
    return closed
  } as FastifyInstance['close']

  graceful.attach(fastify.server)

  /**
   * A route's options, resolved when the route was added; or, for a route added before our onRoute hook
   * existed (`app.register(graceful)` not awaited), resolved now — a bad value is logged, not thrown,
   * since throwing during a shutdown would lose the request.
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

function secondaryServers (fastify: FastifyInstance): Server[] {
  const key = Object.getOwnPropertySymbols(fastify).find((s) => s.description === 'fastify.serverBindings')
  /* c8 ignore next 2 - defensive: Fastify 5 always keeps its servers in an array under this symbol */
  const servers = key === undefined ? undefined : (fastify as unknown as Record<symbol, unknown>)[key]
  return Array.isArray(servers) ? servers.filter((s) => s !== fastify.server) : []
}

/** `app.register(graceful, options)`: graceful shutdown for Fastify 5. */
export const graceful = fp(plugin, { fastify: '5.x', name: '@graceful/fastify' })
export default graceful

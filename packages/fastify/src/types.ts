import type { Graceful, RouteOptions } from '@graceful/core'

/**
 * The per-route options of `config.graceful`, named so as not to clash with Fastify's own `RouteOptions`.
 *
 * Fastify infers a route's `config` type from the object it is given, so `config.graceful` alone does not
 * catch a misspelt option (`serveDuringDrian` type-checks), and a value of the wrong type reads
 * "Type 'number' is not assignable to type 'never'". `satisfies` checks the object against this type first,
 * with TypeScript's usual messages ("'serveDuringDrian' does not exist in type 'RouteOptions'. Did you mean
 * to write 'serveDuringDrain'?"):
 *
 * ```ts
 * app.get('/metrics', { config: { graceful: { serveDuringDrain: true } satisfies GracefulRouteOptions } }, metrics)
 * ```
 */
export type GracefulRouteOptions = RouteOptions

declare module 'fastify' {
  interface FastifyInstance {
    /** The graceful instance: `phase`, `beforeDrain`, `afterDrain`, `shutdown()`, `attach()`, `isReady()`. */
    graceful: Graceful
  }
  interface FastifyRequest {
    /** Aborts when this request must wrap up: at the drain start (`abortOnDrain`) or at its deadline. */
    readonly shutdownSignal: AbortSignal
  }
  interface FastifyContextConfig {
    /**
     * Per-route drain behaviour; write `{ … } satisfies GracefulRouteOptions` to have a misspelt option
     * reported. (Not named `RouteOptions` here: inside `declare module 'fastify'` that name is Fastify's own
     * once another plugin, such as @fastify/websocket, augments its `RouteOptions`.)
     */
    graceful?: GracefulRouteOptions
  }
}

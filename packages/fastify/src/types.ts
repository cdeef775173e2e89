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

/**
 * `app.graceful`: the public members of the {@link Graceful} instance behind it, as a structural type rather
 * than the class. A program that loads both the ESM and the CommonJS types of this package (TypeScript files
 * beside `.cjs` ones) declares `app.graceful` once from each, and TypeScript accepts that only when both
 * types are identical, which two copies of a class with private fields never are (TS2717). The engine's
 * `_`-prefixed members are left out: they take the engine's private classes.
 */
export type FastifyGracefulInstance = {
  [K in keyof Graceful as K extends `_${string}` ? never : K]: Graceful[K] extends (...args: infer A) => Graceful ? (...args: A) => FastifyGracefulInstance : Graceful[K]
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The graceful instance: `phase`, `beforeDrain`, `afterDrain`, `shutdown()`, `attach()`, `isReady()`. */
    graceful: FastifyGracefulInstance
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

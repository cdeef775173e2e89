// What TypeScript catches in graceful's options, and what it cannot (test/types.test.ts checks every expected
// error's code and message; `pnpm typecheck` checks that each expected error is there). A line
// `// @ts-expect-error TSnnnn: text` expects an error with that code whose message contains the text on the
// next line; every other line must type-check.
import Fastify from 'fastify'
import fastifyGraceful, { type GracefulRouteOptions } from '@graceful/fastify'
import expressGraceful from '@graceful/express'

const app = Fastify()
const handler = async (): Promise<string> => 'ok'

// `satisfies GracefulRouteOptions`: a misspelt option or a wrong value is an error that says what is wrong.
app.get('/a', { config: { graceful: { serveDuringDrain: true, timeout: 1000, abortOnDrain: false } satisfies GracefulRouteOptions } }, handler)
// @ts-expect-error TS2561: 'serveDuringDrian' does not exist in type 'RouteOptions'. Did you mean to write 'serveDuringDrain'?
app.get('/b', { config: { graceful: { serveDuringDrian: true } satisfies GracefulRouteOptions } }, handler)
// @ts-expect-error TS2322: Type 'number' is not assignable to type 'boolean | undefined'.
app.get('/c', { config: { graceful: { serveDuringDrain: 1 } satisfies GracefulRouteOptions } }, handler)
// @ts-expect-error TS2322: Type 'string' is not assignable to type 'number'.
app.route({ method: 'GET', url: '/d', config: { graceful: { timeout: '5s' } satisfies GracefulRouteOptions }, handler })

// Options kept in a variable are checked where they are declared.
const metrics: GracefulRouteOptions = { serveDuringDrain: true }
app.get('/e', { config: { graceful: metrics } }, handler)
// @ts-expect-error TS2561: 'abortOnDrian' does not exist in type 'RouteOptions'. Did you mean to write 'abortOnDrain'?
const events: GracefulRouteOptions = { abortOnDrian: true }
app.get('/f', { config: { graceful: events } }, handler)

// Without `satisfies`, Fastify infers the route's config type from the object itself (its ContextConfig
// generic) and intersects it with ours: a misspelt option type-checks, and a wrong value reads 'never'.
// TypeScript offers no way for a plugin to change that; hence `satisfies`.
app.get('/g', { config: { graceful: { serveDuringDrian: true } } }, handler)
// @ts-expect-error TS2322: Type 'number' is not assignable to type 'never'.
app.get('/h', { config: { graceful: { serveDuringDrain: 1 } } }, handler)

// The plugin's and the middleware's own options are not inferred: a misspelt one is an error as it is.
// @ts-expect-error TS2769: 'timout' does not exist in type 'FastifyRegisterOptions<GracefulOptions>'
void app.register(fastifyGraceful, { timout: 10000 })
// @ts-expect-error TS2561: 'serveDuringDrian' does not exist in type 'RouteOptions'. Did you mean to write 'serveDuringDrain'?
expressGraceful({ routes: { 'GET /metrics': { serveDuringDrian: true } } })
// @ts-expect-error TS2322: Type 'string' is not assignable to type 'number'.
expressGraceful({ delay: '5s' })

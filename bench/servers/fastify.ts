// Bare Fastify: the baseline for the per-request and memory rows.
import Fastify from 'fastify'
import { HOST, config, fastifyRoutes, ready } from './common.js'

const app = Fastify({ logger: false })
// A reference for the per-request row: what one hook that does nothing costs.
if (config.noop) app.addHook('onRequest', (_request, _reply, done) => { done() })
// A reference too: what loading graceful's code costs each request, with nothing of it used.
if (config.load) await import('@graceful/fastify')
fastifyRoutes(app)
await app.listen({ port: 0, host: HOST })
ready(app.server)

// @graceful/fastify, as our README shows.
import Fastify from 'fastify'
import { graceful, type FastifyGracefulOptions } from '@graceful/fastify'
import { HOST, config, fastifyRoutes, firstHook, ready, secondHook } from './common.js'

const options: FastifyGracefulOptions = { logger: false, timeout: config.timeout, delay: config.delay }
if (config.probes) options.readiness = { path: '/readyz' }
if (config.pidFile !== undefined) options.restart = { pidFile: config.pidFile }

const app = Fastify({ logger: false })
await app.register(graceful, options)
if (config.hooks) {
  app.graceful.afterDrain(firstHook, { name: 'first' })
  app.graceful.afterDrain(secondHook, { name: 'second' })
}
fastifyRoutes(app, config.probes ? { config: { graceful: { serveDuringDrain: true } } } : {})
await app.listen({ port: 0, host: HOST })
ready(app.server)

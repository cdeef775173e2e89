// fastify-graceful-shutdown, as its README shows: register the plugin, add handlers with
// fastify.gracefulShutdown() inside fastify.after(), release resources in onClose hooks.
import Fastify from 'fastify'
import fastifyGracefulShutdown from 'fastify-graceful-shutdown'
import { HOST, config, fastifyRoutes, firstHook, ready, secondHook } from './common.js'

const app = Fastify({ logger: false })
await app.register(fastifyGracefulShutdown, { timeout: config.timeout })
if (config.hooks) {
  // The plugin's own handler fails; the onClose hook is the next cleanup step.
  app.after(() => { app.gracefulShutdown(async () => firstHook()) })
  app.addHook('onClose', async () => secondHook())
}
fastifyRoutes(app)
await app.listen({ port: 0, host: HOST })
ready(app.server)

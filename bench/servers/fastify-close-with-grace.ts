// Fastify's built-ins with close-with-grace, as close-with-grace's README shows for Fastify: the signal
// handler calls app.close(); Fastify answers 503 while closing (return503OnClosing) and closes idle
// connections (forceCloseConnections: 'idle'), both its defaults, spelled out. Cleanup goes in onClose hooks.
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import { HOST, config, fastifyRoutes, firstHook, ready, secondHook } from './common.js'

const app = Fastify({ logger: false, return503OnClosing: true, forceCloseConnections: 'idle' })
if (config.hooks) {
  app.addHook('onClose', async () => firstHook())
  app.addHook('onClose', async () => secondHook())
}
fastifyRoutes(app)
closeWithGrace({ delay: config.timeout, logger: false }, async function () {
  await app.close()
})
await app.listen({ port: 0, host: HOST })
ready(app.server)

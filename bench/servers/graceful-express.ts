// @graceful/express, as our README shows.
import express from 'express'
import { once } from 'node:events'
import { graceful, type ExpressGracefulOptions } from '@graceful/express'
import { HOST, config, expressRoutes, firstHook, ready, secondHook } from './common.js'

const options: ExpressGracefulOptions = { logger: false, timeout: config.timeout, delay: config.delay }
if (config.probes) {
  options.readiness = { path: '/readyz' }
  options.routes = { 'GET /healthz': { serveDuringDrain: true } }
}
if (config.pidFile !== undefined) options.restart = { pidFile: config.pidFile }

const g = graceful(options)
if (config.hooks) {
  g.afterDrain(firstHook, { name: 'first' })
  g.afterDrain(secondHook, { name: 'second' })
}
const app = express()
app.use(g)
expressRoutes(app)
const server = app.listen(0, HOST)
await once(server, 'listening')
ready(server)

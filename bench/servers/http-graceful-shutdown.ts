// http-graceful-shutdown with Express, as its README shows: gracefulShutdown(server, options).
import express from 'express'
import gracefulShutdown from 'http-graceful-shutdown'
import { once } from 'node:events'
import { HOST, config, expressRoutes, firstHook, ready, secondHook } from './common.js'

const app = express()
expressRoutes(app)
const server = app.listen(0, HOST)
await once(server, 'listening')
gracefulShutdown(server, {
  timeout: config.timeout,
  ...(config.hooks ? { onShutdown: async () => firstHook(), finally: () => secondHook() } : {})
})
ready(server)

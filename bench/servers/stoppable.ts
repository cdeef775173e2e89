// stoppable with Express, as its README shows: stoppable(http.createServer(app), grace). It handles no
// signal: the SIGTERM handler is the usual one around server.stop(), exiting 1 when it had to force.
import express from 'express'
import http from 'node:http'
import { once } from 'node:events'
import stoppable from 'stoppable'
import { HOST, config, expressRoutes, ready } from './common.js'

const app = express()
expressRoutes(app)
const server = stoppable(http.createServer(app), config.timeout)
server.listen(0, HOST)
await once(server, 'listening')
process.on('SIGTERM', () => {
  server.stop((err, gracefully) => process.exit(err != null || gracefully !== true ? 1 : 0))
})
ready(server)

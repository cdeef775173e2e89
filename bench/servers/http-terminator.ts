// http-terminator with Express, as its README shows. It handles no signal: the SIGTERM handler is the
// usual one around terminate(). terminate() does not say whether it had to cut anything, so it exits 0.
import express from 'express'
import { createHttpTerminator } from 'http-terminator'
import { once } from 'node:events'
import { HOST, config, expressRoutes, ready } from './common.js'

const app = express()
expressRoutes(app)
const server = app.listen(0, HOST)
await once(server, 'listening')
const httpTerminator = createHttpTerminator({ server, gracefulTerminationTimeout: config.timeout })
process.on('SIGTERM', () => {
  httpTerminator.terminate().then(() => process.exit(0), () => process.exit(1))
})
ready(server)

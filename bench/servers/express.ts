// Bare Express: the baseline for the per-request and memory rows.
import express from 'express'
import { once } from 'node:events'
import { HOST, config, expressRoutes, ready } from './common.js'

const app = express()
// A reference for the per-request row: what one middleware that does nothing costs.
if (config.noop) app.use((_req, _res, next) => { next() })
// A reference too: what loading graceful's code costs each request, with nothing of it used.
if (config.load) await import('@graceful/express')
expressRoutes(app)
const server = app.listen(0, HOST)
await once(server, 'listening')
ready(server)

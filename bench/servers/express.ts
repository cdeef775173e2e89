// Bare Express: the baseline for the per-request and memory rows.
import express from 'express'
import { once } from 'node:events'
import { HOST, expressRoutes, ready } from './common.js'

const app = express()
expressRoutes(app)
const server = app.listen(0, HOST)
await once(server, 'listening')
ready(server)

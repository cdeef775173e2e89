// @godaddy/terminus with Express, as its README shows: createTerminus(http.createServer(app), options).
// useExit0 so a clean shutdown exits 0 (without it the process re-raises the signal and dies by it); for
// the lame-duck time, the README's Kubernetes advice: a beforeShutdown that waits, and a health check.
import { createTerminus, type TerminusOptions } from '@godaddy/terminus'
import express from 'express'
import http from 'node:http'
import { once } from 'node:events'
import { HOST, config, expressRoutes, firstHook, ready, secondHook } from './common.js'

const app = express()
expressRoutes(app)
const server = http.createServer(app)
const options: TerminusOptions = { timeout: config.timeout, useExit0: true }
if (config.probes) options.healthChecks = { '/readyz': async () => {} }
if (config.delay > 0) options.beforeShutdown = () => new Promise((resolve) => setTimeout(resolve, config.delay))
if (config.hooks) {
  options.onSignal = async () => firstHook()
  options.onShutdown = async () => secondHook()
}
createTerminus(server, options)
server.listen(0, HOST)
await once(server, 'listening')
ready(server)

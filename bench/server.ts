// A hello-world server for the benchmarks, in its own process: `server.ts <kind>`; tells its port over IPC.
import express from 'express'
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { graceful as fastifyGraceful } from '@graceful/fastify'
import { graceful as expressGraceful } from '@graceful/express'

const kind = process.argv[2]
// With 'signals' the server drains on SIGTERM like an app would; without, it is a bare hello-world.
const signals = process.argv[3] === 'signals' ? undefined : false
let address: AddressInfo

if (kind === 'fastify' || kind === 'fastify+graceful') {
  const app = Fastify({ logger: false })
  if (kind === 'fastify+graceful') await app.register(fastifyGraceful, { logger: false, ...(signals === false ? { signals } : {}) })
  app.get('/', async () => ({ hello: 'world' }))
  app.get('/slow', async () => { await new Promise((resolve) => setTimeout(resolve, 100)); return { slow: true } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  address = app.server.address() as AddressInfo
} else if (kind === 'express' || kind === 'express+graceful') {
  const app = express()
  if (kind === 'express+graceful') app.use(expressGraceful({ logger: false, ...(signals === false ? { signals } : {}) }))
  app.get('/', (_req, res) => { res.json({ hello: 'world' }) })
  app.get('/slow', (_req, res) => { setTimeout(() => res.json({ slow: true }), 100) })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  address = server.address() as AddressInfo
} else {
  throw new Error(`unknown server kind ${String(kind)}`)
}
process.send?.({ port: address.port })
// The benchmark asks for the server's CPU time around a fixed number of requests: less sensitive to a
// noisy machine than requests/s alone.
process.on('message', (msg) => {
  if (msg === 'cpu') {
    const { user, system } = process.cpuUsage()
    process.send?.({ cpu: user + system })
  }
})

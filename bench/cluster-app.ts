// The app graceful-cluster runs in bench/cluster.ts: Fastify hello world with graceful, one per worker.
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { graceful } from '@graceful/fastify'

const app = Fastify({ logger: false })
await app.register(graceful, { logger: false })
app.get('/', async () => ({ hello: 'world' }))
await app.listen({ port: 0, host: '127.0.0.1' })
// The workers share the port; the primary (the benchmark) learns it from the first.
process.send?.({ port: (app.server.address() as AddressInfo).port })

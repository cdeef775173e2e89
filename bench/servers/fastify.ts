// Bare Fastify: the baseline for the per-request and memory rows.
import Fastify from 'fastify'
import { HOST, fastifyRoutes, ready } from './common.js'

const app = Fastify({ logger: false })
fastifyRoutes(app)
await app.listen({ port: 0, host: HOST })
ready(app.server)

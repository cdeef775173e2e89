// Prometheus metrics with prom-client on Fastify: /metrics is served during the drain (serveDuringDrain),
// so a scrape on an open connection still sees the shutdown; the gauges read graceful.stats() at each
// scrape; restarts are counted from the graceful:restart diagnostics channel.
import Fastify from 'fastify'
import graceful from '@graceful/fastify'
import { subscribe } from 'node:diagnostics_channel'
import { setTimeout as sleep } from 'node:timers/promises'
import { Counter, Gauge, Registry } from 'prom-client'
import type { AddressInfo } from 'node:net'
import type { RestartMessage } from '@graceful/core'

const app = Fastify({ logger: true })
await app.register(graceful, { timeout: 10_000 })

const registry = new Registry()
const PHASES = ['serving', 'lameduck', 'draining', 'cleanup', 'closed'] as const
new Gauge({
  name: 'graceful_phase',
  help: 'The shutdown phase: 1 for the current one',
  labelNames: ['phase'],
  registers: [registry],
  collect () {
    const { phase } = app.graceful.stats()
    for (const p of PHASES) this.set({ phase: p }, p === phase ? 1 : 0)
  }
})
new Gauge({
  name: 'graceful_in_flight_requests',
  help: 'Requests in flight, this scrape included',
  registers: [registry],
  collect () { this.set(app.graceful.stats().inFlight) }
})
new Gauge({
  name: 'graceful_open_connections',
  help: 'Open client connections',
  registers: [registry],
  collect () { this.set(app.graceful.stats().connections) }
})
// A restart that is refused or fails leaves this process serving: the count survives to the next scrape.
const restarts = new Counter({ name: 'graceful_restarts_total', help: 'Restart events', labelNames: ['event'], registers: [registry] })
subscribe('graceful:restart', (message) => { restarts.inc({ event: (message as RestartMessage).event }) })

// Each response during the drain says Connection: close: a scraper gets one answer per open connection.
app.get('/metrics', { config: { graceful: { serveDuringDrain: true } }, logLevel: 'warn' }, async (_request, reply) => {
  reply.type(registry.contentType)
  return registry.metrics()
})
app.get('/orders', { logLevel: 'warn' }, async (request) => {
  console.log('app: query started')
  await sleep(Number((request.query as { ms?: string }).ms ?? 10))
  return { rows: 1 }
})

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
process.send?.({ port: (app.server.address() as AddressInfo).port })

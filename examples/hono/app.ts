// Hono on @hono/node-server through @graceful/core. The drain works on the node:http server
// (graceful.attach), per-route options are matched on the raw request (routeTable), the probes are
// answered before Hono sees them (probe), and c.env.incoming carries the shutdownSignal.
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { getRequestListener, type HttpBindings } from '@hono/node-server'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Graceful, consoleLogger, probe, routeTable } from '@graceful/core'

const graceful = new Graceful({
  timeout: 10_000,
  readiness: { path: '/readyz' },
  liveness: { path: '/livez' },
  logger: consoleLogger()
}, {
  routeOf: routeTable({ 'GET /events': { abortOnDrain: true } })
})
graceful.afterDrain(async () => { console.log('app: pool closed') }, { name: 'close db pool' })

const app = new Hono<{ Bindings: HttpBindings }>()
app.get('/', (c) => c.json({ hello: 'world', phase: graceful.phase }))
app.get('/orders', async (c) => {
  console.log('app: query started')
  await sleep(Number(c.req.query('ms') ?? 10))
  console.log('app: query finished')
  return c.json({ rows: 1 })
})
app.get('/events', (c) => streamSSE(c, async (stream) => {
  // abortOnDrain: the signal aborts at the drain start, and the stream says goodbye.
  const signal = graceful.signalFor(c.env.incoming)
  await stream.writeSSE({ event: 'hello', data: '{}' })
  if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
  await stream.writeSSE({ event: 'bye', data: '{"reason":"server going away"}' })
}))

const hono = getRequestListener(app.fetch)
const server = http.createServer((req, res) => {
  if (!probe(graceful, req, res)) void hono(req, res)
})
graceful.attach(server)
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port })
})

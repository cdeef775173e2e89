// Koa through @graceful/core: Koa has no adapter of its own, it needs none. The drain works on the
// node:http server (graceful.attach), per-route options are matched on the raw request (routeTable),
// the probes are answered before Koa sees them (probe), and ctx.req carries the shutdownSignal.
import Koa from 'koa'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
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
// After the drain: no request can use the pool any more.
graceful.afterDrain(async () => { console.log('app: pool closed') }, { name: 'close db pool' })

const app = new Koa()
app.use(async (ctx) => {
  if (ctx.path === '/orders') {
    // ?ms= makes the query slow, to have a request in flight at SIGTERM.
    console.log('app: query started')
    await sleep(Number(ctx.query.ms ?? 10))
    console.log('app: query finished')
    ctx.body = { rows: 1 }
  } else if (ctx.path === '/events') {
    // abortOnDrain: the signal aborts at the drain start, and the stream says goodbye.
    const signal = graceful.signalFor(ctx.req)
    const stream = new PassThrough()
    ctx.type = 'text/event-stream'
    ctx.body = stream
    stream.write('event: hello\ndata: {}\n\n')
    signal.addEventListener('abort', () => stream.end('event: bye\ndata: {"reason":"server going away"}\n\n'), { once: true })
  } else {
    ctx.body = { hello: 'world', phase: graceful.phase }
  }
})

const koa = app.callback()
const server = http.createServer((req, res) => {
  if (!probe(graceful, req, res)) koa(req, res)
})
graceful.attach(server)
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port })
})

// A plain node:http (or node:https) server with @graceful/core, no framework: the whole lifecycle in a
// request listener. With TLS_KEY and TLS_CERT (PEM files) it serves HTTPS; the drain is the same.
import http from 'node:http'
import https from 'node:https'
import { readFileSync } from 'node:fs'
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

async function app (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost')
  if (url.pathname === '/orders') {
    console.log('app: query started')
    // The signal aborts at this request's deadline: stop waiting for the database then.
    await sleep(Number(url.searchParams.get('ms') ?? 10), undefined, { signal: graceful.signalFor(req) })
    console.log('app: query finished')
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"rows":1}')
  } else if (url.pathname === '/events') {
    // abortOnDrain: the signal aborts at the drain start, and the stream says goodbye.
    const signal = graceful.signalFor(req)
    res.writeHead(200, { 'content-type': 'text/event-stream' }).write('event: hello\ndata: {}\n\n')
    signal.addEventListener('abort', () => res.end('event: bye\ndata: {"reason":"server going away"}\n\n'), { once: true })
  } else {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ hello: 'world', phase: graceful.phase }))
  }
}

function listener (req: http.IncomingMessage, res: http.ServerResponse): void {
  if (probe(graceful, req, res)) return
  app(req, res).catch((err: unknown) => {
    if (!res.headersSent) res.writeHead(500)
    res.end()
    console.error(err)
  })
}

const tls = process.env.TLS_KEY !== undefined && process.env.TLS_CERT !== undefined
  ? { key: readFileSync(process.env.TLS_KEY), cert: readFileSync(process.env.TLS_CERT) }
  : null
const server = tls === null ? http.createServer(listener) : https.createServer(tls, listener)
graceful.attach(server)
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port })
})

// The demo's Fastify app: what a real service looks like with graceful.
import Fastify from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { graceful } from '@graceful/fastify'

const app = Fastify({ logger: { level: 'info' }, disableRequestLogging: true })

await app.register(graceful, {
  delay: 1000, // lame-duck: readiness says 503 while load balancers take us out
  timeout: 5000,
  readiness: { path: '/readyz' },
  liveness: { path: '/livez' },
  // SIGHUP: a successor takes over the socket, then this process drains (zero-downtime restart).
  restart: { pidFile: process.env.PID_FILE ?? '/tmp/graceful-demo.pid', timeout: 20_000 }
})

app.graceful.beforeDrain(async () => { await sleep(100) }, { name: 'deregister from service discovery' })
app.graceful.afterDrain(async () => { await sleep(150) }, { name: 'close database pool' })
app.graceful.afterDrain(async () => { await sleep(50) }, { name: 'flush metrics' })

app.get('/', async () => ({ hello: 'world', pid: process.pid }))

app.get('/slow', async () => {
  await sleep(200 + Math.floor(Math.random() * 400))
  return { slow: true }
})

app.get('/events', { config: { graceful: { abortOnDrain: true } } }, (request, reply) => {
  reply.hijack()
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
  const tick = setInterval(() => reply.raw.write(`data: ${Date.now()}\n\n`), 200)
  request.shutdownSignal.addEventListener('abort', () => {
    clearInterval(tick)
    reply.raw.end('event: bye\ndata: reconnect elsewhere\n\n')
  }, { once: true })
  request.raw.on('close', () => clearInterval(tick))
})

await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' })
// A successor's IPC channel belongs to its predecessor: only the first process reports its port.
if (process.env.GRACEFUL_RESTART_PARENT === undefined) process.send?.({ port: (app.server.address() as { port: number }).port })

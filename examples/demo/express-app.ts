// The demo's Express app: what a real service looks like with graceful.
import express from 'express'
import { setTimeout as sleep } from 'node:timers/promises'
import { graceful } from '@graceful/express'

const g = graceful({
  delay: 1000, // lame-duck: readiness says 503 while load balancers take us out
  timeout: 5000,
  readiness: { path: '/readyz' },
  liveness: { path: '/livez' },
  routes: { 'GET /events': { abortOnDrain: true } },
  // SIGHUP: a successor takes over the socket, then this process drains (zero-downtime restart).
  restart: { pidFile: process.env.PID_FILE ?? '/tmp/graceful-demo.pid', timeout: 20_000 }
})
g.beforeDrain(async () => { await sleep(100) }, { name: 'deregister from service discovery' })
g.afterDrain(async () => { await sleep(150) }, { name: 'close database pool' })
g.afterDrain(async () => { await sleep(50) }, { name: 'flush metrics' })

const app = express()
app.use(g)

app.get('/', (_req, res) => { res.json({ hello: 'world', pid: process.pid }) })

app.get('/slow', async (_req, res) => {
  await sleep(200 + Math.floor(Math.random() * 400))
  res.json({ slow: true })
})

app.get('/events', (req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
  const tick = setInterval(() => res.write(`data: ${Date.now()}\n\n`), 200)
  req.shutdownSignal.addEventListener('abort', () => {
    clearInterval(tick)
    res.end('event: bye\ndata: reconnect elsewhere\n\n')
  }, { once: true })
  req.on('close', () => clearInterval(tick))
})

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  // A successor's IPC channel belongs to its predecessor: only the first process reports its port.
  if (process.env.GRACEFUL_RESTART_PARENT === undefined) process.send?.({ port: (server.address() as { port: number }).port })
})

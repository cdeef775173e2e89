// An Express service run by systemd (graceful-app.service): `systemctl stop` sends SIGTERM, graceful
// drains, and the process exits with the report's code before TimeoutStopSec.
import express from 'express'
import type { AddressInfo } from 'node:net'
import graceful from '@graceful/express'

const g = graceful({
  // No load balancer health-checks us here (a reverse proxy on the same host retries on the next
  // upstream), so no lame-duck delay. Behind a health-checking balancer, set one and add it to TimeoutStopSec.
  delay: 0,
  timeout: 10_000,
  hookTimeout: 5000,
  // systemctl reload (SIGHUP): a successor takes over the socket, then this process drains. The successor
  // names itself in the pid file, which the unit's PIDFile= points at.
  restart: { pidFile: process.env.PID_FILE ?? '/run/graceful-app/app.pid', timeout: 30_000 }
})
g.afterDrain(async () => {
  // Close pools, flush queues (see examples/db-pool).
}, { name: 'close resources' })

const app = express()
app.use(g)
app.get('/', (_req, res) => { res.json({ hello: 'world', pid: process.pid }) })

// Behind a reverse proxy on the same host: listen on loopback only.
const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  // A successor's IPC channel belongs to its predecessor: only the first process reports its port.
  if (process.env.GRACEFUL_RESTART_PARENT === undefined) process.send?.({ port: (server.address() as AddressInfo).port })
})

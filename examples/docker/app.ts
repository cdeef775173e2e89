// A Fastify service for a container (Dockerfile). `docker stop` sends the image's STOPSIGNAL (SIGTERM) to
// PID 1 and SIGKILLs the container 10 s later (--stop-timeout / compose `stop_grace_period`), so the
// shutdown is sized to fit: delay 0 + timeout 5 s + hookTimeout 2 s × 1 hook (fastify.close) + margin < 10 s.
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import graceful from '@graceful/fastify'

const app = Fastify({ logger: true })
await app.register(graceful, { delay: 0, timeout: 5000, hookTimeout: 2000 })

app.get('/', async () => ({ hello: 'world', pid: process.pid }))

// 0.0.0.0: inside a container, loopback is not reachable through a published port.
await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '0.0.0.0' })
process.send?.({ port: (app.server.address() as AddressInfo).port })

// NestJS on Fastify (@nestjs/platform-fastify) with @graceful/fastify. graceful owns the signals; Nest's
// lifecycle hooks run in app.close(), called from an afterDrain hook: after every request in flight has
// finished, inside the shutdown's deadline. Per-route options: @RouteConfig({ graceful: { … } }).
import { NestFactory } from '@nestjs/core'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import graceful from '@graceful/fastify'
import type { AddressInfo } from 'node:net'
import { AppModule } from './app.module.js'

const app = await NestFactory.create<NestFastifyApplication>(
  AppModule,
  // graceful logs through Fastify's logger (pino); Nest's adapter turns it off unless asked.
  new FastifyAdapter({ logger: true, disableRequestLogging: true }),
  { logger: ['warn', 'error'] }
)
await app.register(graceful, { timeout: 10_000, readiness: { path: '/readyz' }, liveness: { path: '/livez' } })
// Not app.enableShutdownHooks(): see express.ts.
app.getHttpAdapter().getInstance().graceful.afterDrain(() => app.close(), { name: 'nest.close' })

await app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1')
process.send?.({ port: (app.getHttpServer().address() as AddressInfo).port })

// NestJS on Express (@nestjs/platform-express) with @graceful/express. graceful owns the signals; Nest's
// lifecycle hooks run in app.close(), called from an afterDrain hook: after every request in flight has
// finished, inside the shutdown's deadline.
import { NestFactory } from '@nestjs/core'
import type { NestExpressApplication } from '@nestjs/platform-express'
import graceful from '@graceful/express'
import type { AddressInfo } from 'node:net'
import { AppModule } from './app.module.js'

const app = await NestFactory.create<NestExpressApplication>(AppModule, { logger: ['warn', 'error'] })
const g = graceful({
  timeout: 10_000,
  readiness: { path: '/readyz' },
  liveness: { path: '/livez' },
  routes: { 'GET /events': { abortOnDrain: true } }
})
app.use(g) // before app.listen(), so it runs before Nest's routes
// Not app.enableShutdownHooks(): its own signal handlers would close the app at once, before the drain,
// and then re-send the signal, which graceful takes for a second signal (exit 1, requests cut).
g.afterDrain(() => app.close(), { name: 'nest.close' })

await app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1')
process.send?.({ port: (app.getHttpServer().address() as AddressInfo).port })

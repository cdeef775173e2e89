// One Nest app for both platforms (express.ts, fastify.ts). Plain constructor injection needs the
// decorator metadata that `tsc` emits with `emitDecoratorMetadata` and esbuild, tsx or Vitest do not: an
// explicit @Inject(token) works with every compiler.
import {
  Controller, Get, Inject, Injectable, Module, Query, Req, Sse,
  type BeforeApplicationShutdown, type MessageEvent, type OnApplicationShutdown, type OnModuleDestroy
} from '@nestjs/common'
import { RouteConfig } from '@nestjs/platform-fastify'
import { Observable } from 'rxjs'
import { setTimeout as sleep } from 'node:timers/promises'

/** Stands in for a database module: Nest closes it in its lifecycle hooks, which must run after the drain. */
@Injectable()
export class Database implements OnModuleDestroy, BeforeApplicationShutdown, OnApplicationShutdown {
  async query (ms: number): Promise<{ rows: number }> {
    console.log('app: query started')
    await sleep(ms)
    console.log('app: query finished')
    return { rows: 1 }
  }

  // Called by app.close() in graceful's afterDrain hook, so `signal` is undefined: the report has the reason.
  onModuleDestroy (): void { console.log('nest: onModuleDestroy') }
  beforeApplicationShutdown (): void { console.log('nest: beforeApplicationShutdown') }
  onApplicationShutdown (): void { console.log('nest: onApplicationShutdown') }
}

@Controller()
export class AppController {
  constructor (@Inject(Database) private readonly db: Database) {}

  @Get()
  hello (): { hello: string } {
    return { hello: 'world' }
  }

  /** ?ms= makes the query slow, to have a request in flight at SIGTERM. */
  @Get('orders')
  orders (@Query('ms') ms = '10'): Promise<{ rows: number }> {
    return this.db.query(Number(ms))
  }

  /**
   * Server-sent events that end politely with `event: bye` when the drain starts: the route is
   * `abortOnDrain` (Fastify: @RouteConfig below; Express: the `routes` option in express.ts), so
   * `shutdownSignal` aborts at the drain start. It is on the request on both platforms.
   */
  @Sse('events')
  @RouteConfig({ graceful: { abortOnDrain: true } })
  events (@Req() req: { shutdownSignal: AbortSignal }): Observable<MessageEvent> {
    return new Observable<MessageEvent>((subscriber) => {
      subscriber.next({ type: 'hello', data: { hello: 'world' } })
      req.shutdownSignal.addEventListener('abort', () => {
        subscriber.next({ type: 'bye', data: { reason: 'server going away' } })
        subscriber.complete()
      }, { once: true })
    })
  }
}

@Module({ controllers: [AppController], providers: [Database] })
export class AppModule {}

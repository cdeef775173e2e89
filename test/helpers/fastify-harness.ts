import Fastify from 'fastify'
import type { Socket } from 'node:net'
import { graceful } from '@graceful/fastify'
import { captureLogger, Holds, portOf, UPGRADE_RESPONSE, type Harness, type LogEntry, type StartOptions, type TestApp } from './harness.js'

export const fastifyHarness: Harness = {
  name: 'fastify',
  async start (opts: StartOptions = {}): Promise<TestApp> {
    const logs: LogEntry[] = []
    const holds = new Holds()
    const upgraded: Socket[] = []
    const app = Fastify({ logger: false })
    await app.register(graceful, { signals: false, logger: captureLogger(logs), ...opts.options })
    const config = (path: string) => opts.routes?.[path] === undefined ? {} : { config: { graceful: opts.routes[path] } }

    app.addContentTypeParser('*', function countBytes (_req, payload, done) {
      let bytes = 0
      payload.on('data', (chunk: Buffer) => { bytes += chunk.length })
      payload.on('end', () => done(null, bytes))
      payload.on('error', done)
    })

    app.get('/', config('/'), async () => 'hello')
    app.get('/health', config('/health'), async () => 'ok')
    app.get<{ Params: { id: string } }>('/hold/:id', config('/hold/:id'), async (request) => {
      await holds.hold(request.params.id, request.shutdownSignal)
      return `released ${request.params.id}`
    })
    app.get<{ Params: { id: string } }>('/stream/:id', config('/stream/:id'), (request, reply) => {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/plain' })
      reply.raw.write('first\n')
      holds.hold(request.params.id, request.shutdownSignal).then(() => reply.raw.end('last\n'), () => {})
    })
    app.get('/sse', config('/sse'), (request, reply) => {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
      reply.raw.write('data: hello\n\n')
      request.shutdownSignal.addEventListener('abort', () => reply.raw.end('event: bye\ndata: reconnect\n\n'), { once: true })
    })
    app.post('/upload', config('/upload'), async (request) => ({ bytes: request.body }))

    if (opts.upgrade === true) {
      app.server.on('upgrade', (_req, socket: Socket) => {
        socket.write(UPGRADE_RESPONSE)
        upgraded.push(socket)
      })
    }

    await app.listen({ port: 0, host: '127.0.0.1' })
    return {
      adapter: 'fastify',
      port: portOf(app.server),
      server: app.server,
      graceful: app.graceful,
      logs,
      entered: (id) => holds.entered(id),
      release: (id) => holds.release(id),
      signals: holds.signals,
      upgraded,
      async close () {
        await app.close()
      }
    }
  }
}

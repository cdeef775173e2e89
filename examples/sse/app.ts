// Server-sent events with Fastify. `abortOnDrain` aborts the stream's `request.shutdownSignal` the moment
// the drain starts; the handler then ends the stream with a last event, and the drain need not wait for a
// stream that would otherwise never end.
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import graceful from '@graceful/fastify'

const app = Fastify({ logger: true })
await app.register(graceful, { delay: 0, timeout: 10_000 })

app.get('/events', { config: { graceful: { abortOnDrain: true } } }, (request, reply) => {
  // Hijacked: we write the stream ourselves. graceful still tracks the request on the raw response.
  reply.hijack()
  reply.raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no' // nginx: do not buffer the stream
  })
  // `retry`: how long the browser's EventSource waits before it reconnects (to another instance, by then).
  reply.raw.write('retry: 1000\nevent: hello\ndata: {}\n\n')
  const tick = setInterval(() => reply.raw.write(`data: ${JSON.stringify({ now: Date.now() })}\n\n`), 1000)

  request.shutdownSignal.addEventListener('abort', () => {
    clearInterval(tick)
    reply.raw.end('event: bye\ndata: {"reason":"server going away"}\n\n')
  }, { once: true })
  // The client went away (or the response ended): stop ticking.
  reply.raw.on('close', () => clearInterval(tick))
})

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
process.send?.({ port: (app.server.address() as AddressInfo).port })

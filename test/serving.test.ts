// While serving, graceful does no per-request work: no wrapped 'request' listener, no framework hook, no
// listener on a request, a response or a plain HTTP connection. Each case compares a server with graceful and
// one without, side by side, from inside a request handler.
import t from 'tap'
import express from 'express'
import Fastify from 'fastify'
import { once } from 'node:events'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Server } from 'node:net'
import { Graceful } from '@graceful/core'
import { graceful as expressGraceful } from '@graceful/express'
import { graceful as fastifyGraceful } from '@graceful/fastify'
import { request } from './helpers/client.js'

/** What a handler sees of the listeners on its request, response and connection. */
interface Seen {
  req: Record<string, number>
  res: Record<string, number>
  socket: Record<string, number>
}

const EVENTS = ['close', 'finish', 'end', 'error', 'data', 'drain', 'timeout', 'aborted']

function count (emitter: NodeJS.EventEmitter): Record<string, number> {
  return Object.fromEntries(EVENTS.map((e) => [e, emitter.listenerCount(e)]))
}

function seen (req: IncomingMessage, res: ServerResponse): Seen {
  return { req: count(req), res: count(res), socket: count(req.socket) }
}

const portOf = (server: Server): number => (server.address() as AddressInfo).port

/** Two requests on one keep-alive connection (the second sees a connection that has served one before). */
async function twice (port: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  try {
    await request(port, agent, { path: '/seen' })
    await request(port, agent, { path: '/seen' })
  } finally {
    agent.destroy()
  }
}

t.test('core: an attached plain http server keeps its own request listener, and requests and connections carry no listener of ours', async (t) => {
  const results: Seen[][] = [[], []]
  const servers = [0, 1].map((i) => {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      results[i]?.push(seen(req, res))
      res.end('ok')
    }
    return { handler, server: http.createServer(handler) }
  })
  const g = new Graceful({ signals: false, logger: false })
  g.attach((servers[1] as { server: Server }).server)
  for (const { server } of servers) {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    await twice(portOf(server))
  }
  t.teardown(async () => {
    await g.shutdown()
    servers[0]?.server.close()
  })
  t.same(servers[1]?.server.listeners('request'), [servers[1]?.handler], 'the app\'s own listener, not wrapped')
  t.same(servers[1]?.server.listenerCount('connection'), servers[0]?.server.listenerCount('connection'), 'no connection listener of ours on plain HTTP')
  t.same(results[1], results[0], 'the same listeners on requests, responses and connections as without graceful')
})

const LIFECYCLE = ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'preSerialization', 'onSend', 'onResponse', 'onError', 'onTimeout', 'onRequestAbort']

/** The hooks Fastify will run for a request's route (its route context, kept under a symbol on the request). */
function hooksOf (request: object): Record<string, number> {
  const key = Object.getOwnPropertySymbols(request).find((s) => s.description === 'fastify.context') as symbol
  const context = (request as Record<symbol, Record<string, unknown[] | null>>)[key] ?? {}
  return Object.fromEntries(LIFECYCLE.map((h) => [h, context[h]?.length ?? 0]))
}

t.test('Fastify: no hook, no wrapped listener, and the same listeners on each request as plain Fastify', async (t) => {
  const results: Array<Array<Seen & { hooks: Record<string, number> }>> = [[], []]
  const apps = [Fastify({ logger: false }), Fastify({ logger: false })]
  await (apps[1] as ReturnType<typeof Fastify>).register(fastifyGraceful, { signals: false, logger: false, readiness: {}, liveness: {} })
  for (const [i, app] of apps.entries()) {
    app.get('/seen', async (request, reply) => {
      results[i]?.push({ ...seen(request.raw, reply.raw), hooks: hooksOf(request) })
      return 'ok'
    })
    app.get('/with-options', { config: { graceful: { serveDuringDrain: true, timeout: 100 } } } as never, async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    await twice(portOf(app.server))
  }
  const withPlugin = apps[1] as ReturnType<typeof Fastify>
  t.same(withPlugin.server.listeners('request'), [withPlugin.routing], 'Fastify\'s own request listener, not wrapped')
  t.same(results[1]?.[0]?.hooks, Object.fromEntries(LIFECYCLE.map((h) => [h, 0])), 'no hook runs for the route')
  t.same(results[1], results[0], 'the same hooks, and the same listeners on requests, responses and connections, as plain Fastify')
})

t.test('Express: the middleware adds no listener to a request, a response or a connection', async (t) => {
  const results: Seen[][] = [[], []]
  const g = expressGraceful({ signals: false, logger: false, readiness: {}, routes: { 'GET /x': { serveDuringDrain: true } } })
  t.teardown(() => g.shutdown())
  for (const i of [0, 1]) {
    const app = express()
    if (i === 1) app.use(g)
    app.get('/seen', (req, res) => {
      results[i]?.push(seen(req, res))
      res.send('ok')
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.teardown(() => { server.close() })
    await twice(portOf(server))
    t.same(server.listeners('request'), [app], 'the app\'s own request listener, not wrapped')
  }
  t.same(results[1], results[0], 'the same listeners on requests, responses and connections as without graceful')
})

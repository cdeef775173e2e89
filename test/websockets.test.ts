// WebSockets in the drain, in-process: Express with `ws` on the same server, Fastify with
// @fastify/websocket. Upgraded connections are tracked (the drain waits for them, the deadline destroys
// them); the documented beforeDrain hook closes them with 1001 and lets the drain end early.
import t, { type Test } from 'tap'
import express from 'express'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import { graceful as expressGraceful } from '@graceful/express'
import { graceful as fastifyGraceful } from '@graceful/fastify'
import type { GracefulOptions, ShutdownReport } from '@graceful/core'
import { captureLogger, type GracefulLike, type LogEntry } from './helpers/harness.js'
import { get, RawClient } from './helpers/client.js'
import { settleWithin } from './helpers/bounded.js'

// Proves "does not hang" only; machines are noisy.
const BOUND_MS = 5000
const bounded = <T>(promise: Promise<T>, what: string, ms = BOUND_MS): Promise<T> => settleWithin(promise, what, ms)

const GOING_AWAY = 1001

interface WsApp {
  port: number
  server: Server
  graceful: GracefulLike
  logs: LogEntry[]
  /** Server-side sockets of the connected clients. */
  clients (): Set<WebSocket>
  /** Fastify's app.close(), Express's shutdown(): how each framework's users stop. */
  close (): Promise<ShutdownReport>
}

interface Setup {
  options?: GracefulOptions
  /** The documented hook: close every client with 1001 at the start of the shutdown. */
  hook?: boolean
}

type Framework = 'express' | 'fastify'

/**
 * An app whose WebSocket endpoint (/ws) greets each client with 'hello', echoes, and sends clients that
 * connect once the shutdown has started away with 1001 — the recipes in docs/recipes.md.
 */
async function start (t: Test, framework: Framework, setup: Setup = {}): Promise<WsApp> {
  const logs: LogEntry[] = []
  const options: GracefulOptions = { signals: false, logger: captureLogger(logs), ...setup.options }
  const greet = (socket: WebSocket, g: GracefulLike): void => {
    if (g.phase !== 'serving') return socket.close(GOING_AWAY, 'server going away')
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
    socket.send('hello')
  }
  let app: WsApp
  if (framework === 'express') {
    const g = expressGraceful(options)
    const ex = express()
    ex.use(g)
    ex.get('/', (_req, res) => { res.send('hello') })
    const server = ex.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const wss = new WebSocketServer({ server, path: '/ws' })
    wss.on('connection', (socket) => greet(socket, g))
    if (setup.hook === true) {
      g.beforeDrain(() => {
        for (const client of wss.clients) client.close(GOING_AWAY, 'server going away')
      }, { name: 'close websockets' })
    }
    app = { port: (server.address() as AddressInfo).port, server, graceful: g, logs, clients: () => wss.clients, close: () => g.shutdown() }
  } else {
    const f = Fastify({ logger: false })
    await f.register(fastifyGraceful, options)
    await f.register(websocket)
    f.get('/', async () => 'hello')
    f.get('/ws', { websocket: true }, (socket) => greet(socket, f.graceful))
    if (setup.hook === true) {
      f.graceful.beforeDrain(() => {
        for (const client of f.websocketServer.clients) client.close(GOING_AWAY, 'server going away')
      }, { name: 'close websockets' })
    }
    await f.listen({ port: 0, host: '127.0.0.1' })
    app = {
      port: (f.server.address() as AddressInfo).port,
      server: f.server,
      graceful: f.graceful,
      logs,
      clients: () => f.websocketServer.clients,
      async close () {
        await f.close()
        return f.graceful.shutdown() // the same report: a second call returns the first shutdown's promise
      }
    }
  }
  t.teardown(() => app.close())
  return app
}

interface Client {
  ws: WebSocket
  /** Resolves with the close code and reason the client saw. */
  closed: Promise<{ code: number, reason: string }>
}

/** A `ws` client on /ws, resolved once the server's greeting has arrived. */
async function connect (t: Test, port: number): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
  ws.on('error', () => {})
  t.teardown(() => ws.terminate())
  const closed = once(ws, 'close').then(([code, reason]) => ({ code: code as number, reason: String(reason) }))
  const [greeting] = await bounded(once(ws, 'message'), 'the greeting') as [Buffer]
  t.equal(greeting.toString(), 'hello', 'connected and greeted')
  return { ws, closed }
}

const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'

for (const framework of ['express', 'fastify'] as const) {
  t.test(framework, async (t) => {
    t.test('the documented hook closes every client with 1001 at the shutdown start; the drain then ends early, exit code 0', async (t) => {
      const app = await start(t, framework, { hook: true, options: { timeout: 10_000 } })
      const clients = [await connect(t, app.port), await connect(t, app.port)]
      t.equal(app.clients().size, 2)
      clients[0]?.ws.send('echo')
      const [echo] = await bounded(once(clients[0]?.ws as WebSocket, 'message'), 'the echo') as [Buffer]
      t.equal(echo.toString(), 'echo', 'the connection works before the shutdown')
      const report = await bounded(app.close(), 'shutdown')
      for (const c of clients) {
        t.same(await bounded(c.closed, 'the client closing'), { code: GOING_AWAY, reason: 'server going away' }, 'the client sees 1001')
      }
      t.ok(report.durationMs < BOUND_MS, `the drain does not wait for the timeout (${report.durationMs} ms)`)
      t.match(report, { timedOut: false, destroyedSockets: 0, aborted: 0, exitCode: 0 })
      t.same(report.hooks.filter((h) => h.name === 'close websockets').map((h) => h.error), [undefined], 'the hook ran and passed')
    })

    t.test('without the hook, upgraded connections hold the drain until its deadline, then are destroyed', async (t) => {
      const app = await start(t, framework, { options: { timeout: 300 } })
      const client = await connect(t, app.port)
      const report = await bounded(app.close(), 'shutdown', 300 + BOUND_MS)
      t.match(report, { timedOut: true, destroyedSockets: 1, exitCode: 1 }, 'the drain waited for the connection, then destroyed it')
      t.equal((await bounded(client.closed, 'the client closing')).code, 1006, 'the client sees an abnormal closure, no close frame')
      t.ok(app.logs.some((l) => l.level === 'warn' && l.msg === 'graceful: drain deadline passed, cutting what is left'), 'the deadline is logged')
    })

    t.test('a client that ignores the close frame is destroyed at the deadline', async (t) => {
      const app = await start(t, framework, { hook: true, options: { timeout: 300 } })
      const client = await RawClient.connect(app.port)
      t.teardown(() => client.destroy())
      await client.write(UPGRADE)
      t.equal((await client.response()).status, 101)
      // 'hello' in a text frame: 0x81, its length, the text.
      t.equal((await client.bytes(7)).toString('latin1'), '\x81\x05hello')
      const report = await bounded(app.close(), 'shutdown', 300 + BOUND_MS)
      // The close frame it never answers: 0x88, its length, the code 1001 (0x03 0xe9), the reason.
      const frame = await client.bytes(2 + 2 + 'server going away'.length)
      t.equal(frame.toString('latin1'), '\x88\x13\x03\xe9server going away', 'the close frame with 1001 was sent')
      await bounded(client.closed, 'the connection closing')
      t.match(report, { timedOut: true, exitCode: 1 })
      t.ok(report.destroyedSockets >= 1, 'the connection is counted as destroyed')
    })

    t.test('a client that connects during the lame-duck delay is sent away with 1001; the drain then ends early', async (t) => {
      const app = await start(t, framework, { hook: true, options: { delay: 200, timeout: 10_000 } })
      const first = await connect(t, app.port)
      const shutdown = app.close()
      t.equal(app.graceful.phase, 'lameduck')
      // The listener stays open during the delay: this one connects after the hook ran.
      const late = new WebSocket(`ws://127.0.0.1:${app.port}/ws`)
      late.on('error', () => {})
      t.teardown(() => late.terminate())
      const [code, reason] = await bounded(once(late, 'close'), 'the late client closing') as [number, Buffer]
      t.same([code, reason.toString()], [GOING_AWAY, 'server going away'], 'the late client sees 1001 too')
      t.equal((await bounded(first.closed, 'the first client closing')).code, GOING_AWAY)
      const report = await bounded(shutdown, 'shutdown')
      t.ok(report.durationMs < BOUND_MS, `the drain does not wait for the timeout (${report.durationMs} ms)`)
      t.match(report, { timedOut: false, destroyedSockets: 0, exitCode: 0 })
    })

    t.test('plain HTTP on the same server is drained as usual beside the upgraded connections', async (t) => {
      const app = await start(t, framework, { hook: true, options: { timeout: 10_000 } })
      const ws = await connect(t, app.port)
      const http = await RawClient.connect(app.port)
      t.teardown(() => http.destroy())
      await http.write(get('/'))
      const res = await http.response()
      t.same([res.status, res.body.toString()], [200, 'hello'])
      const report = await bounded(app.close(), 'shutdown')
      t.equal((await bounded(ws.closed, 'the client closing')).code, GOING_AWAY)
      t.match(await bounded(http.closed, 'the idle HTTP connection closing'), { fin: true, reset: false })
      t.match(report, { timedOut: false, destroyedSockets: 0, exitCode: 0 })
    })
  })
}

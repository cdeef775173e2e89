// WebSockets with Fastify and @fastify/websocket. graceful tracks the upgraded connections: the drain waits
// for them and destroys what is left at its deadline. A beforeDrain hook closes every client politely with
// 1001 ("going away"), so clients reconnect to another instance. @fastify/websocket closes its clients
// itself only in Fastify's own close, which graceful runs after the drain: without the hook, the clients
// would hold the drain until the deadline.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import type { AddressInfo } from 'node:net'
import graceful from '@graceful/fastify'

const GOING_AWAY = 1001

const app = Fastify({ logger: true })
await app.register(graceful, {
  delay: 0,
  // How long clients get to answer the close frame; then their connections are destroyed.
  timeout: Number(process.env.GRACEFUL_TIMEOUT_MS ?? 10_000)
})
await app.register(websocket)

app.get('/', async () => ({ hello: 'world' }))

app.get('/ws', { websocket: true }, (socket) => {
  // A client that connects once the shutdown has started would not be in the hook's list: send it away too.
  if (app.graceful.phase !== 'serving') return socket.close(GOING_AWAY, 'server going away')
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
  socket.send('hello')
})

app.graceful.beforeDrain(() => {
  // The close handshake: each client answers with its own close frame, then ws ends the TCP connection and
  // the drain sees it go. A client that never answers is destroyed when `timeout` passes.
  for (const client of app.websocketServer.clients) client.close(GOING_AWAY, 'server going away')
}, { name: 'close websockets' })

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
process.send?.({ port: (app.server.address() as AddressInfo).port })

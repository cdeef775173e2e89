// WebSockets (the `ws` package) on the same HTTP server as an Express app. graceful tracks upgraded
// connections: the drain waits for them and destroys what is left at its deadline. A beforeDrain hook
// closes every client politely with 1001 ("going away"), so clients reconnect to another instance.
import express from 'express'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import graceful from '@graceful/express'

const GOING_AWAY = 1001

const g = graceful({
  delay: 0,
  // How long clients get to answer the close frame; then their connections are destroyed.
  timeout: Number(process.env.GRACEFUL_TIMEOUT_MS ?? 10_000)
})

const app = express()
app.use(g)
app.get('/', (_req, res) => { res.json({ hello: 'world' }) })

const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port })
})

// Same server, same port: ws answers the upgrade requests. graceful found the server through app.listen()
// and listens for upgrades beside ws, so each upgraded socket is tracked.
const wss = new WebSocketServer({ server })

wss.on('connection', (ws) => {
  // A client that connects once the shutdown has started would not be in the hook's list: send it away too.
  if (g.phase !== 'serving') return ws.close(GOING_AWAY, 'server going away')
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  ws.send('hello')
})

g.beforeDrain(() => {
  // The close handshake: each client answers with its own close frame, then ws ends the TCP connection and
  // the drain sees it go. A client that never answers is destroyed when `timeout` passes.
  for (const client of wss.clients) client.close(GOING_AWAY, 'server going away')
}, { name: 'close websockets' })

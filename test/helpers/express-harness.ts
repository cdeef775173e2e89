import express from 'express'
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { graceful } from '@graceful/express'
import { captureLogger, Holds, portOf, UPGRADE_RESPONSE, type Harness, type LogEntry, type StartOptions, type TestApp } from './harness.js'

export const expressHarness: Harness = {
  name: 'express',
  async start (opts: StartOptions = {}): Promise<TestApp> {
    const logs: LogEntry[] = []
    const holds = new Holds()
    const upgraded: Socket[] = []
    const g = graceful({ signals: false, logger: captureLogger(logs), ...opts.options, ...(opts.routes === undefined ? {} : { routes: opts.routes }) })
    const app = express()
    app.use(g)

    app.get('/', (_req, res) => { res.send('hello') })
    app.get('/health', (_req, res) => { res.send('ok') })
    app.get('/hold/:id', (req, res, next) => {
      const id = req.params.id
      holds.hold(id, req.shutdownSignal).then(() => res.send(`released ${id}`), next)
    })
    app.get('/stream/:id', (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first\n')
      holds.hold(req.params.id, req.shutdownSignal).then(() => res.end('last\n'), () => {})
    })
    app.get('/sse', (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
      res.write('data: hello\n\n')
      req.shutdownSignal.addEventListener('abort', () => res.end('event: bye\ndata: reconnect\n\n'), { once: true })
    })
    app.post('/upload', (req, res) => {
      let bytes = 0
      req.on('data', (chunk: Buffer) => { bytes += chunk.length })
      req.on('end', () => res.json({ bytes }))
    })

    const server: Server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    if (opts.upgrade === true) {
      server.on('upgrade', (_req, socket: Socket) => {
        socket.write(UPGRADE_RESPONSE)
        upgraded.push(socket)
      })
    }
    return {
      adapter: 'express',
      port: portOf(server),
      server,
      graceful: g,
      logs,
      entered: (id) => holds.entered(id),
      release: (id) => holds.release(id),
      signals: holds.signals,
      upgraded,
      async close () {
        await g.shutdown()
      }
    }
  }
}

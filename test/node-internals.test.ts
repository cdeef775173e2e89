// Each read of Node's own state in packages/core/src/node-internals.ts, checked against real servers and
// sockets: this file fails on a Node version that changes one of them. It runs on every supported version.
import t from 'tap'
import { once } from 'node:events'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import http2 from 'node:http2'
import net, { type AddressInfo, type Socket } from 'node:net'
import {
  activeResponse, arrivingConnections, httpConnections, lastParsed, onAssignSocket, quietSince, rewriteQueuedHead,
  sessionSocket, sessionStreams, streamResponse, timersNow
} from '../packages/core/src/node-internals.js'
import { RawClient, get } from './helpers/client.js'
import { until } from './helpers/drain.js'
import { deferred } from './helpers/harness.js'

const portOf = (server: net.Server): number => (server.address() as AddressInfo).port

t.test(`Node ${process.version}: an HTTP/1 server's connection list, its responses and its timers`, async (t) => {
  const held = new Map<string, ServerResponse>()
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/hold') === true) held.set(req.url, res)
    else res.end('ok')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const port = portOf(server)
  const accepted: Socket[] = []
  server.on('connection', (socket: Socket) => accepted.push(socket))

  const fresh = await RawClient.connect(port)
  const idle = await RawClient.connect(port)
  await idle.write(get('/'))
  await idle.response()
  const partial = await RawClient.connect(port)
  await partial.write('GET / HTTP/1.1\r\nHo')
  const piped = await RawClient.connect(port)
  await piped.write(get('/hold/1') + get('/hold/2'))
  for (const c of [fresh, idle, partial, piped]) t.teardown(() => c.destroy())
  await until(() => held.size === 2 && accepted.length === 4 && (accepted[2]?.bytesRead ?? 0) > 0, 'the server seeing all four')
  const [fs, is, ps, qs] = accepted as [Socket, Socket, Socket, Socket]

  t.same(new Set(httpConnections(server)), new Set(accepted), 'httpConnections: every connection')
  t.same([...arrivingConnections(server)], [ps], 'arrivingConnections: only the one with part of a request (not the silent one)')
  t.equal(activeResponse(qs), held.get('/hold/1'), 'activeResponse: the response being written')
  t.equal(activeResponse(is), null, 'activeResponse: none on an idle connection')
  t.equal(lastParsed(qs), held.get('/hold/2')?.req, 'lastParsed: the request queued behind')
  t.equal(lastParsed(fs), null, 'lastParsed: nothing on a connection that sent nothing')

  const now = timersNow()
  const since = quietSince(is)
  t.type(since, 'number', 'quietSince: the keep-alive timer of an idle connection')
  t.ok((since as number) <= now && now - (since as number) < 60_000, `on the timers' clock (${since} <= ${now})`)
  t.equal(quietSince(fs), undefined, 'quietSince: no timer on a connection that never had a request')
})

t.test(`Node ${process.version}: a pipelined response's buffered head can be rewritten before Node hands it its connection`, async (t) => {
  const responses: ServerResponse[] = []
  const first = deferred()
  const server = http.createServer((_req, res) => {
    responses.push(res)
    if (responses.length === 1) return first.resolve()
    res.end('second')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const assigned: Array<[ServerResponse, boolean]> = []
  const unhook = onAssignSocket((res) => {
    // Called before Node flushes the queued head: it can still be changed.
    assigned.push([res, rewriteQueuedHead(res, true)])
  })
  t.teardown(unhook)
  const c = await RawClient.connect(portOf(server))
  t.teardown(() => c.destroy())
  await c.write(get('/') + get('/'))
  await first.promise
  await until(() => responses.length === 2, 'the second request')
  const queued = responses[1] as ServerResponse
  t.equal(queued.socket, null, 'the second response is queued, its head built but not sent')
  responses[0]?.end('first')
  const [a, b] = await c.responses(2)
  t.equal(a?.headers.connection, 'keep-alive')
  t.equal(b?.headers.connection, 'close', 'the rewritten head went out')
  t.same(assigned.map(([res, ok]) => [res === queued, ok]), [[false, false], [true, true]],
    'the hook saw the first response as it arrived (no head yet to rewrite), then the queued one, whose rewrite took')
  await c.closed
  unhook()
  t.equal(rewriteQueuedHead(queued, false), false, 'a head already sent cannot be rewritten')
})

t.test(`Node ${process.version}: an HTTP/2 session's streams, their responses and its connection`, async (t) => {
  const answered = deferred<ServerResponse>()
  const server = http2.createServer((_req, res) => { answered.resolve(res as unknown as ServerResponse) })
  const sessions: http2.ServerHttp2Session[] = []
  server.on('session', (s) => sessions.push(s))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const client = http2.connect(`http://127.0.0.1:${portOf(server)}`)
  t.teardown(() => client.destroy())
  const stream = client.request({ ':path': '/' })
  stream.on('error', () => {})
  const res = await answered.promise
  const session = sessions[0] as http2.ServerHttp2Session
  const streams = sessionStreams(session)
  t.equal(streams.length, 1, 'sessionStreams: the open stream')
  t.equal(streamResponse(streams[0] as http2.Http2Stream), res, 'streamResponse: its compatibility response')
  const socket = sessionSocket(session)
  t.ok(socket instanceof net.Socket, 'sessionSocket: the connection itself, not the proxy')
  res.end('ok')
})

// What busy servers and hostile clients did to a shutdown, with real signals to forked fixture apps
// (test/fixtures/*-app.ts): connections waiting in the accept queue when the listener closes, and pipelined
// requests on connections the client resets, which once left phantom requests that held the drain.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import type { FixtureConfig, ReadyMessage } from './fixtures/fixture-common.js'
import { forkFixture, type Child } from './helpers/child.js'
import { RawClient, get } from './helpers/client.js'
import { settleWithin } from './helpers/bounded.js'

type Adapter = 'fastify' | 'express'
const ADAPTERS: Adapter[] = ['fastify', 'express']
// Generous: a forked child compiles TypeScript on a loaded 2-core machine. Only proves "no hang".
const BOUND_MS = 20_000
const bounded = <T>(promise: Promise<T>, what: string, ms = BOUND_MS): Promise<T> => settleWithin(promise, what, ms)

async function start (t: Test, adapter: Adapter, config: FixtureConfig = {}): Promise<{ child: Child, port: number }> {
  const child = forkFixture(t, `${adapter}-app.ts`, config)
  const ready = await child.message((m): m is ReadyMessage => 'port' in m)
  return { child, port: ready.port }
}

/** What became of one exchange: an HTTP status, or the error the connection failed with. */
function exchange (port: number, head: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let data = ''
    socket.on('connect', () => socket.write(head))
    socket.on('data', (chunk: Buffer) => { data += chunk.toString('latin1') })
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data)
      if (m !== null) resolve(m[1] as string)
      else resolve(data === '' ? 'closed without an answer' : `garbled: ${JSON.stringify(data.slice(0, 40))}`)
    })
  })
}

const POST = 'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello'
const BLOCK = 'GET /block?ms=400 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'

for (const adapter of ADAPTERS) {
  t.test(adapter, async (t) => {
    t.test('a POST on a connection waiting in the accept queue when the drain starts is answered, never reset', async (t) => {
      // The reproduction: delay 1000, a route that blocks the loop 400 ms requested at +800 ms, a new
      // connection and a POST at +900 ms: the POST waits in the kernel's accept queue while the loop is busy,
      // past the moment the drain (due at +1000) starts. Closing the listener then would reset it.
      for (let round = 1; round <= 3; round++) {
        const { child, port } = await start(t, adapter, { options: { delay: 1000, timeout: 5000 } })
        child.kill('SIGTERM')
        const sent = performance.now()
        const at = (ms: number, head: string): Promise<string> => new Promise((resolve) => {
          setTimeout(() => { exchange(port, head).then(resolve, resolve) }, Math.max(0, sent + ms - performance.now()))
        })
        const [blocked, posted] = await bounded(Promise.all([at(800, BLOCK), at(900, POST)]), 'both exchanges')
        t.equal(blocked, '200', `round ${round}: the blocking request is served (lame-duck time)`)
        t.ok(['200', '503', 'ECONNREFUSED'].includes(posted), `round ${round}: the POST is answered or refused, never reset (${posted})`)
        const exit = await bounded(child.exited, 'the exit')
        t.equal(exit.code, 0, `round ${round}: exit 0`)
      }
    })

    t.test('pipelined requests on connections the client resets leave no phantom: a later SIGTERM drains at once, runs the hooks and exits 0', async (t) => {
      // An interval only an afterDrain hook clears: skipping the hooks would keep the process alive.
      const { child, port } = await start(t, adapter, { options: { timeout: 10_000 }, keepAlive: true, hooks: true })
      for (let i = 0; i < 3; i++) {
        const c = await RawClient.connect(port)
        await c.write(get('/slow?ms=300') + get('/'))
        // Reset while the slow one is in flight and the second waits behind it.
        await new Promise((resolve) => setTimeout(resolve, 100))
        c.socket.resetAndDestroy()
        await once(c.socket, 'close')
      }
      // Both answers would have been written by now, into connections that are gone.
      const witness = await RawClient.connect(port)
      await witness.write(get('/slow?ms=400'))
      t.equal((await bounded(witness.response(), 'a request after them')).status, 200)
      witness.destroy()
      child.kill('SIGTERM')
      const exit = await bounded(child.exited, 'the exit', 5000)
      t.equal(exit.code, 0, 'exit 0')
      t.ok(exit.ms < 4000, `the drain did not wait for its 10 s timeout (${Math.round(exit.ms)} ms)`)
      t.ok(child.lines().includes('app1 interval cleared'), 'the afterDrain hooks ran')
      t.match(child.reports()[0], { inFlightAtStart: 0, aborted: 0, timedOut: false, exitCode: 0 })
    })
  })
}

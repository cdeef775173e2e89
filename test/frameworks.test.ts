// The framework examples (examples/nest, koa, hono, node-http) as users would run them: each is forked,
// put under keep-alive load with a slow request and an SSE stream in flight, sent a real SIGTERM, and must
// fail no request, end the stream politely, finish the slow request before the cleanup, and exit 0 with
// its report.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { request as httpsRequest } from 'node:https'
import { request, type IncomingMessage } from 'node:http'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { cleanExit, startExample, get } from './helpers/example.js'
import { startLoad } from './helpers/load.js'

t.setTimeout(120_000)

interface Framework {
  name: string
  file: string
  /** The report's hooks, in order. */
  hooks: string[]
  /** What the cleanup logs, in order, after the slow request has finished. */
  cleanup: string[]
}

const FRAMEWORKS: Framework[] = [
  {
    name: 'NestJS on Express',
    file: 'nest/express.ts',
    hooks: ['nest.close'],
    cleanup: ['nest: onModuleDestroy', 'nest: beforeApplicationShutdown', 'nest: onApplicationShutdown']
  },
  {
    name: 'NestJS on Fastify',
    file: 'nest/fastify.ts',
    hooks: ['nest.close', 'fastify.close'],
    cleanup: ['nest: onModuleDestroy', 'nest: beforeApplicationShutdown', 'nest: onApplicationShutdown']
  },
  { name: 'Koa', file: 'koa/app.ts', hooks: ['close db pool'], cleanup: ['app: pool closed'] },
  { name: 'Hono', file: 'hono/app.ts', hooks: ['close db pool'], cleanup: ['app: pool closed'] },
  { name: 'node:http', file: 'node-http/app.ts', hooks: ['close db pool'], cleanup: ['app: pool closed'] }
]

/** Opens the example's SSE stream and resolves once its first event has arrived. */
async function openStream (t: Test, port: number): Promise<{ ended: Promise<string> }> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/events', agent: false }, resolve)
    req.on('error', reject)
    req.end()
  })
  t.teardown(() => { res.destroy() })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  res.setEncoding('utf8')
  let body = ''
  let hello: () => void
  const greeted = new Promise<void>((resolve) => { hello = resolve })
  res.on('data', (chunk: string) => {
    body += chunk
    if (body.includes('event: hello')) hello()
  })
  const ended = once(res, 'end').then(() => body)
  await greeted
  return { ended }
}

t.test('frameworks under load at SIGTERM', { jobs: 2 }, async (t) => {
  for (const f of FRAMEWORKS) {
    t.test(`${f.name}: no request fails, the stream says bye, the slow request finishes before the cleanup, exit 0`, async (t) => {
      const { child, port } = await startExample(t, f.file)
      t.match(await get(port, '/readyz'), { status: 200, body: /"status":"ready"/ }, 'ready while serving')
      t.match(await get(port, '/livez'), { status: 200, body: /"status":"alive"/ })
      t.match(await get(port, '/'), { status: 200, body: /"hello":"world"/ })

      const stream = await openStream(t, port)
      const slow = get(port, '/orders?ms=1500')
      await child.waitFor(/app: query started/)
      const load = startLoad({ port, clients: 6, maxRequests: 100_000, maxMs: 15_000 })
      await load.reached(5)
      child.kill('SIGTERM')

      t.match(await stream.ended, /event: bye\n(?:id: \d+\n)?data: \{"reason":"server going away"\}\n\n$/, 'abortOnDrain: the stream ended with a last event')
      const answer = await slow
      t.match(answer, { status: 200, body: /"rows":1/ }, 'the request in flight at SIGTERM got its answer')
      t.equal(answer.headers.connection, 'close')
      const result = await load.done
      t.same(result.failures, [], 'no request failed')
      t.ok(result.ok >= 30, `the load was served (${result.ok} 200s, ${result.rejected} 503s)`)
      t.notOk(result.timedOut)

      const report = await cleanExit(t, child, f.hooks)
      t.ok((report?.inFlightAtStart ?? 0) >= 2, 'the slow request and the stream were in flight at the drain start')
      t.same(child.lines('app: query finished', ...f.cleanup), ['app: query finished', ...f.cleanup],
        'the cleanup ran after the request in flight had finished, in order')
    })
  }
})

t.test('node:https: the same app over TLS drains a request in flight and exits 0', async (t) => {
  const tls = fileURLToPath(new URL('./fixtures/tls/', import.meta.url))
  const { child, port } = await startExample(t, 'node-http/app.ts', { TLS_KEY: `${tls}key.pem`, TLS_CERT: `${tls}cert.pem` })
  const ca = readFileSync(`${tls}cert.pem`)
  const getTls = (path: string) => new Promise<{ status: number, body: string, connection: string | undefined }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode as number, body, connection: res.headers.connection }))
    })
    req.on('error', reject)
    req.end()
  })
  t.match(await getTls('/readyz'), { status: 200, body: /"status":"ready"/ })
  const slow = getTls('/orders?ms=1000')
  await child.waitFor(/app: query started/)
  child.kill('SIGTERM')
  t.match(await slow, { status: 200, body: '{"rows":1}', connection: 'close' })
  const report = await cleanExit(t, child, ['close db pool'])
  t.match(report, { inFlightAtStart: 1, completed: 1 })
})

// The metrics recipes (examples/prometheus, examples/opentelemetry) as users would run them: forked, scraped
// or exported from, sent a real SIGTERM with a request in flight. Both read graceful.stats() and the
// diagnostics channels.
import t from 'tap'
import { keepAliveAgent, request } from './helpers/client.js'
import { cleanExit, get, startExample } from './helpers/example.js'

t.setTimeout(60_000)

/** A sample's value in a Prometheus text exposition. */
function sample (body: string, name: string): number | undefined {
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(body)
  return m === null ? undefined : Number(m[1])
}

t.test('prometheus: /metrics shows the phase, the requests in flight and the connections, during the drain too', async (t) => {
  const { child, port } = await startExample(t, 'prometheus/app.ts')
  const agent = keepAliveAgent()
  t.teardown(() => { agent.destroy() })
  const scrape = () => request(port, agent, { path: '/metrics' })

  const first = await scrape()
  t.equal(first.status, 200)
  t.match(first.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(sample(first.body, 'graceful_phase{phase="serving"}'), 1)
  t.equal(sample(first.body, 'graceful_phase{phase="draining"}'), 0)
  t.equal(sample(first.body, 'graceful_in_flight_requests'), 1, 'the scrape itself')
  t.equal(sample(first.body, 'graceful_open_connections'), 1)

  const slow = get(port, '/orders?ms=1500')
  await child.waitFor(/app: query started/)
  const busy = await scrape()
  t.equal(sample(busy.body, 'graceful_in_flight_requests'), 2, 'the slow request and the scrape')
  t.equal(sample(busy.body, 'graceful_open_connections'), 2)

  child.kill('SIGTERM')
  // Back to back on the same connection, as a scraper that pools connections would: the first answer
  // after the shutdown started says Connection: close, and shows it.
  let during: Awaited<ReturnType<typeof scrape>> | undefined
  for (let i = 0; i < 10_000 && during === undefined; i++) {
    const r = await scrape()
    if (r.headers.connection === 'close') during = r
  }
  t.equal(during?.status, 200, 'served during the shutdown: serveDuringDrain')
  const phase = ['lameduck', 'draining'].find((p) => sample(during?.body ?? '', `graceful_phase{phase="${p}"}`) === 1)
  t.ok(phase !== undefined, `the phase is the shutdown's (${phase})`)
  t.equal(sample(during?.body ?? '', 'graceful_in_flight_requests'), 2, 'the slow request is still in flight')

  t.match(await slow, { status: 200, headers: { connection: 'close' } })
  await cleanExit(t, child, ['fastify.close'])
})

t.test('opentelemetry: the last export has the drain\'s duration and counts, then the process exits 0', async (t) => {
  const { child, port } = await startExample(t, 'opentelemetry/app.ts')
  t.match(await get(port, '/'), { status: 200 })
  const slow = get(port, '/orders?ms=1000')
  await child.waitFor(/app: query started/)
  child.kill('SIGTERM')
  t.match(await slow, { status: 200, headers: { connection: 'close' } })
  const report = await cleanExit(t, child, [])
  t.match(report, { inFlightAtStart: 1, completed: 1 })
  const line = child.lines('otel: ')[0]
  t.ok(line !== undefined, 'the exporter\'s last export is printed')
  const exported = JSON.parse((line ?? 'otel: {}').slice('otel: '.length)) as Record<string, unknown>
  t.match(exported, {
    'graceful.requests.in_flight': 0,
    'graceful.connections.open': 0,
    'graceful.requests.rejected': report?.rejected,
    'graceful.requests.aborted': 0,
    'graceful.drain.duration': { count: 1 }
  })
  const drain = exported['graceful.drain.duration'] as { sum: number }
  t.ok(drain.sum > 0 && drain.sum * 1000 <= (report?.durationMs ?? 0), `the drain took ${drain.sum} s, within the shutdown's ${report?.durationMs} ms`)
  t.notOk('graceful.restarts' in exported, 'no restart')
})

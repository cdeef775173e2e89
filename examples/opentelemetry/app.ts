// OpenTelemetry metrics on Express: gauges observed from graceful.stats(), the drain's duration and the
// report's rejected and aborted counts from the diagnostics channels, restarts from graceful:restart.
// The SDK's in-memory exporter stands in for OTLP: put yours in its place. With `exit: false` the process
// ends once the last export has gone out, with the report's exit code.
import express from 'express'
import graceful from '@graceful/express'
import { metrics } from '@opentelemetry/api'
import {
  AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader
} from '@opentelemetry/sdk-metrics'
import { subscribe } from 'node:diagnostics_channel'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PhaseMessage, ReportMessage, RestartMessage } from '@graceful/core'

const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const provider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 })] })
metrics.setGlobalMeterProvider(provider)
const meter = metrics.getMeter('graceful')

const g = graceful({ timeout: 10_000, exit: false })
const stats = () => g.instance.stats()
meter.createObservableGauge('graceful.requests.in_flight', { description: 'Requests in flight' })
  .addCallback((result) => result.observe(stats().inFlight))
meter.createObservableGauge('graceful.connections.open', { description: 'Open client connections' })
  .addCallback((result) => result.observe(stats().connections))
const drainDuration = meter.createHistogram('graceful.drain.duration', { unit: 's', description: 'From the drain start to the last request' })
const rejected = meter.createCounter('graceful.requests.rejected', { description: 'Requests answered 503 during a drain' })
const aborted = meter.createCounter('graceful.requests.aborted', { description: 'Requests cut at their drain deadline' })
const restarts = meter.createCounter('graceful.restarts', { description: 'Restart events' })

let drainStart = 0
subscribe('graceful:phase', (message) => {
  const { phase } = message as PhaseMessage
  if (phase === 'draining') drainStart = performance.now()
  if (phase === 'cleanup') drainDuration.record((performance.now() - drainStart) / 1000)
})
subscribe('graceful:restart', (message) => { restarts.add(1, { event: (message as RestartMessage).event }) })
subscribe('graceful:report', (message) => {
  const { report } = message as ReportMessage
  rejected.add(report.rejected)
  aborted.add(report.aborted)
  // The last export, then the process ends on its own.
  process.exitCode = report.exitCode
  provider.forceFlush().then(() => {
    console.log(`otel: ${JSON.stringify(summary())}`)
    return provider.shutdown()
  }).catch((err: unknown) => { console.error(err) })
})

/** What the exporter holds, as { name: value | { count, sum } }, for the test to read. */
function summary (): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const scope of exporter.getMetrics().at(-1)?.scopeMetrics ?? []) {
    for (const metric of scope.metrics) {
      for (const point of metric.dataPoints) {
        const value = point.value as number | { count: number, sum?: number }
        out[metric.descriptor.name] = typeof value === 'number' ? value : { count: value.count, sum: value.sum }
      }
    }
  }
  return out
}

const app = express()
app.use(g)
app.get('/', (_req, res) => { res.json({ hello: 'world' }) })
app.get('/orders', async (req, res) => {
  console.log('app: query started')
  await sleep(Number(req.query.ms ?? 10))
  res.json({ rows: 1 })
})
const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port })
})

// A Fastify service for Kubernetes: a lame-duck delay while the pod's endpoints are removed, readiness and
// liveness probes, and a start-up check that terminationGracePeriodSeconds covers the whole shutdown.
// See deployment.yaml and docs/recipes.md.
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import graceful from '@graceful/fastify'
import { checkGracePeriod } from './grace-period.js'

// Time for kube-proxy, ingress controllers and cloud load balancers to stop sending traffic here once the
// pod is terminating. Everything is served as usual meanwhile; only /readyz answers 503.
const delay = Number(process.env.GRACEFUL_DELAY_MS ?? 5000)
const timeout = 10_000
const hookTimeout = 5000

const app = Fastify({ logger: true })
await app.register(graceful, {
  delay,
  timeout,
  hookTimeout,
  readiness: { path: '/readyz' },
  liveness: { path: '/livez' }
})

app.graceful.afterDrain(async () => {
  // Flush buffered metrics, close pools, … (see examples/db-pool).
}, { name: 'flush metrics' })

// Our one afterDrain hook, plus Fastify's own close, which graceful runs as a hook too.
const hooks = 2
const warning = checkGracePeriod({ delay, timeout, hookTimeout, hooks })
if (warning !== null) app.log.warn({ requiredSeconds: warning.requiredSeconds, given: warning.given }, warning.message)

app.get('/', async () => ({ hello: 'world', phase: app.graceful.phase }))

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '0.0.0.0' })
process.send?.({ port: (app.server.address() as AddressInfo).port })

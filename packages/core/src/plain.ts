// What a user of the core without an adapter (node:http, Koa, Hono, …) would otherwise write: per-route
// options matched on the raw request, and the readiness and liveness answers the adapters give.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createError, describe } from './errors.js'
import type { Graceful } from './graceful.js'
import { isPlainObject, resolveRouteOptions, type Logger, type ResolvedRouteOptions, type RouteOptions } from './options.js'

/** `routeOf` for `new Graceful(options, { routeOf })`. */
export type RouteOf = (req: IncomingMessage) => ResolvedRouteOptions | undefined

interface CompiledRoute {
  method: string | null
  /** Lower-cased segments; `null` is a `:name` segment. */
  segments: Array<string | null>
  /** The last segment was `*`: one or more segments more. */
  rest: boolean
  options: ResolvedRouteOptions
}

const METHOD = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|CONNECT|ALL) +(\S+)$/i
// A literal segment: what a client sends unencoded, plus '%' for percent-encoded bytes, compared raw.
const LITERAL = /^[A-Za-z0-9\-._~!$&'()+,;=@%]+$/

/**
 * Per-route options keyed by `'[METHOD ]/path'`, matched on `req.method` and the raw path of `req.url`,
 * the way the adapters match theirs, without a router: literal segments, `:name` for any one segment, and
 * a last `*` for one or more segments. Case-insensitive, one trailing slash allowed; `GET` also matches
 * `HEAD`, no method or `ALL` every method; the first key that matches wins. Every key and value is checked
 * here, at start-up.
 *
 *   new Graceful(options, { routeOf: routeTable({ 'GET /metrics': { serveDuringDrain: true }, '/events/*': { abortOnDrain: true } }) })
 */
export function routeTable (routes: Record<string, RouteOptions>): RouteOf {
  if (!isPlainObject(routes)) throw createError('GRACEFUL_ERR_ROUTES', [describe(routes)])
  const table = Object.entries(routes).map(([key, value]) => compile(key, value))
  return function routeOf (req) {
    const path = pathOf(req.url)
    for (const route of table) {
      if (route.method !== null && route.method !== req.method && !(route.method === 'GET' && req.method === 'HEAD')) continue
      if (matches(route, path)) return route.options
    }
    return undefined
  }
}

function compile (key: string, value: unknown): CompiledRoute {
  const m = METHOD.exec(key)
  const method = m === null ? null : (m[1] as string).toUpperCase()
  const path = m === null ? key : m[2] as string
  const bad = (why: string): never => { throw createError('GRACEFUL_ERR_ROUTE_TABLE_KEY', [key, why]) }
  if (path[0] !== '/') bad('the path must start with /')
  const parts = path === '/' ? [] : path.slice(1).replace(/\/$/, '').split('/')
  const segments: Array<string | null> = []
  let rest = false
  parts.forEach((part, i) => {
    if (part === '*') {
      if (i !== parts.length - 1) bad('* may only be the last segment')
      rest = true
    } else if (part[0] === ':') {
      if (!/^:\w+$/.test(part)) bad(`'${part}' is not a :name segment`)
      segments.push(null)
    } else if (!LITERAL.test(part)) {
      bad(`'${part}' is not a literal segment (letters, digits, -._~!$&'()+,;=@%)`)
    } else {
      segments.push(part.toLowerCase())
    }
  })
  return { method: method === 'ALL' ? null : method, segments, rest, options: resolveRouteOptions(value, `route '${key}'`) }
}

function matches (route: CompiledRoute, path: string): boolean {
  const parts = path === '/' ? [] : path.slice(1).replace(/\/$/, '').split('/')
  const n = route.segments.length
  if (route.rest ? parts.length <= n : parts.length !== n) return false
  for (let i = 0; i < n; i++) {
    const want = route.segments[i]
    const part = parts[i] as string
    if (part === '' || (want !== null && want !== part.toLowerCase())) return false
  }
  return !route.rest || parts.slice(n).every((p) => p !== '')
}

function pathOf (url: string | undefined): string {
  /* c8 ignore next - defensive: node:http always sets req.url; its type only says optional */
  if (url === undefined) return '/'
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/**
 * Answers the readiness and liveness probes configured on `graceful` (`readiness`, `liveness` options) the
 * way the Express middleware does: JSON `{ status, phase }`, `cache-control: no-store`, readiness 200 while
 * serving and `check` passes, 503 from the first moment of the shutdown; liveness 200. Returns true when
 * `req` was a probe and has been answered, false (having done nothing) otherwise.
 *
 *   http.createServer((req, res) => { if (probe(graceful, req, res)) return; … })
 */
export function probe (graceful: Graceful, req: IncomingMessage, res: ServerResponse): boolean {
  const { readiness, liveness } = graceful.options
  if (readiness === null && liveness === null) return false
  const path = pathOf(req.url)
  const isReadiness = readiness !== null && path === readiness.path
  if (!isReadiness && (liveness === null || path !== liveness.path)) return false
  const answer = (ok: boolean): void => {
    const body = JSON.stringify({ status: isReadiness ? (ok ? 'ready' : 'unavailable') : 'alive', phase: graceful.phase })
    res.writeHead(ok ? 200 : 503, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store'
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
  if (isReadiness) graceful.isReady().then(answer)
  else answer(true)
  return true
}

/**
 * A logger for `options.logger` when the app has no pino: one line per entry, the message then its
 * fields as JSON (`graceful: shutdown complete {"report":{…}}`), errors with their stack. The same lines
 * the Express middleware prints by default. `console`'s own methods take `(obj, msg)` the wrong way round.
 */
export function consoleLogger (): Logger {
  const line = (obj: object, msg: string | undefined): string => `${msg ?? ''} ${JSON.stringify(obj, errorReplacer)}`
  return {
    info: (obj, msg) => console.info(line(obj, msg)),
    warn: (obj, msg) => console.warn(line(obj, msg)),
    error: (obj, msg) => console.error(line(obj, msg))
  }
}

function errorReplacer (_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value
}

import { format, inspect } from 'node:util'

/**
 * Every error this library throws, in the style of `@fastify/error`: one code, one `%s` message.
 * Option errors are `TypeError`s thrown when the plugin or middleware is created, never at shutdown.
 */
export const codes = {
  GRACEFUL_ERR_OPTIONS: { base: TypeError, message: "options must be an object, instead got '%s'" },
  GRACEFUL_ERR_OPTIONS_UNREADABLE: { base: TypeError, message: "options could not be read: reading them threw '%s' (a getter or a Proxy); pass a plain object of plain values" },
  GRACEFUL_ERR_OPTION_UNKNOWN: { base: TypeError, message: "unknown option '%s': expected one of %s" },
  GRACEFUL_ERR_TIMEOUT: { base: TypeError, message: "option 'timeout' must be a finite number of ms >= 0, instead got '%s'" },
  GRACEFUL_ERR_DELAY: { base: TypeError, message: "option 'delay' must be a finite number of ms >= 0, instead got '%s'" },
  GRACEFUL_ERR_HOOK_TIMEOUT: { base: TypeError, message: "option 'hookTimeout' must be a finite number of ms > 0, instead got '%s'" },
  GRACEFUL_ERR_SIGNALS: { base: TypeError, message: "option 'signals' must be false or a non-empty array of signal names such as 'SIGTERM', instead got '%s'" },
  GRACEFUL_ERR_EXIT: { base: TypeError, message: "option 'exit' must be a boolean, instead got '%s'" },
  GRACEFUL_ERR_RETRY_AFTER: { base: TypeError, message: "option 'retryAfter' must be false or a whole number of seconds >= 0, instead got '%s'" },
  GRACEFUL_ERR_READINESS: { base: TypeError, message: "option 'readiness' must be false or { path?: '/…', check?: function }, the path literal (letters, digits, /-._~!$&'()+,;=@), instead got '%s'" },
  GRACEFUL_ERR_LIVENESS: { base: TypeError, message: "option 'liveness' must be false or { path?: '/…' }, the path literal (letters, digits, /-._~!$&'()+,;=@) and not readiness's, instead got '%s'" },
  GRACEFUL_ERR_LOGGER: { base: TypeError, message: "option 'logger' must be false or an object with info, warn and error functions, instead got '%s'" },
  GRACEFUL_ERR_RESTART: { base: TypeError, message: "option 'restart' must be false, true or { signal?, timeout?, pidFile? }, instead got '%s'" },
  GRACEFUL_ERR_RESTART_SIGNAL: { base: TypeError, message: "option 'restart' restarts on %s, which option 'signals' also names (%s): one signal cannot both restart and shut down; take it out of 'signals' or give 'restart' another signal, instead got '%s'" },
  GRACEFUL_ERR_PID_FILE: { base: TypeError, message: "option 'restart' has a pidFile that cannot work safely: %s; instead got '%s'" },
  GRACEFUL_ERR_ROUTES: { base: TypeError, message: "option 'routes' must be an object of per-route options keyed by '[METHOD ]/path', instead got '%s'" },
  GRACEFUL_ERR_ROUTE_KEY: { base: TypeError, message: "option 'routes' has a bad key '%s': %s; expected '[METHOD ]/path' in Express path syntax" },
  GRACEFUL_ERR_ROUTE_TABLE_KEY: { base: TypeError, message: "routeTable() has a bad key '%s': %s; expected '[METHOD ]/path' with literal segments, ':name' for one segment and a last '*' for the rest" },
  GRACEFUL_ERR_ROUTE_OPTION: { base: TypeError, message: "per-route option %s, instead got '%s'" },
  GRACEFUL_ERR_HOOK: { base: TypeError, message: '%s expects a function, instead got \'%s\'' },
  GRACEFUL_ERR_HOOK_OPTIONS: { base: TypeError, message: "%s options must be { name?: string, timeout?: ms > 0 }, instead got '%s'" },
  GRACEFUL_ERR_SERVER: { base: TypeError, message: "attach expects an http, https or http2 server, instead got '%s'" },
  GRACEFUL_ERR_ALREADY_ATTACHED: { base: Error, message: 'this server is already drained by another graceful instance' },
  GRACEFUL_ERR_HOOK_TIMEOUT_EXCEEDED: { base: Error, message: "hook '%s' did not settle within %s ms" },
  GRACEFUL_ERR_SHUTTING_DOWN: { base: Error, message: 'cannot %s: the shutdown has already started (phase %s)' },
  GRACEFUL_ERR_CLUSTER_OPTION: { base: TypeError, message: "graceful-cluster option '%s' must be %s, instead got '%s'" },
  GRACEFUL_ERR_CLUSTER_FLAG: { base: TypeError, message: "graceful-cluster flag '%s' must be %s, instead got '%s'" },
  GRACEFUL_ERR_CLUSTER_FLAG_UNKNOWN: { base: TypeError, message: "graceful-cluster: unknown flag '%s': expected --workers, --ready-timeout, --kill-timeout or --help before the app's path" },
  GRACEFUL_ERR_CLUSTER_APP: { base: TypeError, message: "graceful-cluster: the app '%s' does not exist: node would look for %s (a file, with .js, .json or .node added, or a folder's package.json main or index.js)" },
  GRACEFUL_ERR_CLUSTER_NO_APP: { base: TypeError, message: "graceful-cluster: no app to run, instead got '%s': graceful-cluster [--workers N] [--ready-timeout ms] [--kill-timeout ms] app.js [args…]" }
} as const

export type ErrorCode = keyof typeof codes

export interface GracefulError extends Error {
  code: ErrorCode
}

const NOT_JSON = Symbol('not JSON')

/**
 * Renders a value for an error message: as JSON where JSON shows it faithfully, else as util.inspect
 * does (functions, NaN, Infinity, symbols, cycles), so nothing is silently dropped from what we show.
 */
export function describe (value: unknown): string {
  try {
    const json = JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint' || v === undefined ||
          (typeof v === 'number' && !Number.isFinite(v)) || (v instanceof Map) || (v instanceof Set)) throw NOT_JSON
      return v
    })
    if (json !== undefined) return json
  } catch {
    // NOT_JSON or a cycle: inspect shows both.
  }
  return inspect(value, { depth: 3, breakLength: Infinity, compact: true })
}

export function createError (code: ErrorCode, args: unknown[], options?: { cause?: unknown }): GracefulError {
  const { base, message } = codes[code]
  const err = new base(format(message, ...args), options) as GracefulError
  err.code = code
  return err
}

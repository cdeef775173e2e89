import { format, inspect } from 'node:util'

/**
 * graceful-check's error codes, in the style of `@graceful/core`'s table (`@fastify/error`: one code, one `%s`
 * message, a base class). A table of its own rather than rows in core's: the check runs against apps that
 * do not use graceful at all, so it carries no runtime dependency on `@graceful/core`.
 *
 * The `TypeError`s are thrown by `check()` and `parseArgs()` before anything starts. The others are never
 * thrown: they are the `code` of `CheckResult.error` when the app could not be checked at all.
 */
export const codes = {
  GRACEFUL_ERR_CHECK_OPTIONS: { base: TypeError, message: "check() options must be an object, instead got '%s'" },
  GRACEFUL_ERR_CHECK_OPTION_UNKNOWN: { base: TypeError, message: "unknown check() option '%s': expected one of %s" },
  GRACEFUL_ERR_CHECK_OPTION: { base: TypeError, message: "check() option '%s' must be %s, instead got '%s'" },
  GRACEFUL_ERR_CHECK_TARGET: { base: TypeError, message: 'check() needs exactly one app: command, pid or child, instead got %s' },
  GRACEFUL_ERR_CHECK_FLAG: { base: TypeError, message: "graceful-check flag '%s' must be %s, instead got '%s'" },
  GRACEFUL_ERR_CHECK_FLAG_UNKNOWN: { base: TypeError, message: "graceful-check: unknown flag '%s' (graceful-check --help lists them; the app's command goes after --)" },
  GRACEFUL_ERR_CHECK_NO_APP: { base: TypeError, message: "graceful-check: %s, instead got '%s': graceful-check [options] -- command [args…], or graceful-check [options] --pid PID" },
  GRACEFUL_ERR_CHECK_START: { base: Error, message: '%s' },
  GRACEFUL_ERR_CHECK_PORT: { base: Error, message: '%s' },
  GRACEFUL_ERR_CHECK_INTERRUPTED: { base: Error, message: '%s' }
} as const

export type CheckErrorCode = keyof typeof codes

export interface CheckError extends Error {
  code: CheckErrorCode
}

const NOT_JSON = Symbol('not JSON')

/** A value as an error message shows it: JSON where JSON is faithful, else util.inspect. */
export function describe (value: unknown): string {
  try {
    const json = JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint' || v === undefined ||
          (typeof v === 'number' && !Number.isFinite(v))) throw NOT_JSON
      return v
    })
    if (json !== undefined) return json
  } catch {
    // NOT_JSON or a cycle: inspect shows both.
  }
  return inspect(value, { depth: 2, breakLength: Infinity, compact: true })
}

export function createError (code: CheckErrorCode, args: unknown[]): CheckError {
  const { base, message } = codes[code]
  const err = new base(format(message, ...args)) as CheckError
  err.code = code
  return err
}

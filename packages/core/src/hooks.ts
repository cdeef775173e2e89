import { createError, describe } from './errors.js'
import { isMs, isPlainObject } from './options.js'

export interface HookContext {
  /** Why the shutdown started: a signal name, `'shutdown'`, `'close'`, `'restart'`, … */
  reason: string
  /** Aborts when the hook passes its timeout, so it can stop its own work. */
  signal: AbortSignal
}

export type HookFn = (context: HookContext) => unknown

export interface HookOptions {
  /** Shown in the report and the logs. @default the function's name, or `beforeDrain#1` */
  name?: string
  /** ms this hook may run. @default the instance's `hookTimeout` */
  timeout?: number
}

export interface Hook {
  name: string
  fn: HookFn
  timeout: number | null
}

export interface HookResult {
  name: string
  ms: number
  error?: string
}

const TIMED_OUT = Symbol('timed out')

export function createHook (kind: string, index: number, fn: unknown, options: unknown): Hook {
  if (typeof fn !== 'function') throw createError('GRACEFUL_ERR_HOOK', [kind, describe(fn)])
  if (options === undefined) options = {}
  const o = options as Record<string, unknown>
  if (!isPlainObject(options) || Object.keys(o).some((k) => k !== 'name' && k !== 'timeout') ||
      (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0)) ||
      (o.timeout !== undefined && !isMs(o.timeout, 0, true))) {
    throw createError('GRACEFUL_ERR_HOOK_OPTIONS', [kind, describe(options)])
  }
  return {
    name: (o.name as string | undefined) ?? (fn.name || `${kind}#${index}`),
    fn: fn as HookFn,
    timeout: (o.timeout as number | undefined) ?? null
  }
}

/**
 * Runs one hook, bounded by its timeout. The timer is armed before the user's code runs (it may block
 * the loop) and stays ref'd: a hook's pending promise alone does not keep the process alive, and we must
 * not let the process slip out through `beforeExit` halfway through a shutdown.
 */
export async function runHook (hook: Hook, defaultTimeout: number, reason: string): Promise<HookResult> {
  const ms = hook.timeout ?? defaultTimeout
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(resolve, ms, TIMED_OUT)
  })
  const start = performance.now()
  let error: string | undefined
  try {
    const outcome = await Promise.race([
      deadline,
      // Promise.resolve().then() turns a synchronous throw into a rejection we record like any other.
      Promise.resolve().then(() => hook.fn({ reason, signal: controller.signal }))
    ])
    // A hook that blocks the event loop past its timeout settles before the timer gets a turn to fire:
    // it overran all the same.
    if (outcome === TIMED_OUT || performance.now() - start > ms) {
      const err = createError('GRACEFUL_ERR_HOOK_TIMEOUT_EXCEEDED', [hook.name, ms])
      controller.abort(err)
      error = err.message
    }
  } catch (err) {
    error = err instanceof Error ? err.message : describe(err)
  } finally {
    clearTimeout(timer)
  }
  const result: HookResult = { name: hook.name, ms: Math.round(performance.now() - start) }
  if (error !== undefined) result.error = error
  return result
}

import type { Logger } from './options.js'

let warned = false

/**
 * The logger as the engine uses it: a call that throws (a pino destination that has ended: "SonicBoom
 * destroyed") is dropped, never allowed to stop a shutdown halfway. Said once, as a process warning.
 */
export function safeLogger (log: Logger): Logger {
  const guard = (level: keyof Logger) => function safeLog (obj: object, msg?: string): void {
    try {
      log[level](obj, msg)
    } catch (err) {
      if (warned) return
      warned = true
      process.emitWarning(`the logger threw (${String(err)}); graceful goes on without its log lines`, { code: 'GRACEFUL_LOGGER_THREW' })
    }
  }
  return { info: guard('info'), warn: guard('warn'), error: guard('error') }
}

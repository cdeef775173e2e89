export { Graceful, IDLE_GRACE_MS, REJECT_BODY } from './graceful.js'
export type { Integration, Phase, ShutdownReport, Stats } from './graceful.js'
export { codes, createError, describe } from './errors.js'
export type { ErrorCode, GracefulError } from './errors.js'
export { DEFAULTS, SIGNALS, readable, resolveOptions, resolveRouteOptions } from './options.js'
export type {
  GracefulOptions, LivenessOptions, Logger, ReadinessOptions, ResolvedOptions, ResolvedRouteOptions,
  RestartOptions, RouteOptions
} from './options.js'
export type { HookContext, HookFn, HookOptions, HookResult } from './hooks.js'
export { CHANNELS } from './channels.js'
export type { HookMessage, PhaseMessage, ReportMessage, RestartMessage } from './channels.js'
export { consoleLogger, probe, routeTable } from './plain.js'
export type { RouteOf } from './plain.js'

export { check } from './check.js'
export { main, parseArgs, parseMs, USAGE } from './cli.js'
export type { Io, ParsedArgs } from './cli.js'
export { codes } from './errors.js'
export type { CheckError, CheckErrorCode } from './errors.js'
export type { CheckEvent, OutsidePhase, Progress } from './events.js'
export { CHECK_DEFAULTS, KINDS, LOOP_KINDS, mix, resolveCheckOptions } from './options.js'
export type { CheckOptions, Clients, Kind, LoopKind, ResolvedCheckOptions, RestartScenario } from './options.js'
export { CLASS_LABELS, KIND_LABELS, formatEvent, formatProgress, formatResult } from './report.js'
export { PAUSES } from './traffic.js'
export { CAUSES, FAILURE_CLASSES } from './types.js'
export type {
  Cause, CauseId, CheckResult, ConnectionEnd, ExitRecord, Failure, FailureClass, Note, ReadinessResult, RequestRecord,
  RestartRecord, SignalRecord, StatusCounts, StreamResult, Timeline, Totals
} from './types.js'

// How the process-level tests start their fixtures and examples.
//
// A child keeps our --conditions=graceful-source but loads TypeScript through tsx: tap's TypeScript loader
// takes 5 to 10 s to start a fixture on a busy machine, tsx one or two. tsx's transform of a file differs
// from ts-node's, and merging the two corrupts the coverage report, so these children record none
// (_TAPJS_PROCESSINFO_COVERAGE_=0): they prove behaviour; in-process tests cover the branches.
// A restart successor inherits the same execArgv and environment from its predecessor.
export const FIXTURE_EXEC_ARGV = [
  ...process.execArgv.filter((arg) => !arg.includes('@tapjs/')),
  `--import=${import.meta.resolve('tsx')}`
]

/** The environment for a fixture child: `base` (ours by default), without coverage, plus `extra`. */
export function fixtureEnv (extra: NodeJS.ProcessEnv = {}, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, _TAPJS_PROCESSINFO_COVERAGE_: '0', ...extra }
}

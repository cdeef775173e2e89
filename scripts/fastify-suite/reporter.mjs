// A node:test reporter for scripts/fastify-suite.mjs: one JSON line per finished test case on stdout,
// { outcome: 'pass' | 'fail' | 'skip', name: 'parent > child', nesting, ms, why?, failureType?, error? }, and
// the file's diagnostics.
// The harness reads these lines instead of parsing TAP or the spec reporter's text.

/** Names of the tests that have started, by nesting level, to name a subtest by its whole path. */
const path = []

export default async function * fastifySuiteReporter (source) {
  for await (const { type, data } of source) {
    if (type === 'test:start') {
      path.length = data.nesting
      path[data.nesting] = data.name
    } else if (type === 'test:pass' || type === 'test:fail') {
      path.length = data.nesting
      const name = [...path, data.name].join(' > ')
      const skipped = data.skip !== undefined || data.todo !== undefined
      const outcome = type === 'test:fail' ? 'fail' : skipped ? 'skip' : 'pass'
      const line = { outcome, name, nesting: data.nesting, ms: Math.round(data.details?.duration_ms ?? 0) }
      if (skipped) line.why = typeof data.skip === 'string' ? data.skip : typeof data.todo === 'string' ? data.todo : ''
      if (outcome === 'fail') {
        line.failureType = data.details?.error?.failureType
        line.error = describe(data.details?.error)
      }
      yield JSON.stringify(line) + '\n'
    } else if (type === 'test:diagnostic') {
      yield JSON.stringify({ diagnostic: data.message }) + '\n'
    }
  }
}

/** The failure in one line or a few: node:test wraps the test's own error in a 'testCodeFailure'. */
function describe (err) {
  if (err === undefined || err === null) return 'failed'
  const cause = err.failureType === 'testCodeFailure' && err.cause !== undefined ? err.cause : err
  const text = cause instanceof Error
    ? `${cause.code === undefined ? '' : `[${cause.code}] `}${cause.message}`
    : String(cause)
  return err.failureType !== undefined && err.failureType !== 'testCodeFailure' ? `${err.failureType}: ${text}` : text
}

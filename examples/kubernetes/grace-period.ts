// Does Kubernetes give the shutdown enough time? A pod is SIGKILLed terminationGracePeriodSeconds after its
// termination starts, whatever graceful is doing. The worst case graceful can take is the lame-duck delay,
// the drain timeout, and every hook running to its hookTimeout; add a margin for the exit itself.

/** Added to the worst case: the process still has to log its report and exit. */
export const GRACE_MARGIN_MS = 1000

export interface ShutdownBudget {
  /** graceful's `delay` (ms). */
  delay: number
  /** graceful's `timeout` (ms). */
  timeout: number
  /** graceful's `hookTimeout` (ms). */
  hookTimeout: number
  /** beforeDrain and afterDrain hooks, plus one for Fastify's own close, which graceful runs as a hook. */
  hooks: number
}

export interface GracePeriodWarning {
  message: string
  /** The grace period the budget needs, whole seconds. */
  requiredSeconds: number
  /** What TERMINATION_GRACE_PERIOD_SECONDS said. */
  given: string
}

/** ms a shutdown may take at most: delay + timeout + hookTimeout × hooks + GRACE_MARGIN_MS. */
export function requiredGracePeriodMs (budget: ShutdownBudget): number {
  return budget.delay + budget.timeout + budget.hookTimeout * budget.hooks + GRACE_MARGIN_MS
}

/**
 * A warning when `given` (TERMINATION_GRACE_PERIOD_SECONDS, set in the Deployment to the same value as
 * terminationGracePeriodSeconds) is shorter than the budget needs or is not a number; `null` when it is
 * long enough or not set at all.
 */
export function checkGracePeriod (budget: ShutdownBudget, given = process.env.TERMINATION_GRACE_PERIOD_SECONDS): GracePeriodWarning | null {
  if (given === undefined || given === '') return null
  const requiredMs = requiredGracePeriodMs(budget)
  const requiredSeconds = Math.ceil(requiredMs / 1000)
  const seconds = Number(given)
  if (!Number.isFinite(seconds) || seconds < 0) {
    return { message: `TERMINATION_GRACE_PERIOD_SECONDS must be a number of seconds, got '${given}'`, requiredSeconds, given }
  }
  if (seconds * 1000 >= requiredMs) return null
  return {
    message: `terminationGracePeriodSeconds (${given}) is shorter than the shutdown may take ` +
      `(delay ${budget.delay} + timeout ${budget.timeout} + hookTimeout ${budget.hookTimeout} × ${budget.hooks} hooks + ` +
      `${GRACE_MARGIN_MS} ms margin = ${requiredMs} ms): Kubernetes may SIGKILL the pod mid-drain; set it to at least ${requiredSeconds}`,
    requiredSeconds,
    given
  }
}

// Whether another process is still running, for tests and benchmarks that watch real child processes.
import { readFileSync } from 'node:fs'

/** Is `pid` running? A zombie (exited, waiting to be reaped) is not; nor is a pid we cannot read on Linux. */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat[stat.lastIndexOf(')') + 2] !== 'Z'
  } catch {
    return false
  }
}

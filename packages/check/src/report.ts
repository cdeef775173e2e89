// The result as text: the report the CLI prints at the end, and its live lines.
import type { CheckEvent, Progress } from './events.js'
import type { Kind } from './options.js'
import type { CheckResult, ConnectionEnd, Failure, FailureClass, StatusCounts } from './types.js'

export const KIND_LABELS: Record<Kind, string> = {
  keepAlive: 'keep-alive loop',
  busy: 'paused keep-alive, busy 0–300 ms',
  paused: 'paused keep-alive, 300–900 ms',
  newConnection: 'new connection per request',
  post: 'POST with a body',
  slow: 'slow request',
  pipelined: 'pipelined pair',
  idle: 'idle keep-alive',
  preconnect: 'preconnect, sends nothing',
  stream: 'stream',
  readiness: 'readiness poll'
}

export const CLASS_LABELS: Record<FailureClass, string> = {
  reset: 'reset',
  hangUp: 'hang-up',
  refusedAfterAccept: 'refused after accept',
  truncated: 'truncated body',
  timeout: 'timeout',
  refused: 'refused',
  serverError: '5xx'
}

const WIDTH = 100
export const int = (n: number): string => n.toLocaleString('en-US')
export const plus = (ms: number): string => `${ms < 0 ? '−' : '+'}${int(Math.abs(ms))} ms`
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const pad = (s: string, n: number): string => s.length >= n ? s : s + ' '.repeat(n - s.length)
const lpad = (s: string, n: number): string => s.length >= n ? s : ' '.repeat(n - s.length) + s

/** `text` wrapped at WIDTH, every line after the first indented by `indent` spaces. */
export function wrap (text: string, indent: number, width = WIDTH): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  lines.push(line)
  return lines.join(`\n${' '.repeat(indent)}`)
}

/** Columns aligned by `align`, one letter a column: l(eft) or r(ight). */
function table (head: string[], rows: string[][], align: string): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
  const line = (cells: string[]): string =>
    '  ' + cells.map((c, i) => align[i] === 'r' ? lpad(c, widths[i] as number) : pad(c, widths[i] as number)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}

const others = (c: StatusCounts): number => Object.values(c.other).reduce((a, b) => a + b, 0)

/** When a failure happened: from the signal it came after (`#2 +35 ms` when there were several). */
export function when (f: Failure, signals: number): string {
  if (f.signal === 0) return `load ${plus(f.atMs)}`
  return signals > 1 ? `#${f.signal} ${plus(f.atMs)}` : plus(f.atMs)
}

function connectionEnd (c: ConnectionEnd): [string, string] {
  if (c.ended === 'fin') return [plus(c.atMs as number), 'closed by the server (FIN)']
  if (c.ended === 'reset') return [plus(c.atMs as number), 'reset by the server']
  return ['', c.ended === 'open' ? 'still open when the check ended' : 'never connected']
}

/** The whole report, as the CLI prints it at the end. */
export function formatResult (r: CheckResult, shown = 20): string {
  const out: string[] = []
  const s = r.scenario
  const app = r.app.command === null ? `pid ${String(r.app.pid)}` : `${r.app.command.join(' ')}${r.app.pid === null ? '' : ` (pid ${r.app.pid})`}`
  const from = r.app.portFrom === 'proc' ? ' (its first listening socket)' : ''
  out.push(`graceful-check  ${app}${r.app.url === null ? '' : `  ${r.app.url}${from}`}`)
  const steps = [
    ...(s.restart === null ? [] : [`${s.restart.signal} × ${s.restart.times} (a restart each)`]),
    ...(s.signal === null ? [] : [s.signal])
  ]
  const connections = Object.values(s.clients).reduce((a, b) => a + b, 0)
  out.push(`scenario        ${steps.join(', then ')} under load: ${seconds(s.durationMs)} of load first, ${int(connections)} connections, timeout ${seconds(s.timeoutMs)}`)
  if (r.error !== null) {
    out.push('', `✘ could not check the app: ${r.error.message} (${r.error.code})`)
    if (r.app.output.length > 0) out.push('', "the app's last output:", ...r.app.output.map((l) => `  │ ${l}`))
    return out.join('\n') + '\n'
  }

  const t = r.totals
  const kinds = Object.entries(r.kinds) as Array<[Kind, StatusCounts]>
  const row = (label: string, c: StatusCounts): string[] =>
    [label, int(c.sent), int(c.ok), int(c.unavailableClose + c.unavailableKeep), int(others(c)), int(c.refused), int(c.lost)]
  out.push('', table(['requests by connection', 'sent', '2xx', '503', 'other', 'refused', 'lost'], [
    ...kinds.filter(([k]) => k !== 'readiness').map(([k, c]) => row(KIND_LABELS[k], c)),
    row('all', t),
    ...kinds.filter(([k]) => k === 'readiness').map(([k, c]) => row(`${KIND_LABELS[k]} ${s.readiness as string} (apart)`, c))
  ], 'lrrrrrr'))

  const otherCodes = Object.entries(t.other).map(([code, n]) => `${code} × ${int(n)}`).join(', ')
  const lostClasses = Object.entries(t.lostByClass).filter(([, n]) => n > 0).map(([c, n]) => `${CLASS_LABELS[c as FailureClass]} ${int(n)}`).join(' · ')
  out.push('', table(['answers', '', ''], [
    ['2xx', int(t.ok), t.okClose > 0 ? `${int(t.okClose)} said Connection: close` : ''],
    ['503 with Connection: close', int(t.unavailableClose), t.unavailableClose + t.unavailableKeep > 0 ? `${int(t.retryAfter)} of the 503s had Retry-After` : ''],
    ['503 without Connection: close', int(t.unavailableKeep), ''],
    ['other statuses', int(others(t)), otherCodes],
    ['refused: the listener had closed', int(t.refused), t.refused > 0 ? 'never accepted, so not lost: a load balancer retries them' : ''],
    ['lost', int(t.lost), lostClasses]
  ], 'lrl'))

  if (r.restarts.length > 0) {
    out.push('', `restarts (${(s.restart as { signal: string }).signal})`)
    for (const x of r.restarts) {
      const head = `  #${x.n}  pid ${x.from} → ${x.to ?? '?'}`
      const body = x.error !== null
        ? `FAILED: ${x.error}`
        : `${x.mode === 'roll' ? 'workers rolled' : 'in place'}, ${x.successorMs === null ? '' : `new process ${plus(x.successorMs)}, `}complete ${plus(x.doneMs as number)}`
      const refused = x.refused === 0 ? 'no connection refused' : `${int(x.refused)} connects refused from ${plus(x.refusedFromMs as number)} to ${plus(x.refusedToMs as number)}`
      out.push(`${head}  ${body}; ${refused}`)
    }
  }

  const tl = r.timeline
  if (tl !== null && r.signals.some((x) => x.final)) {
    const sig = r.signals.find((x) => x.final) as CheckResult['signals'][number]
    const rows: string[][] = []
    const at = (label: string, ms: number | null, note = ''): void => { rows.push([label, ms === null ? 'not seen' : plus(ms), note]) }
    if (r.readiness !== null) at(`readiness ${r.readiness.path} not 2xx`, tl.readinessMs, r.readiness.flipStatus === null ? '' : r.readiness.flipStatus === 0 ? 'no answer' : `answered ${r.readiness.flipStatus}`)
    at('first 503', tl.first503Ms)
    at('first Connection: close', tl.firstCloseMs, 'on a kept-alive connection')
    at('last 2xx', tl.last2xxMs)
    at('last response', tl.lastResponseMs)
    at('listener closed', tl.listenerClosedMs, 'the first refused connect')
    const exit = r.exit
    at('exit', tl.exitMs, exit === null ? `not within ${seconds(s.timeoutMs)}` : !exit.known ? 'exit code unknown (not our child)' : exit.signal !== null ? `killed by ${exit.signal}` : `code ${String(exit.code)}`)
    for (const c of r.connections) rows.push([KIND_LABELS[c.kind], ...connectionEnd(c)])
    if (r.heldExit !== null) rows.push(['idle connections held the exit', '', r.heldExit ? 'yes' : 'no'])
    if (r.stream !== null) {
      const st = r.stream
      rows.push([`stream ${st.path}`, st.atMs === null ? '' : plus(st.atMs), `${st.detail} (${int(st.events)} events, ${int(st.bytes)} bytes)`])
    }
    out.push('', `${sig.signal} to pid ${sig.pid} after ${seconds(sig.atMs)} of load; from it:`)
    out.push(table(['', '', ''], rows, 'lrl').split('\n').slice(1).join('\n'))
  }

  if (r.failures.length > 0) {
    const list = r.failures.slice(0, shown)
    out.push('', `lost requests (${int(r.failures.length)}${r.failures.length > shown ? `, the first ${shown}` : ''})`)
    out.push(table(['when', 'class', 'connection', 'quiet', 'what happened'], list.map((f) => [
      when(f, r.signals.length), CLASS_LABELS[f.class], KIND_LABELS[f.kind], f.quietMs === null ? '' : `${int(f.quietMs)} ms`, f.detail
    ]), 'rllrl'))
  }

  out.push('')
  const v = r.verdict
  out.push(v.lost === 0
    ? `verdict  ✔ nothing lost: ${int(t.sent)} requests${r.ok ? '' : ', but see below'}`
    : `verdict  ✘ ${int(v.lost)} request${v.lost === 1 ? '' : 's'} lost`)
  const fixes = new Set<string>()
  for (const c of v.causes) {
    out.push(`  ${wrap(`${int(c.count)} × ${c.text}`, 4)}`)
    out.push(`    ${wrap(`(${c.classes.map((x) => CLASS_LABELS[x]).join(', ')} on ${c.kinds.map((k) => KIND_LABELS[k]).join(', ')})`, 4)}`)
    out.push(`    ${wrap(`fix: ${fixes.has(c.fix) ? 'the same as above' : c.fix}`, 9)}`)
    fixes.add(c.fix)
  }
  for (const n of v.notes) out.push(`  ${wrap(`${n.problem ? '✘' : 'note:'} ${n.text}`, 4)}`)
  return out.join('\n') + '\n'
}

/** The progress line (one line, rewritten in place on a terminal). */
export function formatProgress (p: Progress): string {
  return `${lpad(seconds(p.elapsedMs), 7)}  sent ${int(p.sent)}  in flight ${int(p.inFlight)}  2xx ${int(p.ok)}  503 ${int(p.unavailable)}  lost ${int(p.lost)}  ${p.phase}`
}

/** A live line for an event, or null for those not shown as lines (progress; lost requests past `lostShown`). */
export function formatEvent (e: CheckEvent, lostSoFar: number, lostShown = 10): string | null {
  switch (e.type) {
    case 'started': return `graceful-check: started ${e.command === null ? '' : `${e.command.join(' ')} `}(pid ${e.pid})`
    case 'listening': return `graceful-check: the app listens at ${e.url}${e.from === 'proc' ? ' (its first listening socket' + (e.note === null ? ')' : `; ${e.note})`) : ''}`
    case 'load': return `graceful-check: load on, ${int(e.connections)} connections`
    case 'signal': return `  ${e.signal} sent to pid ${e.pid}${e.final ? '' : ` (restart #${e.n})`}`
    case 'seen': return `  ${lpad(plus(e.atMs), 11)}  ${e.text}`
    case 'restarted': {
      const x = e.restart
      return x.error !== null
        ? `  restart #${x.n} FAILED: ${x.error}`
        : `  ${lpad(plus(x.doneMs as number), 11)}  restart #${x.n} complete: pid ${x.from} → ${String(x.to)} (${x.mode === 'roll' ? 'workers rolled' : 'in place'})`
    }
    case 'lost': {
      if (lostSoFar > lostShown) return null
      const f = e.failure
      const more = lostSoFar === lostShown ? ' (further lost requests: in the report)' : ''
      const at = f.signal === 0 ? `load ${plus(f.atMs)}` : plus(f.atMs)
      return `  ${lpad(at, 11)}  lost: ${CLASS_LABELS[f.class]} on ${KIND_LABELS[f.kind]}${f.quietMs === null ? '' : ` (quiet ${int(f.quietMs)} ms)`}${more}`
    }
    default: return null
  }
}

// Row 6 of RESULTS.md, behind a proxy: its summary rows, its detail section, and where graceful misses.
import type { Kind } from './kinds.js'
import { PROXY_SCENARIOS, type ProxyOutcome, type ProxyResults, type ProxyRowOptions, type ProxyScenario } from '../proxy.js'
import type { ProxyKind } from '../../test/helpers/proxies.js'

const NAMES: Record<ProxyKind, string> = { nginx: 'nginx', haproxy: 'HAProxy' }
const SCENARIO_TITLES: Record<ProxyScenario, string> = { sigterm: 'SIGTERM', restarts: '3 restarts', roll: 'a roll' }

const int = (x: number): string => x.toLocaleString('en-US')

function table (head: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

const failedOf = (o: ProxyOutcome): number => o.proxyErrors + o.otherFailed

/** "proxy errors + client errors" of one scenario through one proxy, or why there is none. */
function cell (r: ProxyResults, k: Kind, scenario: ProxyScenario, proxy: ProxyKind): string {
  const x = r.rows.find((row) => row.kind === k)?.scenarios[scenario]
  if (x === undefined) return '—'
  const o = x.proxies[proxy]
  if (o === undefined) return 'run broke'
  return `${o.proxyErrors} + ${o.otherFailed}`
}

/** One summary row per proxy: "SIGTERM · 3 restarts · roll", each "proxy errors + client errors". */
export function proxySummaryRows (r: ProxyResults | undefined, cols: Kind[]): string[][] {
  if (r === undefined) return []
  return (Object.keys(r.proxies) as ProxyKind[]).map((proxy) => [
    `behind ${NAMES[proxy]}: proxy errors (502/504) + client errors, SIGTERM · 3 restarts · a roll (row 6)`,
    '0',
    ...cols.map((k) => PROXY_SCENARIOS.map((s) => cell(r, k, s, proxy)).join(' · '))
  ])
}

export function proxyDetail (r: ProxyResults | undefined, o: ProxyRowOptions | undefined): string {
  if (r === undefined) return ''
  const proxies = Object.keys(r.proxies) as ProxyKind[]
  if (proxies.length === 0) return '### 6. Behind a proxy\n\nNot measured: neither nginx nor HAProxy is installed (`apt-get install -y nginx haproxy`).\n'
  const rows: string[][] = []
  for (const row of r.rows) {
    for (const scenario of PROXY_SCENARIOS) {
      const x = row.scenarios[scenario]
      if (x === undefined) continue
      for (const proxy of proxies) {
        const p = x.proxies[proxy]
        const what = p === undefined ? (x.error ?? 'run broke') : Object.keys(p.failed).length === 0 ? '–' : Object.entries(p.failed).map(([k, v]) => `${v} × ${k}`).join(', ')
        rows.push([row.kind.label, SCENARIO_TITLES[scenario], NAMES[proxy], p === undefined ? '–' : int(p.requests), p === undefined ? '–' : String(p.proxyErrors), p === undefined ? '–' : String(p.otherFailed), what])
      }
    }
  }
  return `### 6. Behind a proxy

${proxies.map((p) => r.proxies[p]).join(' and ')}, each started from its recipe (\`examples/nginx/graceful-app.conf\`,
\`examples/haproxy/haproxy.cfg\`) with a pool of keep-alive connections to the app, but without the recipes' retries of
requests already sent (nginx retries no POST it has sent; HAProxy retries only failed connects), in front of the same
servers at once. Per proxy, ${o === undefined ? 'keep-alive clients' : `${o.keepAlive} keep-alive clients`} and ${o === undefined ? 'clients' : `${o.fresh} clients`} opening a new connection per request send \`GET /pid\` and
\`POST /echo\` (20 ms of work) in turn, pausing 0–${o?.pauseMs ?? 150} ms between requests, for the whole scenario
(\`test/helpers/proxy-load.ts\`, as in \`test/proxies.test.ts\`), starting with ${o?.tail ?? 'some'} requests per proxy before the first signal.
- **SIGTERM**: two instances; once both serve through every proxy, one gets \`SIGTERM\`${o === undefined ? '' : `, with a ${o.delay} ms lame-duck delay
  where the library has one (graceful's \`delay\`, terminus' \`beforeShutdown\`)`}; HAProxy checks the readiness route where there is
  one (\`/readyz\`), else \`/healthz\`; the load goes on${o === undefined ? '' : ` for ${o.tail} more requests per proxy`} once the instance has exited.
- **3 restarts** in place (graceful): \`SIGHUP\` to the process the pid file names, once the one before has exited.
- **a roll** (graceful): \`graceful-cluster --workers 2\` running \`test/fixtures/proxy-app.ts\`, \`SIGHUP\` to the supervisor.

A proxy error is a \`502\` or \`504\` from the proxy; a client error is any other failure (a reset, a hang-up, a
timeout, another status than 200 — a \`503\` that reached the client included). The summary cells read "proxy errors +
client errors", one per scenario; — the library has no such feature.

${table(['library', 'scenario', 'proxy', 'requests', 'proxy errors (502/504)', 'client errors', 'what failed'], rows)}
`
}

/** Where graceful loses requests behind a proxy. */
export function proxyMisses (r: ProxyResults | undefined): string[] {
  if (r === undefined) return []
  const out: string[] = []
  for (const row of r.rows) {
    if (row.kind.role !== 'ours') continue
    for (const scenario of PROXY_SCENARIOS) {
      const x = row.scenarios[scenario]
      if (x === undefined) continue
      if (x.error !== undefined) out.push(`${row.kind.label}: behind a proxy, ${SCENARIO_TITLES[scenario]}: the run broke (${x.error})`)
      for (const [proxy, o] of Object.entries(x.proxies) as Array<[ProxyKind, ProxyOutcome]>) {
        if (failedOf(o) > 0) out.push(`${row.kind.label}: behind ${NAMES[proxy]}, ${SCENARIO_TITLES[scenario]}: ${o.proxyErrors} proxy errors + ${o.otherFailed} client errors (target 0)`)
      }
    }
  }
  return out
}

/** Where an alternative lost fewer requests behind a proxy than graceful on the same framework. */
export function proxyAhead (r: ProxyResults | undefined): string[] {
  if (r === undefined) return []
  const out: string[] = []
  for (const alt of r.rows.filter((row) => row.kind.role === 'alternative')) {
    const ours = r.rows.find((row) => row.kind.role === 'ours' && row.kind.framework === alt.kind.framework)
    for (const scenario of PROXY_SCENARIOS) {
      for (const [proxy, a] of Object.entries(alt.scenarios[scenario]?.proxies ?? {}) as Array<[ProxyKind, ProxyOutcome]>) {
        const o = ours?.scenarios[scenario]?.proxies[proxy]
        if (o !== undefined && failedOf(a) < failedOf(o)) {
          out.push(`behind ${NAMES[proxy]}, ${SCENARIO_TITLES[scenario]}: ${alt.kind.short} ${a.proxyErrors} + ${a.otherFailed} vs graceful ${alt.kind.framework} ${o.proxyErrors} + ${o.otherFailed} (proxy errors + client errors)`)
        }
      }
    }
  }
  return out
}

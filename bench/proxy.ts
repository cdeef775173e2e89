// Row 6, behind a proxy: requests lost behind nginx and HAProxy, each started from its recipe
// (examples/nginx, examples/haproxy; test/helpers/proxies.ts) with a pool of keep-alive connections to the
// app, but without the recipes' retries of requests already sent (nginx then retries no POST it has sent).
// Per proxy, keep-alive clients and clients opening a new connection per request send GET /pid and POST /echo
// (20 ms of work), pausing 0–150 ms between requests, for the whole scenario (test/helpers/proxy-load.ts,
// the same as test/proxies.test.ts). nginx and HAProxy stand in front of the same servers at once.
// - SIGTERM, every library: two instances, SIGTERM to one once both serve; with a lame-duck delay where the
//   library has one (graceful's `delay`, terminus' `beforeShutdown`), and HAProxy checking the readiness
//   route where it has one (else /healthz); the load runs on to the second instance once the first has exited.
// - 3 restarts in place (graceful): SIGHUP to the process the pid file names, once the one before has exited.
// - a roll (graceful): graceful-cluster with two workers, SIGHUP; the workers run test/fixtures/proxy-app.ts
//   (a bench server reports its port over IPC, which is the supervisor's in a cluster worker).
// A failed request is a 502 or 504 from the proxy, any other non-200, or a client error.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { CONTENDERS, type Kind } from './lib/kinds.js'
import { startServer, within, type Server } from './lib/child.js'
import { AppGroup } from '../test/helpers/app-group.js'
import { alive } from '../test/helpers/process.js'
import { PROXY_KINDS, findProxy, startProxy, type Proxy, type ProxyKind } from '../test/helpers/proxies.js'
import { startProxyLoad, type ProxyLoad, type TargetResult } from '../test/helpers/proxy-load.js'

export const PROXY_SCENARIOS = ['sigterm', 'restarts', 'roll'] as const
export type ProxyScenario = (typeof PROXY_SCENARIOS)[number]

export interface ProxyRowOptions {
  /** ms of lame-duck delay in the SIGTERM scenario, for the libraries that have one. */
  delay: number
  /** Requests per proxy before the first signal, and after each step before the next step or the end. */
  tail: number
  restarts: number
  /** Per proxy: keep-alive clients, clients opening a new connection per request. */
  keepAlive: number
  fresh: number
  /** Each client pauses a random 0…pauseMs ms between requests. */
  pauseMs: number
}

export interface ProxyOutcome {
  requests: number
  /** 502 and 504 answers: the proxy lost the request. */
  proxyErrors: number
  /** Client errors (resets, hang-ups, timeouts) and statuses other than 200, 502 and 504. */
  otherFailed: number
  /** Every failure by what it was: '502', '503', 'ECONNRESET', … */
  failed: Record<string, number>
  /** The first few failures, to say what went wrong. */
  failures: string[]
}

export interface ProxyRow {
  kind: Kind
  /** By scenario, then by proxy; a scenario the library cannot take part in is absent. */
  scenarios: Partial<Record<ProxyScenario, { proxies: Partial<Record<ProxyKind, ProxyOutcome>>, error?: string }>>
}

export interface ProxyResults {
  /** The proxies used, with their versions; those not installed are absent. */
  proxies: Partial<Record<ProxyKind, string>>
  rows: ProxyRow[]
}

const BOUND_MS = 30_000
const CHECK_INTERVAL_MS = 200
const FIXTURE = fileURLToPath(new URL('../test/fixtures/proxy-app.ts', import.meta.url))
const CLUSTER_BIN = fileURLToPath(new URL('../packages/cluster/dist/esm/bin.js', import.meta.url))
const TSX = `--import=${import.meta.resolve('tsx')}`

function outcome (r: TargetResult): ProxyOutcome {
  const proxyErrors = (r.failed['502'] ?? 0) + (r.failed['504'] ?? 0)
  const all = Object.values(r.failed).reduce((a, b) => a + b, 0)
  return { requests: r.requests, proxyErrors, otherFailed: all - proxyErrors, failed: r.failed, failures: r.failures.slice(0, 5).map((f) => `${f.at} ms ${f.method}: ${f.detail}`) }
}

/** "nginx 1.22.1", "HAProxy 2.6.12-1+deb12u4", from the binary itself. */
function proxyVersion (kind: ProxyKind, bin: string): string {
  const run = spawnSync(bin, ['-v'], { encoding: 'utf8' })
  const text = `${run.stdout ?? ''}${run.stderr ?? ''}`
  const m = kind === 'nginx' ? /nginx\/(\S+)/.exec(text) : /HAProxy version (\S+)/.exec(text)
  return `${kind === 'nginx' ? 'nginx' : 'HAProxy'} ${m?.[1] ?? '(version unknown)'}`
}

/** Polls until `pid` is gone (not our child: no exit event). */
async function gone (pid: number, what: string): Promise<void> {
  const start = performance.now()
  while (alive(pid)) {
    if (performance.now() - start > BOUND_MS) throw new Error(`${what}: pid ${pid} still alive after ${BOUND_MS} ms`)
    await sleep(20)
  }
}

interface Setup {
  dir: string
  proxies: Proxy[]
  load?: ProxyLoad
}

async function frontOf (setup: Setup, o: ProxyRowOptions, kinds: ProxyKind[], servers: number[], getPath: string, checkPath?: string): Promise<ProxyLoad> {
  setup.proxies = await Promise.all(kinds.map((kind) => startProxy(kind, { dir: setup.dir, servers, retries: false, checkIntervalMs: CHECK_INTERVAL_MS, checkPath })))
  // The bench servers answer { pid } on /pid (their / is the hello world of the other rows); the fixture on /.
  setup.load = startProxyLoad({
    targets: setup.proxies.map((p) => ({ name: p.kind, port: p.port })),
    keepAlive: o.keepAlive,
    fresh: o.fresh,
    pauseMs: o.pauseMs,
    getPath,
    boundMs: BOUND_MS
  })
  return setup.load
}

/** Runs `body` with a temp folder and proxies that are stopped whatever happens; the outcomes per proxy. */
async function measureRun (kinds: ProxyKind[], body: (setup: Setup) => Promise<void>): Promise<{ proxies: Partial<Record<ProxyKind, ProxyOutcome>>, error?: string }> {
  const setup: Setup = { dir: mkdtempSync(join(tmpdir(), 'graceful-bench-proxy-')), proxies: [] }
  try {
    await body(setup)
    const results = await (setup.load as ProxyLoad).stop()
    return { proxies: Object.fromEntries(results.map((r) => [r.name, outcome(r)])) }
  } catch (err) {
    return { proxies: {}, error: (err as Error).message.split('\n')[0] }
  } finally {
    await setup.load?.stop()
    await Promise.all(setup.proxies.map((p) => p.stop()))
    rmSync(setup.dir, { recursive: true, force: true })
  }
}

async function sigterm (k: Kind, kinds: ProxyKind[], o: ProxyRowOptions): Promise<{ proxies: Partial<Record<ProxyKind, ProxyOutcome>>, error?: string }> {
  const servers: Server[] = []
  try {
    return await measureRun(kinds, async (setup) => {
      const env = { BENCH_DELAY: String(o.delay), BENCH_PROBES: '1' }
      servers.push(await startServer(k.id, { env }), await startServer(k.id, { env }))
      const [a, b] = servers as [Server, Server]
      const load = await frontOf(setup, o, kinds, [a.port, b.port], '/pid', k.has.lameDuck ? undefined : '/healthz')
      await load.seen(a.pid)
      await load.seen(b.pid)
      // The proxies' pools filled, as in steady traffic.
      await load.progress(o.tail)
      load.mark(`SIGTERM to ${a.pid}`)
      a.child.kill('SIGTERM')
      await within(a.exited, `${k.id}: exit after SIGTERM`, o.delay + BOUND_MS)
      await load.progress(o.tail)
    })
  } finally {
    for (const s of servers) await s.kill()
  }
}

async function restarts (k: Kind, kinds: ProxyKind[], o: ProxyRowOptions): Promise<{ proxies: Partial<Record<ProxyKind, ProxyOutcome>>, error?: string }> {
  let first: Server | undefined
  let serving = NaN
  try {
    return await measureRun(kinds, async (setup) => {
      const pidFile = join(setup.dir, 'app.pid')
      const readPid = (): number => { try { return Number(readFileSync(pidFile, 'utf8').trim()) } catch { return NaN } }
      // A process group of its own: the successors are not our children, and the last one is killed with it.
      first = await startServer(k.id, { env: { BENCH_PID_FILE: pidFile, BENCH_PROBES: '1' }, detached: true })
      serving = first.pid
      const load = await frontOf(setup, o, kinds, [first.port], '/pid')
      await load.seen(first.pid)
      await load.progress(o.tail)
      for (let i = 1; i <= o.restarts; i++) {
        const predecessor = serving
        load.mark(`SIGHUP ${i} to ${predecessor}`)
        process.kill(predecessor, 'SIGHUP')
        const start = performance.now()
        while (!(readPid() !== predecessor && alive(readPid()))) {
          if (performance.now() - start > BOUND_MS) throw new Error(`restart ${i}: no successor ready within ${BOUND_MS} ms`)
          await sleep(20)
        }
        serving = readPid()
        await gone(predecessor, `restart ${i}`)
        await load.seen(serving)
        await load.progress(o.tail)
      }
    })
  } finally {
    if (first !== undefined) {
      try { process.kill(-first.pid, 'SIGKILL') } catch {}
      if (serving !== first.pid) try { process.kill(serving, 'SIGKILL') } catch {}
      await first.kill()
    }
  }
}

async function roll (k: Kind, kinds: ProxyKind[], o: ProxyRowOptions): Promise<{ proxies: Partial<Record<ProxyKind, ProxyOutcome>>, error?: string }> {
  let apps: AppGroup | undefined
  try {
    return await measureRun(kinds, async (setup) => {
      // The built packages, as users run them (no graceful-source condition); tsx only for the fixture.
      apps = new AppGroup([TSX], [CLUSTER_BIN, '--workers', '2', FIXTURE], { ...process.env, FRAMEWORK: k.framework }, BOUND_MS)
      await apps.waitLog('graceful-cluster: ready')
      const port = (await apps.waitLog('fixture: listening')).data.port as number
      const load = await frontOf(setup, o, kinds, [port], '/')
      for (const pid of apps.workers()) await load.seen(pid, 'any')
      await load.progress(o.tail)
      load.mark('SIGHUP to the supervisor')
      process.kill(apps.pid, 'SIGHUP')
      await apps.waitLog('graceful-cluster: roll done')
      for (const pid of apps.workers()) await load.seen(pid, 'any')
      await load.progress(o.tail)
    })
  } finally {
    await apps?.end()
  }
}

export async function proxyRow (o: ProxyRowOptions, log: (line: string) => void): Promise<ProxyResults> {
  const kinds = PROXY_KINDS.filter((k) => findProxy(k) !== null)
  const proxies: Partial<Record<ProxyKind, string>> = {}
  for (const kind of kinds) proxies[kind] = proxyVersion(kind, findProxy(kind) as string)
  if (kinds.length === 0) {
    log('proxy: neither nginx nor haproxy is installed (apt-get install -y nginx haproxy): row skipped')
    return { proxies, rows: [] }
  }
  const rows: ProxyRow[] = []
  for (const k of CONTENDERS) {
    const row: ProxyRow = { kind: k, scenarios: {} }
    rows.push(row)
    const note = (scenario: ProxyScenario, x: { proxies: Partial<Record<ProxyKind, ProxyOutcome>>, error?: string }): void => {
      row.scenarios[scenario] = x
      log(`proxy ${scenario} ${k.id}: ${kinds.map((p) => `${p} ${x.proxies[p] === undefined ? '–' : `${x.proxies[p]?.proxyErrors} proxy errors + ${x.proxies[p]?.otherFailed} other of ${x.proxies[p]?.requests}`}`).join('; ')}` +
        (x.error === undefined ? '' : ` (${x.error})`))
    }
    note('sigterm', await sigterm(k, kinds, o))
    if (k.has.restart) note('restarts', await restarts(k, kinds, o))
    if (k.role === 'ours') note('roll', await roll(k, kinds, o))
  }
  return { proxies, rows }
}

// Behind real proxies (issue 12): graceful apps behind nginx and HAProxy, each started from its recipe
// (examples/nginx/graceful-app.conf, examples/haproxy/haproxy.cfg; test/helpers/proxies.ts says what is
// changed) with its pool of keep-alive connections to the apps. Traffic for the whole scenario, per proxy:
// keep-alive clients and clients opening a new connection per request, GET and POST, pausing 0–150 ms
// between requests (test/helpers/proxy-load.ts). Both proxies stand in front of the same apps at once, each
// with its own clients. Scenarios, for Fastify and for Express:
// - SIGTERM with a lame-duck `delay` to one of two instances while the other serves (the Kubernetes recipe);
// - three restarts in place (`restart`, SIGHUP to the process the pid file names);
// - a graceful-cluster roll (two workers, SIGHUP to the supervisor).
// These run without the recipes' retries of requests already sent (nginx's `proxy_next_upstream http_503
// non_idempotent`, HAProxy's `retry-on 503`): nginx retries no POST that it has sent, so every POST the app
// loses is a 502. A 502 or 504, any other non-200 and any client error is a lost request; there must be none.
// Then, with the recipes' retries, a SIGTERM without a delay loses nothing either (the drain's 503s are
// retried on the other instance) and runs no POST twice; and a server that destroys its connections at
// SIGTERM must be caught, or the harness proves nothing.
//
// nginx and HAProxy come from the system (Debian: apt-get install -y nginx haproxy). A missing one is skipped
// with a message, unless GRACEFUL_REQUIRE_PROXIES=1 (CI sets it): then it fails.
import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { FIXTURE_EXEC_ARGV, fixtureEnv } from './helpers/fork.js'
import { settleWithin } from './helpers/bounded.js'
import { alive } from './helpers/process.js'
import { AppGroup } from './helpers/app-group.js'
import { PROXY_KINDS, findProxy, renderHaproxy, renderNginx, startProxy, type Proxy } from './helpers/proxies.js'
import { startProxyLoad, type ProxyLoad, type TargetResult } from './helpers/proxy-load.js'

type Framework = 'fastify' | 'express'
const FRAMEWORKS: Framework[] = ['fastify', 'express']
const APP = fileURLToPath(new URL('./fixtures/proxy-app.ts', import.meta.url))
const CLUSTER_BIN = fileURLToPath(new URL('../packages/cluster/src/bin.ts', import.meta.url))
// Generous: apps compile TypeScript on a loaded 2-core machine. Only proves "no hang".
const BOUND_MS = 30_000
// The lame-duck delay of the SIGTERM scenario, and HAProxy's check interval: two failed checks (fall 2)
// take the instance out well inside the delay, as the recipe has it with 5 s and 1 s.
const DELAY_MS = 1500
const CHECK_INTERVAL_MS = 200
// Requests per proxy after each step (the old process gone), before the next step or the end.
const TAIL = 30
// A POST in flight on the instance at the moment it gets SIGTERM, through each proxy.
const HELD_MS = 1000

t.setTimeout(300_000)

const REQUIRE = process.env.GRACEFUL_REQUIRE_PROXIES === '1'
const installed = PROXY_KINDS.filter((k) => findProxy(k) !== null)
const missing = PROXY_KINDS.filter((k) => !installed.includes(k))

/** An app group killed at teardown (see test/helpers/app-group.ts). */
function group (t: Test, args: string[], env: Record<string, string>): AppGroup {
  const apps = new AppGroup(FIXTURE_EXEC_ARGV, args, fixtureEnv(env), BOUND_MS)
  t.teardown(() => apps.killAll())
  return apps
}

/** POST ids the handlers ran, with the pids that ran them. */
function handled (apps: AppGroup[]): Map<string, number[]> {
  const ids = new Map<string, number[]>()
  for (const e of apps.flatMap((a) => a.logged('fixture: handled'))) ids.set(String(e.data.id), [...(ids.get(String(e.data.id)) ?? []), e.pid])
  return ids
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-proxies-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** An app instance listening on a port of its own; resolves with its port. */
async function startApp (t: Test, framework: Framework, env: Record<string, string> = {}): Promise<{ apps: AppGroup, port: number }> {
  const apps = group(t, [APP], { FRAMEWORK: framework, ...env })
  const listening = await apps.waitLog('fixture: listening')
  return { apps, port: listening.data.port as number }
}

/** Every installed proxy in front of `servers`, each from its recipe. */
async function startProxies (t: Test, dir: string, servers: number[], retries: boolean): Promise<Proxy[]> {
  const proxies = await Promise.all(installed.map((kind) => startProxy(kind, { dir, servers, retries, checkIntervalMs: CHECK_INTERVAL_MS })))
  t.teardown(() => Promise.all(proxies.map((p) => p.stop())))
  return proxies
}

function startLoad (t: Test, proxies: Proxy[]): ProxyLoad {
  const load = startProxyLoad({ targets: proxies.map((p) => ({ name: p.kind, port: p.port })), boundMs: BOUND_MS })
  t.teardown(() => load.stop())
  return load
}

/** Polls until `pid` is gone (a successor is not our child: there is no exit event), up to BOUND_MS. */
async function gone (pid: number): Promise<void> {
  const start = performance.now()
  while (alive(pid)) {
    if (performance.now() - start > BOUND_MS) throw new Error(`pid ${pid} still alive after ${BOUND_MS} ms`)
    await sleep(20)
  }
}

/** One POST /echo through a proxy; resolves with what it ended in: '200', a status, or an error code. */
function post (port: number, id: string, ms: number): Promise<{ what: string, pid?: number }> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ id })
    const req = request({
      host: '127.0.0.1', port, method: 'POST', path: `/echo?ms=${ms}`, agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close' }
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => {
        let pid: number | undefined
        try { pid = (JSON.parse(text) as { pid?: number }).pid } catch {}
        resolve(res.statusCode === 200 && res.complete ? { what: '200', pid } : { what: String(res.statusCode) })
      })
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ what: err.code ?? err.message }))
    })
    req.setTimeout(BOUND_MS, () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })))
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ what: err.code ?? err.message }))
    req.end(body)
  })
}

type Outcome = { what: string, pid?: number }

/**
 * Sends POSTs that take HELD_MS through `proxy`, one after another without waiting for their answers, until
 * one is being handled by `pid`; resolves then with every POST's id and outcome-to-be (the others run on
 * the other instance meanwhile).
 */
async function holdOn (apps: AppGroup[], proxy: Proxy, pid: number): Promise<Array<{ id: string, held: boolean, outcome: Promise<Outcome> }>> {
  const sent: Array<{ id: string, held: boolean, outcome: Promise<Outcome> }> = []
  for (let k = 1; k <= 8; k++) {
    const id = `held/${proxy.kind}/${k}`
    const outcome = post(proxy.port, id, HELD_MS)
    const handledBy = await Promise.race([
      ...apps.map((a) => a.waitLog('fixture: handled', (e) => e.data.id === id).then((e) => e.pid)),
      outcome.then(() => null)
    ])
    sent.push({ id, held: handledBy === pid, outcome })
    if (handledBy === pid) return sent
  }
  throw new Error(`${proxy.kind}: none of 8 POSTs reached pid ${pid}`)
}

/** Counts a POST's outcome in its proxy's results; `held`: it was in flight on the signalled instance. */
function record (r: TargetResult, id: string, held: boolean, outcome: Outcome): void {
  r.requests++
  r.posts++
  if (outcome.what === '200') {
    r.ok++
    r.postsOk.add(id)
    if (outcome.pid !== undefined) r.pids.set(outcome.pid, (r.pids.get(outcome.pid) ?? 0) + 1)
    return
  }
  r.failed[outcome.what] = (r.failed[outcome.what] ?? 0) + 1
  r.failures.push({ at: -1, client: held ? 'held POST' : 'POST sent to find the instance', method: 'POST', what: outcome.what, detail: `${id} ended in ${outcome.what}` })
  r.postsFailed.add(id)
}

interface Run {
  label: string
  results: TargetResult[]
  proxies: Proxy[]
  load: ProxyLoad
  apps: AppGroup[]
}

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0)

/** The numbers of a run, one line per proxy (also what the "before" measurements quote). */
function describeRun (run: Run): string[] {
  return run.results.map((r) => `${run.label}, ${r.name}: ${r.requests} requests (${r.posts} POST), ${sum(r.failed)} failed ` +
    `${JSON.stringify(r.failed)}; 200s per pid ${JSON.stringify(Object.fromEntries(r.pids))}`)
}

/** What a failure needs to be understood: when each failure came, against the signals, and what the proxy logged. */
function evidence (run: Run, r: TargetResult): object {
  const proxy = run.proxies.find((p) => p.kind === r.name)
  return {
    failures: r.failures.map((f) => `${f.at} ms ${f.client} ${f.method}: ${f.detail}`),
    marks: run.load.marks.map((m) => `${m.at} ms ${m.label}`),
    proxyLog: proxy?.log().slice(-40),
    appLog: run.apps.flatMap((a) => a.entries.filter((e) => e.msg.startsWith('graceful') && !e.msg.includes('worker started')).map((e) => `${e.pid} ${e.msg} ${JSON.stringify(e.data)}`)).slice(-30)
  }
}

/** Zero lost requests through every proxy, GET and POST exercised, and no POST run twice. */
function verdict (t: Test, run: Run): void {
  for (const line of describeRun(run)) t.comment(line)
  for (const r of run.results) {
    t.same(r.failed, {}, `${r.name}: no request lost (502, 504, other statuses, client errors)`, evidence(run, r))
    t.ok(r.gets > 10 && r.posts > 10, `${r.name}: GETs (${r.gets}) and POSTs (${r.posts}) went through`)
  }
  const twice = [...handled(run.apps)].filter(([, pids]) => pids.length > 1)
  t.same(twice, [], 'no POST ran twice')
}

interface SigtermOptions {
  delay: number
  /** The recipes' retries of requests already sent. */
  retries: boolean
  /** The instance that gets SIGTERM destroys its connections instead of draining (fixture BROKEN=1). */
  broken?: boolean
}

/**
 * Two instances behind every proxy; SIGTERM to the first once both serve through every proxy and a POST is
 * in flight on it through each; the load runs on until it has exited and TAIL more requests went through.
 */
async function sigterm (t: Test, framework: Framework, o: SigtermOptions): Promise<Run> {
  const dir = tempDir(t)
  const [a, b] = await Promise.all([
    startApp(t, framework, { DELAY: String(o.delay), ...(o.broken === true ? { BROKEN: '1' } : {}) }),
    startApp(t, framework, { DELAY: String(o.delay) })
  ])
  const proxies = await startProxies(t, dir, [a.port, b.port], o.retries)
  const load = startLoad(t, proxies)
  await load.seen(a.apps.pid)
  await load.seen(b.apps.pid)
  const sent = await Promise.all(proxies.map((p) => holdOn([a.apps, b.apps], p, a.apps.pid)))
  load.mark(`SIGTERM to ${a.apps.pid}`)
  a.apps.proc.kill('SIGTERM')
  const exit = await settleWithin(a.apps.exited, 'the instance exiting after SIGTERM', o.delay + BOUND_MS)
  load.mark(`${a.apps.pid} exited ${JSON.stringify(exit)}`)
  await load.progress(TAIL)
  const results = await load.stop()
  const held: Outcome[] = []
  for (const [i, posts] of sent.entries()) {
    for (const p of posts) {
      const outcome = await p.outcome
      record(results[i] as TargetResult, p.id, p.held, outcome)
      if (p.held) held.push(outcome)
    }
  }
  await Promise.all(proxies.map((p) => p.stop()))
  await Promise.all([a.apps.end(), b.apps.end()])
  t.comment(`the POSTs in flight at SIGTERM: ${held.map((x, i) => `${proxies[i]?.kind as string} ${JSON.stringify(x)}`).join(', ')}; exit ${JSON.stringify(exit)}`)
  if (o.broken !== true) {
    t.equal(exit.code, 0, 'the instance exited 0 after its drain')
    for (const [i, outcome] of held.entries()) t.same(outcome, { what: '200', pid: a.apps.pid }, `${proxies[i]?.kind as string}: the POST in flight at SIGTERM was answered by the instance that got it`)
  }
  for (const r of results) t.ok(r.pids.has(b.apps.pid), `${r.name}: the second instance served`)
  return { label: `${framework} SIGTERM (delay ${o.delay} ms${o.retries ? ', recipe retries' : ''}${o.broken === true ? ', BROKEN server' : ''})`, results, proxies, load, apps: [a.apps, b.apps] }
}

/** One instance with `restart`; three SIGHUPs, each to the process the pid file names once the one before has exited. */
async function restarts (t: Test, framework: Framework): Promise<Run> {
  const dir = tempDir(t)
  const pidFile = join(dir, 'app.pid')
  const { apps, port } = await startApp(t, framework, { PID_FILE: pidFile })
  const readPid = (): number => existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN
  const proxies = await startProxies(t, dir, [port], false)
  const load = startLoad(t, proxies)
  await load.seen(apps.pid)
  const serving = [apps.pid]
  for (let i = 1; i <= 3; i++) {
    const predecessor = serving[i - 1] as number
    t.equal(readPid(), predecessor, `restart ${i}: the pid file names the serving process`)
    load.mark(`SIGHUP ${i} to ${predecessor}`)
    process.kill(predecessor, 'SIGHUP')
    const ready = await apps.waitLog('graceful: successor ready', (e) => e.pid === predecessor)
    const successor = ready.data.pid as number
    serving.push(successor)
    await gone(predecessor)
    load.mark(`${predecessor} gone; ${successor} serves`)
    await load.seen(successor)
    await load.progress(TAIL)
  }
  const results = await load.stop()
  await Promise.all(proxies.map((p) => p.stop()))
  await apps.end()
  t.equal(new Set(serving).size, 4, 'four generations served')
  t.same(apps.logged('graceful: restart failed'), [], 'no restart failed')
  return { label: `${framework} 3 restarts`, results, proxies, load, apps: [apps] }
}

/** graceful-cluster with two workers; one roll (SIGHUP to the supervisor). */
async function roll (t: Test, framework: Framework): Promise<Run> {
  const dir = tempDir(t)
  const apps = group(t, [CLUSTER_BIN, '--workers', '2', '--ready-timeout', String(BOUND_MS), APP], { FRAMEWORK: framework })
  await apps.waitLog('graceful-cluster: ready')
  const port = (await apps.waitLog('fixture: listening')).data.port as number
  const proxies = await startProxies(t, dir, [port], false)
  const load = startLoad(t, proxies)
  const first = apps.workers()
  for (const pid of first) await load.seen(pid, 'any')
  load.mark(`SIGHUP to the supervisor; workers ${first.join(', ')}`)
  process.kill(apps.pid, 'SIGHUP')
  const done = await apps.waitLog('graceful-cluster: roll done')
  t.match(done.data, { replaced: 2 }, 'the roll replaced both workers')
  const now = apps.workers()
  load.mark(`roll done; workers ${now.join(', ')}`)
  t.notOk(now.some((p) => first.includes(p)), 'both workers are new')
  for (const pid of now) await load.seen(pid, 'any')
  await load.progress(TAIL)
  const results = await load.stop()
  await Promise.all(proxies.map((p) => p.stop()))
  await apps.end()
  return { label: `${framework} graceful-cluster roll`, results, proxies, load, apps: [apps] }
}

const recipe = (file: string): string => readFileSync(new URL(`../examples/${file}`, import.meta.url), 'utf8')

t.test('the recipes are rendered with only addresses, ports and the check interval changed; without retries, only the retry line goes', async (t) => {
  const o = { port: 8001, servers: [9001, 9002], checkIntervalMs: 250 }
  const nginx = recipe('nginx/graceful-app.conf')
  const n = renderNginx(nginx, { ...o, retries: true })
  t.match(n, /\n {4}server 127\.0\.0\.1:9001 max_fails=1 fail_timeout=10s;\n {4}server 127\.0\.0\.1:9002 max_fails=1 fail_timeout=10s;\n/)
  t.notMatch(n, /10\.0\.0\./, 'no example address is left')
  t.match(n, /listen 127\.0\.0\.1:8001;/)
  for (const line of ['keepalive 32;', 'proxy_http_version 1.1;', 'proxy_set_header Connection "";', 'proxy_next_upstream error timeout http_503 non_idempotent;']) {
    t.ok(n.includes(line), `nginx: ${line}`)
  }
  const strict = renderNginx(nginx, { ...o, retries: false })
  t.notMatch(strict, /^\s*proxy_next_upstream\s/m, 'nginx without retries: its default proxy_next_upstream (error timeout)')
  t.equal(strict.split('\n').length, n.split('\n').length - 1, 'nginx without retries: that one line less')

  const haproxy = recipe('haproxy/haproxy.cfg')
  const h = renderHaproxy(haproxy, { ...o, retries: true })
  t.match(h, /\n {4}server app1 127\.0\.0\.1:9001\n {4}server app2 127\.0\.0\.1:9002\n/)
  t.notMatch(h, /10\.0\.0\./, 'no example address is left')
  t.match(h, /bind 127\.0\.0\.1:8001\n/)
  t.match(h, /default-server check inter 250ms fall 2 rise 2/)
  for (const line of ['option http-keep-alive', 'http-reuse safe', 'option httpchk GET /readyz', 'http-check expect status 200', 'option redispatch 1', 'retry-on conn-failure 503']) {
    t.ok(h.includes(line), `HAProxy: ${line}`)
  }
  t.match(renderHaproxy(haproxy, { ...o, retries: true, checkPath: '/healthz' }), /option httpchk GET \/healthz\n/)
  const hStrict = renderHaproxy(haproxy, { ...o, retries: false })
  t.notMatch(hStrict, /retry-on/, 'HAProxy without retries: its default retry-on (conn-failure)')
  t.equal(hStrict.split('\n').length, h.split('\n').length - 1, 'HAProxy without retries: that one line less')
  t.throws(() => renderNginx(nginx.replace('listen 80;', 'listen 80 default_server;'), { ...o, retries: true }), /listen line/, 'a recipe that drifted is refused')
})

t.test('docs/recipes.md quotes both proxy recipes as they are', async (t) => {
  const docs = readFileSync(new URL('../docs/recipes.md', import.meta.url), 'utf8')
  t.ok(docs.includes('```nginx\n' + recipe('nginx/graceful-app.conf') + '```'), 'examples/nginx/graceful-app.conf')
  t.ok(docs.includes('```haproxy\n' + recipe('haproxy/haproxy.cfg') + '```'), 'examples/haproxy/haproxy.cfg')
})

if (missing.length > 0) {
  const why = `${missing.join(' and ')} not installed (Debian, as root: apt-get update && apt-get install -y nginx haproxy)`
  if (REQUIRE) t.fail(`${why}; GRACEFUL_REQUIRE_PROXIES=1 requires both`)
  else t.test(`the scenarios behind ${missing.join(' and ')}`, { skip: why }, async () => {})
}

if (installed.length > 0) {
  for (const framework of FRAMEWORKS) {
    t.test(`${framework} behind ${installed.join(' and ')}`, async (t) => {
      t.test(`SIGTERM with a ${DELAY_MS} ms delay to one of two instances loses no request while the other serves`, async (t) => {
        verdict(t, await sigterm(t, framework, { delay: DELAY_MS, retries: false }))
      })
      t.test('three restarts in place lose no request', async (t) => {
        verdict(t, await restarts(t, framework))
      })
      t.test('a graceful-cluster roll of two workers loses no request', async (t) => {
        verdict(t, await roll(t, framework))
      })
      t.test('with the recipes\' retries, SIGTERM without a delay loses no request: the drain\'s 503s are retried on the other instance, and no POST runs twice', async (t) => {
        const run = await sigterm(t, framework, { delay: 0, retries: true })
        const rejected = run.apps[0]?.logged('graceful: drained')[0]?.data.rejected
        t.comment(`the instance answered ${String(rejected)} request${rejected === 1 ? '' : 's'} with the drain's 503`)
        verdict(t, run)
      })
    })
  }

  t.test('the harness catches a server that destroys its connections at SIGTERM', async (t) => {
    const run = await sigterm(t, 'fastify', { delay: DELAY_MS, retries: false, broken: true })
    for (const line of describeRun(run)) t.comment(line)
    for (const r of run.results) {
      t.ok(sum(r.failed) > 0, `${r.name}: requests lost to the broken server were counted (${JSON.stringify(r.failed)})`)
      t.ok(r.failures.some((f) => f.client === 'held POST'), `${r.name}: the POST in flight at SIGTERM was lost`)
    }
  })
}


// The published shape, after the build: plain `node` children (no graceful-source condition, no tap
// loaders) require() and import() each package from the repository root, and two small apps built on the
// dist files shut down cleanly. `pnpm test` builds first; run `npm run build` once before this file alone.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PACKAGES = ['core', 'cluster', 'fastify', 'express', 'check'] as const
type Pkg = typeof PACKAGES[number]

/** Named exports each package must have, with the typeof of each. */
const NAMED: Record<Pkg, Record<string, string>> = {
  core: {
    Graceful: 'function',
    codes: 'object',
    createError: 'function',
    resolveOptions: 'function',
    resolveRouteOptions: 'function',
    DEFAULTS: 'object',
    SIGNALS: 'object',
    IDLE_GRACE_MS: 'number',
    REJECT_BODY: 'string'
  },
  cluster: {
    supervise: 'function',
    Supervisor: 'function',
    main: 'function',
    parseArgs: 'function',
    resolveSuperviseOptions: 'function',
    jsonLogger: 'function',
    USAGE: 'string',
    CLUSTER_DEFAULTS: 'object',
    ENV_CLUSTER: 'string'
  },
  fastify: { graceful: 'function', default: 'function', Graceful: 'function', codes: 'object' },
  express: { graceful: 'function', default: 'function', Graceful: 'function', codes: 'object' },
  check: {
    check: 'function',
    main: 'function',
    parseArgs: 'function',
    parseMs: 'function',
    resolveCheckOptions: 'function',
    mix: 'function',
    formatResult: 'function',
    formatEvent: 'function',
    formatProgress: 'function',
    USAGE: 'string',
    codes: 'object',
    CHECK_DEFAULTS: 'object',
    KINDS: 'object',
    LOOP_KINDS: 'object',
    KIND_LABELS: 'object',
    CLASS_LABELS: 'object',
    PAUSES: 'object',
    CAUSES: 'object',
    FAILURE_CLASSES: 'object'
  }
}

interface Child {
  code: number | null
  stdout: string
  stderr: string
}

/** The environment without tap's loaders, coverage hooks or resolution tweaks. */
function cleanEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(NODE_OPTIONS|NODE_PATH|TAP|_TAPJS|TS_NODE)/.test(key)) continue
    env[key] = value
  }
  env.NODE_OPTIONS = ''
  // tap still wraps spawn; these children load dist, whose coverage must not merge into the sources'.
  env._TAPJS_PROCESSINFO_COVERAGE_ = '0'
  return env
}

/** Runs plain `node` with exactly `args` (no inherited execArgv) from the repository root. */
function node (args: string[]): Promise<Child> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, env: cleanEnv(), timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      resolve({ code, stdout, stderr })
    })
  })
}

/** The JSON the child printed on its `RESULT ` line. */
function resultOf (t: Test, child: Child): Record<string, unknown> {
  const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  if (line === undefined) {
    t.fail('the child printed no result', { stdout: child.stdout, stderr: child.stderr })
    return {}
  }
  return JSON.parse(line.slice('RESULT '.length)) as Record<string, unknown>
}

// Describes every package's module: where it resolved, and typeof each export.
const DESCRIBE = `
function describe (m) {
  const out = {}
  for (const k of Object.keys(m)) out[k] = typeof m[k]
  return out
}`

t.test('the files named in each package.json exports exist on disk', async (t) => {
  for (const pkg of PACKAGES) {
    const dir = join(ROOT, 'packages', pkg)
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      exports: Record<string, Record<string, { types: string, default: string } | string>>
      types?: string
      main?: string
    }
    const dot = manifest.exports['.'] as Record<string, { types: string, default: string } | string>
    for (const condition of ['import', 'require'] as const) {
      const target = dot[condition] as { types: string, default: string }
      t.equal(typeof target, 'object', `${pkg}: exports['.'].${condition} is { types, default }`)
      t.ok(target.types.endsWith('.d.ts'), `${pkg}: ${condition}.types is a .d.ts file`)
      t.ok(existsSync(join(dir, target.types)), `${pkg}: ${condition}.types ${target.types} exists`)
      t.ok(existsSync(join(dir, target.default)), `${pkg}: ${condition}.default ${target.default} exists`)
    }
    if (manifest.types !== undefined) t.ok(existsSync(join(dir, manifest.types)), `${pkg}: types ${manifest.types} exists`)
    if (manifest.main !== undefined) t.ok(existsSync(join(dir, manifest.main)), `${pkg}: main ${manifest.main} exists`)
    t.equal(manifest.exports['./package.json'], './package.json', `${pkg}: exports ./package.json`)
  }
  const cluster = JSON.parse(readFileSync(join(ROOT, 'packages', 'cluster', 'package.json'), 'utf8')) as { bin: Record<string, string> }
  const bin = join(ROOT, 'packages', 'cluster', cluster.bin['graceful-cluster'] as string)
  t.ok(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n'), 'cluster: the graceful-cluster bin exists and starts with a node shebang')
  const check = JSON.parse(readFileSync(join(ROOT, 'packages', 'check', 'package.json'), 'utf8')) as { bin: Record<string, string>, files: string[] }
  const checkBin = join(ROOT, 'packages', 'check', check.bin['graceful-check'] as string)
  t.ok(readFileSync(checkBin, 'utf8').startsWith('#!/usr/bin/env node\n'), 'check: the graceful-check bin exists and starts with a node shebang')
  t.ok(check.files.includes('bin'), 'check: its bin folder is published')
})

t.test('graceful-check --help from the repository root, through the bin the workspace links', async (t) => {
  // pnpm's shim (a shell script) runs packages/check/bin/graceful-check.js, which runs dist.
  const child = await new Promise<Child>((resolve) => {
    execFile(join(ROOT, 'node_modules', '.bin', 'graceful-check'), ['--help'], { cwd: ROOT, env: cleanEnv(), timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
  t.equal(child.code, 0, 'exits 0', { stderr: child.stderr })
  t.match(child.stdout, /^NAME\n {4}graceful-check - /)
})

t.test('require() works from plain node (CommonJS) with the named exports', async (t) => {
  const script = `${DESCRIBE}
const result = {}
for (const pkg of ${JSON.stringify(PACKAGES)}) {
  const name = '@graceful/' + pkg
  try {
    const m = require(name)
    result[pkg] = { resolved: require.resolve(name), exports: describe(m), defaultIsGraceful: m.default === m.graceful }
  } catch (err) {
    result[pkg] = { error: String(err && err.message) }
  }
}
console.log('RESULT ' + JSON.stringify(result))`
  const child = await node(['-e', script])
  t.equal(child.code, 0, 'the child exits with 0')
  const result = resultOf(t, child)
  for (const pkg of PACKAGES) {
    t.test(`@graceful/${pkg}`, async (t) => {
      const r = result[pkg] as { resolved?: string, exports?: Record<string, string>, error?: string, defaultIsGraceful?: boolean }
      t.equal(r.error, undefined, 'require() does not throw')
      t.match(r.resolved, /[/\\]dist[/\\]cjs[/\\]index\.js$/, 'resolves to the CommonJS build, not the sources')
      t.match(r.exports, NAMED[pkg], 'has the named exports')
      if (pkg === 'fastify' || pkg === 'express') t.equal(r.defaultIsGraceful, true, 'default is the same function as graceful')
    })
  }
})

t.test('import() works from plain node (ESM) with default and named exports', async (t) => {
  const script = `${DESCRIBE}
const result = {}
for (const pkg of ${JSON.stringify(PACKAGES)}) {
  const name = '@graceful/' + pkg
  try {
    const m = await import(name)
    result[pkg] = { resolved: import.meta.resolve(name), exports: describe(m), defaultIsGraceful: m.default === m.graceful }
  } catch (err) {
    result[pkg] = { error: String(err && err.message) }
  }
}
console.log('RESULT ' + JSON.stringify(result))`
  const child = await node(['--input-type=module', '-e', script])
  t.equal(child.code, 0, 'the child exits with 0')
  const result = resultOf(t, child)
  for (const pkg of PACKAGES) {
    t.test(`@graceful/${pkg}`, async (t) => {
      const r = result[pkg] as { resolved?: string, exports?: Record<string, string>, error?: string, defaultIsGraceful?: boolean }
      t.equal(r.error, undefined, 'import() does not throw')
      t.match(r.resolved, /\/dist\/esm\/index\.js$/, 'resolves to the ESM build, not the sources')
      t.match(r.exports, NAMED[pkg], 'has the named exports')
      if (pkg === 'fastify' || pkg === 'express') t.equal(r.defaultIsGraceful, true, 'default is the same function as graceful')
    })
  }
})

t.test('a Fastify app with the required CommonJS plugin shuts down cleanly in plain node', async (t) => {
  const script = `
const Fastify = require('fastify')
const { graceful } = require('@graceful/fastify')
async function main () {
  const app = Fastify({ logger: false })
  await app.register(graceful, { signals: false, readiness: {} })
  app.get('/', async (request) => ({ hello: 'world', signal: request.shutdownSignal instanceof AbortSignal }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = 'http://127.0.0.1:' + app.server.address().port
  const res = await fetch(base + '/')
  const body = await res.json()
  const ready = await fetch(base + '/readyz')
  await ready.text()
  await app.close()
  const report = await app.graceful.shutdown()
  console.log('RESULT ' + JSON.stringify({
    resolved: require.resolve('@graceful/fastify'), status: res.status, body, ready: ready.status,
    phase: app.graceful.phase, listening: app.server.listening, report
  }))
}
main().catch((err) => { console.error(err); process.exitCode = 1 })`
  const child = await node(['-e', script])
  t.equal(child.code, 0, 'the child ends on its own with 0', { stderr: child.stderr })
  const r = resultOf(t, child)
  t.match(r.resolved, /[/\\]dist[/\\]cjs[/\\]index\.js$/)
  t.equal(r.status, 200)
  t.same(r.body, { hello: 'world', signal: true })
  t.equal(r.ready, 200)
  t.equal(r.phase, 'closed')
  t.equal(r.listening, false)
  t.match(r.report, { reason: 'close', exitCode: 0, timedOut: false, aborted: 0, destroyedSockets: 0 })
})

t.test('an Express app with the imported ESM middleware shuts down cleanly in plain node', async (t) => {
  const script = `
import express from 'express'
import graceful from '@graceful/express'
import { once } from 'node:events'
const g = graceful({ logger: false, liveness: {} })
const app = express()
app.use(g)
app.get('/', (req, res) => { res.json({ hello: 'world', signal: req.shutdownSignal instanceof AbortSignal }) })
const server = app.listen(0, '127.0.0.1')
await once(server, 'listening')
const base = 'http://127.0.0.1:' + server.address().port
const res = await fetch(base + '/')
const body = await res.json()
const live = await fetch(base + '/livez')
await live.text()
const report = await g.shutdown('exports-test')
console.log('RESULT ' + JSON.stringify({
  resolved: import.meta.resolve('@graceful/express'), status: res.status, body, live: live.status,
  phase: g.phase, listening: server.listening, report
}))`
  const child = await node(['--input-type=module', '-e', script])
  t.equal(child.code, 0, 'the child ends on its own with 0', { stderr: child.stderr })
  const r = resultOf(t, child)
  t.match(r.resolved, /\/dist\/esm\/index\.js$/)
  t.equal(r.status, 200)
  t.same(r.body, { hello: 'world', signal: true })
  t.equal(r.live, 200)
  t.equal(r.phase, 'closed')
  t.equal(r.listening, false)
  t.match(r.report, { reason: 'exports-test', exitCode: 0, timedOut: false, aborted: 0, destroyedSockets: 0 })
})

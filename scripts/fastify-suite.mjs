// Fastify's own tests for closing, run unchanged from the installed fastify package, once as they are
// ("plain") and once with @graceful/fastify registered on every Fastify instance they create ("graceful",
// see scripts/fastify-suite/with-graceful.cjs). A case may fail with the plugin only if
// scripts/fastify-suite/differences.json lists it, with its reason; the README's "Differences from plain
// Fastify's close" says the same in prose.
//
//   node scripts/fastify-suite.mjs              # run, compare, print the differences and a summary line
//   node scripts/fastify-suite.mjs --verbose    # every case in both modes, errors, and each process's time
//   node scripts/fastify-suite.mjs --json=FILE  # also write every case's results to FILE
//
// It uses the built plugin (packages/*/dist/cjs): build first (`pnpm test` does). It fails (exit 1) when a
// case fails that is not listed, in either mode; when a listed case passes with the plugin (the list must
// stay true: take it off), unless the entry says it is flaky; when a listed case no longer exists; or when
// the set-up is wrong (a stale build, devDependencies that differ from fastify's, a listed case the README
// does not name). The last line is
//   'fastify-suite: N cases, N pass plain, N pass with graceful, N listed differences … (S s): ok | FAILED'.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const here = fileURLToPath(new URL('./fastify-suite/', import.meta.url))

/**
 * The files, relative to the fastify package's test/ folder, and, where only part of a file is about
 * closing, the top-level tests to run (by exact name; their subtests run with them).
 */
export const SUITE = [
  { file: 'close.test.js' },
  { file: 'close-pipelining.test.js' },
  { file: 'close-disposable.test.js' },
  { file: 'async-dispose.test.js' },
  { file: 'http2/closing.test.js' },
  { file: 'custom-http-server.test.js' },
  // Fastify 5's other onClose and preClose hook tests (hooks.test.js and hooks-async.test.js have none).
  { file: 'server.test.js', only: ['abort signal', '#5180 - preClose should be called before closing secondary server'] }
]

/** fastify's devDependencies that these files require; the root package.json must ask for the same ranges. */
export const DEV_DEPENDENCIES = ['node-forge', 'proxyquire', 'split2', 'undici']

/**
 * node:test's own per-test timeout: a test still running then fails and the next one starts. Above the
 * drain's 10 s `timeout` (a case that waits out the deadline still gets its own verdict) and six times the
 * slowest case plain (2 s). Needed on Node 24, which keeps a process with a test that never finishes
 * alive instead of cancelling it once the event loop is empty, as Node 20 and 22 do.
 */
const TEST_TIMEOUT_MS = 12_000
/** A process still running after this long is killed: the test it was running fails as hung. */
const PROCESS_TIMEOUT_MS = 50_000
/** The README subsection that mirrors differences.json. */
const README_SECTION = "Differences from plain Fastify's close"
/** Runs per file and mode; each rerun (after a test that never finished) settles at least one case. */
const MAX_RUNS = 12

const rootRequire = createRequire(join(root, 'package.json'))
export const fastifyDir = dirname(realpathSync(rootRequire.resolve('fastify/package.json')))
const fastifyPkg = JSON.parse(readFileSync(join(fastifyDir, 'package.json'), 'utf8'))

/** Problems with the set-up itself: the run stops before it starts. */
function checkSetup () {
  const problems = []
  if (!fastifyPkg.version.startsWith('5.')) problems.push(`fastify ${fastifyPkg.version} is installed; the list of differences is for Fastify 5`)
  const ours = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).devDependencies ?? {}
  for (const name of DEV_DEPENDENCIES) {
    const theirs = fastifyPkg.devDependencies?.[name]
    if (ours[name] !== theirs) problems.push(`devDependency ${name}: package.json asks for ${ours[name] ?? 'nothing'}, fastify ${fastifyPkg.version}'s tests for ${theirs ?? 'nothing'}`)
  }
  // The children load the built CommonJS plugin; a build older than its sources would test old code.
  for (const pkg of ['core', 'fastify']) {
    const newest = (dir, ext) => {
      try {
        return Math.max(0, ...readdirSync(dir).filter((f) => f.endsWith(ext)).map((f) => statSync(join(dir, f)).mtimeMs))
      } catch {
        return 0
      }
    }
    const built = statSync(join(root, 'packages', pkg, 'dist/cjs/index.js'), { throwIfNoEntry: false })?.mtimeMs ?? 0
    if (built < newest(join(root, 'packages', pkg, 'src'), '.ts')) {
      problems.push(`packages/${pkg}/dist/cjs is ${built === 0 ? 'missing' : 'older than packages/' + pkg + '/src'}: build first (npx -y pnpm@10 build)`)
    }
  }
  // The README's subsection names every listed case (and its reason, in prose).
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const start = readme.indexOf(`#### ${README_SECTION}`)
  const section = start === -1 ? '' : readme.slice(start, readme.indexOf('\n#', start + 1))
  if (section === '') problems.push(`README.md has no "#### ${README_SECTION}" subsection`)
  for (const d of loadDifferences()) {
    if (section !== '' && !section.includes(`\`${d.test}\``)) problems.push(`README.md's "${README_SECTION}" does not name \`${d.test}\` (${d.file}), listed in differences.json`)
  }
  return problems
}

function escapeRegExp (text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * One process: the file with our reporter and preload, only the named top-level tests if `only` is given.
 * Resolves with the cases it reported (`{ outcome, name, nesting, ms, failureType?, error? }`), the
 * instances the preload counted, and how the process ended.
 */
function runOnce (file, mode, only) {
  const args = [
    `--require=${join(here, 'with-graceful.cjs')}`,
    `--test-reporter=${pathToFileURL(join(here, 'reporter.mjs'))}`,
    '--test-reporter-destination=stdout',
    `--test-timeout=${TEST_TIMEOUT_MS}`,
    ...(only ?? []).map((name) => `--test-name-pattern=^${escapeRegExp(name)}$`),
    join(fastifyDir, 'test', file)
  ]
  // Fastify's tests, not ours: no coverage from them, and none of tap's preloads.
  const env = { ...process.env, FASTIFY_SUITE_MODE: mode, FASTIFY_SUITE_FASTIFY: fastifyDir, _TAPJS_PROCESSINFO_COVERAGE_: '0' }
  delete env.NODE_V8_COVERAGE
  delete env.NODE_OPTIONS
  delete env.NODE_TEST_CONTEXT
  const started = performance.now()
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: fastifyDir, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const cases = []
    let instances = null
    let stdout = ''
    let stderr = ''
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, PROCESS_TIMEOUT_MS)
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue
        let parsed
        try { parsed = JSON.parse(line) } catch { continue }
        if (parsed.outcome !== undefined) cases.push(parsed)
        else if (parsed.instances === true) instances = parsed
      }
      resolve({ cases, instances, code, signal, timedOut, stderr, only, ms: Math.round(performance.now() - started) })
    })
  })
}

/**
 * Every case of one file in one mode. Node 20 and 22 cancel every test left when the event loop empties
 * while one is still pending (a callback that never comes), and a process that never ends is killed: the
 * test that was running then fails as never finished, and the tests after it run again in a new process,
 * so that each case gets a verdict of its own.
 */
async function runFile ({ file, only }, mode, topLevelNames = async () => []) {
  const settled = new Map()
  const runs = []
  let pending = only
  for (let i = 0; i < MAX_RUNS && pending?.length !== 0; i++) {
    const result = await runOnce(file, mode, pending)
    runs.push(result)
    const cancelled = []
    for (const c of result.cases) {
      if (c.outcome === 'skip' && c.why === 'test name does not match pattern') continue
      const top = c.name.split(' > ')[0]
      if (c.nesting === 0 && c.failureType === 'cancelledByParent') cancelled.push(top)
      else if (!cancelled.includes(top)) settled.set(c.name, c)
    }
    // The tests a killed process never reported: known from the plain run, which always completes.
    const unreported = result.timedOut
      ? (await topLevelNames()).filter((name) => !settled.has(name) && !cancelled.includes(name) && (only === undefined || only.includes(name)))
      : []
    const [stuck, ...rest] = [...cancelled, ...unreported]
    if (stuck === undefined) break
    settled.set(stuck, {
      outcome: 'fail',
      name: stuck,
      nesting: 0,
      ms: 0,
      failureType: 'neverFinished',
      error: result.timedOut
        ? `never finished: the process was still running after ${PROCESS_TIMEOUT_MS / 1000} s`
        : 'never finished: the event loop emptied while the test was still waiting (for a callback or promise that never came)'
    })
    pending = rest
  }
  const add = (key) => runs.reduce((n, r) => n + (r.instances?.[key] ?? 0), 0)
  return { cases: settled, runs, instances: { created: add('created'), withPlugin: add('withPlugin') } }
}

/** At most `jobs` tasks at once, in order. */
async function pool (tasks, jobs) {
  const results = new Array(tasks.length)
  let next = 0
  async function worker () {
    while (next < tasks.length) {
      const i = next++
      results[i] = await tasks[i]()
    }
  }
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker))
  return results
}

/**
 * The listed differences, checked for shape: `{ file, test, kind: 'intended' | 'defect', issue?, reason,
 * flaky? }`; a defect names its issue, a flaky entry says why it races.
 */
export function loadDifferences () {
  const list = JSON.parse(readFileSync(join(here, 'differences.json'), 'utf8')).differences
  const text = (v) => typeof v === 'string' && v !== ''
  for (const d of list) {
    if (!text(d.file) || !text(d.test) || !['intended', 'defect'].includes(d.kind) || !text(d.reason) ||
        (d.flaky !== undefined && !text(d.flaky)) || (d.kind === 'defect' && !text(d.issue))) {
      throw new TypeError(`scripts/fastify-suite/differences.json: bad entry ${JSON.stringify(d)}`)
    }
  }
  return list
}

/**
 * The verdicts: what makes the run fail. A case's own problem is also set on it (`case.problem`), for the
 * tap test to report case by case.
 */
function judge (cases, differences, perFile) {
  const failures = []
  for (const c of cases) {
    if (c.plain === 'fail' || c.plain === 'missing') {
      c.problem = `fails without the plugin too (${c.plainError ?? c.plain}): the environment, or Fastify's own test`
    } else if ((c.graceful === 'fail' || c.graceful === 'missing') && c.listed === undefined) {
      c.problem = `fails with the plugin and is not listed in differences.json: ${c.gracefulError ?? c.graceful}`
    } else if (c.graceful === 'pass' && c.listed !== undefined && c.listed.flaky === undefined) {
      c.problem = `listed in differences.json (${c.listed.kind}) but passes with the plugin: take it off the list and out of the README`
    }
    if (c.problem !== undefined) failures.push(`${c.file} › ${c.name}: ${c.problem}`)
  }
  for (const d of differences) {
    if (!cases.some((c) => c.file === d.file && c.name === d.test)) {
      failures.push(`${d.file} › ${d.test}: listed in differences.json, but there is no such case (renamed in fastify ${fastifyPkg.version}?)`)
    }
  }
  for (const { entry, plain, graceful } of perFile) {
    if (graceful.instances.withPlugin === 0) failures.push(`${entry.file}: no Fastify instance loaded the plugin (is the preload working?)`)
    for (const [mode, { runs }] of [['plain', plain], ['graceful', graceful]]) {
      for (const r of runs) {
        // A process that failed without any failing case: a crash outside the tests (the preload, a require).
        if (r.code !== 0 && !r.timedOut && !r.cases.some((c) => c.outcome === 'fail')) {
          failures.push(`${entry.file} (${mode}): the process exited with ${r.code ?? r.signal} and no failing case: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`)
        }
      }
    }
  }
  return failures
}

/** Runs everything; resolves with the summary, every case and the failures, printing as it goes. */
export async function runSuite ({ verbose = false, print = true, jobs = Math.min(6, 2 * availableParallelism()) } = {}) {
  const started = performance.now()
  const log = print ? (line) => console.log(line) : () => {}
  log(`fastify-suite: fastify ${fastifyPkg.version}, node ${process.version}, ${SUITE.length} files, ${jobs} processes at a time`)
  const differences = loadDifferences()
  const problems = checkSetup()
  if (problems.length !== 0) {
    for (const p of problems) log(`not ok: ${p}`)
    log('fastify-suite: not run: FAILED')
    return { summary: null, cases: [], failures: problems }
  }

  // Every file in both modes side by side. A killed graceful process learns which tests it never
  // reported from the plain run of the same file, queued just before it.
  const plainRuns = new Map()
  const tasks = SUITE.flatMap((entry) => [
    () => {
      const run = runFile(entry, 'plain')
      plainRuns.set(entry.file, run)
      return run
    },
    () => runFile(entry, 'graceful', async () => {
      const plain = await plainRuns.get(entry.file)
      return [...plain.cases.values()].filter((c) => c.nesting === 0).map((c) => c.name)
    })
  ])
  const results = await pool(tasks, jobs)
  const perFile = SUITE.map((entry, i) => ({ entry, plain: results[2 * i], graceful: results[2 * i + 1] }))

  const cases = []
  for (const { entry, plain, graceful } of perFile) {
    for (const name of new Set([...plain.cases.keys(), ...graceful.cases.keys()])) {
      const p = plain.cases.get(name)
      const g = graceful.cases.get(name)
      cases.push({
        file: entry.file,
        name,
        plain: p?.outcome ?? 'missing',
        graceful: g?.outcome ?? 'missing',
        plainError: p?.error,
        gracefulError: g?.error,
        ms: { plain: p?.ms, graceful: g?.ms },
        listed: differences.find((d) => d.file === entry.file && d.test === name)
      })
    }
  }
  const failures = judge(cases, differences, perFile)

  const count = (pred) => cases.filter(pred).length
  const summary = {
    cases: count((c) => c.plain !== 'skip' || c.graceful !== 'skip'),
    passPlain: count((c) => c.plain === 'pass'),
    passGraceful: count((c) => c.graceful === 'pass'),
    skipped: count((c) => c.plain === 'skip' && c.graceful === 'skip'),
    listedFailing: count((c) => c.listed !== undefined && c.graceful === 'fail'),
    listedFlakyPassing: count((c) => c.listed?.flaky !== undefined && c.graceful === 'pass'),
    seconds: Math.round((performance.now() - started) / 100) / 10,
    processes: perFile.reduce((n, f) => n + f.plain.runs.length + f.graceful.runs.length, 0),
    instances: perFile.reduce((n, f) => n + f.graceful.instances.withPlugin, 0)
  }

  for (const c of cases) {
    if (!verbose && (c.graceful === c.plain || c.graceful === 'skip') && c.listed === undefined) continue
    const mark = c.listed === undefined
      ? ''
      : `  [listed: ${c.listed.kind}${c.listed.issue === undefined ? '' : ` ${c.listed.issue}`}${c.listed.flaky === undefined ? '' : ', flaky'}]`
    log(`  ${c.plain.padEnd(4)} plain, ${c.graceful.padEnd(4)} graceful  ${c.file} › ${c.name}${mark}`)
    if (verbose && c.graceful === 'fail') log(`        ${String(c.gracefulError).trim().split('\n').join('\n        ')}`)
  }
  if (verbose) {
    for (const { entry, plain, graceful } of perFile) {
      const times = (runs) => runs.map((r) => `${(r.ms / 1000).toFixed(1)} s${r.only === undefined ? '' : ` (${r.only.length} tests)`}`).join(', ')
      log(`  ${entry.file}: plain ${times(plain.runs)}; graceful ${times(graceful.runs)}`)
    }
  }
  for (const f of failures) log(`not ok: ${f}`)
  log(`fastify-suite: ${summary.cases} cases, ${summary.passPlain} pass plain, ${summary.passGraceful} pass with graceful, ` +
    `${summary.listedFailing} listed differences failing${summary.listedFlakyPassing === 0 ? '' : ` (+${summary.listedFlakyPassing} flaky ones passing)`}` +
    `${summary.skipped === 0 ? '' : `, ${summary.skipped} skipped on this Node`} ` +
    `(${summary.processes} processes, ${summary.instances} instances with the plugin, ${summary.seconds} s): ${failures.length === 0 ? 'ok' : 'FAILED'}`)
  return { summary, cases, failures }
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const verbose = process.argv.includes('--verbose')
  const json = process.argv.find((a) => a.startsWith('--json='))
  const result = await runSuite({ verbose })
  if (json !== undefined) writeFileSync(json.slice('--json='.length), JSON.stringify(result, null, 2) + '\n')
  process.exitCode = result.failures.length === 0 ? 0 : 1
}

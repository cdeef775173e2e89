// The test suite on every supported Node version, one after another (tap's coverage folder .tap/ is shared):
//
//   - Node 20, the oldest supported: the whole suite, `pnpm test` — build, type-check, every test file, the
//     coverage gate.
//   - Node 22 and 24: the test files in EVERY_VERSION below, without coverage (the gate is met on Node 20; a
//     subset cannot meet it), on the build Node 20 made (tsc's output does not depend on the Node running it).
//
// The machine's own Node serves its major version; the others are the `node` package from the npm registry
// (`npx -p node@22`), which ships the real binary. Each run gets that binary first on PATH, so `node`, npx,
// pnpm, tap, its test processes and the fixtures they fork all run on it (test/node-version.test.ts checks).
//
//   node scripts/test-matrix.mjs          # 20 whole, then 22 and 24
//   node scripts/test-matrix.mjs 22 24    # only these (builds first if Node 20 is not among them)
//
// Prints one line per version, 'matrix: node vX.Y.Z: N passed, N failed (S s)', and exits 1 if any failed.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const FULL = '20'
const VERSIONS = process.argv.length > 2 ? process.argv.slice(2) : ['20', '22', '24']
const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * The test files that also run on Node 22 and 24: those that exercise what changes between Node versions —
 * the HTTP, TLS, HTTP/2 and socket internals the engine reads and drives, signals and exits of real
 * processes, file descriptors handed to a successor, node:cluster and its IPC, upgraded connections, and
 * loading the packages as ESM and CommonJS. The rest check our own logic (options, the signal registry with
 * stand-ins, adapter wiring), TypeScript's view of the types, the docs and the npm packages: the same on any
 * Node, so they run once, on Node 20. A new test file runs on Node 20 only until it is added here; add it
 * when it starts real processes or servers to check Node's behaviour rather than ours (README: Supported).
 */
const EVERY_VERSION = [
  'test/node-version.test.ts', // the binary under test, and the diagnostics channel Express's auto-attach needs
  'test/connections.contract.test.ts', // keep-alive, idle, partial and pipelined connections in a drain
  'test/lifecycle.contract.test.ts', // phases, 503s and Connection: close through Node's HTTP server
  'test/coverage-core.test.ts', // the engine's rarer paths: TLS and HTTP/2 servers, the idle sweep, pipelining
  'test/node-internals.test.ts', // each read of Node's own state the engine relies on (connection lists, timers, HTTP/2)
  'test/drain.contract.test.ts', // slow and busy clients, pipelining, resets, Expect: 100-continue, late accepts
  'test/hardening.test.ts', // the accept queue and pipelined resets through real SIGTERMs
  'test/serving.test.ts', // no listener of ours on Node's requests, responses and connections while serving
  'test/websockets.test.ts', // upgraded connections
  'test/tls.test.ts', // HTTPS and HTTP/2 (GOAWAY, stream resets; Node 24's request() after GOAWAY differs)
  'test/signals.test.ts', // real signals to forked processes, exit codes
  'test/faults.test.ts', // uncaught errors, late listens, a blocked event loop, slow readers, 1,000 connections
  'test/many-servers.test.ts', // several servers and instances in one process under one signal
  'test/examples.test.ts', // the recipes' apps forked and signalled
  'test/restart.test.ts', // listening sockets handed to a successor as file descriptors, IPC
  'test/restart-unit.test.ts',
  'test/cluster.test.ts', // node:cluster: round-robin handles, worker IPC, PID 1
  'test/cluster-unit.test.ts',
  'test/cluster-worker.test.ts',
  'test/fastify-suite.test.ts', // Fastify's own close tests (some run only on some Node versions)
  'test/exports.test.ts' // require() and import() of the built packages (require(esm) differs between versions)
]

// Without the npm_* variables of the pnpm (or npm) run that started us: npx reads npm_config_* as its own
// options, and a nested `npx -p` would inherit the package list of the one before.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')))

/** The node binary for a major version: ours if it matches, else the npm registry's `node` package. */
function nodeFor (major) {
  if (process.versions.node.split('.')[0] === major) return process.execPath
  const found = spawnSync('npx', ['-y', '-p', `node@${major}`, '--', 'node', '-p', 'process.execPath'], {
    cwd: root, env: cleanEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit']
  })
  if (found.status !== 0) throw new Error(`npx -p node@${major} failed with status ${found.status}`)
  return found.stdout.trim().split('\n').pop()
}

function versionOf (bin) {
  return spawnSync(bin, ['-p', 'process.version'], { encoding: 'utf8' }).stdout.trim()
}

/** tap's own entry point, run with the version's node rather than through pnpm's shell shim. */
function tapBin () {
  const manifest = createRequire(join(root, 'package.json')).resolve('tap/package.json')
  return join(dirname(manifest), JSON.parse(readFileSync(manifest, 'utf8')).bin.tap)
}

/** Runs `command args` with `bin` first on PATH; resolves with tap's counts and the exit status. */
function runSuite (bin, version, command, args) {
  return new Promise((resolve) => {
    const started = performance.now()
    const child = spawn(command, args, {
      cwd: root,
      env: { ...cleanEnv, PATH: `${dirname(bin)}${delimiter}${cleanEnv.PATH ?? ''}`, GRACEFUL_EXPECT_NODE: version },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let summary = null
    let tail = ''
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk)
      // tap's closing summary: '# { total: 3830, pass: 3828, fail: 2 }'.
      const text = tail + chunk.toString('utf8')
      for (const m of text.matchAll(/^# \{ total: \d+[^}\n]*\}$/gm)) summary = m[0]
      tail = text.slice(text.lastIndexOf('\n') + 1)
    })
    child.stderr.on('data', (chunk) => process.stderr.write(chunk))
    child.on('close', (status) => {
      const count = (name) => Number(summary?.match(new RegExp(`${name}: (\\d+)`))?.[1] ?? 0)
      resolve({ status, summary, passed: count('pass'), failed: count('fail'), seconds: Math.round((performance.now() - started) / 1000) })
    })
  })
}

const missing = EVERY_VERSION.filter((f) => !existsSync(join(root, f)))
if (missing.length > 0) throw new Error(`scripts/test-matrix.mjs lists test files that do not exist: ${missing.join(', ')}`)

const results = []
let built = false
for (const major of VERSIONS) {
  let bin
  let version
  try {
    bin = nodeFor(major)
    version = versionOf(bin)
    if (!version.startsWith(`v${major}.`)) throw new Error(`${bin} is ${version}, not Node ${major}`)
  } catch (err) {
    results.push({ version: `node@${major}`, status: 1, summary: null, passed: 0, failed: 0, seconds: 0, error: err.message })
    continue
  }
  if (major === FULL) {
    console.log(`\nmatrix: node ${version} (${bin}): npx -y pnpm@10 test (the whole suite, with coverage)`)
    results.push({ version, ...await runSuite(bin, version, 'npx', ['-y', 'pnpm@10', 'test']) })
    built = true
  } else {
    if (!built) {
      execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' })
      built = true
    }
    console.log(`\nmatrix: node ${version} (${bin}): tap --disable-coverage on the ${EVERY_VERSION.length} files that run on every version`)
    results.push({ version, ...await runSuite(bin, version, bin, [tapBin(), '--disable-coverage', ...EVERY_VERSION]) })
  }
}

console.log('')
for (const r of results) {
  const why = r.error ?? (r.summary === null ? 'no tap summary' : r.status !== 0 ? `exit status ${r.status}` : '')
  console.log(`matrix: node ${r.version}: ${r.passed} passed, ${r.failed} failed (${r.seconds} s)${why === '' ? '' : `; ${why}`}`)
}
process.exitCode = results.every((r) => r.status === 0 && r.summary !== null) ? 0 : 1

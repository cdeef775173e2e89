// The whole test suite (`pnpm test`: build, type-check, tap with its coverage gate) on every supported Node
// version, one after another: tap's coverage folder .tap/ is shared. The machine's own Node serves its
// major version; the others are the `node` package from the npm registry (`npx -p node@22`), which ships
// the real binary. Each run gets that binary first on PATH, so `node`, npx, pnpm, tap, its test processes
// and the fixtures they fork all run on it (test/node-version.test.ts checks).
//
//   node scripts/test-matrix.mjs          # 20, 22 and 24
//   node scripts/test-matrix.mjs 22 24    # only these
//
// Prints one line per version, 'matrix: node vX.Y.Z: N passed, N failed (S s)', and exits 1 if any failed.
import { spawn, spawnSync } from 'node:child_process'
import { delimiter, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const VERSIONS = process.argv.length > 2 ? process.argv.slice(2) : ['20', '22', '24']
const root = fileURLToPath(new URL('..', import.meta.url))

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

/** `pnpm test` with `bin` first on PATH; resolves with tap's counts and the exit status. */
function runSuite (bin, version) {
  return new Promise((resolve) => {
    const started = performance.now()
    const child = spawn('npx', ['-y', 'pnpm@10', 'test'], {
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

const results = []
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
  console.log(`\nmatrix: node ${version} (${bin}): npx -y pnpm@10 test`)
  results.push({ version, ...await runSuite(bin, version) })
}

console.log('')
for (const r of results) {
  const why = r.error ?? (r.summary === null ? 'no tap summary' : r.status !== 0 ? `exit status ${r.status}` : '')
  console.log(`matrix: node ${r.version}: ${r.passed} passed, ${r.failed} failed (${r.seconds} s)${why === '' ? '' : `; ${why}`}`)
}
process.exitCode = results.every((r) => r.status === 0 && r.summary !== null) ? 0 : 1

// The packages as a user gets them: packed the way they are published (scripts/pack.mjs: pnpm pack), installed
// with plain npm into a new project outside the repository, the README's examples (the blocks marked
// `<!-- example: NAME -->`) type-checked there with moduleResolution nodenext and bundler, and run as ESM and
// CommonJS: each answers a request, then drains on SIGTERM and exits 0. Needs the npm registry (for fastify,
// express and their types; npm's cache serves them when it can) and the built dist/ (`pnpm test` builds first).
import t from 'tap'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanEnv, packAll } from '../scripts/pack.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// The children (npm, tsc, the examples) run without tap's loaders and record no coverage: the examples run
// dist files, whose coverage must not merge into the sources', and tsc's would only cost time.
const childEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(cleanEnv as NodeJS.ProcessEnv)
  .filter(([key]) => !/^(NODE_OPTIONS|NODE_PATH|NODE_V8_COVERAGE|TAP|_TAPJS|TS_NODE)/.test(key)))
childEnv._TAPJS_PROCESSINFO_COVERAGE_ = '0'
const require = createRequire(import.meta.url)
const TSC = require.resolve('typescript/bin/tsc')
// A slow npm install on a loaded machine must fail this file, not hang it.
t.setTimeout(240_000)

/** The version the workspace has installed, so the new project resolves what the suite tests with. */
function installed (name: string): string {
  return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version
}

interface Example {
  name: string
  file: string
  /** Run it (else type-check only), after replacing its listen(3000) with a listen on a free loopback port. */
  listen?: [string, string]
}

const EXAMPLES: Example[] = [
  { name: 'fastify-esm', file: 'fastify-esm.ts', listen: ['await app.listen({ port: 3000 })', "await app.listen({ port: 0, host: '127.0.0.1' }).then(() => smoke(app.server))"] },
  { name: 'fastify-cjs', file: 'fastify-cjs.cjs', listen: ['app.listen({ port: 3000 })', "app.listen({ port: 0, host: '127.0.0.1' }).then(() => smoke(app.server))"] },
  { name: 'fastify-satisfies', file: 'fastify-satisfies.ts' },
  { name: 'express-esm', file: 'express-esm.ts', listen: ['app.listen(3000)', "const server = app.listen(0, '127.0.0.1'); server.once('listening', () => void smoke(server))"] },
  { name: 'express-cjs', file: 'express-cjs.cjs', listen: ['app.listen(3000)', "const server = app.listen(0, '127.0.0.1'); server.once('listening', () => void smoke(server))"] }
]

// What the README's examples leave to the reader (db, metrics, sse), and the check each run does once it
// listens: a request and a readiness probe, printed as one JSON line, then SIGTERM to itself.
const SUFFIX_TS = `
// Added by test/packages.test.ts:
const db = { end: async (): Promise<void> => {} }
async function metrics (): Promise<string> { return 'metrics' }
async function sse (): Promise<string> { return 'events' }
async function smoke (server: import('node:net').Server): Promise<void> {
  const { port } = server.address() as import('node:net').AddressInfo
  const res = await fetch('http://127.0.0.1:' + port + '/')
  const ready = await fetch('http://127.0.0.1:' + port + '/readyz')
  console.log(JSON.stringify({ smoke: { status: res.status, body: await res.json(), ready: ready.status } }))
  process.kill(process.pid, 'SIGTERM')
}
`
const SUFFIX_JS = `
// Added by test/packages.test.ts:
const db = { end: async () => {} }
async function metrics () { return 'metrics' }
/** @param {import('node:net').Server} server */
async function smoke (server) {
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address())
  const res = await fetch('http://127.0.0.1:' + port + '/')
  const ready = await fetch('http://127.0.0.1:' + port + '/readyz')
  console.log(JSON.stringify({ smoke: { status: res.status, body: await res.json(), ready: ready.status } }))
  process.kill(process.pid, 'SIGTERM')
}
`
// A type-check-only snippet uses an app and a handler from around it.
const SUFFIX_DECLARE = `
// Added by test/packages.test.ts:
declare const app: import('fastify').FastifyInstance
declare function metrics (): Promise<string>
`

/** The README's code block that follows `<!-- example: NAME … -->`. */
function readmeExample (readme: string, name: string): string {
  const m = new RegExp(`<!-- example: ${name}[ >][^\\n]*\\n\`\`\`(?:ts|js)\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(readme)
  if (m === null) throw new Error(`README.md has no code block marked <!-- example: ${name} -->`)
  return m[1] as string
}

function run (cmd: string, args: string[], cwd: string): { status: number | null, output: string } {
  try {
    const output = execFileSync(cmd, args, { cwd, env: childEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 })
    return { status: 0, output }
  } catch (err) {
    const e = err as { status: number | null, stdout?: string, stderr?: string }
    return { status: e.status, output: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

/** Runs `node file` until it exits; resolves with its code and output, or rejects after `ms`. */
function runNode (file: string, cwd: string, ms: number): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${file} did not exit within ${ms} ms; output:\n${stdout}${stderr}`))
    }, ms)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const dir = mkdtempSync(join(tmpdir(), 'graceful-packages-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const app = join(dir, 'app')

t.test('the packed tarballs install with plain npm into a new project, all at once', async (t) => {
  const started = performance.now()
  const tarballs = packAll(join(dir, 'tarballs'))
  t.same(Object.keys(tarballs).sort(), ['check', 'cluster', 'core', 'express', 'fastify'], 'five tarballs, each with LICENSE, README.md and no workspace: range (packAll checks)')
  execFileSync('mkdir', ['-p', app])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'graceful-user', private: true, type: 'module' }, null, 2))
  const deps = ['fastify', 'express', '@types/express', '@types/node'].map((name) => `${name}@${installed(name)}`)
  const npm = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...Object.values(tarballs), ...deps], app)
  t.equal(npm.status, 0, 'npm install exits 0', { output: npm.output })
  const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string, resolved?: string }> }
  for (const pkg of Object.keys(tarballs)) {
    const entry = lock.packages[`node_modules/@graceful/${pkg}`]
    t.match(entry?.resolved, /^file:/, `@graceful/${pkg} is installed from its tarball, not from the registry`)
  }
  t.equal(lock.packages['node_modules/@graceful/fastify/node_modules/@graceful/core'], undefined, 'the adapters share the one core that was installed beside them')
  t.comment(`packed and installed in ${Math.round(performance.now() - started)} ms`)
})

t.test("the README's examples type-check with moduleResolution nodenext and bundler", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  for (const example of EXAMPLES) {
    let code = readmeExample(readme, example.name)
    if (example.listen !== undefined) {
      const [from, to] = example.listen
      t.equal(code.split(from).length, 2, `${example.name}: the README block has ${from} once`)
      code = code.replace(from, to) + (example.file.endsWith('.cjs') ? SUFFIX_JS : SUFFIX_TS)
    } else {
      code += SUFFIX_DECLARE
    }
    writeFileSync(join(app, example.file), code)
  }
  const strict = { strict: true, target: 'es2022', allowJs: true, checkJs: true, types: ['node'] }
  // Our .d.ts files are checked once, under nodenext, with the ESM and the CommonJS ones in one program (a
  // TypeScript file beside a .cjs one): that is where two declarations of one augmentation must agree.
  writeFileSync(join(app, 'tsconfig.nodenext.json'), JSON.stringify({
    compilerOptions: { ...strict, skipLibCheck: false, module: 'nodenext', moduleResolution: 'nodenext', outDir: 'out' }, include: ['*.ts', '*.cjs']
  }))
  writeFileSync(join(app, 'tsconfig.bundler.json'), JSON.stringify({
    compilerOptions: { ...strict, skipLibCheck: true, module: 'preserve', moduleResolution: 'bundler', noEmit: true }, include: ['*.ts', '*.cjs']
  }))
  for (const mode of ['nodenext', 'bundler']) {
    const tsc = run(process.execPath, [TSC, '-p', `tsconfig.${mode}.json`, '--pretty', 'false'], app)
    t.equal(tsc.status, 0, `tsc with moduleResolution ${mode}: no errors`, { output: tsc.output })
  }
})

t.test("the README's examples run as ESM and as CommonJS: each serves, drains on SIGTERM and exits 0", async (t) => {
  const runs = EXAMPLES.filter((e) => e.listen !== undefined).map(async (example) => {
    // The ESM examples as tsc compiled them (nodenext); the CommonJS ones as written.
    const file = example.file.endsWith('.cjs') ? example.file : join('out', example.file.replace(/\.ts$/, '.js'))
    return { example, ...await runNode(file, app, 60_000) }
  })
  for (const { example, code, stdout, stderr } of await Promise.all(runs)) {
    const line = stdout.split('\n').find((l) => l.startsWith('{"smoke"'))
    t.same(line === undefined ? null : JSON.parse(line), { smoke: { status: 200, body: { hello: 'world' }, ready: 200 } },
      `${example.name}: GET / answers 200 { hello: 'world' } and readiness 200`, { stdout, stderr })
    t.match(stdout + stderr, /graceful: shutdown complete/, `${example.name}: the SIGTERM drain completes`)
    t.equal(code, 0, `${example.name}: exits 0`, { stdout, stderr })
  }
})

t.test('the graceful-cluster command, as the README shows it, runs the installed bin', async (t) => {
  const forms = [
    ['npx', ['--no-install', '@graceful/cluster', '--help']], // --no-install: never reach for the registry here
    [join(app, 'node_modules', '.bin', 'graceful-cluster'), ['--help']],
    [process.execPath, ['--max-old-space-size=512', join(app, 'node_modules', '@graceful', 'cluster', 'bin', 'graceful-cluster.js'), '--help']]
  ] as const
  for (const [cmd, args] of forms) {
    const out = run(cmd, [...args], app)
    t.equal(out.status, 0, `${cmd} ${args.join(' ')} exits 0`, { output: out.output })
    t.match(out.output, /^usage: graceful-cluster \[--workers N\]/, `${cmd} ${args.join(' ')} prints graceful-cluster's usage`)
  }
})

// Fastify's own tests for closing, with @graceful/fastify registered on every instance they create
// (scripts/fastify-suite.mjs): one assertion per case. A case passes here when it passes with the plugin as
// it does without, or when it fails with the plugin and scripts/fastify-suite/differences.json lists it
// (the README's "Differences from plain Fastify's close"). It fails when it fails unlisted, when a listed
// one passes (the list must stay true), or when it fails without the plugin too.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fixtureEnv } from './helpers/fork.js'

interface Case {
  file: string
  name: string
  plain: 'pass' | 'fail' | 'skip' | 'missing'
  graceful: 'pass' | 'fail' | 'skip' | 'missing'
  listed?: { kind: string, issue?: string, flaky?: string }
  problem?: string
}

interface Result {
  summary: { cases: number, passPlain: number, passGraceful: number, seconds: number } | null
  cases: Case[]
  failures: string[]
}

// About 20 s on 2 busy cores (the slowest file takes 9 s plain); Node 24 adds a 12 s per-test timeout for
// the case that never finishes there. Bounded by the harness's own timeouts well before this.
t.setTimeout(120_000)

t.test("Fastify's close tests pass with the plugin, except the listed differences", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-suite-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const json = join(dir, 'result.json')
  const script = fileURLToPath(new URL('../scripts/fastify-suite.mjs', import.meta.url))
  // The harness needs none of tap's loaders, and its children (Fastify's tests) record no coverage.
  const env = fixtureEnv()
  delete env.NODE_OPTIONS
  const child = spawn(process.execPath, [script, `--json=${json}`], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const [code] = await once(child, 'close') as [number | null]

  const result = JSON.parse(readFileSync(json, 'utf8')) as Result
  const caseFailures = new Set(result.cases.filter((c) => c.problem !== undefined).map((c) => `${c.file} › ${c.name}: ${c.problem as string}`))
  for (const failure of result.failures) {
    if (!caseFailures.has(failure)) t.fail(failure)
  }
  for (const c of result.cases) {
    if (c.plain === 'skip' && c.graceful === 'skip') continue
    const listed = c.listed === undefined ? '' : `; listed: ${c.listed.kind}${c.listed.issue === undefined ? '' : ` ${c.listed.issue}`}${c.listed.flaky === undefined ? '' : ', flaky'}`
    t.equal(c.problem, undefined, `${c.file} › ${c.name} (${c.plain} plain, ${c.graceful} with graceful${listed})`)
  }
  t.ok(result.summary !== null && result.summary.cases > 50, `the suite ran (${result.summary?.cases ?? 0} cases)`)
  t.equal(code, 0, 'the harness exits 0', { output })
})

// The documentation's own form: every code block is closed (a block left open swallows the prose and the
// next block, as docs/recipes.md's systemd section once did), and graceful-cluster is never shown as
// `npx graceful-cluster`, which, where @graceful/cluster is not installed, runs an unrelated npm package.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DOCS = [
  'README.md', 'CHANGELOG.md',
  ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
  ...['core', 'fastify', 'express', 'cluster'].map((p) => `packages/${p}/README.md`)
]

t.test('every fenced code block in the docs is closed by a bare fence before the next one opens', (t) => {
  for (const file of DOCS) {
    const fences = readFileSync(join(ROOT, file), 'utf8').split('\n')
      .map((line, i) => ({ line: i + 1, text: line.trim() }))
      .filter((l) => l.text.startsWith('```'))
    // Fences alternate open, close; a closing fence carries no language, so one that does opens a block
    // inside one that was never closed.
    const bad = fences.filter((f, i) => i % 2 === 1 && f.text !== '```').map((f) => `${file}:${f.line} ${f.text}`)
    t.same(bad, [], `${file}: blocks closed (${fences.length / 2} blocks)`)
    t.equal(fences.length % 2, 0, `${file}: no block left open at the end`)
  }
  t.end()
})

/** The lines inside the file's fenced code blocks. */
function codeLines (text: string): string[] {
  let inside = false
  return text.split('\n').filter((line) => {
    if (line.trim().startsWith('```')) {
      inside = !inside
      return false
    }
    return inside
  })
}

t.test('the code blocks show graceful-cluster only in forms that run our bin', (t) => {
  for (const file of DOCS) {
    const code = codeLines(readFileSync(join(ROOT, file), 'utf8'))
    t.same(code.filter((l) => /npx (-y )?graceful-cluster/.test(l)), [], `${file}: no npx graceful-cluster`)
    // A shell line that starts with the bare command works only where it is on PATH (a global install).
    t.same(code.filter((l) => /^graceful-cluster /.test(l)), [], `${file}: no shell line starting with a bare graceful-cluster`)
  }
  t.end()
})

t.test("from a clone, after the build, node packages/cluster/bin/graceful-cluster.js runs the supervisor's CLI", (t) => {
  // Without tap's coverage: this runs dist files, whose coverage must not merge into the sources'.
  const out = execFileSync(process.execPath, [join(ROOT, 'packages', 'cluster', 'bin', 'graceful-cluster.js'), '--help'], {
    encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', _TAPJS_PROCESSINFO_COVERAGE_: '0' }
  })
  t.match(out, /^usage: graceful-cluster \[--workers N\]/)
  t.end()
})

// The release flow: the five packages share one version and one CHANGELOG.md, and what is published is the very
// tarballs that were checked.
//
//   node scripts/release.mjs check            # build, pack into a temp folder, publint + attw (pnpm check:packages)
//   node scripts/release.mjs pack             # the same, into release/ (install these with plain npm)
//   node scripts/release.mjs version 0.2.0    # set the version of all five packages
//   node scripts/release.mjs publish          # pack and check, then `npm publish` each tarball, core first
//
// publint checks each package.json against what its tarball holds; attw (@arethetypeswrong/cli) resolves the
// types as TypeScript would under node10, node16 from CommonJS, node16 from ESM and bundler. Both must find
// nothing at all, suggestions included.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'
import { PACKAGES, ROOT, cleanEnv, packAll } from './pack.mjs'

const attwManifest = createRequire(import.meta.url).resolve('@arethetypeswrong/cli/package.json')
const attw = join(dirname(attwManifest), JSON.parse(readFileSync(attwManifest, 'utf8')).bin.attw)

function build () {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' })
}

/** publint and attw on every tarball; returns the number of packages with problems. */
async function lint (tarballs) {
  let failed = 0
  for (const tarball of Object.values(tarballs)) {
    const buffer = readFileSync(tarball)
    const { messages, pkg: manifest } = await publint({ pack: { tarball: buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) }, level: 'suggestion' })
    for (const m of messages) console.log(`publint ${manifest.name}: ${m.type}: ${formatMessage(m, manifest) ?? m.code}`)
    console.log(`publint ${manifest.name}: ${messages.length === 0 ? 'no problems' : `${messages.length} problem(s)`}`)
    let attwOk = true
    try {
      // --no-definitely-typed: our packages carry their own types; it would only ask the registry for @types.
      execFileSync(process.execPath, [attw, tarball, '--profile', 'strict', '--no-definitely-typed', '--format', 'table-flipped', '--no-color', '--no-emoji'], { stdio: 'inherit' })
    } catch {
      attwOk = false
    }
    console.log(`attw ${manifest.name}: ${attwOk ? 'no problems' : 'problems (above)'} in node10, node16 (from CJS), node16 (from ESM) and bundler`)
    if (messages.length > 0 || !attwOk) failed++
  }
  return failed
}

async function check (dir) {
  build()
  const tarballs = packAll(dir)
  const failed = await lint(tarballs)
  console.log(`check:packages: ${PACKAGES.length - failed} of ${PACKAGES.length} packages without problems`)
  if (failed > 0) process.exitCode = 1
  return failed === 0 ? tarballs : null
}

function versions () {
  return PACKAGES.map((pkg) => JSON.parse(readFileSync(join(ROOT, 'packages', pkg, 'package.json'), 'utf8')).version)
}

const [command, arg] = process.argv.slice(2)
if (command === 'check') {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-pack-'))
  try {
    await check(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
} else if (command === 'pack') {
  const dir = join(ROOT, 'release')
  rmSync(dir, { recursive: true, force: true })
  const tarballs = await check(dir)
  if (tarballs !== null) {
    console.log(`\nInstall them into an app with plain npm, all at once (the adapters need the core beside them):\n  npm install ${Object.values(tarballs).join(' ')}`)
  }
} else if (command === 'version' && /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(arg ?? '')) {
  for (const pkg of PACKAGES) {
    const file = join(ROOT, 'packages', pkg, 'package.json')
    const text = readFileSync(file, 'utf8')
    writeFileSync(file, text.replace(/^ {2}"version": "[^"]*"/m, `  "version": "${arg}"`))
  }
  console.log(`version ${arg} in ${PACKAGES.map((p) => `packages/${p}`).join(', ')}; now add '## ${arg}' to CHANGELOG.md`)
} else if (command === 'publish') {
  const [version, ...others] = versions()
  if (others.some((v) => v !== version)) throw new Error(`the packages' versions differ: ${versions().join(', ')}`)
  if (!readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8').includes(`\n## ${version}`)) throw new Error(`CHANGELOG.md has no '## ${version}' section`)
  if (execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '') throw new Error('commit first: the work tree is not clean')
  const dir = join(ROOT, 'release')
  rmSync(dir, { recursive: true, force: true })
  const tarballs = await check(dir)
  if (tarballs === null) throw new Error('not published: the checks above failed')
  for (const pkg of PACKAGES) {
    execFileSync('npm', ['publish', tarballs[pkg], '--access', 'public'], { cwd: ROOT, env: cleanEnv, stdio: 'inherit' })
  }
  console.log(`published ${version}; tag it: git tag v${version} && git push --tags`)
} else {
  console.error('usage: node scripts/release.mjs check | pack | version X.Y.Z | publish')
  process.exitCode = 2
}

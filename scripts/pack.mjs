// Packs the five packages as they would be published, and checks what is inside. Used by the release script
// (scripts/release.mjs), `pnpm check:packages` and test/packages.test.ts.
//
// pnpm pack, not npm pack: npm leaves `"@graceful/core": "workspace:*"` in the tarball, which npm cannot
// install (EUNSUPPORTEDPROTOCOL); pnpm writes the version it stands for (`workspace:*` → `0.1.0`, exact:
// the adapters and the supervisor use the core of their own release). Packs what `dist/` holds: build first.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Package folders, each after the packages it depends on (the order to publish them in). */
export const PACKAGES = ['core', 'fastify', 'express', 'cluster', 'check']

// Without the npm_* variables of a pnpm or npm run around us: npx reads npm_config_* as its own options.
export const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')))

/** Reads one file out of a .tgz (tar's own gzip reader; every tarball has its files under package/). */
export function fileInTarball (tarball, path) {
  return execFileSync('tar', ['-xzOf', tarball, `package/${path}`], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
}

export function filesInTarball (tarball) {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''))
}

/**
 * `pnpm pack` of every package into `dir`. Returns `{ core: '/dir/graceful-core-0.1.0.tgz', … }`. Throws
 * (naming the package and what is wrong) when a tarball would not install or misses a file a user needs.
 */
export function packAll (dir) {
  mkdirSync(dir, { recursive: true })
  for (const pkg of PACKAGES) {
    if (!existsSync(join(ROOT, 'packages', pkg, 'dist', 'esm', 'index.js'))) {
      throw new Error(`packages/${pkg}/dist is missing: run \`npx -y pnpm@10 build\` first`)
    }
  }
  execFileSync('npx', ['-y', 'pnpm@10', '--filter', './packages/*', '-r', 'pack', '--pack-destination', dir], {
    cwd: ROOT, env: cleanEnv, stdio: ['ignore', 'ignore', 'inherit']
  })
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8')
  const tarballs = {}
  for (const pkg of PACKAGES) {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'packages', pkg, 'package.json'), 'utf8'))
    const tarball = join(dir, `graceful-${pkg}-${version}.tgz`)
    if (!readdirSync(dir).includes(`graceful-${pkg}-${version}.tgz`)) throw new Error(`pnpm pack wrote no ${tarball}`)
    const manifest = fileInTarball(tarball, 'package.json')
    if (manifest.includes('workspace:')) throw new Error(`${tarball}: package.json still has a workspace: range`)
    const files = filesInTarball(tarball)
    for (const needed of ['LICENSE', 'README.md', 'dist/esm/index.js', 'dist/cjs/index.js', 'dist/cjs/package.json']) {
      if (!files.includes(needed)) throw new Error(`${tarball} has no ${needed}`)
    }
    if (fileInTarball(tarball, 'LICENSE') !== license) throw new Error(`${tarball}: its LICENSE differs from the repository's`)
    tarballs[pkg] = tarball
  }
  return tarballs
}

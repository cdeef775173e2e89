// Builds every package, dependencies first (core before the adapters).
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

for (const pkg of ['core', 'cluster', 'fastify', 'express', 'check']) {
  execFileSync(process.execPath, [fileURLToPath(new URL('./build-package.mjs', import.meta.url))], {
    cwd: fileURLToPath(new URL(`../packages/${pkg}/`, import.meta.url)),
    stdio: 'inherit'
  })
}

// Builds the package in the current folder twice with tsc: ESM into dist/esm, CommonJS into dist/cjs.
// A package.json with "type": "commonjs" makes Node (and TypeScript) read dist/cjs as CommonJS.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
rmSync('dist', { recursive: true, force: true })
const run = (...args) => execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json', ...args], { stdio: 'inherit' })
run('--outDir', 'dist/esm')
run('--outDir', 'dist/cjs', '--module', 'commonjs', '--moduleResolution', 'node10', '--ignoreDeprecations', '6.0')
mkdirSync('dist/cjs', { recursive: true })
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n')

'use strict'
// Preloaded (`--require`) into each of Fastify's own test files that scripts/fastify-suite.mjs runs, in both
// modes, so that the baseline runs with the same flags and preloads:
//
// - FASTIFY_SUITE_MODE=graceful replaces the factory that the installed fastify package exports, so that
//   every instance the unchanged test file creates — with require('..'), require('../fastify'), the
//   helper's, or a fresh copy made by proxyquire — registers @graceful/fastify first, as an app would:
//     const app = Fastify(opts); app.register(graceful, OPTIONS)
//   The plugin is the built CommonJS one (packages/fastify/dist/cjs), what `require('@graceful/fastify')`
//   gives a user: no TypeScript loader in these processes (tsx's loader thread keeps a process alive on
//   Node 24, which hides the tests that never finish).
// - FASTIFY_SUITE_MODE=plain only counts the instances.
// - In both, the test files' own devDependencies (undici, split2, node-forge, proxyquire) come from the root
//   package.json, at the ranges fastify's package.json asks for; without this Node would find whatever
//   version pnpm hoisted into node_modules/.pnpm/node_modules first (another package's undici 6).
// On exit it prints one line for the harness: {"instances":true,"created":N,"withPlugin":N}.
const Module = require('node:module')
const { writeSync } = require('node:fs')
const { join, sep } = require('node:path')

/**
 * What a user gets by default, except `signals: false`: a test process must install no signal or
 * uncaught-error handlers (node:test reports uncaught errors itself). `logger` is left out, so the plugin
 * logs through the instance's own logger as it does in an app (the tests that read Fastify's log lines see
 * ours beside them). `delay` stays 0, `timeout` 10 s, `hookTimeout` 5 s, `retryAfter` 1, no readiness or
 * liveness route (they would add routes the tests do not expect), no restart.
 */
const OPTIONS = Object.freeze({ signals: false })

const DEV_DEPENDENCIES = new Set(['node-forge', 'proxyquire', 'split2', 'undici'])

const mode = process.env.FASTIFY_SUITE_MODE
const fastifyDir = process.env.FASTIFY_SUITE_FASTIFY
if (mode !== 'plain' && mode !== 'graceful') throw new Error(`FASTIFY_SUITE_MODE must be 'plain' or 'graceful', got ${String(mode)}`)
if (fastifyDir === undefined) throw new Error('FASTIFY_SUITE_FASTIFY must name the fastify package folder')

const rootRequire = Module.createRequire(join(__dirname, '..', '..', 'package.json'))
const testDir = join(fastifyDir, 'test') + sep
const resolveFilename = Module._resolveFilename
Module._resolveFilename = function resolveDevDependency (request, parent, ...rest) {
  if (DEV_DEPENDENCIES.has(request) && parent?.filename?.startsWith(testDir) === true) return rootRequire.resolve(request)
  return resolveFilename.call(this, request, parent, ...rest)
}

const graceful = mode === 'graceful' ? rootRequire('@graceful/fastify').graceful : null
const apps = []
process.on('exit', function printInstances () {
  const withPlugin = apps.filter((app) => app.hasDecorator('graceful')).length
  writeSync(1, `\n${JSON.stringify({ instances: true, created: apps.length, withPlugin })}\n`)
})

// The file the package's main resolves to; require('..') in test/ and require('../..') in test/http2/
// resolve to it too. Wrapped as it is compiled rather than in require.cache: proxyquire('..', stubs) loads
// a fresh copy that never enters the cache, and its instances must register the plugin too.
const main = Module.createRequire(join(fastifyDir, 'package.json')).resolve('./')
const compile = Module.prototype._compile
Module.prototype._compile = function compileWrapped (content, filename, ...rest) {
  const result = compile.call(this, content, filename, ...rest)
  if (filename === main) this.exports = wrap(this.exports)
  return result
}

/** The fastify export with the same shape (`.fastify`, `.default`, `.errorCodes`, …). */
function wrap (fastify) {
  function fastifyWithGraceful (...args) {
    const app = fastify(...args)
    apps.push(app)
    if (graceful !== null) app.register(graceful, OPTIONS)
    return app
  }
  for (const key of Object.keys(fastify)) fastifyWithGraceful[key] = fastify[key]
  fastifyWithGraceful.fastify = fastifyWithGraceful
  fastifyWithGraceful.default = fastifyWithGraceful
  return fastifyWithGraceful
}

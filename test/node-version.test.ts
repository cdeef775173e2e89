// The suite runs on Node 20, 22 and 24 (scripts/test-matrix.mjs, which sets GRACEFUL_EXPECT_NODE): check
// that tap's test processes and the fixtures they fork really run on the version asked for, and that the
// Node behaviour the adapters rely on is there.
import t from 'tap'
import { fork } from 'node:child_process'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { once } from 'node:events'
import net from 'node:net'
import { FIXTURE_EXEC_ARGV, fixtureEnv } from './helpers/fork.js'

const expected = process.env.GRACEFUL_EXPECT_NODE

t.test('tap runs this test on the Node version the matrix asked for (or any from 20 on)', async (t) => {
  if (expected !== undefined) t.equal(process.version, expected)
  t.ok(Number(process.versions.node.split('.')[0]) >= 20, `Node ${process.version} is 20 or newer`)
})

t.test('a forked fixture runs on the same Node binary as its test', async (t) => {
  const child = fork(new URL('./fixtures/node-version.ts', import.meta.url), [], {
    execArgv: FIXTURE_EXEC_ARGV,
    env: fixtureEnv(),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const exited = once(child, 'exit')
  const [message] = await once(child, 'message') as [{ version: string, execPath: string }]
  t.same(message, { version: process.version, execPath: process.execPath })
  t.same(await exited, [0, null], 'the fixture exits 0')
})

t.test('Node publishes the net.server.listen tracing channel that Express auto-attach relies on', async (t) => {
  const seen: unknown[] = []
  const onListen = (message: unknown): void => { seen.push((message as { server?: unknown }).server) }
  subscribe('tracing:net.server.listen:asyncEnd', onListen)
  t.teardown(() => unsubscribe('tracing:net.server.listen:asyncEnd', onListen))
  const server = net.createServer()
  t.teardown(() => server.close())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.same(seen, [server], 'one message, carrying the server, once it listens')
})

// graceful-check's parts, in this process: options and flags, the response reader, /proc, counting,
// the verdict and the report. test/check.test.ts runs the whole check against real apps.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CHECK_DEFAULTS, USAGE, codes, mix, parseArgs, parseMs, resolveCheckOptions } from '@graceful/check'
import { isSignal, loopbackHost, parseUrl } from '../packages/check/src/options.js'
import { describe } from '../packages/check/src/errors.js'
import { RawConnection, ResponseParser, WatchedConnection, pipelinedClient, requestBytes } from '../packages/check/src/raw.js'
import { FLAG_FINAL, createFlags, loopClient, runClient, stopClients, workerSource, type LoopMessage, type LoopSpec } from '../packages/check/src/client.js'
import { StreamWatch, connectOnce, startListenerProbe } from '../packages/check/src/probes.js'
import { App, killOwned } from '../packages/check/src/target.js'
import {
  alive, children, connectHost, decodeAddress, firstListening, holders, listeningSockets, readPidFile, socketInodes, tree
} from '../packages/check/src/proc.js'
import { Tally, classify, detail, emptyCounts, type RawFailure } from '../packages/check/src/tally.js'
import { causeOf, causes, explain, notes, type NotesInput, type VerdictContext } from '../packages/check/src/verdict.js'
import { heldExit } from '../packages/check/src/result.js'
import { CAUSES, formatEvent, formatProgress, formatResult, type CheckResult, type ConnectionEnd, type Failure, type FailureClass, type RequestRecord, type RestartRecord, type Timeline } from '@graceful/check'
import { when, wrap } from '../packages/check/src/report.js'

const APP = ['node', 'app.js']

t.test('check() options: defaults, and where the port comes from', async (t) => {
  const o = resolveCheckOptions({ command: APP })
  t.same(o.command, APP)
  t.equal(o.signal, 'SIGTERM', 'SIGTERM by default')
  t.equal(o.restart, null)
  t.equal(o.duration, CHECK_DEFAULTS.duration)
  t.equal(o.timeout, CHECK_DEFAULTS.timeout)
  t.same([o.host, o.port, o.portFrom, o.path, o.postPath], [null, null, null, '/', '/'])
  t.same([o.slow, o.stream, o.readiness], [null, null, null])
  t.same(o.clients, { keepAlive: 6, busy: 4, paused: 2, newConnection: 2, post: 2, slow: 0, pipelined: 1, idle: 1, preconnect: 1 }, '16 connections, mixed')
  t.equal(o.cwd, process.cwd())

  const u = resolveCheckOptions({ pid: 1, url: 'http://localhost:3000/health?x=1' })
  t.same([u.host, u.port, u.portFrom, u.path, u.postPath], ['127.0.0.1', 3000, 'url', '/health?x=1', '/health?x=1'])
  t.same([resolveCheckOptions({ pid: 1, url: 'http://[::1]:80' }).host, resolveCheckOptions({ pid: 1, url: 'http://[::1]' }).port], ['::1', 80])
  t.same([resolveCheckOptions({ pid: 1, url: 'http://127.0.0.2:81', port: 81 }).portFrom], ['url'], 'the url\'s own port may be repeated')
  const p = resolveCheckOptions({ command: APP, port: 8080, path: '/a', postPath: '/b' })
  t.same([p.host, p.port, p.portFrom, p.path, p.postPath], ['127.0.0.1', 8080, 'port', '/a', '/b'])

  const r = resolveCheckOptions({ command: APP, restart: {} })
  t.same(r.restart, { signal: 'SIGHUP', times: 3, pidFile: null })
  t.equal(r.signal, null, 'no final signal with a restart, unless asked')
  t.same(resolveCheckOptions({ command: APP, restart: { signal: 'SIGUSR2', times: 1, pidFile: '/p' }, signal: 'SIGINT' }).restart, { signal: 'SIGUSR2', times: 1, pidFile: '/p' })

  t.same(resolveCheckOptions({ command: APP, clients: { busy: 3 } }).clients,
    { keepAlive: 0, busy: 3, paused: 0, newConnection: 0, post: 0, slow: 0, pipelined: 0, idle: 0, preconnect: 0 }, 'clients: exactly those')
  t.same(resolveCheckOptions({ command: APP, connections: 5, slow: '/slow' }).clients,
    { keepAlive: 1, busy: 1, paused: 1, newConnection: 1, post: 1, slow: 1, pipelined: 1, idle: 1, preconnect: 1 })
  for (const n of [5, 6, 7, 16, 33, 1000]) {
    const m = mix(n, false)
    t.equal(m.keepAlive + m.busy + m.paused + m.newConnection + m.post, n, `the mix of ${n} has ${n} looping clients`)
  }
  t.same(resolveCheckOptions(Object.assign(Object.create(null), { command: APP })).command, APP, 'an object without a prototype is a plain object')
  const child = { pid: 42, once () {} }
  t.equal(resolveCheckOptions({ child }).child, child)
  const output = (): void => {}
  const abort = new AbortController().signal
  const full = resolveCheckOptions({ command: APP, cwd: '/tmp', env: { A: '1' }, slow: '/s', stream: false, readiness: '/r', output, abort, onEvent: output })
  t.same([full.cwd, full.env, full.slow, full.stream, full.readiness, full.output, full.abort, full.onEvent], ['/tmp', { A: '1' }, '/s', null, '/r', output, abort, output])
})

t.test('check() options: a bad one is a TypeError naming it, what it must be and what it got', async (t) => {
  const cases: Array<[unknown, keyof typeof codes, RegExp]> = [
    [null, 'GRACEFUL_ERR_CHECK_OPTIONS', /must be an object, instead got 'null'/],
    [[APP], 'GRACEFUL_ERR_CHECK_OPTIONS', /instead got/],
    [{ command: APP, comand: 1 }, 'GRACEFUL_ERR_CHECK_OPTION_UNKNOWN', /unknown check\(\) option 'comand': expected one of command, cwd/],
    [{}, 'GRACEFUL_ERR_CHECK_TARGET', /exactly one app: command, pid or child, instead got none/],
    [{ command: APP, pid: 1 }, 'GRACEFUL_ERR_CHECK_TARGET', /instead got command and pid$/],
    [{ pid: 1, child: { pid: 2, once () {} } }, 'GRACEFUL_ERR_CHECK_TARGET', /instead got pid and child$/],
    [{ command: [] }, 'GRACEFUL_ERR_CHECK_OPTION', /'command' must be a non-empty array of strings, the program first, instead got '\[\]'/],
    [{ command: 'node app.js' }, 'GRACEFUL_ERR_CHECK_OPTION', /'command'/],
    [{ command: ['node', 1] }, 'GRACEFUL_ERR_CHECK_OPTION', /'command'/],
    [{ command: [''] }, 'GRACEFUL_ERR_CHECK_OPTION', /'command'/],
    [{ pid: 0 }, 'GRACEFUL_ERR_CHECK_OPTION', /'pid' must be a process id/],
    [{ pid: 1.5 }, 'GRACEFUL_ERR_CHECK_OPTION', /'pid'/],
    [{ child: null }, 'GRACEFUL_ERR_CHECK_OPTION', /'child' must be a started ChildProcess/],
    [{ child: {} }, 'GRACEFUL_ERR_CHECK_OPTION', /'child'/],
    [{ child: { pid: 1 } }, 'GRACEFUL_ERR_CHECK_OPTION', /'child'/],
    [{ child: 7 }, 'GRACEFUL_ERR_CHECK_OPTION', /'child'/],
    [{ command: APP, cwd: '' }, 'GRACEFUL_ERR_CHECK_OPTION', /'cwd' must be a directory path/],
    [{ command: APP, env: { A: 1 } }, 'GRACEFUL_ERR_CHECK_OPTION', /'env' must be an object of strings, instead got '\{"A":1\}'/],
    [{ command: APP, env: [] }, 'GRACEFUL_ERR_CHECK_OPTION', /'env'/],
    [{ command: APP, url: 'http://10.0.0.1:3000' }, 'GRACEFUL_ERR_CHECK_OPTION', /'url' must be an http:\/\/ URL on a loopback address/],
    [{ command: APP, url: 'https://127.0.0.1:3000' }, 'GRACEFUL_ERR_CHECK_OPTION', /'url'/],
    [{ command: APP, url: 'http://user@127.0.0.1:3000' }, 'GRACEFUL_ERR_CHECK_OPTION', /'url'/],
    [{ command: APP, url: 'http://127.0.0.1:3000/#x' }, 'GRACEFUL_ERR_CHECK_OPTION', /'url'/],
    [{ command: APP, url: 'not a url' }, 'GRACEFUL_ERR_CHECK_OPTION', /'url'/],
    [{ command: APP, url: 3000 }, 'GRACEFUL_ERR_CHECK_OPTION', /'url'/],
    [{ command: APP, url: 'http://127.0.0.1:3000', port: 3001 }, 'GRACEFUL_ERR_CHECK_OPTION', /'port' must be the url's port \(3000\) or left out, instead got '3001'/],
    [{ command: APP, port: 0 }, 'GRACEFUL_ERR_CHECK_OPTION', /'port' must be a port number from 1 to 65535/],
    [{ command: APP, port: 70000 }, 'GRACEFUL_ERR_CHECK_OPTION', /'port'/],
    [{ command: APP, path: 'x' }, 'GRACEFUL_ERR_CHECK_OPTION', /'path' must be a path starting with '\/' \(no spaces\), instead got '"x"'/],
    [{ command: APP, path: '/a b' }, 'GRACEFUL_ERR_CHECK_OPTION', /'path'/],
    [{ command: APP, postPath: 1 }, 'GRACEFUL_ERR_CHECK_OPTION', /'postPath'/],
    [{ command: APP, slow: 'slow' }, 'GRACEFUL_ERR_CHECK_OPTION', /'slow' must be false or a path/],
    [{ command: APP, stream: true }, 'GRACEFUL_ERR_CHECK_OPTION', /'stream'/],
    [{ command: APP, readiness: '' }, 'GRACEFUL_ERR_CHECK_OPTION', /'readiness'/],
    [{ command: APP, restart: true }, 'GRACEFUL_ERR_CHECK_OPTION', /'restart' must be false or \{ signal\?: 'SIGHUP', times\?: 1 to 100, pidFile\?: path \}, instead got 'true'/],
    [{ command: APP, restart: { times: 0 } }, 'GRACEFUL_ERR_CHECK_OPTION', /'restart'/],
    [{ command: APP, restart: { signal: 'HUP' } }, 'GRACEFUL_ERR_CHECK_OPTION', /'restart'/],
    [{ command: APP, restart: { pidFile: '' } }, 'GRACEFUL_ERR_CHECK_OPTION', /'restart'/],
    [{ command: APP, restart: { pidFile: 1 } }, 'GRACEFUL_ERR_CHECK_OPTION', /'restart'/],
    [{ command: APP, restart: { every: 1 } }, 'GRACEFUL_ERR_CHECK_OPTION', /'restart'/],
    [{ command: APP, signal: 'SIGNOPE' }, 'GRACEFUL_ERR_CHECK_OPTION', /'signal' must be false or a signal name such as 'SIGTERM', instead got '"SIGNOPE"'/],
    [{ command: APP, signal: 'sigterm' }, 'GRACEFUL_ERR_CHECK_OPTION', /'signal'/],
    [{ command: APP, signal: false }, 'GRACEFUL_ERR_CHECK_OPTION', /'signal' must be a signal name when there is no restart/],
    [{ command: APP, duration: -1 }, 'GRACEFUL_ERR_CHECK_OPTION', /'duration' must be a whole number of ms from 0/],
    [{ command: APP, duration: 1.5 }, 'GRACEFUL_ERR_CHECK_OPTION', /'duration'/],
    [{ command: APP, timeout: 0 }, 'GRACEFUL_ERR_CHECK_OPTION', /'timeout' must be a whole number of ms from 1/],
    [{ command: APP, timeout: 2 ** 31 }, 'GRACEFUL_ERR_CHECK_OPTION', /'timeout'/],
    [{ command: APP, connections: 4 }, 'GRACEFUL_ERR_CHECK_OPTION', /'connections' must be a whole number from 5 to 1000, instead got '4'/],
    [{ command: APP, connections: 1001 }, 'GRACEFUL_ERR_CHECK_OPTION', /'connections'/],
    [{ command: APP, clients: { busy: 1 }, connections: 16 }, 'GRACEFUL_ERR_CHECK_OPTION', /'connections' must be left out when clients is given/],
    [{ command: APP, clients: { bussy: 1 } }, 'GRACEFUL_ERR_CHECK_OPTION', /'clients' must be \{ keepAlive, busy, paused, newConnection, post, slow, pipelined, idle, preconnect \}/],
    [{ command: APP, clients: { busy: -1 } }, 'GRACEFUL_ERR_CHECK_OPTION', /'clients'/],
    [{ command: APP, clients: { busy: 0 } }, 'GRACEFUL_ERR_CHECK_OPTION', /at least one client in all/],
    [{ command: APP, clients: [] }, 'GRACEFUL_ERR_CHECK_OPTION', /'clients'/],
    [{ command: APP, clients: { slow: 1 } }, 'GRACEFUL_ERR_CHECK_OPTION', /without slow clients when there is no slow path/],
    [{ command: APP, output: 'stdout' }, 'GRACEFUL_ERR_CHECK_OPTION', /'output' must be a function called with each line/],
    [{ command: APP, onEvent: 1 }, 'GRACEFUL_ERR_CHECK_OPTION', /'onEvent' must be a function/],
    [{ command: APP, abort: {} }, 'GRACEFUL_ERR_CHECK_OPTION', /'abort' must be an AbortSignal/]
  ]
  for (const [input, code, message] of cases) {
    t.throws(() => resolveCheckOptions(input), { name: 'TypeError', code, message }, `${describe(input)} → ${code}`)
  }
  t.equal(describe(undefined), 'undefined')
  t.equal(describe(() => {}), '[Function (anonymous)]')
  t.equal(describe(Object.create(null)), '{}', 'an object without a prototype is a plain object')
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  t.match(describe(cycle), /Circular/)
})

t.test('loopback, URLs and signal names', async (t) => {
  t.same(['localhost', '127.0.0.1', '127.1.2.3', '[::1]', '::1', '10.0.0.1', 'example.com', '0.0.0.0'].map(loopbackHost),
    ['127.0.0.1', '127.0.0.1', '127.1.2.3', '::1', '::1', null, null, null])
  t.same(parseUrl('http://127.0.0.1:3000/a'), { host: '127.0.0.1', port: 3000, path: '/a' })
  t.equal(parseUrl('http://example.com:3000/'), null)
  t.equal(parseUrl('::'), null)
  t.same(['SIGTERM', 'SIGHUP', 'SIGUSR2', 'SIGFOO', 'TERM', 15].map(isSignal), [true, true, true, false, false, false])
})

t.test('graceful-check flags: values, units, the app after --', async (t) => {
  t.same(parseArgs(['--help']), { help: true })
  t.same(parseArgs(['--json', '--port', '3000', '-h', 'node']), { help: true }, 'help, wherever it is among the flags')
  const p = parseArgs(['--readiness', '/readyz', '--stream=/events', '--slow', '/slow', '--path', '/a', '--post-path', '/echo', '--duration', '2s',
    '--timeout=1.5s', '--connections', '24', '--signal', 'SIGINT', '--json', '--app-output', '--', 'node', 'app.js', '--port', '3000'])
  t.same(p, {
    help: false,
    json: true,
    appOutput: true,
    options: {
      readiness: '/readyz', stream: '/events', slow: '/slow', path: '/a', postPath: '/echo', duration: 2000, timeout: 1500, connections: 24,
      signal: 'SIGINT', command: ['node', 'app.js', '--port', '3000']
    }
  }, "everything after -- is the app's, flags included")
  t.same(parseArgs(['node', 'app.js', '--json']), { help: false, json: false, appOutput: false, options: { command: ['node', 'app.js', '--json'] } },
    'the app starts at the first argument that is not a flag')
  const options = (argv: string[]): unknown => (parseArgs(argv) as { options: unknown }).options
  t.same(options(['--restart', 'SIGHUP', '--times', '2', '--pid-file', '/run/app.pid', '--duration', '0', 'node', 'a.js']),
    { restart: { signal: 'SIGHUP', times: 2, pidFile: '/run/app.pid' }, duration: 0, command: ['node', 'a.js'] })
  t.same(options(['--pid', '1234', '--url', 'http://127.0.0.1:3000/', '--port', '3000']), { pid: 1234, url: 'http://127.0.0.1:3000/', port: 3000 })
  t.same(['2000', '2000ms', '2s', '1.5s', '0', '0.5ms', '1.0001s', 'x', '-1', '2 s'].map(parseMs), [2000, 2000, 2000, 1500, 0, NaN, NaN, NaN, NaN, NaN])
})

t.test('graceful-check flags: a bad one is a TypeError naming the flag', async (t) => {
  const cases: Array<[string[], keyof typeof codes, RegExp]> = [
    [['--nope', 'node'], 'GRACEFUL_ERR_CHECK_FLAG_UNKNOWN', /unknown flag '--nope' \(graceful-check --help lists them; the app's command goes after --\)/],
    [['-x'], 'GRACEFUL_ERR_CHECK_FLAG_UNKNOWN', /'-x'/],
    [['--url', 'http://10.1.1.1', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /flag '--url' must be an http:\/\/ URL on a loopback address, such as http:\/\/127.0.0.1:3000\/, instead got 'http:\/\/10.1.1.1'/],
    [['--port', '0', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--port' must be a port from 1 to 65535, instead got '0'/],
    [['--port', '3e3', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--port'/],
    [['--path', 'x', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--path' must be a path starting with '\/'/],
    [['--signal', 'TERM', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--signal' must be a signal name such as 'SIGTERM', instead got 'TERM'/],
    [['--restart', 'HUP', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--restart'/],
    [['--timeout', '0', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--timeout' must be a whole number of ms from 1/],
    [['--duration', '-5', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--duration' must be a whole number of ms from 0/],
    [['--duration', '99999999999', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--duration'/],
    [['--connections', '4', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--connections' must be a whole number from 5 to 1000/],
    [['--times', '0', '--restart', 'SIGHUP', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--times' must be a whole number from 1 to 100/],
    [['--pid', 'abc'], 'GRACEFUL_ERR_CHECK_FLAG', /'--pid' must be a process id, instead got 'abc'/],
    [['--pid-file=', '--restart', 'SIGHUP', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--pid-file' must be a file path, instead got ''/],
    [['--timeout'], 'GRACEFUL_ERR_CHECK_FLAG', /'--timeout' must be .*, instead got '\(nothing\)'/],
    [['--times', '2', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--times' must be used with --restart SIG, instead got 'no --restart'/],
    [['--pid-file', '/p', 'node'], 'GRACEFUL_ERR_CHECK_FLAG', /'--pid-file' must be used with --restart SIG/],
    [['--pid', '12', 'node', 'app.js'], 'GRACEFUL_ERR_CHECK_NO_APP', /either a command or --pid, not both, instead got 'node app.js'/],
    [[], 'GRACEFUL_ERR_CHECK_NO_APP', /no app to check, instead got '': graceful-check \[options\] -- command/],
    [['--json', '--'], 'GRACEFUL_ERR_CHECK_NO_APP', /no app to check, instead got '--json --'/],
    [['--', ''], 'GRACEFUL_ERR_CHECK_NO_APP', /the command is empty/]
  ]
  for (const [argv, code, message] of cases) {
    t.throws(() => parseArgs(argv), { name: 'TypeError', code, message }, `${argv.join(' ')} → ${code}`)
  }
})

t.test('--help reads like a man page', async (t) => {
  for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'OUTPUT', 'EXIT STATUS', 'EXAMPLES']) t.match(USAGE, new RegExp(`^${section}$`, 'm'))
  for (const flag of ['--url', '--port', '--path', '--post-path', '--slow', '--stream', '--readiness', '--signal', '--restart', '--times', '--pid-file',
    '--pid', '--duration', '--connections', '--timeout', '--json', '--app-output', '-h, --help']) t.match(USAGE, `\n    ${flag} `, `documents ${flag}`)
  t.same(USAGE.split('\n').filter((line) => line.length > 100), [], 'fits 100 columns')
})

t.test('the response reader: lengths, chunks, close-delimited bodies, interim answers, pipelined responses', async (t) => {
  const heads = (parser: ResponseParser, ...chunks: string[]): unknown[] => chunks.flatMap((c) => parser.push(Buffer.from(c, 'latin1')))
  const p = new ResponseParser()
  t.same(heads(p, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel'), [], 'nothing complete yet')
  t.ok(p.started, 'a head has arrived')
  t.same(heads(p, 'loHTTP/1.1 503 Service Unavailable\r\nconnection: Close\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n'),
    [{ status: 200, close: false, retryAfter: false }, { status: 503, close: true, retryAfter: true }], 'the end of one and the next, in one chunk')
  t.notOk(p.started)
  const c = new ResponseParser()
  t.same(heads(c, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel', 'lo\r', '\n0\r\nX-Trailer: 1\r\n', '\r\n'),
    [{ status: 200, close: false, retryAfter: false }], 'a 100 first, chunks split anywhere, a trailer')
  t.same(heads(c, 'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n'),
    [{ status: 204, close: false, retryAfter: false }, { status: 304, close: false, retryAfter: false }, { status: 101, close: false, retryAfter: false }], 'bodiless statuses')
  const e = new ResponseParser()
  t.same(heads(e, 'HTTP/1.0 200 OK\r\nBad header line\r\n\r\nuntil', ' the end'), [], 'no length: the body runs to the close')
  t.same(e.end(), { status: 200, close: false, retryAfter: false })
  t.equal(e.end(), null, 'once')
  t.equal(new ResponseParser().end(), null, 'no response begun')
  const l = new ResponseParser()
  heads(l, 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc')
  t.equal(l.end(), null, 'a length not reached is not complete at the close')
  const split = new ResponseParser()
  t.same(heads(split, 'HTTP/1.1 20', '4 No Content\r\n', '\r\n'), [{ status: 204, close: false, retryAfter: false }], 'a head split across reads')
  t.throws(() => new ResponseParser().push(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')), /not an HTTP\/1.1 response: 'SSH-2.0-OpenSSH'/)
  t.throws(() => new ResponseParser().push(Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n')), /bad chunk size 'zz'/)
})

t.test('/proc: addresses, listening sockets, their holders, the process tree, pid files', async (t) => {
  t.equal(decodeAddress('0100007F'), '127.0.0.1')
  t.equal(decodeAddress('00000000'), '0.0.0.0')
  t.equal(decodeAddress('00000000000000000000000000000000'), '::')
  t.equal(decodeAddress('00000000000000000000000001000000'), '::1')
  t.equal(decodeAddress('0000000000000000FFFF00000100007F'), '127.0.0.1', 'a v4-mapped address')
  t.equal(decodeAddress('B80D0120000000000000000001000000'), '2001:db8:0:0:0:0:0:1')
  t.same(['0.0.0.0', '127.0.0.1', '127.9.9.9', '::', '::1', '10.0.0.1', 'fe80::1'].map(connectHost),
    ['127.0.0.1', '127.0.0.1', '127.9.9.9', '::1', '::1', null, null])

  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const port = (server.address() as net.AddressInfo).port
  const mine = listeningSockets(process.pid).find((s) => s.port === port)
  t.ok(mine, 'our listening socket is in /proc/<pid>/net/tcp')
  t.equal(mine?.address, '127.0.0.1')
  const inode = (mine as { inode: number }).inode
  t.ok(socketInodes(process.pid).has(inode), 'and among our fds')
  t.same(holders([process.pid, 999_999_999], new Set([inode])), [process.pid])
  const first = firstListening([process.pid])
  t.ok(first !== null && first.host.length > 0 && first.count >= 1)
  t.same(listeningSockets(999_999_999), [], 'no such process: nothing')
  t.same(socketInodes(999_999_999).size, 0)
  t.equal(firstListening([999_999_999]), null)

  t.ok(alive(process.pid))
  t.notOk(alive(999_999_999))
  t.ok(alive(1), 'pid 1 runs (as root or not: EPERM counts as running)')
  t.ok(tree(process.pid)[0] === process.pid)
  t.same(children(999_999_999), [])

  const dir = mkdtempSync(join(tmpdir(), 'graceful-check-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'app.pid')
  t.equal(readPidFile(file), null, 'no file')
  writeFileSync(file, 'garbage')
  t.equal(readPidFile(file), null)
  writeFileSync(file, '1234\n')
  t.equal(readPidFile(file), 1234)
})

// ---- counting, the verdict, the report: synthetic records and results --------------------------------

function rec (o: Partial<RequestRecord> = {}): RequestRecord {
  return {
    kind: 'keepAlive', client: 0, n: 1, sentAt: 1000, endAt: 1001, fresh: false, connected: true, quietMs: 0, started: true, complete: true,
    status: 200, close: false, retryAfter: false, fin: false, timedOut: false, code: '', message: '', ...o
  }
}
const failed = (o: Partial<RequestRecord>): RequestRecord => rec({ started: false, complete: false, status: 0, ...o })

t.test('a request is answered, refused, or lost in one of five ways', async (t) => {
  t.equal(classify(rec()), 'answered')
  t.equal(classify(failed({ connected: false, fresh: true, code: 'ECONNREFUSED' })), 'refused')
  t.equal(classify(failed({ connected: false, fresh: true, code: 'ECONNRESET' })), 'refused', 'a connect that failed carried no request')
  t.equal(classify(failed({ timedOut: true })), 'timeout')
  t.equal(classify(failed({ started: true, status: 200, fin: true })), 'truncated')
  t.equal(classify(failed({ fresh: true, code: 'ECONNRESET' })), 'refusedAfterAccept')
  t.equal(classify(failed({ fin: true, code: 'ECONNRESET', message: 'socket hang up' })), 'hangUp')
  t.equal(classify(failed({ code: 'EPIPE', message: 'write EPIPE' })), 'reset')

  t.equal(detail(failed({ fin: true }), 'hangUp', 1), 'the server closed the connection (FIN) without answering')
  t.equal(detail(failed({ fresh: true, fin: true }), 'refusedAfterAccept', 1), 'accepted, then closed (FIN) before any answer')
  t.equal(detail(failed({ fresh: true, code: 'ECONNRESET' }), 'refusedAfterAccept', 1), 'accepted, then reset (ECONNRESET) before any answer')
  t.equal(detail(failed({ status: 200 }), 'truncated', 1), 'the 200 response was cut short: reset (no error code)')
  t.equal(detail(failed({}), 'timeout', 250), 'no answer within 250 ms')
  t.equal(detail(failed({ code: 'ECONNREFUSED' }), 'refused', 1), 'refused (ECONNREFUSED): nothing accepted connections')
  t.equal(detail(failed({ code: 'ECONNRESET' }), 'refused', 1), 'the connection failed before the request went out (ECONNRESET)')
  t.equal(detail(failed({}), 'refused', 1), 'the connection failed before the request went out (no error code)')
  t.equal(detail(rec({ status: 502 }), 'serverError', 1), 'answered 502')
  t.equal(detail(failed({ code: 'ECONNRESET', message: 'read ECONNRESET' }), 'reset', 1), 'ECONNRESET read ECONNRESET')
})

t.test('the tally: answers by status, failures by class, marks since the latest signal, readiness apart', async (t) => {
  const lost: string[] = []
  const tally = new Tally(500, (f) => lost.push(`${f.record.kind}:${f.class}`))
  let records = 0
  tally.onRecord = () => { records++ }
  const add = (r: RequestRecord): void => { tally.start(); tally.add(r) }
  add(rec({ endAt: 100 }))
  add(rec({ kind: 'post', status: 404, endAt: 110 }))
  add(rec({ kind: 'slow', status: 500, endAt: 120 }))
  add(rec({ status: 503, endAt: 130 }))
  add(rec({ kind: 'readiness', endAt: 140 }))
  add(rec({ kind: 'readiness', status: 503, endAt: 150 }))
  add(failed({ kind: 'readiness', fresh: true, connected: false, code: 'ECONNREFUSED', endAt: 160 }))
  add(failed({ kind: 'newConnection', fresh: true, connected: false, code: 'ECONNREFUSED', endAt: 170 }))
  t.same(tally.marks, { first503: 0, firstClose: 0, lastResponse: 0, last2xx: 0, readinessFlip: 0, readinessStatus: 0 }, 'no marks before a signal')

  tally.signal(1000, false)
  add(rec({ status: 503, close: true, endAt: 1010 }))
  add(failed({ kind: 'newConnection', fresh: true, connected: false, code: 'ECONNREFUSED', endAt: 1020 }))
  add(rec({ endAt: 1030 }))
  t.equal(tally.marks.lastResponse, 1030)
  tally.signal(2000, true)
  t.equal(tally.marks.lastResponse, 0, 'the marks start again at each signal')
  tally.start(9)
  t.equal(tally.inFlight, 9)
  add(rec({ endAt: 1990 }))
  t.equal(tally.marks.lastResponse, 0, 'a record that ended before the latest signal marks nothing')
  add(rec({ close: true, endAt: 2010 }))
  add(rec({ kind: 'newConnection', close: true, endAt: 2005 }))
  add(rec({ status: 503, close: true, retryAfter: true, endAt: 2020 }))
  add(rec({ status: 503, endAt: 2015 }))
  add(rec({ kind: 'post', status: 404, endAt: 2030 }))
  add(rec({ kind: 'slow', status: 500, endAt: 2040 }))
  add(rec({ status: 500, endAt: 2050 }))
  add(failed({ kind: 'newConnection', fresh: true, connected: false, code: 'ECONNREFUSED', endAt: 2060 }))
  add(rec({ kind: 'idle', status: 502, endAt: 2065 }))
  add(failed({ fin: true, endAt: 2070 }))
  add(failed({ code: 'ECONNRESET', endAt: 2080 }))
  add(failed({ kind: 'pipelined', fresh: true, endAt: 2090 }))
  add(failed({ kind: 'stream', started: true, status: 200, endAt: 2100 }))
  add(failed({ kind: 'slow', timedOut: true, endAt: 2110 }))
  add(rec({ kind: 'readiness', endAt: 2120 }))
  add(rec({ kind: 'readiness', status: 503, endAt: 2140 }))
  add(rec({ kind: 'readiness', status: 503, endAt: 2130 }))
  add(failed({ kind: 'readiness', fresh: true, connected: false, code: 'ECONNREFUSED', endAt: 2150 }))
  add(failed({ kind: 'readiness', fresh: true, endAt: 2160 }))

  t.same(lost, ['readiness:refused', 'newConnection:refused', 'newConnection:refused', 'keepAlive:serverError', 'idle:serverError', 'keepAlive:hangUp', 'keepAlive:reset',
    'pipelined:refusedAfterAccept', 'stream:truncated', 'slow:timeout', 'readiness:refusedAfterAccept'])
  t.equal(records, 31, 'onRecord after every record')
  t.equal(tally.inFlight, 9)
  const k = tally.totals
  t.same([k.sent, k.answered, k.ok, k.okClose, k.unavailableClose, k.unavailableKeep, k.retryAfter, k.other, k.refused, k.lost],
    [20, 13, 5, 2, 2, 2, 1, { 404: 2, 500: 2 }, 1, 11])
  t.same(k.lostByClass, { reset: 1, hangUp: 1, refusedAfterAccept: 2, truncated: 1, timeout: 1, refused: 3, serverError: 2 })
  t.same(tally.kinds.get('readiness'), { sent: 8, answered: 5, ok: 2, okClose: 0, unavailableClose: 0, unavailableKeep: 3, retryAfter: 0, other: {}, refused: 0, lost: 2 })
  t.same(tally.readiness, { polls: 8, notReadyBefore: 2 })
  t.equal(tally.restart503, 1, 'a 503 between a restart signal and the final one')
  t.same(tally.marks, { first503: 2015, firstClose: 2010, lastResponse: 2065, last2xx: 2010, readinessFlip: 2130, readinessStatus: 503 },
    'a new connection\'s Connection: close is not a drain\'s')
  t.equal(tally.finalAt, 2000)
  t.same(tally.signals, [1000, 2000])
  t.same(emptyCounts().other, {})

  const quiet = new Tally(500, () => {})
  quiet.signal(10, true)
  quiet.start()
  quiet.add(failed({ kind: 'readiness', fresh: true, connected: false, code: 'ECONNREFUSED', endAt: 20 }))
  t.same([quiet.marks.readinessFlip, quiet.marks.readinessStatus], [20, 0], 'readiness turned to no answer at all: the listener closed')
})

const ctx = (o: Partial<VerdictContext> = {}): VerdictContext => ({ exitAt: null, exitKnown: true, lastResponseAt: null, listenerClosedAt: null, ...o })
const raw = (klass: FailureClass, r: Partial<RequestRecord>): RawFailure => ({ class: klass, record: failed(r), detail: 'd' })

t.test('the verdict: each failure\'s likely cause', async (t) => {
  t.equal(causeOf(raw('refused', {}), ctx()), 'unserved')
  t.equal(causeOf(raw('serverError', {}), ctx()), 'serverError')
  t.equal(causeOf(raw('timeout', {}), ctx()), 'timeout')
  const atExit = { sentAt: 700, endAt: 1000 }
  t.equal(causeOf(raw('hangUp', atExit), ctx({ exitAt: 1008 })), 'exitInFlight', 'right before the exit, nothing answered after it')
  t.equal(causeOf(raw('hangUp', atExit), ctx({ exitAt: 1020 })), 'inFlightCut', '20 ms before our child\'s exit: not the exit')
  t.equal(causeOf(raw('hangUp', atExit), ctx({ exitAt: 1020, exitKnown: false })), 'exitInFlight', '…but within a poll of another process\'s')
  t.equal(causeOf(raw('hangUp', atExit), ctx({ exitAt: 995 })), 'exitInFlight', 'right after it (the exit seen a little early)')
  t.equal(causeOf(raw('hangUp', atExit), ctx({ exitAt: 1005, lastResponseAt: 1003 })), 'inFlightCut', 'answers came after it: the process was alive')
  t.equal(causeOf(raw('hangUp', atExit), ctx({ exitAt: 1050 })), 'inFlightCut', 'well before the exit')
  t.equal(causeOf(raw('hangUp', atExit), ctx({ exitAt: 650 })), 'inFlightCut', 'sent after the exit: not cut by it')
  t.equal(causeOf(raw('hangUp', { sentAt: 700, endAt: 1200 }), ctx({ exitAt: 1050 })), 'inFlightCut', 'long after the exit')
  t.equal(causeOf(raw('reset', { sentAt: 990, endAt: 1000, quietMs: 200 }), ctx({ exitAt: 1005 })), 'idleClose',
    'a request on a connection quiet for a while: an idle close, whether the drain or the exit closed it')
  t.equal(causeOf(raw('reset', { sentAt: 990, endAt: 1000, quietMs: 200, fresh: true }), ctx({ exitAt: 1005 })), 'exitInFlight', 'a new connection is not idle')
  t.equal(causeOf(raw('hangUp', { kind: 'slow', sentAt: 990, endAt: 1000, quietMs: 200 }), ctx()), 'inFlightCut', 'a slow request is in flight, whatever its timing')
  t.equal(causeOf(raw('truncated', {}), ctx()), 'truncated')
  t.equal(causeOf(raw('truncated', { kind: 'stream' }), ctx()), 'streamCut')
  t.equal(causeOf(raw('refusedAfterAccept', { endAt: 1000, fresh: true }), ctx({ listenerClosedAt: 1100 })), 'acceptQueue')
  t.equal(causeOf(raw('refusedAfterAccept', { endAt: 1000, fresh: true }), ctx({ listenerClosedAt: 1200 })), 'listenerOpen')
  t.equal(causeOf(raw('refusedAfterAccept', { endAt: 1000, fresh: true }), ctx()), 'listenerOpen')
  t.equal(causeOf(raw('hangUp', { kind: 'pipelined', behind: true, quietMs: 20 }), ctx()), 'pipelineDropped')
  t.equal(causeOf(raw('hangUp', { sentAt: 1000, endAt: 1001, quietMs: 250 }), ctx()), 'idleClose')
  t.equal(causeOf(raw('reset', { sentAt: 1000, endAt: 1001, quietMs: 3 }), ctx()), 'closeRace')
  t.equal(causeOf(raw('reset', { sentAt: 1000, endAt: 1001, quietMs: null }), ctx()), 'closeRace')
})

t.test('the verdict: each cause in plain words, with its fix', async (t) => {
  const idle = [raw('hangUp', { quietMs: 120 }), raw('hangUp', { quietMs: 290 })]
  const restarts = [restart({ n: 1, refused: 3, refusedFromMs: 10, refusedToMs: 40 }), restart({ n: 2 }), restart({ n: 3, refused: 1, refusedFromMs: null, refusedToMs: null })]
  const texts = Object.fromEntries(CAUSES.map((id) => [id, explain(id, idle, 5000, restarts)]))
  t.match(texts.idleClose?.text, /^idle keep-alive connections were closed while clients were about to reuse them: .* quiet for 120–290 ms/)
  t.match(explain('idleClose', [raw('hangUp', { quietMs: 50 })], 1, []).text, /quiet for 50 ms \(/)
  t.match(texts.idleClose?.fix, /Connection: close/)
  t.match(texts.closeRace?.text, /the instant they looked idle/)
  t.match(texts.exitInFlight?.text, /the process exited with requests in flight/)
  t.match(texts.acceptQueue?.text, /accept queue/)
  t.match(texts.listenerOpen?.text, /the listener stayed open/)
  t.match(texts.inFlightCut?.text, /requests in flight were cut/)
  t.match(texts.truncated?.text, /cut short/)
  t.match(texts.streamCut?.text, /the stream was cut/)
  t.match(texts.timeout?.text, /never answered within 5000 ms/)
  t.match(texts.unserved?.text, /\(restart #1: 3 refused connects from \+10 to \+40 ms; restart #3: 1 refused connects from \+0 to \+0 ms\)$/)
  t.equal(explain('unserved', [], 1, []).text, 'new connections were refused while the address should have stayed served')
  t.match(texts.serverError?.text, /answered 5xx after the signal/)
  t.match(texts.pipelineDropped?.text, /dropping the second/)
  for (const id of CAUSES) t.ok((texts[id]?.fix.length ?? 0) > 20, `${id} has a fix`)

  const list = causes([raw('timeout', {}), raw('hangUp', { kind: 'busy', quietMs: 100 }), raw('reset', { kind: 'paused', quietMs: 400 })],
    ['timeout', 'idleClose', 'idleClose'], 1000, [])
  t.same(list.map((c) => [c.id, c.count, c.classes, c.kinds]), [['idleClose', 2, ['hangUp', 'reset'], ['busy', 'paused']], ['timeout', 1, ['timeout'], ['keepAlive']]],
    'most failures first')
})

function restart (o: Partial<RestartRecord>): RestartRecord {
  return { n: 1, signal: 'SIGHUP', from: 10, to: 11, mode: 'in-place', successorMs: 300, doneMs: 900, error: null, refused: 0, refusedFromMs: null, refusedToMs: null, ...o }
}

const notesInput = (o: Partial<NotesInput> = {}): NotesInput => ({
  totals: { ...emptyCounts() }, restart503: 0, signal: 'SIGTERM', finalSent: true, readiness: null, listenerClosedMs: 100, lastResponseMs: 90,
  exit: { pid: 1, code: 0, signal: null, known: true, atMs: 120 }, timeout: 5000, heldExit: false, heldBy: null, stillOpen: [], restarts: [], restartsWanted: 0, ...o
})
const ids = (i: NotesInput): string[] => notes(i).map((n) => `${n.id}${n.problem ? '!' : ''}`)

t.test('the notes: what is not a loss but worth knowing, and the problems that fail the check anyway', async (t) => {
  t.same(ids(notesInput()), [], 'a clean run')
  t.same(ids(notesInput({ totals: { ...emptyCounts(), unavailableKeep: 2, unavailableClose: 3, retryAfter: 4 } })), ['noClose503', 'noRetryAfter'])
  t.match(notes(notesInput({ totals: { ...emptyCounts(), unavailableKeep: 2, unavailableClose: 3, retryAfter: 4 } }))[1]?.text, /^1 of 5 503s had no Retry-After/)
  t.same(ids(notesInput({ restart503: 4 })), ['restart503'])
  t.same(ids(notesInput({ restarts: [restart({ error: 'boom' })], restartsWanted: 3 })), ['restartFailed!'])
  t.same(ids(notesInput({ restarts: [restart({})], restartsWanted: 3 })), ['restartFailed!'], 'fewer restarts than asked, none failed: the app had gone')
  t.same(ids(notesInput({ restarts: [restart({})], restartsWanted: 1 })), [])
  const readiness = { path: '/readyz', flipMs: 3, notReadyBefore: 0 }
  t.same(ids(notesInput({ readiness })), [], 'readiness turned before the listener closed')
  t.same(ids(notesInput({ readiness: { ...readiness, flipMs: null } })), ['noLameDuck'])
  t.same(ids(notesInput({ readiness: { ...readiness, flipMs: 98 } })), ['noLameDuck'])
  t.same(ids(notesInput({ readiness: { ...readiness, flipMs: 3 }, listenerClosedMs: null })), [])
  t.same(ids(notesInput({ readiness: { ...readiness, notReadyBefore: 2 }, restarts: [restart({})], restartsWanted: 1 })), ['readinessDuringRestart'])
  t.same(ids(notesInput({ readiness: { ...readiness, notReadyBefore: 2 } })), [], 'not ready before the signal, without restarts: nothing to say')
  t.same(ids(notesInput({ finalSent: false })), ['noSignal!'])
  t.same(ids(notesInput({ signal: null, finalSent: false })), [])
  t.same(ids(notesInput({ exit: null })), ['noExit!'])
  t.match(notes(notesInput({ exit: null, stillOpen: ['the preconnect', 'the stream /events'] }))[0]?.text, /; still open then: the preconnect, the stream \/events$/)
  const exit = { pid: 1, code: 0, signal: null, known: true, atMs: 5010 }
  t.same(ids(notesInput({ heldExit: true, heldBy: { kind: 'idle', ended: 'fin', atMs: 5000 }, exit })), ['heldExit'])
  t.match(notes(notesInput({ heldExit: true, heldBy: { kind: 'idle', ended: 'fin', atMs: 5000 }, exit }))[0]?.text, /exited 4,920 ms after its last answer, right after the idle keep-alive connection was closed at \+5,000 ms/)
  t.match(notes(notesInput({ heldExit: true, heldBy: { kind: 'preconnect', ended: 'reset', atMs: 5000 }, lastResponseMs: null, exit }))[0]?.text, /exited 5,010 ms after its last answer, right after the preconnect \(connected, nothing sent\) was closed/)
  t.same(ids(notesInput({ exit: { pid: 1, code: null, signal: 'SIGTERM', known: true, atMs: 3 } })), ['killedBySignal'])
  t.same(ids(notesInput({ exit: { pid: 1, code: 1, signal: null, known: true, atMs: 3 } })), ['exitCode'])
  t.same(ids(notesInput({ exit: { pid: 1, code: null, signal: null, known: false, atMs: 3 } })), [], 'an exit code not known says nothing')
})

t.test('idle connections held the exit: long after the last answer, right after one closed', async (t) => {
  const c = (atMs: number | null, ended: ConnectionEnd['ended'] = 'fin'): ConnectionEnd => ({ kind: 'idle', ended, atMs })
  const held = (exitMs: number | null, last: number | null, cs: ConnectionEnd[]): [boolean | null, number | null] => {
    const h = heldExit(exitMs, last, cs)
    return [h.held, h.closed === null ? null : h.closed.atMs]
  }
  t.same(held(null, 10, [c(5)]), [null, null])
  t.same(held(5030, 20, [c(5000), c(null, 'open'), c(300)]), [true, 5000])
  t.same(held(5030, null, [c(4990, 'reset')]), [true, 4990])
  t.same(held(5030, 20, [c(20)]), [false, 20], 'closed long before the exit')
  t.same(held(300, 20, [c(290)]), [false, 290], 'a quick exit')
  t.same(held(5030, 20, [c(5100)]), [false, null], 'closed after the exit: by it')
  t.same(held(5030, 4500, [c(5000)]), [false, 5000], 'answers until just before')
})

function result (o: Partial<CheckResult> = {}): CheckResult {
  const totals = { ...emptyCounts(), sent: 10, answered: 9, ok: 8, okClose: 2, unavailableClose: 1, retryAfter: 1, refused: 2, lost: 1,
    lostByClass: { reset: 0, hangUp: 1, refusedAfterAccept: 0, truncated: 0, timeout: 0, refused: 0, serverError: 0 } }
  return {
    schema: 1,
    ok: false,
    error: null,
    app: { command: ['node', 'app.js'], pid: 42, url: 'http://127.0.0.1:3000/', portFrom: 'proc', output: [] },
    scenario: {
      signal: 'SIGTERM', restart: null, durationMs: 2000, timeoutMs: 30000, path: '/', postPath: '/', slow: null, stream: '/events', readiness: '/readyz',
      clients: mix(16, false)
    },
    totals,
    kinds: { keepAlive: { ...totals }, readiness: { ...emptyCounts(), sent: 3, answered: 3, ok: 2, unavailableKeep: 1 } },
    failures: [{ class: 'hangUp', kind: 'busy', client: 1, request: 7, signal: 1, atMs: 35, sentMs: 34, quietMs: 180, fresh: false, detail: 'the server closed the connection (FIN) without answering', cause: 'idleClose' }],
    signals: [{ n: 1, signal: 'SIGTERM', pid: 42, atMs: 2100, final: true }],
    restarts: [],
    timeline: { signal: 'SIGTERM', readinessMs: 2, first503Ms: 1003, firstCloseMs: 1003, lastResponseMs: 1120, last2xxMs: 1001, listenerClosedMs: 1005, exitMs: 1140 },
    exit: { pid: 42, code: 0, signal: null, known: true, atMs: 1140 },
    connections: [{ kind: 'idle', ended: 'fin', atMs: 1010 }, { kind: 'preconnect', ended: 'reset', atMs: 1011 }],
    heldExit: false,
    stream: { path: '/events', status: 200, events: 12, bytes: 345, ended: 'complete', atMs: 1004, detail: 'the response ended properly (its last chunk arrived)' },
    readiness: { path: '/readyz', polls: 3, flipMs: 2, flipStatus: 503, notReadyBefore: 0 },
    verdict: {
      lost: 1,
      causes: [{ id: 'idleClose', count: 1, classes: ['hangUp'], kinds: ['busy'], text: 'idle keep-alive connections were closed while clients were about to reuse them', fix: 'answer with Connection: close' }],
      notes: [{ id: 'noRetryAfter', problem: false, text: '1 of 2 503s had no Retry-After header' }, { id: 'noExit', problem: true, text: 'it did not exit' }]
    },
    ...o
  }
}

/** The report's lines, each trimmed, with every run of 2+ spaces (a column gap) as ' | '. */
const cells = (text: string): string[] => text.split('\n').map((l) => l.trim().replace(/ {2,}/g, ' | '))

t.test('the report: requests by connection, answers, the timeline from the signal, the lost requests, the verdict', async (t) => {
  const text = formatResult(result())
  const lines = cells(text)
  const has = (line: string, what = line): void => { t.ok(lines.includes(line), what) }
  has('graceful-check | node app.js (pid 42) | http://127.0.0.1:3000/ (its first listening socket)')
  has('scenario | SIGTERM under load: 2.0 s of load first, 19 connections, timeout 30.0 s')
  has('requests by connection | sent | 2xx | 503 | other | refused | lost')
  has('keep-alive loop | 10 | 8 | 1 | 0 | 2 | 1')
  has('all | 10 | 8 | 1 | 0 | 2 | 1')
  has('readiness poll /readyz (apart) | 3 | 2 | 1 | 0 | 0 | 0')
  t.match(text, /\n {2}keep-alive loop {19}10 {4}8 {4}1 {6}0 {8}2 {5}1\n/, 'numbers right-aligned under their heads')
  has('2xx | 8 | 2 said Connection: close')
  has('503 with Connection: close | 1 | 1 of the 503s had Retry-After')
  has('503 without Connection: close | 0')
  has('other statuses | 0')
  has('refused: the listener had closed | 2 | never accepted, so not lost: a load balancer retries them')
  has('lost | 1 | hang-up 1')
  has('SIGTERM to pid 42 after 2.1 s of load; from it:')
  has('readiness /readyz not 2xx | +2 ms | answered 503')
  has('first 503 | +1,003 ms')
  has('first Connection: close | +1,003 ms | on a kept-alive connection')
  has('last 2xx | +1,001 ms')
  has('last response | +1,120 ms')
  has('listener closed | +1,005 ms | the first refused connect')
  has('exit | +1,140 ms | code 0')
  has('idle keep-alive | +1,010 ms | closed by the server (FIN)')
  has('preconnect, sends nothing | +1,011 ms | reset by the server')
  has('idle connections held the exit | no')
  has('stream /events | +1,004 ms | the response ended properly (its last chunk arrived) (12 events, 345 bytes)')
  has('lost requests (1)')
  has('when | class | connection | quiet | what happened')
  has('+35 ms | hang-up | paused keep-alive, busy 0–300 ms | 180 ms | the server closed the connection (FIN) without answering')
  t.match(text, /\nverdict {2}✘ 1 request lost\n {2}1 × idle keep-alive connections were closed while clients were about to reuse them\n {4}\(hang-up on paused keep-alive, busy 0–300 ms\)\n {4}fix: answer with Connection: close\n {2}note: 1 of 2 503s had no Retry-After header\n {2}✘ it did not exit\n$/)

  const quiet = cells(formatResult(result({
    ok: true, failures: [], totals: { ...result().totals, lost: 0, refused: 0 }, kinds: {}, connections: [{ kind: 'idle', ended: 'open', atMs: null }, { kind: 'preconnect', ended: 'never-opened', atMs: null }],
    exit: { pid: 42, code: null, signal: null, known: false, atMs: 10 }, heldExit: null, readiness: { path: '/readyz', polls: 3, flipMs: null, flipStatus: null, notReadyBefore: 0 },
    timeline: { ...result().timeline as Timeline, readinessMs: null, exitMs: 10 },
    stream: { path: '/events', status: 200, events: 1, bytes: 9, ended: 'open', atMs: null, detail: 'still open when the check ended' },
    verdict: { lost: 0, causes: [], notes: [] }
  })))
  t.same(quiet.slice(-2), ['verdict | ✔ nothing lost: 10 requests', ''])
  for (const line of ['exit | +10 ms | exit code unknown (not our child)', 'idle keep-alive | still open when the check ended', 'preconnect, sends nothing | never connected',
    'stream /events | still open when the check ended (1 events, 9 bytes)', 'readiness /readyz not 2xx | not seen']) t.ok(quiet.includes(line), line)
  t.notOk(quiet.some((l) => l.includes('held the exit')), 'not said when not known')
  t.ok(quiet.includes('refused: the listener had closed | 0'))
  t.ok(cells(formatResult(result({ heldExit: true }))).includes('idle connections held the exit | yes'))
  const killed = cells(formatResult(result({ exit: { pid: 42, code: null, signal: 'SIGKILL', known: true, atMs: 10 }, readiness: { path: '/readyz', polls: 3, flipMs: 5, flipStatus: 0, notReadyBefore: 0 } })))
  t.ok(killed.includes('exit | +1,140 ms | killed by SIGKILL'))
  t.ok(killed.includes('readiness /readyz not 2xx | +2 ms | no answer'))
  const hung = cells(formatResult(result({ exit: null, readiness: null, stream: null, verdict: { lost: 0, causes: [], notes: [] }, failures: [] })))
  t.ok(hung.includes('exit | +1,140 ms | not within 30.0 s'))
  t.ok(hung.includes('verdict | ✔ nothing lost: 10 requests, but see below'))
  const cause = (result().verdict.causes[0] as CheckResult['verdict']['causes'][number])
  const twice = cells(formatResult(result({ verdict: { lost: 2, causes: [cause, { ...cause, id: 'closeRace', text: 'raced' }], notes: [] } })))
  t.same(twice.filter((l) => l.startsWith('fix: ')), ['fix: answer with Connection: close', 'fix: the same as above'], 'a fix already given is not repeated')
  const many = cells(formatResult(result({ failures: Array.from({ length: 25 }, () => result().failures[0] as Failure), verdict: { lost: 25, causes: [], notes: [] } })))
  t.ok(many.includes('lost requests (25, the first 20)'))
  t.ok(many.includes('verdict | ✘ 25 requests lost'))
})

t.test('the report: restarts, and a check that could not run', async (t) => {
  const restarts = [restart({ n: 1, mode: 'roll', to: 10, successorMs: null, doneMs: 2000 }), restart({ n: 2, refused: 4, refusedFromMs: 3, refusedToMs: 80 }), restart({ n: 3, to: null, mode: null, doneMs: null, error: 'not complete within 30000 ms' })]
  const signals = [1, 2, 3].map((n) => ({ n, signal: 'SIGHUP', pid: 10, atMs: n * 2000, final: false }))
  const failure = { ...result().failures[0] as Failure, signal: 2, atMs: 12 }
  const lines = cells(formatResult(result({ scenario: { ...result().scenario, signal: null, restart: { signal: 'SIGHUP', times: 3, pidFile: null } }, restarts, signals, timeline: null, failures: [failure, { ...failure, signal: 0, atMs: 500, quietMs: null }] })))
  for (const line of [
    'scenario | SIGHUP × 3 (a restart each) under load: 2.0 s of load first, 19 connections, timeout 30.0 s',
    'restarts (SIGHUP)',
    '#1 | pid 10 → 10 | workers rolled, complete +2,000 ms; no connection refused',
    '#2 | pid 10 → 11 | in place, new process +300 ms, complete +900 ms; 4 connects refused from +3 ms to +80 ms',
    '#3 | pid 10 → ? | FAILED: not complete within 30000 ms; no connection refused',
    '#2 +12 ms | hang-up | paused keep-alive, busy 0–300 ms | 180 ms | the server closed the connection (FIN) without answering',
    'load +500 ms | hang-up | paused keep-alive, busy 0–300 ms | the server closed the connection (FIN) without answering'
  ]) t.ok(lines.includes(line), line)
  t.notOk(lines.some((l) => l.endsWith('from it:')), 'no final signal, no timeline')
  t.ok(cells(formatResult(result({ scenario: { ...result().scenario, restart: { signal: 'SIGHUP', times: 1, pidFile: null } } })))
    .includes('scenario | SIGHUP × 1 (a restart each), then SIGTERM under load: 2.0 s of load first, 19 connections, timeout 30.0 s'))

  const broken = formatResult(result({ error: { code: 'GRACEFUL_ERR_CHECK_START', message: 'the app exited (code 1) before a listening socket' }, app: { command: null, pid: 7, url: null, portFrom: null, output: ['Error: boom', '  at x'] } }))
  t.equal(broken, `graceful-check  pid 7
scenario        SIGTERM under load: 2.0 s of load first, 19 connections, timeout 30.0 s

✘ could not check the app: the app exited (code 1) before a listening socket (GRACEFUL_ERR_CHECK_START)

the app's last output:
  │ Error: boom
  │   at x
`)
  t.match(formatResult(result({ error: { code: 'X', message: 'm' }, app: { command: ['a'], pid: null, url: 'http://127.0.0.1:1/', portFrom: 'port', output: [] } })),
    /^graceful-check {2}a {2}http:\/\/127\.0\.0\.1:1\/\n[^]*\(X\)\n$/)
})

t.test('the live lines and the progress line', async (t) => {
  const f = result().failures[0] as Failure
  const lines = [
    formatEvent({ type: 'started', pid: 4, command: ['node', 'a.js'] }, 0),
    formatEvent({ type: 'started', pid: 4, command: null }, 0),
    formatEvent({ type: 'listening', url: 'http://127.0.0.1:1/', from: 'proc', note: null }, 0),
    formatEvent({ type: 'listening', url: 'http://127.0.0.1:1/', from: 'proc', note: 'the first of 2' }, 0),
    formatEvent({ type: 'listening', url: 'http://127.0.0.1:1/', from: 'port', note: null }, 0),
    formatEvent({ type: 'load', connections: 1200 }, 0),
    formatEvent({ type: 'signal', n: 1, signal: 'SIGTERM', pid: 4, final: true }, 0),
    formatEvent({ type: 'signal', n: 2, signal: 'SIGHUP', pid: 4, final: false }, 0),
    formatEvent({ type: 'seen', atMs: 1003, phase: 'draining', text: 'the first 503' }, 0),
    formatEvent({ type: 'restarted', restart: restart({}) }, 0),
    formatEvent({ type: 'restarted', restart: restart({ mode: 'roll' }) }, 0),
    formatEvent({ type: 'restarted', restart: restart({ error: 'boom' }) }, 0),
    formatEvent({ type: 'lost', failure: f }, 1),
    formatEvent({ type: 'lost', failure: { ...f, quietMs: null, signal: 0 } }, 10),
    formatEvent({ type: 'lost', failure: f }, 11),
    formatEvent({ type: 'progress', progress: { elapsedMs: 1, sent: 1, inFlight: 1, ok: 1, unavailable: 0, lost: 0, phase: 'serving' } }, 0)
  ]
  t.same(lines, [
    'graceful-check: started node a.js (pid 4)',
    'graceful-check: started (pid 4)',
    'graceful-check: the app listens at http://127.0.0.1:1/ (its first listening socket)',
    'graceful-check: the app listens at http://127.0.0.1:1/ (its first listening socket; the first of 2)',
    'graceful-check: the app listens at http://127.0.0.1:1/',
    'graceful-check: load on, 1,200 connections',
    '  SIGTERM sent to pid 4',
    '  SIGHUP sent to pid 4 (restart #2)',
    '    +1,003 ms  the first 503',
    '      +900 ms  restart #1 complete: pid 10 → 11 (in place)',
    '      +900 ms  restart #1 complete: pid 10 → 11 (workers rolled)',
    '  restart #1 FAILED: boom',
    '       +35 ms  lost: hang-up on paused keep-alive, busy 0–300 ms (quiet 180 ms)',
    '  load +35 ms  lost: hang-up on paused keep-alive, busy 0–300 ms (further lost requests: in the report)',
    null,
    null
  ])
  t.equal(formatProgress({ elapsedMs: 4210, sent: 12345, inFlight: 14, ok: 12000, unavailable: 40, lost: 2, phase: 'draining' }),
    '  4.2 s  sent 12,345  in flight 14  2xx 12,000  503 40  lost 2  draining')
  t.equal(when({ ...f, atMs: -5, signal: 1 }, 1), '−5 ms')
  t.equal(wrap('aaa bbb ccc', 2, 9), 'aaa bbb\n  ccc')
})

// ---- the clients, against servers in this process ---------------------------------------------------

async function serve (t: Test, handler: http.RequestListener, options: http.ServerOptions = {}): Promise<{ server: http.Server, port: number }> {
  const server = http.createServer(options, handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { server, port: (server.address() as net.AddressInfo).port }
}

/** A port nothing listens on (a server was there a moment ago). */
async function deadPort (): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  server.close()
  await once(server, 'close')
  return port
}

function spec (port: number, o: Partial<LoopSpec> = {}): LoopSpec {
  return { kind: 'keepAlive', client: 0, host: '127.0.0.1', port, path: '/', method: 'GET', body: null, keepAlive: true, pause: null, gap: 0, timeout: 5000, until: performance.timeOrigin + performance.now() + 30_000, ...o }
}

/** Runs a loop client until it has reported `n` records (or ends on its own). */
async function records (s: LoopSpec, n: number, flags = createFlags(), run = loopClient.bind(null, http)): Promise<{ done: RequestRecord[], starts: number }> {
  const done: RequestRecord[] = []
  let starts = 0
  await run(s, flags, (m: LoopMessage) => {
    if (m.type === 'start') starts++
    else if (done.push(m.record) >= n) stopClients(flags)
  })
  return { done, starts }
}

t.test('a keep-alive loop reuses its connection and says how long it was quiet; a new-connection loop and a POST do not', async (t) => {
  let bodies = 0
  const { port } = await serve(t, (req, res) => {
    let size = 0
    req.on('data', (c: Buffer) => { size += c.length })
    req.on('end', () => {
      if (size > 0) bodies++
      res.end('ok')
    })
  })
  const ka = await records(spec(port, { pause: [1, 3], gap: 0 }), 3)
  t.same(ka.done.map((r) => [r.n, r.status, r.complete, r.fresh, r.connected]), [[1, 200, true, true, true], [2, 200, true, false, true], [3, 200, true, false, true]])
  t.equal(ka.starts, 3)
  t.equal(ka.done[0]?.quietMs, null, 'a new connection has no quiet time')
  t.ok((ka.done[1]?.quietMs as number) >= 1, 'the pause shows as the connection\'s quiet time')
  const fresh = await records(spec(port, { keepAlive: false, method: 'POST', body: '{"a":1}', kind: 'post', gap: 2 }), 2)
  t.same(fresh.done.map((r) => [r.kind, r.fresh, r.status]), [['post', true, 200], ['post', true, 200]])
  t.equal(bodies, 2, 'the bodies arrived')
  t.same((await records(spec(port, { until: 0 }), 1)).done, [], 'past its bound it sends nothing')
})

t.test('a loop client records refusals, resets, hang-ups, truncated bodies and timeouts as it sees them', async (t) => {
  const dead = await deadPort()
  const final = createFlags()
  Atomics.store(final, FLAG_FINAL, 1)
  const refused = await records(spec(dead), 5, final)
  t.same(refused.done.map((r) => [r.code, r.connected, r.complete]), [['ECONNREFUSED', false, false]], 'after the final signal a refusal ends the loop')
  const retried = await records(spec(dead), 2)
  t.equal(retried.done.length, 2, 'before it, the client tries again')

  const { port } = await serve(t, (req, res) => {
    if (req.url === '/hang') return
    if (req.url === '/fin') return req.socket.end()
    if (req.url === '/reset') return req.socket.resetAndDestroy()
    if (req.url === '/cut') {
      res.writeHead(200, { 'content-length': '100' })
      res.write('partial')
      setTimeout(() => req.socket.destroy(), 20)
      return
    }
    res.end('ok')
  })
  const [hang] = (await records(spec(port, { path: '/hang', timeout: 100 }), 1)).done
  t.same([hang?.timedOut, hang?.complete, hang?.started], [true, false, false])
  const [fin] = (await records(spec(port, { path: '/fin' }), 1)).done
  t.same([fin?.fin, fin?.code, fin?.message, fin?.connected], [true, 'ECONNRESET', 'socket hang up', true])
  const [reset] = (await records(spec(port, { path: '/reset' }), 1)).done
  t.same([reset?.fin, reset?.code], [false, 'ECONNRESET'])
  const [cut] = (await records(spec(port, { path: '/cut' }), 1)).done
  t.same([cut?.started, cut?.complete, cut?.status], [true, false, 200])
  t.equal(classify(cut as RequestRecord), 'truncated')
})

t.test('a busy client runs in a worker thread of its own, its loop blocked between requests', async (t) => {
  t.match(workerSource(), /const loopClient = \(async function loopClient/)
  let requests = 0
  const { port } = await serve(t, (_req, res) => { requests++; res.end('ok') })
  const flags = createFlags()
  const run = runClient(spec(port, { kind: 'busy', pause: [1, 5] }), flags, (m) => {
    if (m.type === 'done' && m.record.n >= 3) stopClients(flags)
  })
  await run
  t.ok(requests >= 3, 'it sent its requests')
  t.equal(await runClient(spec(port, { pause: null, until: 0 }), flags, () => {}), undefined, 'a client without a pause runs here')
  await t.rejects(runClient(spec(port, { pause: [1, 2], host: Symbol('not cloneable') as unknown as string }), flags, () => {}), /could not be cloned/)
})

t.test('raw connections: pipelined pairs, a pair whose second request is dropped, a response that is not HTTP, a timeout', async (t) => {
  const { port } = await serve(t, (req, res) => {
    if (req.url === '/close') res.setHeader('connection', 'close')
    res.end('ok')
  })
  const target = { host: '127.0.0.1', port, timeout: 2000 }
  const flags = createFlags()
  const got: RequestRecord[] = []
  let started = 0
  await pipelinedClient(target, '/', flags, performance.timeOrigin + performance.now() + 30_000, (n) => { started += n }, (r) => {
    if (got.push(r) >= 4) stopClients(flags)
  })
  t.same(got.map((r) => [r.kind, r.n, r.status, r.fresh]), [['pipelined', 1, 200, true], ['pipelined', 2, 200, true], ['pipelined', 3, 200, false], ['pipelined', 4, 200, false]])
  t.equal(started, 4)
  t.ok((got[2]?.quietMs as number) >= 0)

  const closed: RequestRecord[] = []
  const again = createFlags()
  await pipelinedClient(target, '/close', again, performance.timeOrigin + performance.now() + 30_000, () => {}, (r) => {
    if (closed.push(r) >= 4) stopClients(again)
  })
  t.same(closed.map((r) => [r.complete, r.close, r.behind === true, r.fresh]), [[true, true, false, true], [false, false, true, false], [true, true, false, true], [false, false, true, false]],
    'the first answered with Connection: close, the second dropped behind it; each pair on a new connection')

  const dead = await deadPort()
  const final = createFlags()
  Atomics.store(final, FLAG_FINAL, 1)
  const refused: RequestRecord[] = []
  await pipelinedClient({ ...target, port: dead }, '/', final, performance.timeOrigin + performance.now() + 30_000, () => {}, (r) => refused.push(r))
  t.same(refused.map((r) => [r.code, r.connected]), [['ECONNREFUSED', false], ['ECONNREFUSED', false]], 'after the final signal a refusal ends it')

  const garbage = net.createServer((s) => { s.on('data', () => s.write('SSH-2.0-x\r\n\r\n')) }).listen(0, '127.0.0.1')
  await once(garbage, 'listening')
  t.teardown(() => { garbage.close() })
  const g = new RawConnection({ host: '127.0.0.1', port: (garbage.address() as net.AddressInfo).port, timeout: 2000 })
  const [bad] = await g.send(target, 'pipelined', 0, [1], '/')
  t.same([bad?.code, bad?.complete], ['EPROTO', false])

  const silent = net.createServer(() => {}).listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => { silent.close() })
  const quiet = { host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port, timeout: 50 }
  const [late] = await new RawConnection(quiet).send(quiet, 'pipelined', 0, [1], '/')
  t.same([late?.timedOut, late?.code, late?.message], [true, 'ETIMEDOUT', 'no answer within the timeout'])
  t.equal(requestBytes({ host: '::1', port: 80, timeout: 1 }, '/x'), 'GET /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n')
})

t.test('raw connections: a body cut short, a body that runs to the close, an answer nobody asked for, a connection we close', async (t) => {
  const raw = net.createServer((s) => {
    s.once('data', (d: Buffer) => {
      const path = d.toString().split(' ')[1]
      if (path === '/cut') {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart')
        setTimeout(() => s.resetAndDestroy(), 20)
      } else if (path === '/eof') {
        s.end('HTTP/1.0 200 OK\r\n\r\nthe body runs to the close')
      } else if (path === '/twice') {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n')
      }
    })
  }).listen(0, '127.0.0.1')
  await once(raw, 'listening')
  t.teardown(() => { raw.close() })
  const target = { host: '127.0.0.1', port: (raw.address() as net.AddressInfo).port, timeout: 2000 }
  const [cut] = await new RawConnection(target).send(target, 'pipelined', 0, [1], '/cut')
  t.same([cut?.started, cut?.complete, cut?.code, cut?.fin], [true, false, 'ECONNRESET', false])
  t.equal(classify(cut as RequestRecord), 'truncated')
  const [eof] = await new RawConnection(target).send(target, 'pipelined', 0, [1], '/eof')
  t.same([eof?.complete, eof?.status], [true, 200], 'complete at the close')
  const twice = new RawConnection(target)
  const [one] = await twice.send(target, 'pipelined', 0, [1], '/twice')
  t.equal(one?.status, 200, 'the second, unasked-for answer is ignored')
  twice.socket.destroy()
  const hold = new RawConnection(target)
  const pending = hold.send(target, 'pipelined', 0, [1], '/hold')
  await once(hold.socket, 'connect')
  hold.socket.destroy()
  const [dropped] = await pending
  t.same([dropped?.code, dropped?.message], ['', 'closed before an answer'])
})

t.test('an idle connection and a preconnect, watched to their end: FIN, reset, still open, never opened', async (t) => {
  const { port } = await serve(t, (_req, res) => { res.end('ok') }, { keepAliveTimeout: 50 })
  const target = { host: '127.0.0.1', port, timeout: 2000 }
  const idle = new WatchedConnection('idle', target, '/')
  const [first] = await (idle.first as Promise<RequestRecord[]>)
  t.same([first?.kind, first?.status], ['idle', 200])
  await idle.conn.closedPromise()
  const zero = performance.timeOrigin + performance.now()
  const end = idle.result(zero)
  t.same([end.kind, end.ended], ['idle', 'fin'], 'closed by the server after its keep-alive timeout')
  t.ok((end.atMs as number) <= 0)

  const resetting = net.createServer((s) => { setTimeout(() => s.resetAndDestroy(), 20) }).listen(0, '127.0.0.1')
  await once(resetting, 'listening')
  t.teardown(() => { resetting.close() })
  const pre = new WatchedConnection('preconnect', { ...target, port: (resetting.address() as net.AddressInfo).port }, '/')
  t.equal(pre.first, null, 'a preconnect sends nothing')
  await pre.conn.closedPromise()
  t.same(pre.result(zero).ended, 'reset')

  const open = new WatchedConnection('preconnect', target, '/')
  await once(open.conn.socket, 'connect')
  open.stop()
  await open.conn.closedPromise()
  t.same(open.result(zero), { kind: 'preconnect', ended: 'open', atMs: null })
  const never = new WatchedConnection('preconnect', { ...target, port: await deadPort() }, '/')
  await never.conn.closedPromise()
  t.same(never.result(zero), { kind: 'preconnect', ended: 'never-opened', atMs: null })
})

t.test('the stream: events counted, and how it ended', async (t) => {
  const { port } = await serve(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: 1\n')
    res.write('\ndata: 2\n\nda')
    if (req.url === '/end') res.end('ta: 3\r\n\r\n')
    if (req.url === '/cut') setTimeout(() => req.socket.destroy(), 20)
  })
  const target = { host: '127.0.0.1', port }
  const complete = new StreamWatch(target, '/end')
  await complete.done
  const zero = performance.timeOrigin + performance.now()
  t.match(complete.result(zero), { path: '/end', status: 200, events: 3, ended: 'complete', detail: 'the response ended properly (its last chunk arrived)' })
  complete.stop()
  t.notOk(complete.stopped, 'stopping an ended stream does nothing')
  const cut = new StreamWatch(target, '/cut')
  await cut.done
  t.match(cut.result(zero), { ended: 'truncated', events: 2, detail: /^cut without its end: / })
  const open = new StreamWatch(target, '/open')
  await new Promise<void>((resolve) => { const check = setInterval(() => { if (open.bytes > 0) { clearInterval(check); resolve() } }, 5) })
  open.stop()
  await open.done
  t.match(open.result(zero), { ended: 'open', atMs: null, detail: 'still open when the check ended' })
  const refused = new StreamWatch({ host: '127.0.0.1', port: await deadPort() }, '/')
  await refused.done
  t.match(refused.result(zero), { ended: 'failed', status: 0, detail: /^no response: connect ECONNREFUSED/ })
  const fin = await serve(t, (req) => { req.socket.end() })
  const hungUp = new StreamWatch({ host: '127.0.0.1', port: fin.port }, '/')
  await hungUp.done
  t.match(hungUp.result(zero), { ended: 'failed', detail: 'no response: socket hang up' })
  const finCut = await serve(t, (req, res) => { res.writeHead(200); res.write('x'); setTimeout(() => req.socket.end(), 10) })
  const halfway = new StreamWatch({ host: '127.0.0.1', port: finCut.port }, '/')
  await halfway.done
  t.match(halfway.result(zero), { ended: 'truncated', detail: /cut without its end: / })
})

t.test('a check cut short by this process exiting kills the app it started', async (t) => {
  const app = new App({ command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], cwd: process.cwd(), env: { _TAPJS_PROCESSINFO_COVERAGE_: '0' }, pid: null, child: null, output: null })
  t.ok(process.listeners('exit').includes(killOwned), 'a hook on exit while it runs')
  killOwned()
  const exit = await app.exited
  t.equal(exit.signal, 'SIGKILL')
  await app.close()
  t.notOk(process.listeners('exit').includes(killOwned), 'no hook once closed')
  const gone = new App({ command: [process.execPath, '-e', ''], cwd: process.cwd(), env: { _TAPJS_PROCESSINFO_COVERAGE_: '0' }, pid: null, child: null, output: null })
  await gone.exited
  t.doesNotThrow(() => killOwned(), 'a group already gone is no error')
  await gone.close()
})

t.test('the listener probe: connects, and reports each refused connect', async (t) => {
  const server = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1')
  await once(server, 'listening')
  const target = { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }
  t.equal(await connectOnce(target), 'accepted')
  const refusals: number[] = []
  let refusedOnce: () => void = () => {}
  const seen = new Promise<void>((resolve) => { refusedOnce = resolve })
  const probe = startListenerProbe(target, 5, (at) => { refusals.push(at); refusedOnce() })
  server.close()
  await seen
  await probe.stop()
  t.ok(refusals.length >= 1)
  t.equal(await connectOnce(target), 'refused')
})

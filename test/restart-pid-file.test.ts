// The pid file path is checked when the options are resolved (issue 13.4, 13.10): a path that cannot work, or
// that another local user could hijack, is a coded TypeError at start-up, not a log line at the first write.
// Real files, directories and symlinks in a temp dir. The tests run as root here, which bypasses permission
// bits: the world-writable check reads the mode bits (root or not), and the "cannot write" case runs in a
// child process as the unprivileged user nobody.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Graceful, describe, resolveOptions } from '@graceful/core'
import { graceful as expressGraceful } from '@graceful/express'
import { FIXTURE_EXEC_ARGV } from './helpers/fork.js'

const CHECK = fileURLToPath(new URL('./fixtures/pid-file-check.ts', import.meta.url))

/** A fresh folder only its owner can write (0755), removed at teardown. */
function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-pid-file-'))
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function refused (t: Test, pidFile: string, reason: RegExp, what: string): void {
  const restart = { pidFile }
  t.throws(() => resolveOptions({ restart }), {
    name: 'TypeError',
    code: 'GRACEFUL_ERR_PID_FILE',
    message: new RegExp(`^option 'restart' has a pidFile that cannot work safely: ${reason.source}[^;]*; instead got '${escape(describe(restart))}'$`)
  }, what)
}

function accepted (t: Test, pidFile: string, what: string): void {
  t.same(resolveOptions({ restart: { pidFile } }).restart, { signal: 'SIGHUP', timeout: 60_000, pidFile }, what)
}

function escape (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

t.test('a pid file in an existing directory only its owner can write is accepted, whether or not it exists yet', async (t) => {
  const dir = tempDir(t)
  accepted(t, join(dir, 'app.pid'), 'a new file')
  writeFileSync(join(dir, 'old.pid'), '1\n')
  accepted(t, join(dir, 'old.pid'), 'an existing file')
  mkdirSync(join(dir, 'target'))
  symlinkSync(join(dir, 'target'), join(dir, 'link.pid'))
  accepted(t, join(dir, 'link.pid'), 'a symlink, even to a directory: the rename replaces the link')
  accepted(t, join(dir, 'a'.repeat(234)), 'a name of 234 bytes: 21 more for the temp file make 255')
  chmodSync(dir, 0o1777)
  accepted(t, join(dir, 'app.pid'), 'a world-writable directory with the sticky bit (as /tmp): others cannot replace our file')
  chmodSync(dir, 0o775)
  accepted(t, join(dir, 'app.pid'), 'a group-writable directory: the group is trusted')
})

t.test('values that cannot work are refused with the reason', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'file'), '')
  mkdirSync(join(dir, 'sub'))
  refused(t, 'a\0b', /it contains a NUL byte/, 'a NUL byte')
  refused(t, `${dir}/`, /it names a directory, not a file/, 'a trailing slash')
  refused(t, `${dir}/..`, /it names a directory, not a file/, '..')
  refused(t, `${dir}/.`, /it names a directory, not a file/, '.')
  refused(t, join(dir, 'sub'), /it is a directory/, 'an existing directory')
  refused(t, join(dir, 'missing', 'app.pid'), new RegExp(`its directory '${escape(join(dir, 'missing'))}' does not exist`), 'a missing directory')
  refused(t, join(dir, 'file', 'app.pid'), new RegExp(`'${escape(join(dir, 'file'))}' is not a directory`), 'a file where the directory should be')
  refused(t, join(dir, 'file', 'sub', 'app.pid'), /its directory '.*' cannot be used by this process \(ENOTDIR\)/, 'a file on the way to the directory')
  refused(t, join(dir, 'a'.repeat(235)), /its file name is 235 bytes long, more than the 234 that fit beside its temp file's/, 'a name too long for the temp file')
  refused(t, join(dir, 'é'.repeat(118)), /its file name is 236 bytes long/, 'bytes, not characters')
})

t.test('a directory anyone may write to, without the sticky bit, is refused: another user could replace the pid file', async (t) => {
  const dir = tempDir(t)
  chmodSync(dir, 0o777)
  refused(t, join(dir, 'app.pid'), new RegExp(`its directory '${escape(dir)}' is world-writable without the sticky bit: another user could replace the file`), '0777')
  chmodSync(dir, 0o773)
  refused(t, join(dir, 'app.pid'), /its directory '.*' is world-writable without the sticky bit/, 'writable by others, not readable')
})

t.test('a directory this process cannot write to is refused', async (t) => {
  const dir = tempDir(t)
  const pidFile = join(dir, 'app.pid')
  if (process.getuid?.() !== 0) {
    chmodSync(dir, 0o555)
    refused(t, pidFile, /cannot be used by this process \(EACCES\)/, 'a read-only directory')
    return
  }
  // Root may write anywhere: the check runs as nobody, for whom the root-owned 0755 directory is read-only
  // and a 1777 one (as /tmp) is not.
  const open = tempDir(t)
  chmodSync(open, 0o1777)
  // Through env -u: tap puts its process hooks in every child's NODE_OPTIONS, and they would write to
  // .tap/, which nobody may not.
  // Our node binary may sit where nobody cannot reach it (npx's, under /root): a link of it, or a copy, can.
  const node = join(tempDir(t), 'node')
  try {
    linkSync(process.execPath, node)
  } catch {
    copyFileSync(process.execPath, node)
    chmodSync(node, 0o755)
  }
  const child = spawnSync('env', ['-u', 'NODE_OPTIONS', node, ...FIXTURE_EXEC_ARGV, CHECK, pidFile, join(open, 'app.pid')], {
    uid: 65534, gid: 65534, env: { PATH: process.env.PATH }, encoding: 'utf8', cwd: tmpdir()
  })
  t.same({ status: child.status, stderr: child.stderr }, { status: 0, stderr: '' }, 'the check ran as nobody')
  const [closed, writable] = child.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  t.match(closed, { name: 'TypeError', code: 'GRACEFUL_ERR_PID_FILE', message: /its directory '.*' cannot be used by this process \(EACCES\)/ }, 'refused as nobody')
  t.same(writable, { ok: true }, 'and accepted where nobody may write')
})

t.test('the error surfaces where the options are checked: new Graceful(), the Express middleware', async (t) => {
  const restart = { pidFile: 'a\0b' }
  t.throws(() => new Graceful({ signals: false, restart }), { code: 'GRACEFUL_ERR_PID_FILE' })
  t.throws(() => expressGraceful({ signals: false, restart }), { code: 'GRACEFUL_ERR_PID_FILE' })
  t.throws(() => resolveOptions({ restart: { pidFile: 5 } }), { code: 'GRACEFUL_ERR_RESTART' }, 'a pidFile that is no string is still a bad restart option')
  t.throws(() => resolveOptions({ restart: { pidFile: '' } }), { code: 'GRACEFUL_ERR_RESTART' })
})

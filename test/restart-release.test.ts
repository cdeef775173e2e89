// Where a successor starts (README, "Zero-downtime restart", step 1): in the directory the user started
// from, as the shell named it (PWD), so that a symlinked release folder (current -> releases/v2) is read
// anew; and never in a stale PWD that does not name the process's directory. Real releases on disk, real
// symlinks, real SIGHUPs to a process started the way a shell starts `cd current && node app.mjs`.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { FIXTURE_EXEC_ARGV, fixtureEnv } from './helpers/fork.js'
import { settleWithin } from './helpers/bounded.js'
import { alive } from './helpers/process.js'

const BOUND_MS = 30_000
const SERVE = pathToFileURL(new URL('./fixtures/restart-release.ts', import.meta.url).pathname).href

t.setTimeout(120_000)

interface Line {
  msg: string
  pid: number
  data: Record<string, unknown>
}

interface Answer {
  release: string
  pid: number
  cwd: string
  argv: string[]
}

/** Two releases, each an app.mjs that serves its name, and `current` pointing at v1. */
function releases (t: Test): { dir: string, v1: string, v2: string, current: string } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'graceful-release-')))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const name of ['v1', 'v2']) {
    mkdirSync(join(dir, 'releases', name), { recursive: true })
    writeFileSync(join(dir, 'releases', name, 'app.mjs'), `import { serve } from ${JSON.stringify(SERVE)}\nserve(${JSON.stringify(name)})\n`)
  }
  symlinkSync(join('releases', 'v1'), join(dir, 'current'))
  return { dir, v1: join(dir, 'releases', 'v1'), v2: join(dir, 'releases', 'v2'), current: join(dir, 'current') }
}

/** `cd <cwd> && node app.mjs <args>` with PWD as given: a process group of our own, killed at teardown. */
function start (t: Test, cwd: string, pwd: string, pidFile: string): { proc: ChildProcess, lines: Line[], until: (check: (l: Line) => boolean, what: string) => Promise<Line> } {
  const proc = spawn(process.execPath, [...FIXTURE_EXEC_ARGV, 'app.mjs', '--flag', 'a b'], {
    cwd,
    env: fixtureEnv({ PWD: pwd, PID_FILE: pidFile }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  const pids = new Set<number>([proc.pid as number])
  t.teardown(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    try {
      process.kill(-(proc.pid as number), 'SIGKILL')
    } catch {}
  })
  const lines: Line[] = []
  let output = ''
  let partial = ''
  const waiters: Array<() => void> = []
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() as string
    for (const part of parts) {
      if (!part.startsWith('{')) continue
      const line = JSON.parse(part) as Line
      lines.push(line)
      pids.add(line.pid)
    }
    for (const w of waiters.splice(0)) w()
  })
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const until = (check: (l: Line) => boolean, what: string): Promise<Line> => settleWithin(new Promise<Line>((resolve) => {
    const test = (): void => {
      const hit = lines.find(check)
      if (hit !== undefined) resolve(hit)
      else waiters.push(test)
    }
    test()
  }), what, BOUND_MS).catch((err: Error) => { throw new Error(`${err.message}; output:\n${output}`) })
  return { proc, lines, until }
}

function get (port: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve(JSON.parse(body) as Answer))
    }).on('error', reject)
  })
}

/** Resolves once `pid` (not our child: no exit event) has exited; polled, with a bound. */
async function gone (pid: number): Promise<void> {
  await settleWithin((async () => {
    while (alive(pid)) await new Promise((resolve) => setTimeout(resolve, 20))
  })(), `pid ${pid} exiting`, BOUND_MS)
}

/** SIGHUP to the first process; resolves with the successor's answer once the first process has exited. */
async function restart (t: Test, app: ReturnType<typeof start>, port: number): Promise<Answer> {
  const first = app.proc.pid as number
  const exited = once(app.proc, 'exit')
  process.kill(first, 'SIGHUP')
  const ready = await app.until((l) => l.msg === 'graceful: successor ready' && l.pid === first, 'the successor ready')
  await settleWithin(exited, 'the first process exiting', BOUND_MS)
  const answer = await get(port)
  t.equal(answer.pid, ready.data.pid, 'the successor answers')
  return answer
}

t.test('started as `cd current && node app.mjs`, a restart after `current` moved to the next release serves the next release', async (t) => {
  const { v1, v2, current } = releases(t)
  const app = start(t, current, current, join(v1, '..', 'app.pid'))
  const { data } = await app.until((l) => l.msg === 'fixture: listening', 'the first process listening')
  const port = data.port as number
  t.match(await get(port), { release: 'v1', cwd: v1, argv: ['--flag', 'a b'] }, 'v1 serves (its cwd as the kernel has it)')
  // The deploy: point current at v2 in one step, as `ln -sfn` does.
  symlinkSync(join('releases', 'v2'), `${current}.next`)
  renameSync(`${current}.next`, current)
  const answer = await restart(t, app, port)
  t.match(answer, { release: 'v2', cwd: v2, argv: ['--flag', 'a b'] }, 'the successor runs v2\'s code, in v2, with the same arguments')
  process.kill(answer.pid, 'SIGTERM')
  await gone(answer.pid)
})

t.test('a PWD that does not name the directory the process started in (inherited from elsewhere) is ignored', async (t) => {
  const { dir, v1 } = releases(t)
  // Started in v1 by something that is no shell: the PWD it inherited names another directory.
  const app = start(t, v1, dir, join(dir, 'app.pid'))
  const { data } = await app.until((l) => l.msg === 'fixture: listening', 'the first process listening')
  const port = data.port as number
  const answer = await restart(t, app, port)
  t.match(answer, { release: 'v1', cwd: v1, argv: ['--flag', 'a b'] }, 'the successor starts in v1, not in the stale PWD')
  process.kill(answer.pid, 'SIGTERM')
  await gone(answer.pid)
})

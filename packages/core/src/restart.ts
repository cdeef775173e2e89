import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { Server as NetServer } from 'node:net'
import type { Logger } from './options.js'
import type { ShutdownReport } from './graceful.js'
import { isSupervised } from './supervised.js'

/** Set in a successor: the listening sockets it inherited, and who its predecessor is. */
export const ENV_FDS = 'GRACEFUL_RESTART_FDS'
export const ENV_PARENT = 'GRACEFUL_RESTART_PARENT'
/** The first inherited socket's fd in a successor: 0-2 are stdio, 3 is the IPC channel. */
const FIRST_FD = 4
const KILL_GRACE_MS = 5000

/** What the restart controller needs from one instance. */
export interface RestartMember {
  readonly log: Logger
  readonly restartOptions: { signal: NodeJS.Signals, timeout: number, pidFile: string | null }
  readonly phase: string
  listeningServers (): NetServer[]
  restartDrain (): Promise<ShutdownReport>
}

interface Inherited {
  fd: number
  address: string
  port: number
  claimed: boolean
  listening: boolean
}

interface State {
  members: Set<RestartMember>
  signals: Map<NodeJS.Signals, () => void>
  inherited: Inherited[]
  predecessor: number | null
  announced: boolean
  inProgress: boolean
}

// One controller per process, even with the ESM and CommonJS builds both loaded.
const GLOBAL = Symbol.for('graceful.restart')
const store = globalThis as Record<symbol, State | undefined>
const state: State = store[GLOBAL] ?? (store[GLOBAL] = boot())

function boot (): State {
  const s: State = { members: new Set(), signals: new Map(), inherited: [], predecessor: null, announced: false, inProgress: false }
  const fds = process.env[ENV_FDS]
  const parent = Number(process.env[ENV_PARENT])
  // Our own children must not believe they inherited these sockets. ENV_PARENT stays: it tells the app
  // it is a successor (whose IPC channel belongs to its predecessor).
  delete process.env[ENV_FDS]
  if (fds !== undefined && Number.isInteger(parent)) {
    s.predecessor = parent
    s.inherited = parseInherited(fds)
    // The predecessor keeps the IPC channel open until it exits; its closing is the one sure sign that
    // the predecessor is gone (a pid check would count a zombie not yet reaped as alive).
    process.once('disconnect', () => {
      for (const m of s.members) m.log.info({ pid: s.predecessor }, 'graceful: predecessor exited')
      s.predecessor = null
    })
    process.channel?.unref()
  } else if (process.env.LISTEN_PID === String(process.pid) && Number(process.env.LISTEN_FDS) > 0) {
    // systemd socket activation: the sockets are fds 3, 4, …, taken by listen() calls in order.
    for (let i = 0; i < Number(process.env.LISTEN_FDS); i++) {
      s.inherited.push({ fd: 3 + i, address: '', port: 0, claimed: false, listening: false })
    }
  }
  if (s.inherited.length > 0) patchListen(s)
  return s
}

/** @internal */
export function parseInherited (text: string): Inherited[] {
  try {
    const list = JSON.parse(text) as Array<{ fd: number, address: string, port: number }>
    return list.filter((i) => Number.isInteger(i.fd)).map((i) => ({ ...i, claimed: false, listening: false }))
  } catch {
    return []
  }
}

/** The port (and host) a listen() call asks for, or null for a path, a handle or an fd. */
/** @internal */
export function wanted (args: unknown[]): { port: number, host: string | undefined } | null {
  const [first, second] = args
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    return { port: Number(first), host: typeof second === 'string' ? second : undefined }
  }
  if (first !== null && typeof first === 'object' && !('fd' in first) && !('path' in first) && !('_handle' in first) && !('handle' in first)) {
    const o = first as { port?: unknown, host?: unknown }
    return { port: Number(o.port ?? 0), host: typeof o.host === 'string' ? o.host : undefined }
  }
  return null
}

/**
 * In a successor, `listen(port)` takes over the inherited socket for that port rather than binding a new
 * one, so the user's code does not change. Port 0 takes the next unclaimed socket, in order.
 */
function patchListen (s: State): void {
  const original = NetServer.prototype.listen
  NetServer.prototype.listen = function gracefulListen (this: NetServer, ...args: unknown[]) {
    const want = wanted(args)
    const free = s.inherited.filter((i) => !i.claimed)
    const byPort = want === null || want.port === 0 ? [] : free.filter((i) => i.port === want.port)
    // The same port and host first (a dual-stack app has one port on two addresses), then the port alone;
    // port 0, or sockets of unknown port (socket activation), go in order.
    const match = want === null
      ? undefined
      : byPort.find((i) => i.address === want.host) ?? byPort[0] ?? (want.port === 0 || free[0]?.port === 0 ? free[0] : undefined)
    if (match === undefined) return Reflect.apply(original, this, args) as NetServer
    match.claimed = true
    this.once('listening', () => {
      match.listening = true
      if (!s.announced && s.inherited.every((i) => i.listening)) announce(s)
    })
    const callback = args.find((a) => typeof a === 'function')
    return Reflect.apply(original, this, callback === undefined ? [{ fd: match.fd }] : [{ fd: match.fd }, callback]) as NetServer
  } as typeof NetServer.prototype.listen
}

/** Every inherited socket is listening again: write the pid file and tell the predecessor. */
function announce (s: State): void {
  s.announced = true
  for (const m of s.members) writePidFile(m)
  if (s.predecessor !== null) process.send?.({ graceful: 'ready', pid: process.pid })
}

export function writePidFile (member: RestartMember): void {
  const file = member.restartOptions.pidFile
  if (file === null) return
  // Atomic: a reader sees the old pid or the new one, never an empty or half-written file.
  const tmp = `${file}.${process.pid}.tmp`
  try {
    writeFileSync(tmp, `${process.pid}\n`)
    renameSync(tmp, file)
  } catch (err) {
    member.log.error({ err, pidFile: file }, 'graceful: could not write the pid file')
  }
}

export function registerRestart (member: RestartMember): void {
  // The supervisor forks, rolls and names the workers; a worker restarting itself would escape it.
  if (isSupervised()) {
    member.log.warn({ supervisor: process.ppid, reason: 'this is a graceful-cluster worker: send SIGHUP to the supervisor, which rolls the workers' }, 'graceful: restart refused')
    return
  }
  state.members.add(member)
  const { signal } = member.restartOptions
  if (!state.signals.has(signal)) {
    const handler = (): void => { void restart(signal) }
    state.signals.set(signal, handler)
    process.on(signal, handler)
  }
  // A successor whose sockets are all listening before this instance existed.
  if (state.announced) writePidFile(member)
}

export function unregisterRestart (member: RestartMember): void {
  state.members.delete(member)
  for (const [signal, handler] of state.signals) {
    if ([...state.members].some((m) => m.restartOptions.signal === signal)) continue
    process.removeListener(signal, handler)
    state.signals.delete(signal)
  }
}

/** The first process (not a successor) has its servers listening: name it in the pid file. */
export function firstListening (member: RestartMember): void {
  if (state.inherited.length === 0 && !isSupervised()) writePidFile(member)
}

function refusal (): string | null {
  if (process.platform === 'win32') return 'in-place restart needs Unix file descriptor passing; not on Windows'
  if (process.pid === 1) return 'this is PID 1: the container would stop with this process; run the app under graceful-cluster (graceful-cluster app.js), whose SIGHUP rolls the workers'
  if (process.env.pm_id !== undefined) return 'running under pm2, which restarts processes itself: use pm2 reload'
  if (state.predecessor !== null && running(state.predecessor)) return `the previous process (pid ${state.predecessor}) has not exited yet`
  return null
}

/** @internal Is `pid` still running? A zombie (exited, not yet reaped by its parent) is not. */
export function running (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat[stat.lastIndexOf(')') + 2] !== 'Z'
  /* c8 ignore next 4 - no /proc outside Linux (macOS): the signal check has to do there */
  } catch {
    return true
  }
}

async function restart (signal: NodeJS.Signals): Promise<void> {
  const members = [...state.members].filter((m) => m.restartOptions.signal === signal)
  const log = (level: 'info' | 'warn' | 'error', obj: object, msg: string): void => { for (const m of members) m.log[level](obj, msg) }
  if (state.inProgress) return log('warn', { signal }, 'graceful: restart already in progress, signal ignored')
  if (members.some((m) => m.phase !== 'serving')) return log('warn', { reason: 'the shutdown has started' }, 'graceful: restart refused')
  const refused = refusal()
  if (refused !== null) return log('warn', { reason: refused }, 'graceful: restart refused')
  log('info', { signal }, 'graceful: restart requested')

  const servers = [...new Set(members.flatMap((m) => m.listeningServers()))]
  const sockets: Array<{ fd: number, address: string, port: number }> = []
  for (const server of servers) {
    const address = server.address()
    const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd
    // TCP listeners only: a Unix-socket server's successor binds its own path.
    if (typeof address !== 'object' || address === null || typeof fd !== 'number' || fd < 0) continue
    sockets.push({ fd, address: address.address, port: address.port })
  }

  state.inProgress = true
  const timeout = Math.max(...members.map((m) => m.restartOptions.timeout))
  // spawn() reports its failures through 'error' (ENOENT, EMFILE, …), handled below with the others.
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    // PWD, when set, is the path the user started from: a symlinked release folder is read anew.
    cwd: process.env.PWD ?? process.cwd(),
    env: {
      ...process.env,
      [ENV_FDS]: JSON.stringify(sockets.map((s, i) => ({ fd: FIRST_FD + i, address: s.address, port: s.port }))),
      [ENV_PARENT]: String(process.pid)
    },
    stdio: ['inherit', 'inherit', 'inherit', 'ipc', ...sockets.map((s) => s.fd)]
  })
  log('info', { pid: child.pid }, 'graceful: successor started')

  const outcome = await new Promise<string | null>((resolve) => {
    const settle = (reason: string | null): void => {
      clearTimeout(timer)
      resolve(reason)
    }
    const timer = setTimeout(() => settle(`the successor was not ready within ${timeout} ms`), timeout)
    child.on('message', (msg: { graceful?: string } | null) => {
      if (msg?.graceful === 'ready') settle(null)
    })
    child.once('exit', (code, sig) => settle(`the successor exited (${sig ?? `code ${String(code)}`}) before it was ready`))
    child.once('error', (err) => settle(err.message))
  })

  if (outcome !== null) {
    log('error', { reason: outcome, pid: child.pid }, 'graceful: restart failed')
    await stop(child)
    state.inProgress = false
    return
  }
  log('info', { pid: child.pid }, 'graceful: successor ready')
  // The successor lives on without us. The IPC channel stays open (unref'd) until we exit: its closing
  // tells the successor that we are gone and it may restart in turn.
  child.channel?.unref()
  child.unref()
  const reports = await Promise.all(members.map((m) => m.restartDrain()))
  state.inProgress = false
  // Exiting closes the channel anyway; closing it first says the same to the successor a little sooner.
  if (child.connected) child.disconnect()
  process.exit(Math.max(0, ...reports.map((r) => r.exitCode)))
}

/** SIGTERM, then SIGKILL if it lingers: a failed successor must not be left behind. */
async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS)
  await exited
  clearTimeout(timer)
}

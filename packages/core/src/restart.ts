import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, constants, fchmodSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { Server as NetServer } from 'node:net'
import { isAbsolute, join, relative, sep } from 'node:path'
import { publishRestart } from './channels.js'
import { PID_TMP_RANDOM_BYTES, type Logger } from './options.js'
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
  shutdown (reason?: string): Promise<ShutdownReport>
}

interface Inherited {
  fd: number
  address: string
  port: number
  claimed: boolean
  listening: boolean
}

/** A successor on its way, in the predecessor. */
interface Pending {
  child: ChildProcess
  members: RestartMember[]
  /** The successor said it was ready and we took it: from now on we drain, whatever happens. */
  committed: boolean
  /** Ends the wait for the successor with this reason (a failure), unless it has ended. */
  abort (reason: string): void
}

interface State {
  members: Set<RestartMember>
  signals: Map<NodeJS.Signals, () => void>
  inherited: Inherited[]
  /** In a successor: the predecessor's pid, for good. */
  parent: number | null
  /** In a successor: the predecessor's pid until its channel has closed. */
  predecessor: number | null
  /** In a successor: the predecessor took us over (it drains); from then on this process is the one that serves. */
  accepted: boolean
  /** In a successor: the handover is off (the predecessor went away, or we shut down, before it took us over). */
  abandoned: boolean
  announced: boolean
  inProgress: boolean
  pending: Pending | null
  /** The directory this process started in: as the user named it (PWD, when it names it) and as the kernel has it. */
  start: { logical: string, physical: string }
}

// One controller per process, even with the ESM and CommonJS builds both loaded.
const GLOBAL = Symbol.for('graceful.restart')
const store = globalThis as Record<symbol, State | undefined>
const state: State = store[GLOBAL] ?? (store[GLOBAL] = boot())

function boot (): State {
  const s: State = {
    members: new Set(),
    signals: new Map(),
    inherited: [],
    parent: null,
    predecessor: null,
    accepted: false,
    abandoned: false,
    announced: false,
    inProgress: false,
    pending: null,
    start: startDirectory(process.cwd(), process.env.PWD)
  }
  const fds = process.env[ENV_FDS]
  const parent = Number(process.env[ENV_PARENT])
  // Our own children must not believe they inherited these sockets. ENV_PARENT stays: it tells the app
  // it is a successor (whose IPC channel belongs to its predecessor).
  delete process.env[ENV_FDS]
  // A predecessor always gives its successor an IPC channel: without one, the variables were copied by hand.
  if (fds !== undefined && Number.isInteger(parent) && process.channel !== undefined) {
    s.parent = parent
    s.predecessor = parent
    s.inherited = parseInherited(fds)
    process.on('message', function gracefulPredecessorMessage (message: unknown) {
      if ((message as { graceful?: unknown } | null)?.graceful !== 'accepted') return
      s.accepted = true
      process.removeListener('message', gracefulPredecessorMessage)
    })
    // The predecessor keeps the IPC channel open until it exits; its closing is the one sure sign that
    // the predecessor is gone (a pid check would count a zombie not yet reaped as alive).
    process.once('disconnect', () => predecessorGone(s))
    process.channel?.unref()
    // Closed before this module was even loaded: the 'disconnect' event has come and gone.
    if (!process.connected) process.nextTick(() => predecessorGone(s))
  } else if (process.env.LISTEN_PID === String(process.pid) && Number(process.env.LISTEN_FDS) > 0) {
    // systemd socket activation: the sockets are fds 3, 4, …, taken by listen() calls in order.
    for (let i = 0; i < Number(process.env.LISTEN_FDS); i++) {
      s.inherited.push({ fd: 3 + i, address: '', port: 0, claimed: false, listening: false })
    }
  }
  if (s.inherited.length > 0) patchListen(s)
  return s
}

/**
 * @internal The directory a successor starts in. A shell's PWD keeps the path the user took (a symlinked
 * release folder, `current -> releases/42`), which the kernel's cwd has resolved; a successor started there
 * reads the folder the link points to by then. A PWD that does not name the cwd (inherited by a process
 * started elsewhere) is stale and ignored.
 */
export function startDirectory (physical: string, pwd: string | undefined): { logical: string, physical: string } {
  if (pwd === undefined || pwd === physical || !isAbsolute(pwd)) return { logical: physical, physical }
  try {
    const a = statSync(pwd)
    const b = statSync(physical)
    if (a.dev === b.dev && a.ino === b.ino) return { logical: pwd, physical }
  } catch {
    // PWD names nothing any more: the cwd is all we have.
  }
  return { logical: physical, physical }
}

/**
 * @internal How a successor is started: in the start directory as the user named it, and with the script
 * path under it (Node resolves `node app.js` to the physical path, so the old release would run again).
 */
export function successorLaunch (start: { logical: string, physical: string }, argv: readonly string[]): { cwd: string, args: string[] } {
  const args = argv.slice(1)
  const script = args[0]
  if (script !== undefined && start.logical !== start.physical && script.startsWith(start.physical + sep)) {
    args[0] = join(start.logical, relative(start.physical, script))
  }
  return { cwd: start.logical, args }
}

/** In a successor: the predecessor's channel has closed. */
function predecessorGone (s: State): void {
  const pid = s.predecessor
  s.predecessor = null
  if (s.accepted) {
    for (const m of s.members) m.log.info({ pid }, 'graceful: predecessor exited')
    return
  }
  // It was shut down or crashed before it took us over. Nobody knows about us: a service manager watches
  // it, not us, and its pid file does not name us. Serving on would leave an orphan holding the port.
  abandon(s, `the predecessor (pid ${String(s.parent)}) went away before it took this process over`, true)
}

/**
 * In a successor, before the predecessor took us over: the handover is off. Puts the predecessor's pid
 * back in the pid file if we had written ours, tells the predecessor, closes the channel; with `stop`,
 * drains whatever this process has accepted (as a restart drain: no lame duck, nobody routes here) and exits 1.
 */
function abandon (s: State, reason: string, stop: boolean): void {
  if (s.abandoned) return
  s.abandoned = true
  for (const m of s.members) {
    m.log.warn({ reason, predecessor: s.parent }, 'graceful: restart abandoned')
    restorePidFile(m, s.parent as number)
  }
  publishRestart('failed', { reason })
  // The callback takes the error of a channel that has closed already; disconnecting once the message is
  // written keeps it from being cut off.
  process.send?.({ graceful: 'abandoned', reason }, undefined, {}, () => {
    if (process.connected) process.disconnect()
  })
  if (!stop) return
  const exit = (): void => { process.exit(1) }
  Promise.all([...s.members].filter((m) => m.phase === 'serving').map((m) => m.restartDrain())).then(exit, exit)
}

/** The pid file names this process, which will not serve after all: name `pid` again. */
function restorePidFile (member: RestartMember, pid: number): void {
  const file = member.restartOptions.pidFile
  if (file === null) return
  let named: string
  try {
    named = readFileSync(file, 'utf8').trim()
  } catch {
    return
  }
  if (named === String(process.pid)) writePidFile(member, pid)
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
  if (s.abandoned) return
  s.announced = true
  for (const m of s.members) writePidFile(m)
  // The callback takes the error of a channel that closed meanwhile (the 'disconnect' event follows);
  // without one it would be an uncaught ERR_IPC_CHANNEL_CLOSED.
  if (s.parent !== null) process.send?.({ graceful: 'ready', pid: process.pid }, undefined, {}, () => {})
}

export function writePidFile (member: RestartMember, pid = process.pid): void {
  const file = member.restartOptions.pidFile
  if (file === null) return
  try {
    writeAtomically(file, `${pid}\n`)
  } catch (err) {
    member.log.error({ err, pidFile: file }, 'graceful: could not write the pid file')
  }
}

/**
 * Atomic (a reader sees the old content or the new, never an empty or half-written file) and safe beside
 * files of other users: the temp file gets an unguessable name, is created new (O_EXCL) and never through a
 * symlink (O_NOFOLLOW), and is 0644 whatever the umask; rename() replaces a symlink, never what it points to.
 */
function writeAtomically (file: string, text: string): void {
  // Random: nobody can plant a file or a symlink at the name in advance.
  const tmp = `${file}.${randomBytes(PID_TMP_RANDOM_BYTES).toString('hex')}.tmp`
  // O_NOFOLLOW is undefined on Windows; `| undefined` adds nothing.
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644)
  try {
    try {
      fchmodSync(fd, 0o644)
      writeSync(fd, text)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
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

/**
 * The engine calls this when a shutdown of `member` starts (any shutdown: a signal, `app.close()`,
 * `shutdown()`, a restart drain; a repeated call does nothing more). A restart still on its way is off:
 * - in a predecessor whose successor has not said it is ready, the successor is stopped (the restart fails
 *   with this reason: channel closed, SIGTERM, SIGKILL after 5 s) rather than left behind as an orphan;
 * - in a successor its predecessor has not taken over yet, the handover is abandoned: the pid file names the
 *   predecessor again and the predecessor is told, so it keeps serving.
 * Once the handover is made (the predecessor drains), it does nothing.
 */
export function restartShutdown (member: RestartMember, reason = 'shutdown'): void {
  const pending = state.pending
  if (pending !== null && !pending.committed && pending.members.includes(member)) {
    pending.abort(`the shutdown started (${reason}) before the successor was ready`)
  }
  if (state.parent !== null && !state.accepted && state.members.has(member)) {
    abandon(state, `this process started to shut down (${reason}) before its predecessor took it over`, false)
  }
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
  publishRestart('requested')
  const refuse = (reason: string): void => {
    publishRestart('refused', { reason })
    log('warn', { reason }, 'graceful: restart refused')
  }
  if (state.inProgress) {
    publishRestart('refused', { reason: 'a restart is already in progress' })
    return log('warn', { signal }, 'graceful: restart already in progress, signal ignored')
  }
  if (members.some((m) => m.phase !== 'serving')) return refuse('the shutdown has started')
  const refused = refusal()
  if (refused !== null) return refuse(refused)
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
  const { cwd, args } = successorLaunch(state.start, process.argv)
  // spawn() reports its failures through 'error' (ENOENT, EMFILE, …), handled below with the others.
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, ...args], {
    cwd,
    env: {
      ...process.env,
      PWD: cwd,
      [ENV_FDS]: JSON.stringify(sockets.map((s, i) => ({ fd: FIRST_FD + i, address: s.address, port: s.port }))),
      [ENV_PARENT]: String(process.pid)
    },
    stdio: ['inherit', 'inherit', 'inherit', 'ipc', ...sockets.map((s) => s.fd)]
  })
  log('info', { pid: child.pid }, 'graceful: successor started')
  publishRestart('spawned', { successor: child.pid })

  let gaveUp = false
  const outcome = await new Promise<string | null>((resolve) => {
    let settled = false
    const settle = (reason: string | null): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      // At once, not a promise turn later: a shutdown that starts from here on leaves the handover alone.
      pending.committed = reason === null
      resolve(reason)
    }
    const pending: Pending = { child, members, committed: false, abort: settle }
    state.pending = pending
    const timer = setTimeout(() => settle(`the successor was not ready within ${timeout} ms`), timeout)
    child.on('message', (msg: { graceful?: string, reason?: unknown } | null) => {
      if (msg?.graceful === 'ready') settle(null)
      else if (msg?.graceful === 'abandoned') {
        gaveUp = true
        settle(`the successor gave up: ${String(msg.reason)}`)
      }
    })
    child.once('exit', (code, sig) => settle(`the successor exited (${sig ?? `code ${String(code)}`}) before it was ready`))
    child.once('error', (err) => settle(err.message))
  })
  state.pending = null

  if (outcome !== null) {
    const failed = (): void => {
      log('error', { reason: outcome, pid: child.pid }, 'graceful: restart failed')
      publishRestart('failed', { successor: child.pid, reason: outcome })
    }
    // During a shutdown, said at once: the shutdown may end the process before the successor has gone.
    // Otherwise once it has gone: from that line on, a signal may try again.
    const shuttingDown = members.some((m) => m.phase !== 'serving')
    if (shuttingDown) failed()
    // Closing the channel first tells a successor that has loaded graceful to give up even if we exit before
    // it has gone; the signals stop one that has not. One that gave up is shutting down on its own and may be
    // finishing requests (on a socket it listened on before the others): it has `timeout` ms to exit.
    if (child.connected) child.disconnect()
    await stop(child, gaveUp ? timeout : 0)
    state.inProgress = false
    if (!shuttingDown) failed()
    return
  }
  // Until this message arrives, the successor gives up should we go away (a crash, a SIGKILL): it cannot
  // tell that from a shutdown that stopped the handover.
  const accepted = new Promise<void>((resolve) => { child.send({ graceful: 'accepted' }, () => resolve()) })
  log('info', { pid: child.pid }, 'graceful: successor ready')
  publishRestart('ready', { successor: child.pid })
  // Inherent: once we drain, nothing here can bring our listeners back. Said loudly, for the service manager's
  // operator (systemd restarts a service whose main process, named in the pid file, died).
  child.once('exit', (code, sig) => log('error', { pid: child.pid, code, signal: sig }, 'graceful: the successor exited after it took over; nothing serves here any more'))
  // The successor lives on without us. The IPC channel stays open (unref'd) until we exit: its closing
  // tells the successor that we are gone and it may restart in turn.
  child.channel?.unref()
  child.unref()
  publishRestart('draining', { successor: child.pid })
  const reports = await Promise.all(members.map((m) => m.restartDrain()))
  state.inProgress = false
  await accepted
  // Exiting closes the channel anyway; closing it first says the same to the successor a little sooner.
  if (child.connected) child.disconnect()
  process.exit(Math.max(0, ...reports.map((r) => r.exitCode)))
}

/** SIGTERM after `graceMs`, then SIGKILL if it lingers: a failed successor must not be left behind. */
async function stop (child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const term = setTimeout(() => child.kill('SIGTERM'), graceMs)
  const kill = setTimeout(() => child.kill('SIGKILL'), graceMs + KILL_GRACE_MS)
  await exited
  clearTimeout(term)
  clearTimeout(kill)
}

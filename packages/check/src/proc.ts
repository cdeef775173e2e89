// What the check reads about processes it did not start, from Linux's /proc: whether a pid runs, its
// children, the sockets it holds, and which of them listen. Elsewhere only `alive` works (kill(pid, 0)),
// and the port must be given.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

/** Is `pid` running? A zombie (exited, not yet reaped) is not. */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat[stat.lastIndexOf(')') + 2] !== 'Z'
  } catch {
    // No /proc (not Linux), or it has just gone: kill(0) said it was there.
    return process.platform !== 'linux'
  }
}

/** Every process's parent, read from /proc/<pid>/stat. */
function parents (): Map<number, number> {
  const map = new Map<number, number>()
  for (const name of readdirSafe('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // pid (comm) state ppid …; comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      map.set(Number(name), ppid)
    } catch {
      // It exited while we read.
    }
  }
  return map
}

/** The live children of `pid`. */
export function children (pid: number): number[] {
  return [...parents()].filter(([child, parent]) => parent === pid && alive(child)).map(([child]) => child)
}

/** `pid` and every live process below it, parents first. */
export function tree (pid: number): number[] {
  const map = parents()
  const out = [pid]
  for (let i = 0; i < out.length; i++) {
    for (const [child, parent] of map) if (parent === out[i] && alive(child)) out.push(child)
  }
  return out
}

function readdirSafe (path: string): string[] {
  try {
    return readdirSync(path)
  } catch {
    return []
  }
}

/** The inodes of the sockets `pid` holds (its fds that link to socket:[N]). */
export function socketInodes (pid: number): Set<number> {
  const inodes = new Set<number>()
  for (const fd of readdirSafe(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (match !== null) inodes.add(Number(match[1]))
    } catch {
      // Closed while we read.
    }
  }
  return inodes
}

export interface ListeningSocket {
  inode: number
  /** As the kernel has it: 0.0.0.0, 127.0.0.1, ::, ::1, … */
  address: string
  port: number
}

/** The hex address of /proc/net/tcp (little-endian words) as text. */
export function decodeAddress (hex: string): string {
  if (hex.length === 8) return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.')
  const bytes: number[] = []
  for (let word = 0; word < 4; word++) {
    for (const i of [3, 2, 1, 0]) bytes.push(parseInt(hex.slice(word * 8 + i * 2, word * 8 + i * 2 + 2), 16))
  }
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.')
  if (bytes.slice(0, 15).every((b) => b === 0)) return bytes[15] === 0 ? '::' : `::${(bytes[15] as number).toString(16)}`
  // Only loopback and the wildcard matter here; other addresses are shown uncompressed.
  return Array.from({ length: 8 }, (_, i) => ((bytes[i * 2] as number) << 8 | (bytes[i * 2 + 1] as number)).toString(16)).join(':')
}

/** The listening TCP sockets of `pid`'s network namespace (/proc/<pid>/net/tcp and tcp6). */
export function listeningSockets (pid: number): ListeningSocket[] {
  const out: ListeningSocket[] = []
  for (const file of ['tcp', 'tcp6']) {
    let text: string
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      // sl local_address rem_address st … inode (the 10th column); st 0A is LISTEN.
      if (cols.length < 10 || cols[3] !== '0A') continue
      const [addr, port] = (cols[1] as string).split(':') as [string, string]
      out.push({ inode: Number(cols[9]), address: decodeAddress(addr), port: parseInt(port, 16) })
    }
  }
  return out
}

/**
 * The first listening socket (the lowest inode: the first made) that any of `pids` holds and that loopback
 * reaches, with where to connect and how many such sockets there are.
 */
export function firstListening (pids: number[]): { socket: ListeningSocket, host: string, count: number } | null {
  const held = new Set<number>()
  for (const pid of pids) for (const inode of socketInodes(pid)) held.add(inode)
  const mine = listeningSockets(pids[0] as number)
    .filter((s) => held.has(s.inode) && connectHost(s.address) !== null)
    .sort((a, b) => a.inode - b.inode)
  const first = mine[0]
  return first === undefined ? null : { socket: first, host: connectHost(first.address) as string, count: mine.length }
}

/** The processes among `pids` that hold one of `inodes`. */
export function holders (pids: number[], inodes: Set<number>): number[] {
  return pids.filter((pid) => [...socketInodes(pid)].some((inode) => inodes.has(inode)))
}

/** The pid a pid file holds, or null (no file, not a number). */
export function readPidFile (path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim())
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

/** Where a listening address is reached from this machine: loopback, or null when it cannot be. */
export function connectHost (address: string): string | null {
  if (address === '0.0.0.0' || address.startsWith('127.')) return address === '0.0.0.0' ? '127.0.0.1' : address
  if (address === '::' || address === '::1') return '::1'
  return null
}

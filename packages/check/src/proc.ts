// What the check reads about processes it did not start, from Linux's /proc: whether a pid runs, its
// children, the sockets it holds, and which of them listen. Elsewhere only `alive` works (kill(pid, 0)),
// and the port must be given. A read that fails (the process has just gone, no /proc) reads as empty.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

function read (path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

function list (path: string): string[] {
  try {
    return readdirSync(path)
  } catch {
    return []
  }
}

function link (path: string): string {
  try {
    return readlinkSync(path)
  } catch {
    return ''
  }
}

/** A /proc/<pid>/stat line's fields after `pid (comm)`: comm may hold spaces and parentheses. */
const statFields = (pid: number | string): string[] => {
  const stat = read(`/proc/${pid}/stat`)
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** Is `pid` running? A zombie (exited, not yet reaped) is not. */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  return statFields(pid)[0] !== 'Z'
}

/** Every process's parent. */
function parents (): Map<number, number> {
  const map = new Map<number, number>()
  for (const name of list('/proc')) {
    if (/^\d+$/.test(name)) map.set(Number(name), Number(statFields(name)[1]))
  }
  return map
}

/** The live children of `pid`. */
export function children (pid: number): number[] {
  return [...parents()].filter(([child, parent]) => parent === pid && alive(child)).map(([child]) => child)
}

/** The node:cluster workers among `pid`'s children: Node puts NODE_UNIQUE_ID in a worker's environment. */
export function workers (pid: number): number[] {
  return children(pid).filter((child) => read(`/proc/${child}/environ`).split('\0').some((v) => v.startsWith('NODE_UNIQUE_ID=')))
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

/** The inodes of the sockets `pid` holds (its fds that link to socket:[N]). */
export function socketInodes (pid: number): Set<number> {
  const inodes = new Set<number>()
  for (const fd of list(`/proc/${pid}/fd`)) {
    const match = /^socket:\[(\d+)\]$/.exec(link(`/proc/${pid}/fd/${fd}`))
    if (match !== null) inodes.add(Number(match[1]))
  }
  return inodes
}

export interface ListeningSocket {
  inode: number
  /** As the kernel has it: 0.0.0.0, 127.0.0.1, ::, ::1, … */
  address: string
  port: number
}

/** The hex address of /proc/net/tcp (little-endian 32-bit words) as text. */
export function decodeAddress (hex: string): string {
  const bytes: number[] = []
  for (let word = 0; word < hex.length / 8; word++) {
    for (const i of [3, 2, 1, 0]) bytes.push(parseInt(hex.slice(word * 8 + i * 2, word * 8 + i * 2 + 2), 16))
  }
  if (bytes.length === 4) return bytes.join('.')
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.')
  if (bytes.slice(0, 15).every((b) => b === 0)) return bytes[15] === 0 ? '::' : `::${(bytes[15] as number).toString(16)}`
  // Only loopback and the wildcard matter here; other addresses are shown uncompressed.
  return Array.from({ length: 8 }, (_, i) => ((bytes[i * 2] as number) << 8 | (bytes[i * 2 + 1] as number)).toString(16)).join(':')
}

/** The listening TCP sockets of `pid`'s network namespace (/proc/<pid>/net/tcp and tcp6). */
export function listeningSockets (pid: number): ListeningSocket[] {
  const out: ListeningSocket[] = []
  for (const file of ['tcp', 'tcp6']) {
    for (const line of read(`/proc/${pid}/net/${file}`).split('\n')) {
      const cols = line.trim().split(/\s+/)
      // sl local_address rem_address st … inode (the 10th column); st 0A is LISTEN (the header has 'st').
      if (cols[3] !== '0A') continue
      const [addr, port] = (cols[1] as string).split(':') as [string, string]
      out.push({ inode: Number(cols[9]), address: decodeAddress(addr), port: parseInt(port, 16) })
    }
  }
  return out
}

/** Where a listening address is reached from this machine: loopback, or null when it cannot be. */
export function connectHost (address: string): string | null {
  if (address === '0.0.0.0') return '127.0.0.1'
  if (address.startsWith('127.')) return address
  return address === '::' || address === '::1' ? '::1' : null
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
  const pid = Number(read(path).trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null
}

// Real nginx and HAProxy, started from the recipes in examples/nginx and examples/haproxy, as child processes
// of a test or a benchmark: a generated configuration in a temp folder, 127.0.0.1 ports picked free at run
// time, every path (pid, logs, temp files) inside that folder. Used by test/proxies.test.ts and bench/proxy.ts.
//
// A recipe is run as it is written, with only these changes (each must match, or rendering throws, so a
// recipe cannot drift away from what is tested):
// - nginx: the upstream's `server` lines and `listen`; the snippet is included from a minimal main
//   configuration (one worker, paths in the folder);
// - HAProxy: the `server` lines, `bind`, the check interval (`inter`), and the health-check path (for servers
//   without a readiness route);
// - with `retries: false`, the retries of a request that was already sent are left out (nginx's
//   `proxy_next_upstream` line, so its default `error timeout` applies; HAProxy's `retry-on`, so its default
//   `conn-failure` applies): what graceful alone must get right.
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export type ProxyKind = 'nginx' | 'haproxy'
export const PROXY_KINDS: ProxyKind[] = ['nginx', 'haproxy']

const HOST = '127.0.0.1'
const RECIPES: Record<ProxyKind, URL> = {
  nginx: new URL('../../examples/nginx/graceful-app.conf', import.meta.url),
  haproxy: new URL('../../examples/haproxy/haproxy.cfg', import.meta.url)
}

/** The proxy's binary: on PATH, or in the sbin folders Debian installs to (not on a normal user's PATH). */
export function findProxy (kind: ProxyKind): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs) {
    if (dir === '') continue
    const file = join(dir, kind)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {}
  }
  return null
}

/** A port that was free a moment ago (the proxy's bind may still lose it to another process: startProxy retries). */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, HOST)
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface RenderOptions {
  /** The proxy's own port on 127.0.0.1. */
  port: number
  /** The app instances' ports on 127.0.0.1. */
  servers: number[]
  /** Keep the recipe's retries of requests already sent (see the top of this file). */
  retries: boolean
  /** HAProxy: ms between health checks. @default 200 */
  checkIntervalMs?: number
  /** HAProxy: the health-check path, for servers without a readiness route. @default the recipe's (/readyz) */
  checkPath?: string
}

/** Replaces what `pattern` matches, which must match exactly `count` times. */
function replace (text: string, pattern: RegExp, by: string | ((match: string) => string), what: string, count = 1): string {
  const all = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g')
  const found = text.match(all)?.length ?? 0
  if (found !== count) throw new Error(`recipe: expected ${count} ${what}, found ${found}`)
  return typeof by === 'string' ? text.replace(all, by) : text.replace(all, by)
}

/** Puts `lines` where the lines matching `pattern` (consecutive, at least one) were. */
function replaceLines (text: string, pattern: RegExp, lines: string[], what: string): string {
  const all = text.split('\n')
  const first = all.findIndex((l) => pattern.test(l))
  if (first === -1) throw new Error(`recipe: no ${what}`)
  let end = first
  while (end < all.length && pattern.test(all[end] as string)) end++
  if (all.slice(end).some((l) => pattern.test(l))) throw new Error(`recipe: the ${what} are not one block`)
  const indent = /^\s*/.exec(all[first] as string)?.[0] ?? ''
  return [...all.slice(0, first), ...lines.map((l) => indent + l), ...all.slice(end)].join('\n')
}

export function renderNginx (recipe: string, o: RenderOptions): string {
  let text = replaceLines(recipe, /^\s*server\s+\S+:\d+\b[^;]*;/, o.servers.map((p) => `server ${HOST}:${p} max_fails=1 fail_timeout=10s;`), 'upstream server lines')
  text = replace(text, /^(\s*)listen\s+\d+;/m, (m) => m.replace(/listen\s+\d+;/, `listen ${HOST}:${o.port};`), 'listen line')
  if (!o.retries) text = replace(text, /^\s*proxy_next_upstream\s[^;]*;\n/m, '', 'proxy_next_upstream line')
  return text
}

/** The main configuration around the recipe: everything in `dir`, one worker, no access log. */
export function nginxMain (dir: string, snippet: string): string {
  return `# Generated by test/helpers/proxies.ts around examples/nginx/graceful-app.conf.
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path ${join(dir, 'client_body')};
    proxy_temp_path ${join(dir, 'proxy')};
    fastcgi_temp_path ${join(dir, 'fastcgi')};
    uwsgi_temp_path ${join(dir, 'uwsgi')};
    scgi_temp_path ${join(dir, 'scgi')};
    include ${snippet};
}
`
}

export function renderHaproxy (recipe: string, o: RenderOptions): string {
  let text = replaceLines(recipe, /^\s*server\s+\S+\s+\S+:\d+/, o.servers.map((p, i) => `server app${i + 1} ${HOST}:${p}`), 'backend server lines')
  text = replace(text, /^(\s*)bind\s+\S+$/m, (m) => m.replace(/bind\s+\S+/, `bind ${HOST}:${o.port}`), 'bind line')
  text = replace(text, /^(\s*default-server\b.*\binter\s+)\S+/m, `$1${o.checkIntervalMs ?? 200}ms`, 'check interval on the default-server line')
  if (o.checkPath !== undefined) text = replace(text, /(option httpchk GET )\S+/, `$1${o.checkPath}`, 'httpchk line')
  if (!o.retries) text = replace(text, /^\s*retry-on\s.*\n/m, '', 'retry-on line')
  return text
}

export interface ProxyOptions extends Omit<RenderOptions, 'port'> {
  /** A folder of its own (removed by the caller). */
  dir: string
}

export interface Proxy {
  kind: ProxyKind
  port: number
  /** The generated configuration, as run. */
  config: string
  /** nginx: its error log (level warn and up); HAProxy: its log, less the requests that ended normally in a 200. */
  log (): string[]
  /** Stops the proxy and everything it started; resolves once it has exited. */
  stop (): Promise<void>
}

const live = new Set<ChildProcess>()
// A test or benchmark that ends half-way leaves no proxy behind.
process.once('exit', () => {
  for (const child of live) {
    try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
  }
})

/** Starts `kind` from its recipe on a free port; resolves once it accepts connections. */
export async function startProxy (kind: ProxyKind, o: ProxyOptions): Promise<Proxy> {
  const bin = findProxy(kind)
  if (bin === null) throw new Error(`${kind} is not installed`)
  const recipe = readFileSync(RECIPES[kind], 'utf8')
  // The workers of an nginx started by root run as nobody: they must reach the temp folders.
  chmodSync(o.dir, 0o755)
  let lastError: Error | undefined
  // A free port can be taken by another process before the proxy binds it: try again with another.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort()
    const render = { ...o, port }
    let config: string
    let args: string[]
    let logFile: string | undefined
    if (kind === 'nginx') {
      const dir = join(o.dir, `nginx-${attempt}`)
      mkdirSync(dir, { recursive: true, mode: 0o755 })
      const snippet = join(dir, 'graceful-app.conf')
      config = renderNginx(recipe, render)
      writeFileSync(snippet, config)
      const main = join(dir, 'nginx.conf')
      writeFileSync(main, nginxMain(dir, snippet))
      logFile = join(dir, 'error.log')
      args = ['-p', dir, '-c', main, '-e', 'stderr', '-g', 'daemon off;']
    } else {
      config = renderHaproxy(recipe, render)
      const file = join(o.dir, `haproxy-${attempt}.cfg`)
      writeFileSync(file, config)
      args = ['-f', file, '-db']
    }
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    live.add(child)
    let output = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
    const exited = new Promise<void>((resolve) => child.once('exit', () => {
      live.delete(child)
      resolve()
    }))
    let hasExited = false
    void exited.then(() => { hasExited = true })
    const up = await accepting(port, () => hasExited)
    if (!up) {
      try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
      await exited
      lastError = new Error(`${kind} did not start (attempt ${attempt}); output:\n${output}`)
      if (/address already in use/i.test(output) || /cannot bind/i.test(output)) continue
      throw lastError
    }
    const log = (): string[] => {
      const text = logFile === undefined ? output : safeRead(logFile) + output
      // HAProxy's httplog line of a normal request: '… 200 <bytes> - - ---- …' (status, size, cookies,
      // termination state); and of the connection accepting() opened and closed without a request.
      return text.split('\n').filter((l) => l.trim() !== '' && !/ 200 \d+ - - ---- /.test(l) && !/ CR-- .*"<BADREQ>"$/.test(l))
    }
    return {
      kind,
      port,
      config,
      log,
      async stop () {
        if (hasExited) return
        // nginx: fast shutdown (the master stops its workers); HAProxy: hard stop.
        child.kill('SIGTERM')
        const stopped = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])
        if (!stopped) {
          try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
          await exited
        }
      }
    }
  }
  throw lastError ?? new Error(`${kind} did not start`)
}

function safeRead (file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

/** Resolves true once `port` accepts a connection, false if `ended()` first or after 10 s. Polls: a port has no event to wait on. */
async function accepting (port: number, ended: () => boolean): Promise<boolean> {
  const start = performance.now()
  while (!ended() && performance.now() - start < 10_000) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, HOST)
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return true
    await sleep(25)
  }
  return false
}

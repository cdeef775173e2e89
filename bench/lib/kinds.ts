// The servers under test: one file each in ../servers, and what each library offers, so a scenario that
// needs a feature the library does not have is shown as "—" instead of being run.
export type Framework = 'fastify' | 'express'

export interface Kind {
  id: string
  /** Row label in RESULTS.md. */
  label: string
  /** Column label in RESULTS.md. */
  short: string
  /** The npm packages it is made of (for their versions in RESULTS.md). */
  packages: string[]
  framework: Framework
  role: 'bare' | 'ours' | 'alternative'
  /** Does it keep its own record of connections (else its memory per connection is the bare framework's)? */
  tracksConnections: boolean
  /** What its cleanup steps are, for the hooks scenario (the first throws, the second prints a line). */
  hookSteps?: string
  /** Features some scenarios need. */
  has: {
    /** A readiness route that answers 503 during a lame-duck delay before the drain. */
    lameDuck: boolean
    /** Cleanup steps the library runs one after another. */
    hooks: boolean
    /** Per-route control of what is served during the drain. */
    perRoute: boolean
    /** Zero-downtime restart. */
    restart: boolean
  }
}

const none = { lameDuck: false, hooks: false, perRoute: false, restart: false }
const ours = { lameDuck: true, hooks: true, perRoute: true, restart: true }

export const KINDS: Kind[] = [
  { id: 'fastify', label: 'Fastify (bare)', short: 'Fastify', packages: ['fastify'], framework: 'fastify', role: 'bare', tracksConnections: false, has: none },
  { id: 'express', label: 'Express (bare)', short: 'Express', packages: ['express'], framework: 'express', role: 'bare', tracksConnections: false, has: none },
  { id: 'graceful-fastify', label: 'graceful (Fastify)', short: 'graceful Fastify', packages: ['@graceful/fastify'], hookSteps: 'two `afterDrain` hooks', framework: 'fastify', role: 'ours', tracksConnections: true, has: ours },
  { id: 'graceful-express', label: 'graceful (Express)', short: 'graceful Express', packages: ['@graceful/express'], hookSteps: 'two `afterDrain` hooks', framework: 'express', role: 'ours', tracksConnections: true, has: ours },
  {
    id: 'fastify-close-with-grace',
    label: 'Fastify built-ins + close-with-grace',
    short: 'Fastify + close-with-grace',
    packages: ['close-with-grace'],
    hookSteps: 'two `onClose` hooks (its callback calls `app.close()`)',
    framework: 'fastify',
    role: 'alternative',
    // Node tracks the connections for closeIdleConnections.
   
    tracksConnections: false,
    has: { ...none, hooks: true }
  },
  {
    id: 'fastify-graceful-shutdown',
    label: 'fastify-graceful-shutdown',
    short: 'fastify-graceful-shutdown',
    packages: ['fastify-graceful-shutdown'],
    hookSteps: 'a `gracefulShutdown()` handler, then an `onClose` hook (where its README says to release resources)',
    framework: 'fastify',
    role: 'alternative',
   
    tracksConnections: false,
    has: { ...none, hooks: true }
  },
  {
    id: 'terminus',
    label: '@godaddy/terminus (Express)',
    short: 'terminus',
    packages: ['@godaddy/terminus'],
    hookSteps: '`onSignal`, then `onShutdown`',
    framework: 'express',
    role: 'alternative',
   
    tracksConnections: true,
    has: { ...none, lameDuck: true, hooks: true }
  },
  { id: 'http-terminator', label: 'http-terminator (Express)', short: 'http-terminator', packages: ['http-terminator'], framework: 'express', role: 'alternative', tracksConnections: true, has: none },
  {
    id: 'http-graceful-shutdown',
    label: 'http-graceful-shutdown (Express)',
    short: 'http-graceful-shutdown',
    packages: ['http-graceful-shutdown'],
    hookSteps: '`onShutdown`, then `finally`',
    framework: 'express',
    role: 'alternative',
   
    tracksConnections: true,
    has: { ...none, hooks: true }
  },
  { id: 'stoppable', label: 'stoppable (Express)', short: 'stoppable', packages: ['stoppable'], framework: 'express', role: 'alternative', tracksConnections: true, has: none }
]

export function kind (id: string): Kind {
  const k = KINDS.find((x) => x.id === id)
  if (k === undefined) throw new Error(`unknown server kind ${id}`)
  return k
}

/** Everything that handles a shutdown: ours first, then the alternatives. */
export const CONTENDERS = KINDS.filter((k) => k.role !== 'bare')

export const bareOf = (k: Kind): Kind => kind(k.framework)

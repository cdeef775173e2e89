// A database pool closed in an afterDrain hook: the hook runs only once every request has finished, so a
// request that is halfway through its queries when SIGTERM arrives completes before the pool goes away.
// FakePool stands in for pg's Pool (same query()/end() shape) so the example needs no database.
import express from 'express'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import graceful from '@graceful/express'

class FakePool {
  // pg's idle clients hold sockets that keep the process alive until end(); a ref'd timer does the same.
  #keepAlive: NodeJS.Timeout | null = setInterval(() => {}, 60_000)

  async query (sql: string, ms = 10): Promise<{ rows: Array<Record<string, unknown>> }> {
    if (this.#keepAlive === null) throw new Error('Cannot use a pool after calling end on the pool')
    console.log(`pool: query started: ${sql}`)
    await sleep(ms) // the database at work
    console.log(`pool: query finished: ${sql}`)
    return { rows: [{ id: 1, total: 42 }] }
  }

  async end (): Promise<void> {
    if (this.#keepAlive === null) throw new Error('Called end on pool more than once')
    clearInterval(this.#keepAlive)
    this.#keepAlive = null
    console.log('pool: ended')
  }
}

const pool = new FakePool()

const g = graceful({ delay: 0, timeout: 10_000, hookTimeout: 5000 })
// After the drain: no request can use the pool any more. Closing it in a beforeDrain hook, or on the
// signal itself, would fail the requests still in flight.
g.afterDrain(() => pool.end(), { name: 'close db pool' })

const app = express()
app.use(g)

app.get('/orders', async (req, res, next) => {
  try {
    // ?ms= makes the query slow, to have a request in flight at SIGTERM.
    const { rows } = await pool.query('SELECT id, total FROM orders', Number(req.query.ms ?? 10))
    res.json(rows)
  } catch (err) {
    next(err)
  }
})

const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port })
})

import t from 'tap'
import { harnesses } from './helpers/harnesses.js'

for (const h of harnesses) {
  t.test(h.name, async (t) => {
    const app = await h.start({ routes: { '/health': { serveDuringDrain: true } } })
    const res = await fetch(`http://127.0.0.1:${app.port}/`)
    t.equal(res.status, 200)
    t.equal(await res.text(), 'hello')
    const report = await app.graceful.shutdown('test')
    t.equal(report.exitCode, 0)
    t.equal(app.graceful.phase, 'closed')
  })
}

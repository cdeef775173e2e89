// A load generator in a process of its own. The per-request row runs two at once, one per server of a
// pair, so both servers meet the same machine at the same moment.
//
// IPC in: { port, seconds, connections }: autocannon on GET / for that long. Out: { requests, seconds, errors }.
// It exits when its parent disconnects.
import autocannon from 'autocannon'

export interface LoadRequest { port: number, seconds: number, connections: number }
export interface LoadReply { requests: number, seconds: number, errors: number }

process.on('message', (msg: LoadRequest) => {
  autocannon({ url: `http://127.0.0.1:${msg.port}/`, connections: msg.connections, pipelining: 1, duration: msg.seconds }).then((r) => {
    process.send?.({ requests: r.requests.total, seconds: r.duration, errors: r.errors + r.non2xx + r.timeouts } satisfies LoadReply)
  }, (err: unknown) => { throw err })
})
process.on('disconnect', () => { process.exit(0) })

'use strict'
// Test helpers: raw peers over real sockets, a recorder for the framework
// Channel's callbacks, msgpack for the peer's frames.

const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { Packr } = require('msgpackr')

const packr = new Packr({ useRecords: false })
/** msgpack of a value (strings as str, Buffers as bin). */
const pack = (v) => packr.pack(v)

let seq = 0
/** A fresh Unix socket path. */
function sockPath (name) {
  return path.join(os.tmpdir(), `sluice-node-${process.pid}-${name}-${seq++}.sock`)
}

/**
 * A raw peer: a net server whose first accepted socket the test drives by
 * hand. `listen` is 'tcp' or a Unix path. Resolves { server, endpoint,
 * accepted: Promise<Socket> }.
 */
async function rawPeer (where = 'tcp') {
  let resolve
  const accepted = new Promise((r) => { resolve = r })
  const server = net.createServer({ allowHalfOpen: true }, (s) => { resolve(s) })
  if (where === 'tcp') {
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    return { server, host: '127.0.0.1', port: server.address().port, accepted }
  }
  await new Promise((r) => server.listen(where, r))
  return { server, path: where, accepted }
}

const CALLBACKS = ['on_connect', 'on_socket_error', 'on_heartbeat', 'on_invoke', 'on_chunk', 'on_choke', 'on_error', 'on_terminate']

/**
 * Assigns every on_* callback of `ch` to record [name, ...args] in
 * `events`; `waitFor(n)` resolves once n events are in (rejects after 10 s).
 */
function recorder (ch) {
  const events = []
  const waiters = []
  for (const name of CALLBACKS) {
    ch[name] = function (...args) {
      if (this !== ch) throw new Error(`${name} called with the wrong this`)
      events.push([name.slice(3), ...args.map((a) => (Buffer.isBuffer(a) ? a.toString('latin1') : a))])
      for (const w of waiters.slice()) w()
    }
  }
  function waitFor (n, ms = 10000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out with ${events.length} of ${n} events: ${JSON.stringify(events, big)}`)), ms)
      const check = () => {
        if (events.length >= n) {
          clearTimeout(t)
          waiters.splice(waiters.indexOf(check), 1)
          resolve(events)
        }
      }
      waiters.push(check)
      check()
    })
  }
  return { events, waitFor }
}

function big (_k, v) {
  return typeof v === 'bigint' ? `${v}n` : v
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Resolves with the next `event` of an emitter (rejects on 'error' or after 10 s). */
function once (em, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms)
    em.once(event, (...args) => { clearTimeout(t); resolve(args) })
  })
}

module.exports = { pack, sockPath, rawPeer, recorder, sleep, once, CALLBACKS }

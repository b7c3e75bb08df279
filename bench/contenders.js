'use strict'
// The Node contenders of `make bench`: one run of one workload.
//
//   node contenders.js CONTENDER WORKLOAD NET COUNT --peer PATH/TO/sluice-bench
//
// prints one JSON sample per line (two for rtt64: p50 and p99), the form
// `sluice-bench run` prints for the Rust contenders. Contenders:
//
// * sluice-node — the addon of bindings/node: the framework's Channel
//   (`on_chunk`) for receiving, the modern Connection (`sendChunk`,
//   `'chunk'`/`'choke'` events) for sending, echoing and the worker load;
// * pure-js — the channel a pure-JS framework has: a net.Socket whose data
//   goes through msgpackr's unpackMultiple, a handler call per chunk,
//   frames packed by msgpackr and written in 256 KiB batches.
//
// The peers of the streaming workloads and of the worker load are the Rust
// `sluice-bench` program (feed, sink, engine), the same for every language;
// round trips go to an echo of the contender's own kind in a second process.

const path = require('node:path')
const net = require('node:net')
const { spawn } = require('node:child_process')
const { createRequire } = require('node:module')
const readline = require('node:readline')

// sluice and msgpackr as installed by `make node-build`.
const nodeRequire = createRequire(path.join(__dirname, '..', 'bindings', 'node', 'index.js'))
const SESSION = 7
const RTT_WARMUP = 200
// Processes this run started: ended when it ends, also on an error.
const children = []
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill()
})

function now () {
  return Number(process.hrtime.bigint()) / 1e9
}

// A sluice-bench peer (or this script in echo mode): resolves { proc, address, rest }.
function startPeer (cmd, args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(proc)
    const lines = []
    let waiting = null
    let exited = null
    const rl = readline.createInterface({ input: proc.stdout })
    rl.on('line', (l) => {
      if (lines.length === 0) resolve({ proc, address: l.trim(), rest })
      lines.push(l)
    })
    proc.on('exit', (code) => {
      exited = code
      if (lines.length === 0) reject(new Error(`peer ${cmd} ${args.join(' ')} exited with ${code}`))
      if (waiting) waiting()
    })
    // The lines after the address, once the peer has exited.
    function rest () {
      return new Promise((resolve, reject) => {
        const done = () => (exited === 0 ? resolve(lines.slice(1).join('\n')) : reject(new Error(`peer exited with ${exited}`)))
        if (exited !== null) done()
        else waiting = () => setImmediate(done)
      })
    }
  })
}

function endpointOf (netName, address) {
  if (netName === 'tcp') {
    const i = address.lastIndexOf(':')
    return { host: address.slice(0, i), port: Number(address.slice(i + 1)) }
  }
  return { path: address }
}

function sockConnect (netName, address, onConnect) {
  const ep = endpointOf(netName, address)
  const s = net.connect(ep, onConnect)
  if (netName === 'tcp') s.setNoDelay(true)
  return s
}

// -----------------------------------------------------------------------
// sluice

async function sluiceRecv (peer, netName, n, size) {
  const { Channel } = nodeRequire('./index.js')
  const feeder = await startPeer(peer, ['feed', netName, String(size), String(n)])
  const ep = endpointOf(netName, feeder.address)
  const t0 = now()
  const secs = await new Promise((resolve, reject) => {
    const ch = netName === 'tcp' ? new Channel(ep.host, ep.port, { dialect: 'v1' }) : new Channel(ep.path, { dialect: 'v1' })
    ch.owner = { __sid: 1 }
    let count = 0
    ch.on_invoke = () => {}
    ch.on_chunk = (sid, buf) => {
      if (++count === n) {
        const t = now() - t0
        ch.close()
        resolve(t)
      }
    }
    ch.on_socket_error = (e) => reject(new Error(`socket error ${e} after ${count} chunks`))
  })
  await feeder.rest()
  return secs
}

function sluiceConnect (netName, address, options) {
  const { connect } = nodeRequire('./index.js')
  return connect(endpointOf(netName, address), { dialect: 'v1', ...options })
}

async function sluiceSend (peer, netName, n) {
  const sink = await startPeer(peer, ['sink', netName, String(n * 70)])
  const conn = sluiceConnect(netName, sink.address, { role: 'worker', profile: 'modern' })
  await conn.ready
  conn.on('error', () => {})
  const ended = new Promise((resolve) => conn.once('close', () => resolve(now())))
  const payload = Buffer.alloc(64, 0x5a)
  const t0 = now()
  let i = 0
  while (i < n) {
    // Past the high watermark the message still goes; wait for 'drain'.
    const more = conn.sendChunk(SESSION, payload)
    i++
    if (!more) await new Promise((resolve) => conn.once('drain', resolve))
  }
  const end = await ended
  await sink.rest()
  return end - t0
}

function sluiceEcho (netName) {
  const { listen } = nodeRequire('./index.js')
  const ep = netName === 'tcp' ? { host: '127.0.0.1', port: 0 } : { path: `/tmp/sluice-bench-${process.pid}-echo.sock` }
  const server = listen(ep, { dialect: 'v1', role: 'none' })
  server.on('connection', (conn) => {
    // 'frame' gives the msgpack of the args: put the frame back together.
    conn.on('frame', (sid, type, args) => {
      conn.send(Buffer.concat([Buffer.from([0x93, sid, type]), args]))
    })
    conn.on('close', () => server.close())
    conn.on('error', () => {})
  })
  console.log(netName === 'tcp' ? `127.0.0.1:${server.port}` : ep.path)
}

async function sluiceRtt (netName, n) {
  const echo = await startPeer(process.execPath, [__filename, '--echo', 'sluice-node', netName])
  const conn = sluiceConnect(netName, echo.address, { role: 'none', profile: 'modern' })
  await conn.ready
  const payload = Buffer.alloc(64, 0x5a)
  const out = []
  let back = null
  conn.on('frame', () => back())
  for (let i = 0; i < n + RTT_WARMUP; i++) {
    const t = process.hrtime.bigint()
    await new Promise((resolve) => {
      back = resolve
      conn.sendChunk(SESSION, payload)
    })
    if (i >= RTT_WARMUP) out.push(Number(process.hrtime.bigint() - t) / 1e3)
  }
  await conn.close()
  await echo.rest()
  return out
}

async function sluiceMixed (peer, netName, waves) {
  const engine = await startPeer(peer, ['engine', netName, String(waves)])
  const conn = sluiceConnect(netName, engine.address, { role: 'worker', profile: 'modern', highWaterMark: 1 << 30 })
  conn.on('chunk', (sid, data) => conn.sendChunk(sid, data))
  conn.on('choke', (sid) => conn.sendChoke(sid))
  conn.on('error', () => {})
  await new Promise((resolve) => conn.once('close', resolve))
  return Number((await engine.rest()).trim())
}

// -----------------------------------------------------------------------
// The pure-JS channel

// A minimal v1 worker channel as a pure-JS framework writes it.
class PureChannel {
  constructor (sock, handlers) {
    const { Packr, Unpackr } = nodeRequire('msgpackr')
    this.sock = sock
    this.unpackr = new Unpackr({ useRecords: false })
    this.packr = new Packr({ useRecords: false })
    this.sessions = new Set()
    this.h = handlers
    this.out = []
    this.outBytes = 0
    this.pending = null
    const route = (m) => {
      const sid = m[0]
      const ty = m[1]
      if (this.sessions.has(sid)) {
        if (ty === 0) this.h.chunk(sid, m[2][0])
        else if (ty === 2) {
          this.sessions.delete(sid)
          this.h.choke(sid)
        }
      } else if (ty === 0) {
        this.sessions.add(sid)
        this.h.invoke(sid, m[2][0])
      }
    }
    sock.on('data', (data) => {
      const buf = this.pending === null ? data : Buffer.concat([this.pending, data])
      this.pending = null
      try {
        this.unpackr.unpackMultiple(buf, route)
      } catch (e) {
        if (!e.incomplete) throw e
        this.pending = buf.subarray(e.lastPosition)
      }
      if (this.h.afterData) this.h.afterData()
    })
  }

  // Queues a frame; returns false when the socket wants a 'drain'.
  write (sid, ty, args) {
    const b = this.packr.pack([sid, ty, args])
    this.out.push(b)
    this.outBytes += b.length
    return this.outBytes >= 256 << 10 ? this.flush() : true
  }

  flush () {
    if (this.outBytes === 0) return true
    const b = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes)
    this.out = []
    this.outBytes = 0
    return this.sock.write(b)
  }
}

const noop = () => {}

async function pureRecv (peer, netName, n, size) {
  const feeder = await startPeer(peer, ['feed', netName, String(size), String(n)])
  const t0 = now()
  const secs = await new Promise((resolve, reject) => {
    let count = 0
    const sock = sockConnect(netName, feeder.address)
    sock.on('error', reject)
    // eslint-disable-next-line no-new
    new PureChannel(sock, {
      invoke: noop,
      choke: noop,
      chunk: (sid, buf) => {
        if (++count === n) {
          const t = now() - t0
          sock.destroy()
          resolve(t)
        }
      }
    })
  })
  await feeder.rest()
  return secs
}

async function pureSend (peer, netName, n) {
  const sink = await startPeer(peer, ['sink', netName, String(n * 70)])
  const sock = sockConnect(netName, sink.address)
  await new Promise((resolve) => sock.once('connect', resolve))
  const ended = new Promise((resolve) => sock.once('end', () => resolve(now())))
  sock.on('error', () => {})
  const ch = new PureChannel(sock, { invoke: noop, chunk: noop, choke: noop })
  const payload = Buffer.alloc(64, 0x5a)
  const t0 = now()
  for (let i = 0; i < n; i++) {
    if (!ch.write(SESSION, 0, [payload])) await new Promise((resolve) => sock.once('drain', resolve))
  }
  ch.flush()
  const end = await ended
  sock.destroy()
  await sink.rest()
  return end - t0
}

function pureEcho (netName) {
  const { Packr, Unpackr } = nodeRequire('msgpackr')
  const packr = new Packr({ useRecords: false })
  const unpackr = new Unpackr({ useRecords: false })
  const p = `/tmp/sluice-bench-${process.pid}-echo.sock`
  const server = net.createServer((sock) => {
    if (netName === 'tcp') sock.setNoDelay(true)
    let pending = null
    sock.on('data', (data) => {
      const buf = pending === null ? data : Buffer.concat([pending, data])
      pending = null
      const out = []
      try {
        unpackr.unpackMultiple(buf, (m) => { out.push(packr.pack(m)) })
      } catch (e) {
        if (!e.incomplete) throw e
        pending = buf.subarray(e.lastPosition)
      }
      if (out.length) sock.write(out.length === 1 ? out[0] : Buffer.concat(out))
    })
    sock.on('close', () => server.close())
    sock.on('error', () => {})
  })
  if (netName === 'tcp') server.listen(0, '127.0.0.1', () => console.log(`127.0.0.1:${server.address().port}`))
  else server.listen(p, () => console.log(p))
}

async function pureRtt (netName, n) {
  const { Packr, Unpackr } = nodeRequire('msgpackr')
  const packr = new Packr({ useRecords: false })
  const unpackr = new Unpackr({ useRecords: false })
  const echo = await startPeer(process.execPath, [__filename, '--echo', 'pure-js', netName])
  const sock = sockConnect(netName, echo.address)
  await new Promise((resolve) => sock.once('connect', resolve))
  const payload = Buffer.alloc(64, 0x5a)
  let back = null
  let pending = null
  sock.on('data', (data) => {
    const buf = pending === null ? data : Buffer.concat([pending, data])
    pending = null
    let got = false
    try {
      unpackr.unpackMultiple(buf, () => { got = true })
    } catch (e) {
      if (!e.incomplete) throw e
      pending = buf.subarray(e.lastPosition)
    }
    if (got) back()
  })
  const out = []
  for (let i = 0; i < n + RTT_WARMUP; i++) {
    const t = process.hrtime.bigint()
    await new Promise((resolve) => {
      back = resolve
      sock.write(packr.pack([SESSION, 0, [payload]]))
    })
    if (i >= RTT_WARMUP) out.push(Number(process.hrtime.bigint() - t) / 1e3)
  }
  sock.end()
  await echo.rest()
  return out
}

async function pureMixed (peer, netName, waves) {
  const engine = await startPeer(peer, ['engine', netName, String(waves)])
  const sock = sockConnect(netName, engine.address)
  sock.on('error', () => {})
  const closed = new Promise((resolve) => sock.once('close', resolve))
  let ch = null
  ch = new PureChannel(sock, {
    invoke: noop,
    chunk: (sid, data) => ch.write(sid, 0, [data]),
    choke: (sid) => ch.write(sid, 2, []),
    afterData: () => ch.flush()
  })
  await closed
  return Number((await engine.rest()).trim())
}

// -----------------------------------------------------------------------

async function measure (contender, workload, netName, n, peer) {
  const sample = (metric, value, count, seconds) => ({ contender, workload, net: netName, metric, value, count, seconds })
  const sluice = contender === 'sluice-node'
  if (workload === 'recv64' || workload === 'recv64k') {
    const size = workload === 'recv64' ? 64 : 65536
    const secs = await (sluice ? sluiceRecv : pureRecv)(peer, netName, n, size)
    return size === 64 ? [sample('msgs_per_s', n / secs, n, secs)] : [sample('gb_per_s', (n * size) / secs / 1e9, n, secs)]
  }
  if (workload === 'send64') {
    const secs = await (sluice ? sluiceSend : pureSend)(peer, netName, n)
    return [sample('msgs_per_s', n / secs, n, secs)]
  }
  if (workload === 'rtt64') {
    const lat = (await (sluice ? sluiceRtt : pureRtt)(netName, n)).sort((a, b) => a - b)
    const total = lat.reduce((a, b) => a + b, 0) / 1e6
    const pct = (p) => lat[Math.floor((lat.length - 1) * p)]
    return [sample('p50_us', pct(0.5), n, total), sample('p99_us', pct(0.99), n, total)]
  }
  if (workload === 'mixed') {
    const secs = await (sluice ? sluiceMixed : pureMixed)(peer, netName, n)
    return [sample('sessions_per_s', (n * 1000) / secs, n * 1000, secs)]
  }
  throw new Error(`unknown workload ${workload}`)
}

async function main () {
  const argv = process.argv.slice(2)
  if (argv[0] === '--echo') {
    return argv[1] === 'sluice-node' ? sluiceEcho(argv[2]) : pureEcho(argv[2])
  }
  const i = argv.indexOf('--peer')
  if (i < 0 || argv.length < 6) {
    console.error('usage: node contenders.js sluice-node|pure-js WORKLOAD tcp|unix COUNT --peer PATH')
    process.exit(2)
  }
  const peer = argv[i + 1]
  const [contender, workload, netName, count] = argv.filter((_, k) => k !== i && k !== i + 1)
  for (const s of await measure(contender, workload, netName, Number(count), peer)) console.log(JSON.stringify(s))
  process.exit(0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

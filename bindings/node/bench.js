'use strict'
// Throughput of chunks reaching an `on_chunk` JavaScript callback over TCP
// loopback: sluice's framework Channel against the pure-JS baseline a JS
// channel would be (a net.Socket feeding msgpackr), on the same bytes from
// the same sender (a child process writing a v1 engine stream: one invoke,
// then chunk frames `[2, 0, [payload]]`).
//
//   node bench.js [--runs 5] [--small 2000000] [--large 16384]
//
// Prints the median of the runs for 64-byte chunks (messages/s) and 64 KiB
// chunks (GB/s), with the ratios.

const { fork } = require('node:child_process')
const net = require('node:net')
const { Packr, Unpackr } = require('msgpackr')

function arg (name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}

// ---------------------------------------------------------------------
// The sender: serves `count` chunks of `size` bytes to each connection.

function stream (size, count, packr) {
  const frame = packr.pack([2, 0, [Buffer.alloc(size, 0x61)]])
  const perBlock = Math.max(1, Math.floor((1 << 20) / frame.length))
  const block = Buffer.concat(Array(perBlock).fill(frame))
  return { head: packr.pack([2, 0, ['bench']]), frame, block, perBlock, count }
}

function sender () {
  const packr = new Packr({ useRecords: false })
  let job = null
  const server = net.createServer((sock) => {
    sock.setNoDelay(true)
    const s = job
    let left = s.count
    sock.write(s.head)
    const pump = () => {
      while (left > 0) {
        let ok
        if (left >= s.perBlock) {
          ok = sock.write(s.block)
          left -= s.perBlock
        } else {
          ok = sock.write(Buffer.concat(Array(left).fill(s.frame)))
          left = 0
        }
        if (!ok) return sock.once('drain', pump)
      }
      sock.end()
    }
    pump()
    sock.on('error', () => {})
  })
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
  process.on('message', (m) => {
    if (m.size) {
      job = stream(m.size, m.count, packr)
      process.send({ ready: true })
    } else {
      process.exit(0)
    }
  })
}

// ---------------------------------------------------------------------
// The receivers. Each resolves { seconds, messages, bytes } once `count`
// chunks have reached on_chunk.

function viaSluice (port, count) {
  const { Channel } = require('.')
  return new Promise((resolve, reject) => {
    const ch = new Channel('127.0.0.1', port, { dialect: 'v1' })
    ch.owner = { __sid: 1 }
    let n = 0
    let bytes = 0
    let t0 = 0
    ch.on_connect = () => { t0 = process.hrtime.bigint() }
    ch.on_invoke = () => {}
    ch.on_chunk = (sid, buf) => {
      bytes += buf.length
      if (++n === count) {
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9
        ch.close()
        resolve({ seconds, messages: n, bytes })
      }
    }
    ch.on_socket_error = (e) => reject(new Error(`socket error ${e} after ${n} chunks`))
  })
}

function viaBaseline (port, count) {
  const unpackr = new Unpackr({ useRecords: false })
  return new Promise((resolve, reject) => {
    let n = 0
    let bytes = 0
    let t0 = 0
    let maxSid = 1
    let pending = null
    // What a JS channel does with each decoded frame: route it to a callback.
    const onChunk = (sid, buf) => {
      bytes += buf.length
      if (++n === count) {
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9
        sock.destroy()
        resolve({ seconds, messages: n, bytes })
      }
    }
    const route = (m) => {
      const sid = m[0]
      if (sid > maxSid) {
        maxSid = sid
      } else if (m[1] === 0) {
        onChunk(sid, m[2][0])
      }
    }
    const sock = net.connect(port, '127.0.0.1', () => { t0 = process.hrtime.bigint() })
    sock.on('data', (data) => {
      const buf = pending === null ? data : Buffer.concat([pending, data])
      pending = null
      try {
        unpackr.unpackMultiple(buf, route)
      } catch (e) {
        if (!e.incomplete) return reject(e)
        pending = buf.subarray(e.lastPosition)
      }
    })
    sock.on('error', reject)
  })
}

// ---------------------------------------------------------------------

function median (xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function main () {
  const runs = arg('runs', 5)
  const small = arg('small', 2000000)
  const large = arg('large', 16384)
  const child = fork(__filename, ['--sender'], { stdio: 'inherit' })
  const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)))
  const setJob = (size, count) => new Promise((resolve) => {
    child.once('message', resolve)
    child.send({ size, count })
  })

  const results = {}
  for (const [label, size, count] of [['64 B', 64, small], ['64 KiB', 65536, large]]) {
    await setJob(size, count)
    for (const [name, recv] of [['sluice', viaSluice], ['baseline', viaBaseline]]) {
      // One warm-up run, then the measured ones, alternating is not needed:
      // both read the same bytes from the same sender.
      await recv(port, Math.min(count, 100000))
      const rates = []
      for (let r = 0; r < runs; r++) {
        const { seconds, messages, bytes } = await recv(port, count)
        rates.push(size === 64 ? messages / seconds : bytes / seconds / 1e9)
      }
      results[`${name} ${label}`] = rates
      process.stderr.write(`${name} ${label}: ${rates.map((x) => x.toFixed(size === 64 ? 0 : 3)).join(' ')}\n`)
    }
  }
  child.send({ quit: true })

  const fmtRate = (x) => `${(x / 1e6).toFixed(2)} M msg/s`
  const fmtGB = (x) => `${x.toFixed(2)} GB/s`
  const rows = [
    ['64-byte chunks', median(results['sluice 64 B']), median(results['baseline 64 B']), fmtRate, 2.5],
    ['64 KiB chunks', median(results['sluice 64 KiB']), median(results['baseline 64 KiB']), fmtGB, null]
  ]
  console.log(`\nChunks reaching on_chunk over TCP loopback (node ${process.version}, median of ${runs} runs)`)
  console.log('| stream | sluice Channel | net.Socket + msgpackr | ratio | target |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const [name, s, b, fmt, target] of rows) {
    const ratio = s / b
    const goal = target ? `≥ ${target}× baseline: ${ratio >= target ? 'met' : 'NOT met'}` : `≥ 2 GB/s: ${s >= 2 ? 'met' : 'NOT met'}`
    console.log(`| ${name} | ${fmt(s)} | ${fmt(b)} | ${ratio.toFixed(2)}× | ${goal} |`)
  }
}

if (process.argv.includes('--sender')) {
  sender()
} else {
  main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}

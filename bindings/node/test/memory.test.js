'use strict'
// No growth in memory over 1,000,000 messages (and over 1 GiB of large
// chunks): a child process with --expose-gc receives them through the
// framework Channel and reports its memory at checkpoints.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const net = require('node:net')
const { spawn } = require('node:child_process')
const { pack } = require('./helpers')

const PKG = JSON.stringify(path.join(__dirname, '..'))

async function sender (size, count) {
  const frame = pack([2, 0, [Buffer.alloc(size, 0x61)]])
  const per = Math.max(1, Math.floor((256 << 10) / frame.length))
  const block = Buffer.concat(Array(per).fill(frame))
  const server = net.createServer((sock) => {
    let left = count
    sock.write(pack([2, 0, ['mem']]))
    const pump = () => {
      while (left > 0) {
        const n = Math.min(per, left)
        left -= n
        if (!sock.write(n === per ? block : block.subarray(0, n * frame.length))) return sock.once('drain', pump)
      }
      sock.end()
    }
    pump()
    sock.on('error', () => {})
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

async function measure (size, count) {
  const server = await sender(size, count)
  const p = spawn(process.execPath, ['--expose-gc', '-e', `
    const { Channel } = require(${PKG})
    const ch = new Channel('127.0.0.1', ${server.address().port}, { dialect: 'v1', maxPending: 4 << 20 })
    ch.owner = { __sid: 1 }
    let n = 0
    const marks = []
    const kept = []
    ch.on_chunk = (sid, buf) => {
      if (buf.length !== ${size}) throw new Error('bad length ' + buf.length)
      if (n % 1000 === 0) kept[(n / 1000) % 16] = buf // hold a few, as an app might
      if (++n % ${count / 10} === 0) {
        global.gc()
        const m = process.memoryUsage()
        marks.push({ n, rss: m.rss, external: m.external + m.arrayBuffers, heap: m.heapUsed })
      }
    }
    ch.on_socket_error = (e) => { console.log(JSON.stringify({ e, n, marks })) }
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  p.stdout.on('data', (d) => { out += d })
  const status = await new Promise((resolve) => p.on('exit', resolve))
  server.close()
  assert.equal(status, 0)
  return JSON.parse(out)
}

const MB = 1 << 20

test('1,000,000 small messages: memory flat after warm-up', async () => {
  const r = await measure(64, 1000000)
  assert.equal(r.e, 108)
  assert.equal(r.n, 1000000)
  const rss = r.marks.map((m) => m.rss)
  const heap = r.marks.map((m) => m.heap)
  console.log('rss MiB by tenth: ' + rss.map((x) => (x / MB).toFixed(0)).join(' ') + '; heap MiB: ' + heap.map((x) => (x / MB).toFixed(1)).join(' '))
  const earlier = Math.max(...rss.slice(1, 5))
  const later = Math.max(...rss.slice(5))
  assert.ok(later - earlier < 24 * MB, `rss grew ${((later - earlier) / MB).toFixed(1)} MiB`)
  assert.ok(Math.max(...heap.slice(5)) - Math.max(...heap.slice(1, 5)) < 4 * MB, 'heap grew')
})

test('20,000 chunks of 64 KiB (external buffers): memory flat after warm-up', async () => {
  const r = await measure(65536, 20000)
  assert.equal(r.n, 20000)
  // 1.3 GB go through; what stays resident levels off (the allocator's
  // caches make it wobble: payloads are allocated on I/O threads and freed
  // by the garbage collector on this one, and the per-thread arenas fill up
  // before they are reused): the later half of the run holds no more than
  // the earlier half did, plus slack, and never more than 320 MiB.
  const rss = r.marks.map((m) => m.rss)
  console.log('rss MiB by tenth: ' + rss.map((x) => (x / MB).toFixed(0)).join(' '))
  const earlier = Math.max(...rss.slice(1, 5))
  const later = Math.max(...rss.slice(5))
  assert.ok(later - earlier < 96 * MB, `rss grew ${((later - earlier) / MB).toFixed(1)} MiB`)
  assert.ok(later < 320 * MB, 'rss stays bounded')
})

#!/usr/bin/env node
// Soak through the Node binding (the modern API): churns connections,
// sessions and reconnects through a sluice server and sluice workers in
// this process, sampling RSS and open descriptors once a second at the end
// of a cycle (after a forced GC when node runs with --expose-gc). Fails if,
// after the warm-up, RSS drifts by more than the bound or descriptors by
// more than 4. (V8 grows its heap in steps during the first half minute
// of churn, then stays: hence the larger bound than the native programs.)
//
//   node [--expose-gc] tests/soak/soak.js SECONDS [RSS_BOUND_KIB]
//
// Each cycle: 16 workers connect and handshake; the engine invokes 4
// sessions on each (3 chunks and a choke each), the worker echoes and
// chokes back, the engine closes. Every fourth cycle the engine destroys
// the connection at the handshake and the worker reconnects once.
'use strict'

const fs = require('fs')
const path = require('path')
const sluice = require(path.join(__dirname, '..', '..', 'bindings', 'node'))

const WORKERS = 16
const SESSIONS = 4
const CHUNKS = 3

const rssKib = () => Math.round(process.memoryUsage.rss() / 1024)
const openFds = () => fs.readdirSync('/proc/self/fd').length

async function main () {
  const seconds = Number(process.argv[2] || 60)
  const bound = Number(process.argv[3] || 32768)
  const warmup = Math.min(Math.max(seconds / 5, 5), seconds / 2)
  const totals = { connections: 0, sessions: 0, reconnects: 0 }
  let reset = false
  const server = sluice.listen('127.0.0.1:0')
  const chunk = Buffer.alloc(1024, 7)
  server.on('connection', (conn) => {
    let chokes = 0
    conn.on('error', () => {})
    conn.on('handshake', (uuid) => {
      if (reset && !uuid.endsWith('+')) {
        conn.destroy()
        return
      }
      for (let i = 0; i < SESSIONS; i++) {
        const s = conn.nextSession()
        conn.sendInvoke(s, 'echo')
        for (let j = 0; j < CHUNKS; j++) conn.sendChunk(s, chunk)
        conn.sendChoke(s)
      }
    })
    conn.on('choke', () => {
      totals.sessions++
      if (++chokes === SESSIONS) conn.close()
    })
  })
  const endpoint = server.endpoint

  // One worker: resolves when its last connection has closed.
  const worker = (again) => new Promise((resolve) => {
    const c = sluice.connect(endpoint)
    let invoked = false
    c.on('error', () => {})
    c.on('connect', () => {
      totals.connections++
      c.sendHandshake(again ? 'soak+' : 'soak')
    })
    c.on('invoke', () => { invoked = true })
    c.on('chunk', (sid, data) => c.sendChunk(sid, data))
    c.on('choke', (sid) => c.sendChoke(sid))
    c.on('close', () => {
      if (!invoked && !again) {
        totals.reconnects++
        worker(true).then(resolve)
      } else {
        resolve()
      }
    })
  })

  const samples = []
  const start = Date.now()
  let next = start
  let cycles = 0
  console.log(`soak node: ${seconds} s, warm-up ${warmup} s`)
  while (Date.now() - start < seconds * 1000) {
    reset = cycles % 4 === 3
    const ws = []
    for (let i = 0; i < WORKERS; i++) ws.push(worker(false))
    await Promise.all(ws)
    cycles++
    if (Date.now() >= next) {
      if (global.gc) global.gc()
      const t = (Date.now() - start) / 1000
      const s = [t, rssKib(), openFds()]
      samples.push(s)
      console.log(`soak-sample lang=node t=${t.toFixed(1)} rss_kib=${s[1]} fds=${s[2]} ` +
        `heap_used_kib=${Math.round(process.memoryUsage().heapUsed / 1024)} cycles=${cycles} ` +
        `connections=${totals.connections} sessions=${totals.sessions} reconnects=${totals.reconnects}`)
      next += 1000
    }
  }
  server.close()
  const after = samples.filter((s) => s[0] >= warmup)
  if (after.length < 2) throw new Error('too few samples after the warm-up: run longer')
  const k = Math.max(Math.floor(after.length / 4), 1)
  const first = after.slice(0, k)
  const last = after.slice(-k)
  const mean = (v) => Math.round(v.reduce((a, s) => a + s[1], 0) / v.length)
  const least = (v) => Math.min(...v.map((s) => s[2]))
  const r0 = mean(first)
  const r1 = mean(last)
  const f0 = least(first)
  const f1 = least(last)
  const ok = r1 - r0 < bound && Math.abs(f1 - f0) <= 4
  console.log(`soak-summary lang=node seconds=${seconds} cycles=${cycles} connections=${totals.connections} ` +
    `sessions=${totals.sessions} reconnects=${totals.reconnects} rss_start_kib=${r0} rss_end_kib=${r1} ` +
    `rss_drift_kib=${r1 - r0} rss_bound_kib=${bound} fds_start=${f0} fds_end=${f1} fd_drift=${f1 - f0} ` +
    `result=${ok ? 'ok' : 'failed'}`)
  process.exit(ok ? 0 : 1)
}

main().catch((e) => { console.error(e); process.exit(1) })

'use strict'
// The drop-in scenario: an app written for the Cocaine Node.js framework
// (test/fixtures/framework.js drives the channel exactly as the framework's
// worker does) runs as the runtime starts it, with sluice's Channel in
// place of the framework's, against a sluice engine: handshake on connect,
// heartbeats both ways, sessions with chunks, choke and errors, terminate
// from the engine and the worker's answer, the engine closing, and the
// worker process exiting by itself.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const sluice = require('..')
const { sockPath, once } = require('./helpers')

const BIG = Buffer.alloc(100 << 10, 0x42)

function runWorker (endpoint, uuid, protocol) {
  const argv = [path.join(__dirname, 'fixtures', 'worker.js'), '--app', 'echo', '--endpoint', endpoint, '--uuid', uuid]
  if (protocol) argv.push('--protocol', protocol)
  const child = spawn(process.execPath, argv, { env: { ...process.env, SLUICE_PACKAGE: path.join(__dirname, '..') }, stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = []
  let buf = ''
  child.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)))
      buf = buf.slice(i + 1)
    }
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return { child, lines, exited }
}

async function scenario (dialect) {
  const v1 = dialect === 'v1'
  const endpoint = sockPath(`dropin-${dialect}`)
  const server = sluice.listen(endpoint, { dialect, role: 'engine' })
  const uuid = '6d0b4c1e-3f5a-4b7c-9d2e-1f0a8b7c6d5e'
  const seen = []
  const log = (...e) => seen.push(e)
  let heartbeats = 0
  // Listeners go on in the 'connection' event itself: the handshake and
  // the first heartbeat can come in the same batch as the connection.
  const connected = new Promise((resolve) => server.once('connection', (conn) => {
    conn.on('heartbeat', () => {
      heartbeats++
      conn.sendHeartbeat() // the engine answers each heartbeat
    })
    conn.on('chunk', (sid, data) => log('chunk', sid, data.length === 13 ? data.toString() : data.length))
    conn.on('choke', (sid) => log('choke', sid))
    conn.on('sessionError', (sid, e) => log('error', sid, e.category, e.code, e.message))
    conn.on('terminate', (code, reason) => log('terminate', code, reason))
    resolve({ conn, handshake: once(conn, 'handshake'), heartbeat: once(conn, 'heartbeat') })
  }))
  const worker = runWorker(endpoint, uuid, v1 ? '1' : null)
  const { conn, handshake, heartbeat } = await connected

  const [hs] = await handshake
  assert.equal(hs, uuid)
  await heartbeat

  // An echo session with a large chunk in the middle.
  const a = conn.nextSession()
  conn.sendInvoke(a, 'echo')
  conn.sendChunk(a, 'hello ')
  conn.sendChunk(a, BIG)
  conn.sendChunk(a, 'world')
  conn.sendChoke(a)
  // A session the app fails, one nobody listens for, one left open.
  const b = a + 1
  conn.sendInvoke(b, 'fail')
  conn.sendChoke(b)
  const c = b + 1
  conn.sendInvoke(c, 'nobody')
  const d = c + 1
  conn.sendInvoke(d, 'hang')

  const expect = [
    ['chunk', a, BIG.length + 11],
    ['chunk', a, 4],
    ['choke', a],
    ['error', b, v1 ? 42 : undefined, 200, 'the app failed'],
    ...(v1 ? [] : [['choke', b]]),
    ['error', c, v1 ? 42 : undefined, 410, 'no event handler for event "nobody"'],
    ...(v1 ? [] : [['choke', c]])
  ]
  for (let t = 0; seen.length < expect.length && t < 200; t++) await new Promise((r) => setTimeout(r, 25))
  assert.deepEqual(seen, expect)

  // Heartbeats keep coming on the worker's timer (50 ms here).
  await new Promise((r) => setTimeout(r, 300))
  assert.ok(heartbeats >= 3, `heartbeats: ${heartbeats}`)

  // The engine stops the app: terminate, the worker answers, the engine closes.
  const term = once(conn, 'terminate')
  conn.sendTerminate(1, 'the engine is shutting down')
  const [code, reason] = await term
  assert.deepEqual([code, reason], [1, 'worker shut down'])
  await conn.close()

  const { code: exitCode } = await worker.exited
  assert.equal(exitCode, 0)
  const lines = worker.lines
  assert.deepEqual(lines[0], ['connect'])
  assert.deepEqual(lines.find((l) => l[0] === 'echo'), ['echo', BIG.length + 11])
  // The framework's terminate handlers get (sid, code, reason) from the v0
  // channel and (code, reason) from the v1 one (docs/PROTOCOL.md §8.2).
  assert.deepEqual(lines.find((l) => l[0] === 'terminate'), ['terminate', v1 ? [1, 'the engine is shutting down'] : [0, 1, 'the engine is shutting down']])
  assert.deepEqual(lines.find((l) => l[0] === 'session error'), ['session error', 108, 'ESHUTDOWN'])
  // The engine closed the socket: on_socket_error(ESHUTDOWN) reaches the FSM.
  assert.deepEqual(lines[lines.length - 1], ['error', 'ESHUTDOWN', true])
  server.close()
}

test('v1 (master) worker against a sluice engine', () => scenario('v1'))
test('v0 (v0.4) worker against a sluice engine', () => scenario('v0'))

test('a worker whose engine is not there gets the errno as the framework would', async () => {
  const worker = runWorker(sockPath('absent'), 'u', '1')
  const { code } = await worker.exited
  assert.equal(code, 0)
  assert.deepEqual(worker.lines, [['error', 'ENOENT', false]])
})

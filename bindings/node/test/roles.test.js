'use strict'
// The protocol roles over real Unix sockets: a Worker driven against a
// sluice Engine (both from JavaScript) in both dialects, disown against a
// silent engine, a Session reconnecting after its server restarts, a
// resumable Session losing nothing through cuts, and the demo worker
// (examples/worker.js) started as a child process by an Engine.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { EventEmitter } = require('node:events')
const {
  startWorker, listenEngine, openSession, listenResume, listen,
  Worker, Engine, EngineWorker, Session, ResumeServer, ResumePeer
} = require('..')
const { unpack } = require('msgpackr')
const { pack, sockPath, rawPeer, once } = require('./helpers')

/** Resolves once `pred()` holds, checked after every event of `em` named in `names`. */
function until (em, names, pred, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { done(); reject(new Error(`condition not met within ${ms} ms`)) }, ms)
    const check = () => { if (pred()) { clearTimeout(t); done(); resolve() } }
    const done = () => { for (const n of names) em.off(n, check) }
    for (const n of names) em.on(n, check)
    check()
  })
}

const SESSIONS = 25
const CHUNKS = 4

for (const dialect of ['v1', 'v0']) {
  test(`${dialect}: worker against an engine: handshake, ${SESSIONS} sessions with chunks both ways, an error, terminate from the engine`, async () => {
    const sock = sockPath(`engine-${dialect}`)
    const engine = listenEngine(sock, { dialect, heartbeatTimeout: 5000, uuids: ['u-1'] })
    assert.ok(engine instanceof Engine && engine instanceof EventEmitter)
    assert.equal(engine.endpoint, sock)
    const worker = startWorker({ uuid: 'u-1', endpoint: sock, app: 'echo', dialect, heartbeatInterval: 50 })
    assert.ok(worker instanceof Worker && worker instanceof EventEmitter)
    assert.equal(worker.dialect, dialect)
    assert.equal(worker.uuid, 'u-1')
    const wlog = []
    worker.on('connect', () => wlog.push('connect'))
    worker.on('invoke', (sid, event) => {
      wlog.push(`invoke ${event}`)
      if (event === 'fail') worker.fail(sid, 7, 'no such event')
    })
    worker.on('chunk', (sid, data) => worker.write(sid, Buffer.concat([Buffer.from('echo:'), data])))
    worker.on('choke', (sid) => { try { worker.end(sid) } catch (e) { assert.equal(e.code, 'ERR_NO_SESSION') } })
    worker.on('terminate', (code, reason) => {
      wlog.push(`terminate ${code} ${reason}`)
      worker.terminate(1, 'done')
    })
    let heartbeats = 0
    worker.on('heartbeat', () => heartbeats++)
    const wclosed = once(worker, 'close')

    const [w] = await once(engine, 'handshake')
    assert.ok(w instanceof EngineWorker)
    assert.equal(w.uuid, 'u-1')
    assert.deepEqual(engine.workers(), [w])
    const replies = new Map()
    const ended = new Set()
    engine.on('chunk', (who, sid, data) => {
      assert.equal(who, w)
      replies.get(sid).push(data.toString())
    })
    engine.on('choke', (who, sid) => { assert.equal(who, w); ended.add(sid) })
    const errors = []
    engine.on('sessionError', (who, sid, e) => errors.push([sid, e]))
    const sids = []
    for (let i = 0; i < SESSIONS; i++) {
      const sid = w.invoke('echo')
      sids.push(sid)
      replies.set(sid, [])
      for (let c = 0; c < CHUNKS; c++) w.write(sid, `s${i}c${c}`)
      w.end(sid)
    }
    assert.equal(new Set(sids).size, SESSIONS)
    const failing = w.invoke('fail')
    await until(engine, ['choke', 'sessionError'], () => ended.size === SESSIONS && errors.length === 1)
    sids.forEach((sid, i) => {
      assert.deepEqual(replies.get(sid), Array.from({ length: CHUNKS }, (_, c) => `echo:s${i}c${c}`))
    })
    assert.deepEqual(errors, [[failing, { category: dialect === 'v1' ? 42 : undefined, code: 7, message: 'no such event' }]])
    // Ended both ways: forgotten.
    assert.throws(() => w.write(sids[0], 'late'), { code: 'ERR_NO_SESSION' })
    assert.throws(() => w.end(12345), { code: 'ERR_NO_SESSION' })
    assert.ok(heartbeats >= 1, 'the engine answers heartbeats')

    const term = once(engine, 'terminate')
    const gone = once(engine, 'gone')
    w.terminate(1, 'shutdown')
    const [tw, code, reason] = await term
    assert.deepEqual([tw, code, reason], [w, 1, 'done'])
    const [gw, err] = await gone
    assert.equal(gw, w)
    assert.equal(err.code, 'ESHUTDOWN')
    await wclosed
    assert.deepEqual(wlog, ['connect', ...Array(SESSIONS).fill('invoke echo'), 'invoke fail', 'terminate 1 shutdown'])
    assert.deepEqual(engine.workers(), [])
    const eclosed = once(engine, 'close')
    await engine.close()
    await eclosed
  })

  test(`${dialect}: the worker terminates first; the engine rejects a wrong uuid`, async () => {
    const sock = sockPath(`wterm-${dialect}`)
    const engine = listenEngine(sock, { dialect, uuids: ['good'] })
    const rejected = once(engine, 'rejected')
    const bad = startWorker({ uuid: 'bad', endpoint: sock, dialect })
    const badEnd = once(bad, 'disconnected')
    const [uuid] = await rejected
    assert.equal(uuid, 'bad')
    const [err] = await badEnd
    assert.ok(err instanceof Error && typeof err.code === 'string')
    const worker = startWorker({ uuid: 'good', endpoint: sock, dialect })
    const [w] = await once(engine, 'handshake')
    const term = once(engine, 'terminate')
    const gone = once(engine, 'gone')
    await worker.terminate(2, 'quitting')
    const [, code, reason] = await term
    assert.deepEqual([code, reason], [2, 'quitting'])
    const [gw, gerr] = await gone
    assert.equal(gw, w)
    assert.equal(gerr.code, 'ESHUTDOWN')
    assert.throws(() => worker.write(1, 'x'), { code: 'ERR_NO_SESSION' })
    await engine.close()
  })

  test(`${dialect}: a silent engine: the worker disowns itself (ETIMEDOUT)`, async () => {
    const peer = await rawPeer(sockPath(`silent-${dialect}`))
    const worker = startWorker({ uuid: 'u-2', endpoint: peer.path, dialect, heartbeatInterval: 50, disownTimeout: 300 })
    const seen = []
    for (const n of ['connect', 'disown', 'disconnected', 'close']) worker.on(n, (...a) => seen.push([n, ...a]))
    const sock = await peer.accepted
    let bytes = 0
    sock.on('data', (d) => { bytes += d.length })
    const started = Date.now()
    await once(worker, 'close')
    const took = Date.now() - started
    assert.deepEqual(seen.map((e) => e[0]), ['connect', 'disown', 'disconnected', 'close'])
    assert.equal(seen[2][1].code, 'ETIMEDOUT')
    assert.deepEqual(seen[2][2], [])
    assert.ok(bytes > 0, 'handshake and heartbeats reached the engine')
    console.log(`# disowned after ${took} ms (disownTimeout 300)`)
    sock.destroy()
    peer.server.close()
  })

  test(`${dialect}: the demo worker (examples/worker.js) under an engine: echo, then terminate and exit 0`, async () => {
    const sock = sockPath(`demo-${dialect}`)
    const engine = listenEngine(sock, { dialect })
    const args = ['--app', 'echo', '--endpoint', sock, '--uuid', 'demo-1']
    if (dialect === 'v1') args.push('--protocol', '1')
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'worker.js'), ...args], { stdio: ['ignore', 'inherit', 'inherit'] })
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve([code, signal])))
    const [w] = await once(engine, 'handshake')
    assert.equal(w.uuid, 'demo-1')
    const got = new Map()
    const ended = new Set()
    engine.on('chunk', (_, sid, d) => got.set(sid, (got.get(sid) || '') + d.toString()))
    engine.on('choke', (_, sid) => ended.add(sid))
    const big = 'x'.repeat(100000)
    const sids = []
    for (let i = 0; i < 10; i++) {
      const sid = w.invoke('ping')
      sids.push(sid)
      w.write(sid, `hello ${i};`)
      w.write(sid, big)
      w.end(sid)
    }
    await until(engine, ['choke'], () => ended.size === sids.length)
    sids.forEach((sid, i) => assert.equal(got.get(sid), `hello ${i};${big}`))
    const term = once(engine, 'terminate')
    w.terminate(1, 'stop')
    const [, code] = await term
    assert.equal(code, 1)
    assert.deepEqual(await exited, [0, null])
    await engine.close()
  })
}

// Connections accepted by the modern Servers of these tests, to cut them.
const liveConnections = new Set()
{
  const { Server } = require('..')
  const orig = Server.prototype.emit
  Server.prototype.emit = function (name, ...a) {
    if (name === 'connection') {
      const c = a[0]
      liveConnections.add(c)
      c.on('close', () => liveConnections.delete(c))
    }
    return orig.call(this, name, ...a)
  }
}

test('a session reconnects after its server restarts (backoff, reconnectAttempt)', async () => {
  const sock = sockPath('restart')
  // The session is the engine side (it opens sessions), the server the
  // worker side.
  let srv = listen(sock, { role: 'worker' })
  const chunks = []
  const accept = (conn) => conn.on('chunk', (sid, d) => chunks.push(d.toString()))
  srv.on('connection', accept)
  const session = openSession(sock, { role: 'engine', backoff: { initial: 20, max: 100, jitter: 0 } })
  assert.ok(session instanceof Session && session instanceof EventEmitter)
  const log = []
  session.on('connect', (ep, resumed) => log.push(['connect', ep, resumed]))
  session.on('disconnected', (err) => log.push(['disconnected', err.code]))
  session.on('reconnectAttempt', (attempt, ep, delay) => log.push(['attempt', attempt, delay]))
  await once(session, 'connect')
  assert.equal(session.connected, true)
  const s1 = session.nextSession()
  assert.ok(s1 >= 2, 'v1 channel 1 is the control channel')
  session.sendInvoke(s1, 'ev')
  session.sendChunk(s1, 'first')
  // Restart: stop listening, drop the connection, listen again a bit later.
  while (chunks.length < 1) await new Promise((r) => setTimeout(r, 10))
  srv.close()
  const disc = once(session, 'disconnected')
  for (const c of liveConnections) c.destroy()
  await disc
  assert.equal(session.connected, false)
  assert.throws(() => session.sendChunk(s1, 'lost'), { code: 'ERR_CHANNEL_CLOSED' })
  await new Promise((r) => setTimeout(r, 150))
  srv = listen(sock, { role: 'worker' })
  srv.on('connection', accept)
  await once(session, 'connect')
  const s2 = session.nextSession()
  assert.ok(s2 > s1)
  session.sendInvoke(s2, 'ev')
  session.sendChunk(s2, 'second')
  while (chunks.length < 2) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(chunks, ['first', 'second'])
  assert.deepEqual(log[0], ['connect', sock, false])
  assert.deepEqual(log[1], ['disconnected', 'ESHUTDOWN'])
  assert.ok(log.filter((e) => e[0] === 'attempt').length >= 2, JSON.stringify(log))
  assert.deepEqual(log[2].slice(0, 2), ['attempt', 1])
  assert.deepEqual(log.at(-1), ['connect', sock, false])
  const closed = once(session, 'close')
  await session.stop()
  await closed
  srv.close()
  for (const c of liveConnections) c.destroy()
})

test('a resumable session loses nothing through cuts (ResumeServer)', async () => {
  const sock = sockPath('resume')
  const server = listenResume(sock, { role: 'none', resume: { ackEvery: 16 } })
  assert.ok(server instanceof ResumeServer)
  const N = 3000
  const atServer = []
  const atClient = []
  const peerLog = []
  server.on('peerConnected', (p, resumed) => peerLog.push(['connected', resumed]))
  server.on('peerDisconnected', (p, err) => peerLog.push(['disconnected', err.code]))
  // Role 'none' on both sides: every frame is a generic 'frame' (args: the
  // msgpack of the arguments array), whatever the session ids.
  server.on('frame', (p, sid, type, args) => {
    assert.ok(p instanceof ResumePeer)
    assert.equal(type, 0)
    atServer.push(unpack(args)[0])
    // The server answers every frame on the same session.
    p.sendFrame(sid, 0, args)
  })
  const session = openSession(sock, { role: 'none', resume: true, backoff: { initial: 10, max: 50 } })
  const connects = []
  session.on('connect', (ep, resumed) => connects.push(resumed))
  session.on('frame', (sid, type, args) => atClient.push(unpack(args)[0]))
  await once(session, 'connect')
  const [peer] = server.peers()
  assert.ok(peer instanceof ResumePeer)
  assert.equal(peer.token.length, 16)
  let cuts = 0
  const sid = session.nextSession()
  for (let i = 0; i < N; i++) {
    session.sendFrame(sid, 0, pack([i]))
    if (i % 1000 === 500) {
      // Cut from either side, mid-stream; sends go on meanwhile.
      if (cuts++ % 2 === 0) session.disconnect()
      else peer.disconnect()
    }
    if (i % 100 === 0) await new Promise((r) => setImmediate(r))
  }
  await until(session, ['frame', 'connect'], () => atClient.length >= N, 20000)
  assert.deepEqual(atServer, Array.from({ length: N }, (_, i) => i))
  assert.deepEqual(atClient, Array.from({ length: N }, (_, i) => i))
  assert.ok(cuts >= 2)
  assert.equal(connects[0], false)
  assert.ok(connects.length >= 2 && connects.slice(1).every((r) => r === true), JSON.stringify(connects))
  assert.equal(peerLog[0][0], 'connected')
  assert.ok(peerLog.some((e) => e[0] === 'connected' && e[1] === true), JSON.stringify(peerLog))
  assert.equal(session.received, N)
  await session.stop()
  await server.close()
})

test('a role that is closed lets the process exit by itself', async () => {
  const script = `
    const { listenEngine, startWorker, openSession, listenResume } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const sock = ${JSON.stringify(sockPath('exit'))}
    const engine = listenEngine(sock)
    const resume = listenResume(sock + '.r')
    const session = openSession(sock + '.r', { resume: true })
    const worker = startWorker({ uuid: 'x', endpoint: sock })
    engine.on('handshake', async () => {
      await worker.close(); await session.stop(); await resume.close(); await engine.close()
      console.log('closed')
    })
  `
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  const [code] = await new Promise((resolve) => child.on('exit', (...a) => resolve(a)))
  assert.equal(code, 0)
  assert.equal(out.trim(), 'closed')
})

test('bad arguments and busy endpoints throw Errors with a code', async () => {
  assert.throws(() => startWorker({ argv: ['--app', 'x'] }), { code: 'ERR_INVALID_ARG_VALUE', message: /--uuid is missing/ })
  assert.throws(() => startWorker({ argv: ['--uuid', 'u', '--endpoint', '/tmp/x.sock', '--protocol', '7'] }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => startWorker({ uuid: 'u', endpoint: '/tmp/x.sock', heartbeatInterval: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => openSession([]), { code: 'ERR_INVALID_ARG_VALUE' })
  const engine = listenEngine('127.0.0.1:0')
  assert.match(engine.endpoint, /^127\.0\.0\.1:\d+$/)
  assert.throws(() => listenEngine(engine.endpoint), { code: 'EADDRINUSE' })
  assert.throws(() => listenResume(engine.endpoint), { code: 'EADDRINUSE' })
  await engine.close()
  // A worker whose engine is not there: 'disconnected' with the errno, then 'close'.
  const worker = startWorker({ uuid: 'u', endpoint: sockPath('absent') })
  const seen = []
  worker.on('disconnected', (err, sessions) => seen.push(['disconnected', err.code, sessions]))
  await once(worker, 'close')
  assert.deepEqual(seen, [['disconnected', 'ENOENT', []]])
})

'use strict'
// The modern API: connect()/listen() with both roles and dialects, every
// event, promises for connect and close.

const test = require('node:test')
const assert = require('node:assert/strict')
const { EventEmitter } = require('node:events')
const { connect, listen, Connection, Server, version } = require('..')
const { pack, sockPath, rawPeer, sleep, once } = require('./helpers')

function record (conn, names) {
  const seen = []
  for (const n of names) conn.on(n, (...a) => seen.push([n, ...a.map((x) => (Buffer.isBuffer(x) ? x.toString() : x))]))
  return seen
}

const NAMES = ['connect', 'handshake', 'heartbeat', 'invoke', 'chunk', 'choke', 'sessionError', 'terminate', 'frame', 'end']

for (const dialect of ['v1', 'v0']) {
  for (const where of ['tcp', 'unix']) {
    test(`${dialect} over ${where}: worker and engine, every message both ways`, async () => {
      const srv = listen(where === 'tcp' ? '127.0.0.1:0' : sockPath(`modern-${dialect}`), { dialect })
      assert.ok(srv instanceof EventEmitter && srv instanceof Server)
      assert.equal(srv.dialect, dialect)
      const worker = connect(srv.endpoint, { dialect })
      assert.ok(worker instanceof EventEmitter && worker instanceof Connection)
      assert.equal(worker.role, 'worker')
      const ws = record(worker, NAMES)
      let es
      const [engine] = await once(srv.on('connection', (conn) => { es = record(conn, NAMES) }), 'connection')
      assert.equal(engine.role, 'engine')
      await worker.ready
      await engine.ready
      const c = dialect === 'v0' ? 0 : 1
      assert.equal(worker.sendHandshake('uuid-1'), true)
      worker.sendHeartbeat()
      await sleep(50)
      engine.sendHeartbeat()
      const s = engine.nextSession()
      engine.sendInvoke(s, 'http')
      engine.sendChunk(s, 'body')
      engine.sendChunk(s, Buffer.alloc(50000, 0x41))
      engine.sendChoke(s)
      await sleep(100)
      worker.sendChunk(s, 'answer')
      worker.sendChoke(s)
      const s2 = engine.nextSession()
      assert.ok(s2 > s)
      engine.sendInvoke(s2, 'fail')
      await sleep(50)
      worker.sendError(s2, 200, 'no handler')
      await sleep(50)
      engine.sendTerminate(1, 'bye')
      await sleep(100)
      const closed = once(engine, 'close')
      await worker.close()
      await closed
      const big = 'A'.repeat(50000)
      assert.deepEqual(ws, [
        ['connect'], ['heartbeat'], ['invoke', s, 'http'], ['chunk', s, 'body'], ['chunk', s, big], ['choke', s],
        ['invoke', s2, 'fail'], ['terminate', 1, 'bye']
      ])
      const cat = dialect === 'v1' ? 42 : undefined
      assert.deepEqual(es, [
        ['connect'], ['handshake', 'uuid-1'], ['heartbeat'], ['chunk', s, 'answer'], ['choke', s],
        ['sessionError', s2, { category: cat, code: 200, message: 'no handler' }],
        ...(dialect === 'v0' ? [['choke', s2]] : []),
        ['end']
      ])
      assert.equal(c, dialect === 'v0' ? 0 : 1)
      srv.close()
      await once(srv, 'close')
    })
  }
}

test("role 'none': every frame as 'frame' with its raw args", async () => {
  const peer = await rawPeer('tcp')
  const conn = connect(`127.0.0.1:${peer.port}`, { role: 'none' })
  const seen = record(conn, ['frame'])
  const sock = await peer.accepted
  sock.write(Buffer.concat([pack([1, 0, [['127.0.0.1', 10053], 1, { 0: 'read' }]]), pack([5, 1, [[10, 1], 'service is not available']])]))
  await sleep(100)
  assert.equal(seen.length, 2)
  assert.deepEqual(seen[0].slice(0, 3), ['frame', 1, 0])
  assert.deepEqual(seen[1].slice(0, 3), ['frame', 5, 1])
  await conn.close()
  peer.server.close()
})

test('session ids above 2^53 arrive as BigInt and can be answered', async () => {
  const peer = await rawPeer('tcp')
  const conn = connect({ host: '127.0.0.1', port: peer.port })
  const sock = await peer.accepted
  const huge = 2n ** 63n + 5n
  const frame = Buffer.concat([Buffer.from([0x93, 0xcf]), Buffer.from(huge.toString(16), 'hex'), Buffer.from('0091a3626967', 'hex')])
  sock.write(frame)
  const [sid, event] = await once(conn, 'invoke')
  assert.equal(sid, huge)
  assert.equal(event, 'big')
  conn.sendChoke(sid)
  const [data] = await once(sock, 'data')
  assert.equal(data.toString('hex'), '93cf' + huge.toString(16) + '0290')
  await conn.close()
  peer.server.close()
})

test('close before connect rejects ready with ECONNABORTED; destroy drops the queue', async () => {
  const peer = await rawPeer('tcp')
  const conn = connect({ host: '127.0.0.1', port: peer.port })
  const ready = conn.ready
  const done = conn.close()
  await assert.rejects(ready, { code: 'ECONNABORTED' })
  await done
  assert.throws(() => conn.sendHeartbeat(), { code: 'ERR_CHANNEL_CLOSED' })

  const c2 = connect({ host: '127.0.0.1', port: peer.port })
  await c2.ready
  const closed = once(c2, 'close')
  c2.destroy()
  await closed
  peer.server.close()
  assert.match(version(), /^\d+\.\d+\.\d+/)
})

test('an exception in a listener does not lose the rest of the batch', async () => {
  const peer = await rawPeer('tcp')
  const conn = connect({ host: '127.0.0.1', port: peer.port })
  const sock = await peer.accepted
  await conn.ready
  const seen = []
  conn.on('heartbeat', () => {
    seen.push('hb')
    if (seen.length === 1) throw new Error('boom')
  })
  const errors = []
  const handler = (e) => errors.push(e.message)
  process.prependListener('uncaughtException', handler)
  // node:test reports uncaught exceptions as failures: swallow ours.
  const saved = process.listeners('uncaughtException').filter((l) => l !== handler)
  for (const l of saved) process.removeListener('uncaughtException', l)
  sock.write(Buffer.from('930100909301009093010090', 'hex'))
  await sleep(100)
  for (const l of saved) process.on('uncaughtException', l)
  process.removeListener('uncaughtException', handler)
  assert.deepEqual(seen, ['hb', 'hb', 'hb'])
  assert.deepEqual(errors, ['boom'])
  await conn.close()
  peer.server.close()
})

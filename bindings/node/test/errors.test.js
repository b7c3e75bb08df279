'use strict'
// Failures and flow control: each connection failure gives its one errno
// (docs/PROTOCOL.md §8.3) to the framework Channel and an Error with `code` to
// a Connection; sends report backpressure with false + 'drain'.

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { Channel, connect, listen } = require('..')
const { pack, sockPath, rawPeer, recorder, sleep, once } = require('./helpers')

async function refusedPort () {
  const s = net.createServer()
  await new Promise((r) => s.listen(0, '127.0.0.1', r))
  const port = s.address().port
  await new Promise((r) => s.close(r))
  return port
}

test('refused: on_socket_error(111), ECONNREFUSED from connect', async () => {
  const port = await refusedPort()
  const ch = new Channel('127.0.0.1', port)
  const { events, waitFor } = recorder(ch)
  await waitFor(1)
  await sleep(50)
  assert.deepEqual(events, [['socket_error', 111]])

  const conn = connect({ host: '127.0.0.1', port })
  const closed = once(conn, 'close')
  await assert.rejects(conn.ready, { code: 'ECONNREFUSED', errno: 111 })
  const [err] = await closed
  assert.equal(err.code, 'ECONNREFUSED')
})

test('missing Unix path: on_socket_error(2)', async () => {
  const ch = new Channel(sockPath('missing'))
  const { events, waitFor } = recorder(ch)
  await waitFor(1)
  assert.deepEqual(events, [['socket_error', 2]])
})

test('unresolvable host: a Connection rejects with ENOTFOUND (6)', async () => {
  const conn = connect({ host: 'no-such-host.invalid', port: 1 })
  await assert.rejects(conn.ready, { code: 'ENOTFOUND', errno: 6 })
})

test('unresolvable host: on_socket_error(9) as the framework mapped it', async () => {
  const ch = new Channel('no-such-host.invalid', 1)
  const { events, waitFor } = recorder(ch)
  await waitFor(1)
  assert.deepEqual(events, [['socket_error', 9]])
})

test('EOF: complete frames first, then ESHUTDOWN (108) once; a Connection ends', async () => {
  const peer = await rawPeer('tcp')
  const ch = new Channel(peer.host, peer.port, { dialect: 'v1' })
  const { events, waitFor } = recorder(ch)
  const sock = await peer.accepted
  // A heartbeat, then three bytes of an unfinished frame.
  sock.end(Buffer.from('93010090930200', 'hex'))
  await waitFor(3)
  await sleep(100)
  assert.deepEqual(events, [['connect'], ['heartbeat'], ['socket_error', 108]])
  peer.server.close()

  const srv = listen('127.0.0.1:0', { role: 'worker' })
  const conn = connect(srv.endpoint, { role: 'engine' })
  const [accepted] = await once(srv, 'connection')
  await conn.ready
  const order = []
  conn.on('end', () => order.push('end'))
  conn.on('close', (e) => order.push(`close ${e}`))
  await accepted.close()
  await sleep(100)
  assert.deepEqual(order, ['end', 'close undefined'])
  srv.close()
})

test('bad framing: frames before it, then EBADMSG (74), socket closed', async () => {
  for (const bad of ['c1', '0102', '93ff0090', '92010090']) {
    const peer = await rawPeer('tcp')
    const ch = new Channel(peer.host, peer.port, { dialect: 'v0' })
    const { events, waitFor } = recorder(ch)
    const sock = await peer.accepted
    const closed = new Promise((resolve) => sock.on('end', resolve))
    sock.write(Buffer.from('93010090' + bad + 'ffffffff', 'hex'))
    await waitFor(3)
    await sleep(50)
    assert.deepEqual(events, [['connect'], ['heartbeat'], ['socket_error', 74]], `bad bytes ${bad}`)
    await closed
    peer.server.close()
  }
  const peer = await rawPeer('tcp')
  const conn = connect({ host: peer.host, port: peer.port })
  const sock = await peer.accepted
  await conn.ready
  const errored = once(conn, 'error')
  sock.write(Buffer.from('c1', 'hex'))
  const [err] = await errored
  assert.equal(err.code, 'EBADMSG')
  assert.equal(err.errno, 74)
  assert.ok(err instanceof Error)
  peer.server.close()
})

test('a frame past maxFrameSize: EMSGSIZE (90)', async () => {
  const peer = await rawPeer('tcp')
  const ch = new Channel(peer.host, peer.port, { dialect: 'v1', maxFrameSize: 1 << 20 })
  const { events, waitFor } = recorder(ch)
  const sock = await peer.accepted
  sock.write(Buffer.from('93020091c600200000', 'hex'))
  await waitFor(2)
  assert.deepEqual(events, [['connect'], ['socket_error', 90]])
  peer.server.close()
})

test('reset by the peer: ECONNRESET (104)', async () => {
  const peer = await rawPeer('tcp')
  const ch = new Channel(peer.host, peer.port)
  const { events, waitFor } = recorder(ch)
  const sock = await peer.accepted
  await waitFor(1)
  sock.resetAndDestroy()
  await waitFor(2)
  assert.deepEqual(events, [['connect'], ['socket_error', 104]])
  peer.server.close()
})

test('backpressure: sends return false past the high watermark, drain follows, nothing is lost', async () => {
  const peer = await rawPeer('tcp')
  const conn = connect({ host: peer.host, port: peer.port }, { highWaterMark: 256 << 10, lowWaterMark: 64 << 10 })
  const sock = await peer.accepted
  sock.pause() // the peer stops reading
  await conn.ready
  const chunk = Buffer.alloc(64 << 10, 7)
  let sent = 0
  let refused = 0
  // Fill the queue, and the kernel's socket buffers behind it: send until a
  // send returns false, wait for 'drain', again, until no drain comes.
  for (;;) {
    while (conn.sendChunk(2, chunk)) sent++
    sent++
    refused++
    const drained = await Promise.race([once(conn, 'drain').then(() => true), sleep(300).then(() => false)])
    if (!drained) break
    assert.ok(sent < 2000, 'the queue never filled')
  }
  assert.ok(refused > 0, 'the queue filled')
  // No drain came: the queue is still above the low watermark (the writer
  // may have moved part of it below the high one into the kernel since).
  assert.ok(conn.queued > 64 << 10, `queued ${conn.queued}`)
  // Memory stays bounded while refusing: the overflow holds what was given.
  assert.equal(conn.sendChunk(2, chunk), false)
  sent++
  const drain = once(conn, 'drain')
  let got = 0
  sock.on('data', (d) => { got += d.length })
  sock.resume()
  await drain
  assert.ok(conn.sendChunk(2, chunk), 'sends go straight through again')
  sent++
  const ended = new Promise((resolve) => sock.on('end', resolve))
  await conn.close()
  await ended
  assert.equal(got, sent * (chunk.length + 9), 'every chunk was written, in full, before the close')

  // The framework Channel never refuses: send() keeps taking data.
  const ch = new Channel(peer.host, peer.port, { highWaterMark: 1 << 16 })
  const s2 = await new Promise((resolve) => peer.server.once('connection', resolve))
  s2.pause()
  let falses = 0
  for (let i = 0; i < 200; i++) if (!ch.send(pack([4, 1, [chunk]]))) falses++
  assert.ok(falses > 0)
  let got2 = 0
  s2.on('data', (d) => { got2 += d.length })
  s2.resume()
  const end2 = new Promise((resolve) => s2.on('end', resolve))
  ch.close()
  await end2
  assert.equal(got2, 200 * pack([4, 1, [chunk]]).length)
  peer.server.close()
})

test('closed channels refuse sends with ERR_CHANNEL_CLOSED; connect() reconnects after an end', async () => {
  const peer = await rawPeer('tcp')
  const ch = new Channel(peer.host, peer.port)
  const { events, waitFor } = recorder(ch)
  let sock = await peer.accepted
  await waitFor(1)
  assert.throws(() => ch.connect(), { code: 'EISCONN' })
  sock.end()
  await waitFor(2)
  assert.throws(() => ch.send(Buffer.from([0x90])), { code: 'ERR_CHANNEL_CLOSED' })
  const again = new Promise((resolve) => peer.server.once('connection', resolve))
  ch.connect()
  sock = await again
  await waitFor(3)
  assert.deepEqual(events, [['connect'], ['socket_error', 108], ['connect']])
  ch.send(Buffer.from('93010090', 'hex'))
  const [data] = await once(sock, 'data')
  assert.equal(data.toString('hex'), '93010090')
  ch.close()
  peer.server.close()
})

test('listen on a busy port throws EADDRINUSE with errno', async () => {
  const srv = listen('127.0.0.1:0')
  assert.throws(() => listen(`127.0.0.1:${srv.port}`), { code: 'EADDRINUSE', errno: 98 })
  srv.close()
  assert.throws(() => connect('nonsense'), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => connect('127.0.0.1:1', { role: 'boss' }), { code: 'ERR_INVALID_ARG_VALUE' })
})

test('a slow consumer pauses reading (maxPending): everything arrives, in order, memory bounded', async () => {
  const peer = await rawPeer('tcp')
  const ch = new Channel(peer.host, peer.port, { dialect: 'v0', maxPending: 256 << 10 })
  const sock = await peer.accepted
  const N = 2000
  const frames = []
  for (let i = 0; i < N; i++) frames.push(pack([4, 1, [Buffer.alloc(16 << 10, i & 0xff)]]))
  let n = 0
  let bad = 0
  let maxRss = 0
  const done = new Promise((resolve) => {
    ch.on_chunk = (sid, buf) => {
      if (buf.length !== 16 << 10 || buf[0] !== (n & 0xff) || buf[buf.length - 1] !== (n & 0xff)) bad++
      n++
      const until = process.hrtime.bigint() + 100000n // 0.1 ms of work per chunk
      while (process.hrtime.bigint() < until);
      if (n % 200 === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss)
      if (n === N) resolve()
    }
  })
  sock.end(Buffer.concat(frames))
  await done
  assert.equal(bad, 0)
  assert.ok(maxRss < 512 << 20, `rss ${maxRss}`)
  ch.close()
  peer.server.close()
})

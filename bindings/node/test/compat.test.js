'use strict'
// The framework Channel over real sockets: every message type of both
// dialects, written by a raw peer, reaches its callback in wire order with
// the parameter lists of docs/PROTOCOL.md §8.2.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Channel, communicator } = require('..')
const { pack, sockPath, rawPeer, recorder, sleep } = require('./helpers')

const BIG = Buffer.alloc(100 << 10, 0x5a) // past the zero-copy threshold
const HUGE_SID = 2n ** 60n + 3n

function v1Stream () {
  return Buffer.concat([
    Buffer.from('93010090', 'hex'), // heartbeat (engine reply)
    Buffer.from('930200 91 a4 68747470'.replace(/ /g, ''), 'hex'), // invoke(2, 'http'), the literal vector bytes
    pack([2, 0, [Buffer.from('ping')]]), // write
    pack([2, 0, [BIG]]), // a large write
    pack([1, 7, []]), // unknown control type: ignored
    pack([3, 0, ['fail']]),
    pack([3, 1, [[42, 200], 'no handler']]), // error with message
    pack([4, 0, ['quiet']]),
    pack([4, 1, [[1, 5]]]), // error without message
    pack([2, 2, []]), // close
    pack([9, 0, ['late'], [[false, 'x', 'y']]]), // invoke with headers
    Buffer.concat([Buffer.from([0x93, 0xcf]), Buffer.from(HUGE_SID.toString(16).padStart(16, '0'), 'hex'), Buffer.from('00 91 a3 626967'.replace(/ /g, ''), 'hex')]),
    pack([1, 1, [12, 'slave is idle']]) // terminate
  ])
}

const V1_EXPECTED = [
  ['connect'],
  ['heartbeat'],
  ['invoke', 2, 'http'],
  ['chunk', 2, 'ping'],
  ['chunk', 2, BIG.toString('latin1')],
  ['invoke', 3, 'fail'],
  ['error', 3, 42, 200, 'no handler'],
  ['invoke', 4, 'quiet'],
  ['error', 4, 1, 5, undefined],
  ['choke', 2],
  ['invoke', 9, 'late'],
  ['invoke', HUGE_SID, 'big'],
  ['terminate', 12, 'slave is idle'],
  ['socket_error', 108]
]

function v0Stream () {
  return Buffer.concat([
    Buffer.from('93010090', 'hex'), // heartbeat
    Buffer.from('930301 91 a4 68747470'.replace(/ /g, ''), 'hex'), // invoke(1, 'http')
    Buffer.from('930401 91 a4 70696e67'.replace(/ /g, ''), 'hex'), // chunk(1, 'ping')
    pack([4, 1, [BIG]]),
    pack([9, 1, []]), // unknown type: dropped
    pack([3, 2, ['fail']]),
    pack([5, 2, [410, 'no event handler for event "fail"']]),
    pack([6, 2, []]),
    pack([6, 1, []]),
    pack([2, 0, [1, 'the engine is shutting down']])
  ])
}

const V0_EXPECTED = [
  ['connect'],
  ['heartbeat'],
  ['invoke', 1, 'http'],
  ['chunk', 1, 'ping'],
  ['chunk', 1, BIG.toString('latin1')],
  ['invoke', 2, 'fail'],
  ['error', 2, 410, 'no event handler for event "fail"'],
  ['choke', 2],
  ['choke', 1],
  ['terminate', 0, 1, 'the engine is shutting down'],
  ['socket_error', 108]
]

async function run (dialect, where, split) {
  const peer = await rawPeer(where)
  const ch = peer.path ? new Channel(peer.path, { dialect }) : new Channel(peer.host, peer.port, { dialect })
  assert.equal(ch.dialect, dialect)
  const owner = { __sid: 1 }
  ch.owner = owner
  const { events, waitFor } = recorder(ch)
  const sock = await peer.accepted
  await waitFor(1)
  const stream = dialect === 'v1' ? v1Stream() : v0Stream()
  // Written at random splits: frames may span writes and end exactly at a
  // write's end (docs/PROTOCOL.md §10 row 29).
  for (let i = 0; i < stream.length;) {
    const n = split ? 1 + Math.floor(Math.random() * 90) : stream.length
    sock.write(stream.subarray(i, i + n))
    i += n
    if (split && Math.random() < 0.2) await sleep(1)
  }
  sock.end()
  const expected = dialect === 'v1' ? V1_EXPECTED : V0_EXPECTED
  await waitFor(expected.length)
  await sleep(50)
  assert.deepEqual(events, expected)
  if (dialect === 'v1') assert.equal(owner.__sid, HUGE_SID, "owner.__sid follows the highest channel id")
  ch.close()
  peer.server.close()
}

for (const dialect of ['v1', 'v0']) {
  test(`${dialect}: every message type over TCP, callbacks in order`, () => run(dialect, 'tcp', false))
  test(`${dialect}: every message type over a Unix socket, split anywhere`, () => run(dialect, sockPath(dialect), true))
}

test('the dialect comes from --protocol when no option says it', async () => {
  const peer = await rawPeer('tcp')
  const ch = new Channel(peer.host, peer.port)
  assert.equal(ch.dialect, process.argv.includes('--protocol') ? 'v1' : 'v0')
  ch.close()
  peer.server.close()
})

test('communicator is the same class; bad arguments throw TypeError with a code', () => {
  assert.equal(communicator, Channel)
  assert.throws(() => new Channel(42), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => new Channel('h', 'x'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => new Channel('h', 70000), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' })
  assert.throws(() => new Channel('/x', { dialect: 'v9' }), { code: 'ERR_INVALID_ARG_VALUE' })
})

test('send writes bytes as they are; sendTerminate packs terminate and returns sid', async () => {
  for (const dialect of ['v0', 'v1']) {
    const peer = await rawPeer('tcp')
    const ch = new Channel(peer.host, peer.port, { dialect })
    const { waitFor } = recorder(ch)
    const sock = await peer.accepted
    await waitFor(1)
    const got = []
    sock.on('data', (d) => got.push(d))
    assert.throws(() => ch.send('not a buffer'), { name: 'TypeError' })
    ch.send(pack([1, 0, ['uuid']]))
    const control = dialect === 'v0' ? 0 : 1
    assert.equal(ch.sendTerminate(control, 1, 'worker shut down'), control)
    ch.close()
    await new Promise((r) => sock.on('end', r))
    const bytes = Buffer.concat(got)
    const term = dialect === 'v0' ? '930200920' : '930101920'
    assert.equal(bytes.toString('hex'), pack([1, 0, ['uuid']]).toString('hex') + term + '1b0' + Buffer.from('worker shut down').toString('hex'))
    assert.throws(() => ch.send(Buffer.from([0x90])), { code: 'ERR_CHANNEL_CLOSED' })
    peer.server.close()
  }
})

test('callbacks may be replaced and deleted between events (the FSM way)', async () => {
  const peer = await rawPeer('tcp')
  const ch = new Channel(peer.host, peer.port, { dialect: 'v1' })
  const seen = []
  ch.on_connect = () => seen.push('connect')
  const sock = await peer.accepted
  ch.on_heartbeat = function () {
    seen.push('hb1')
    // Swap handlers from inside a callback, as the framework's FSM does.
    delete this.on_heartbeat
    this.on_chunk = (sid, b) => seen.push(`chunk ${b}`)
  }
  assert.equal(Object.prototype.hasOwnProperty.call(ch, 'on_heartbeat'), true)
  sock.write(Buffer.concat([pack([1, 0, []]), pack([1, 0, []]), pack([2, 0, ['x']]), pack([2, 0, [Buffer.from('y')]])]))
  await sleep(100)
  assert.deepEqual(seen, ['connect', 'hb1', 'chunk y'])
  ch.close()
  peer.server.close()
})

test('no callback after close(), even from inside a batch', async () => {
  const peer = await rawPeer('tcp')
  const ch = new Channel(peer.host, peer.port, { dialect: 'v0' })
  const seen = []
  ch.on_connect = () => seen.push('connect')
  ch.on_socket_error = (e) => seen.push(`error ${e}`)
  const sock = await peer.accepted
  ch.on_heartbeat = function () {
    seen.push('hb')
    this.close()
  }
  sock.write(Buffer.concat([pack([1, 0, []]), pack([1, 0, []]), pack([1, 0, []])]))
  sock.end()
  await sleep(200)
  assert.deepEqual(seen, ['connect', 'hb'])
  peer.server.close()
})

'use strict'
// The JavaScript half of delivery (see src/hub.rs): the addon calls
// `dispatch` once per channel per batch with
//   kind   0 framework Channel (v0 lists), 1 framework Channel (v1 lists),
//          2 Connection, 3 Server
//   ch     the owner object
//   recs   Float64Array of records: [kind, ...fields] one after another
//   arena  one Buffer holding the batch's small payloads and strings
//   bigs   large payloads (external Buffers, no copy), or a server's new
//          Connections
//   flags  1: the channel is finished (released); 2: `ready` has waiters
//   news   roles (kinds 4 Worker, 5 Engine, 6 Session, 7 ResumeServer):
//          [id, object, ...] for engine workers / resume peers not seen yet
// and this file runs the owner's callbacks, slicing the arena with subarray.

const native = require('../sluice.node')

const R_CONNECT = 1
const R_HEARTBEAT = 2
const R_INVOKE = 3
const R_CHUNK = 4
const R_CHUNK_EXT = 5
const R_CHOKE = 6
const R_ERROR = 7
const R_TERMINATE = 8
const R_HANDSHAKE = 9
const R_FRAME = 10
const R_FRAME_EXT = 11
const R_DRAIN = 12
const R_SOCKET_ERROR = 13
const R_ACCEPT = 14
const R_BIGSID = 15
// Records of the roles (src/roles.rs).
const R_OBJ = 16
const R_DISOWN = 17
const R_DISCONNECTED = 18
const R_RECONNECT = 19
const R_CONNECTED = 20
const R_REJECTED = 21
const R_PEER_GONE = 22

const ESHUTDOWN = 108

const F_RELEASED = 1
const F_WAITERS = 2

/** Set on an owner object once it must get no more callbacks. */
const kClosed = Symbol('sluice.closed')
/** The error a Connection ended with (for its 'close' event). */
const kError = Symbol('sluice.error')

// An exception thrown by an owner's callback must not lose the rest of the
// batch: it is rethrown on its own (an uncaught exception, as it would have
// been from a socket's 'data' handler) and delivery goes on.
function report (err) {
  process.nextTick(rethrow, err)
}
function rethrow (err) {
  throw err
}

// Errno names and texts are the core's tables (sluice_core::errno), read
// from the addon: one table for every binding.
const ERRNO_NAMES = native.errnoNames()

/** An Error for a socket failure: `code` the errno's name, `errno` its Linux number. */
function errnoError (errno) {
  const code = ERRNO_NAMES[errno] || 'EUNKNOWN'
  const err = new Error(`${code}: ${native.errnoText(errno)}`)
  err.code = code
  err.errno = errno
  return err
}

// Small payloads are views of the batch's arena. A Buffer made by
// `subarray` costs about twice what a plain typed-array construction does,
// so views are made with a Uint8Array subclass whose prototype chain is
// Buffer's (as Node's own FastBuffer): a Buffer in every observable way
// (Buffer.isBuffer, instanceof, .constructor, every method).
class Slice extends Uint8Array {}
Object.setPrototypeOf(Slice.prototype, Buffer.prototype)
Object.defineProperty(Slice.prototype, 'constructor', { value: Buffer, writable: true, configurable: true, enumerable: false })

function bigSid (hi, lo) {
  return (BigInt(hi) << 32n) | BigInt(lo)
}

// ---------------------------------------------------------------------
// The framework's Channel: on_* properties, called with `this` = channel.

function call0 (ch, f) {
  try { f.call(ch) } catch (e) { report(e) }
}
function call1 (ch, f, a) {
  try { f.call(ch, a) } catch (e) { report(e) }
}
function call2 (ch, f, a, b) {
  try { f.call(ch, a, b) } catch (e) { report(e) }
}
function call3 (ch, f, a, b, c) {
  try { f.call(ch, a, b, c) } catch (e) { report(e) }
}
function call4 (ch, f, a, b, c, d) {
  try { f.call(ch, a, b, c, d) } catch (e) { report(e) }
}

function compat (ch, recs, arena, bigs, v1) {
  const n = recs.length
  const ab = arena === undefined ? undefined : arena.buffer
  const base = arena === undefined ? 0 : arena.byteOffset
  let i = 0
  let big = 0n
  while (i < n) {
    if (ch[kClosed] === true) return
    const k = recs[i]
    let sid = recs[i + 1]
    if (sid !== sid) sid = big // eslint-disable-line no-self-compare
    switch (k) {
      case R_CHUNK: {
        const off = recs[i + 2]
        const len = recs[i + 3]
        i += 4
        const f = ch.on_chunk
        if (typeof f === 'function') call2(ch, f, sid, new Slice(ab, base + off, len))
        break
      }
      case R_CHUNK_EXT: {
        const buf = bigs[recs[i + 2]]
        i += 3
        const f = ch.on_chunk
        if (typeof f === 'function') call2(ch, f, sid, buf)
        break
      }
      case R_INVOKE: {
        const off = recs[i + 2]
        const event = arena.utf8Slice(off, off + recs[i + 3])
        i += 4
        if (v1) {
          const owner = ch.owner
          if (owner !== null && typeof owner === 'object' && (typeof owner.__sid === 'number' || typeof owner.__sid === 'bigint') && owner.__sid < sid) owner.__sid = sid
        }
        const f = ch.on_invoke
        if (typeof f === 'function') call2(ch, f, sid, event)
        break
      }
      case R_CHOKE: {
        i += 2
        const f = ch.on_choke
        if (typeof f === 'function') call1(ch, f, sid)
        break
      }
      case R_HEARTBEAT: {
        i += 2
        const f = ch.on_heartbeat
        if (typeof f === 'function') call0(ch, f)
        break
      }
      case R_ERROR: {
        const category = recs[i + 2]
        const code = recs[i + 3]
        const off = recs[i + 4]
        const len = recs[i + 5]
        i += 6
        const message = len < 0 ? undefined : arena.utf8Slice(off, off + len)
        const f = ch.on_error
        if (typeof f === 'function') {
          if (v1) call4(ch, f, sid, category, code, message)
          else call3(ch, f, sid, code, message)
        }
        break
      }
      case R_TERMINATE: {
        const code = recs[i + 2]
        const off = recs[i + 3]
        const reason = arena.utf8Slice(off, off + recs[i + 4])
        i += 5
        const f = ch.on_terminate
        if (typeof f === 'function') {
          if (v1) call2(ch, f, code, reason)
          else call3(ch, f, sid, code, reason)
        }
        break
      }
      case R_CONNECT: {
        i += 1
        const f = ch.on_connect
        if (typeof f === 'function') call0(ch, f)
        break
      }
      case R_SOCKET_ERROR: {
        i += 2
        ch[kClosed] = true
        const f = ch.on_socket_error
        if (typeof f === 'function') call1(ch, f, sid)
        break
      }
      case R_BIGSID:
        big = bigSid(recs[i + 1], recs[i + 2])
        i += 3
        break
      case R_HANDSHAKE: case R_FRAME: case R_FRAME_EXT: case R_DRAIN:
        // Not part of the framework's channel.
        i += k === R_DRAIN ? 1 : k === R_HANDSHAKE ? 4 : k === R_FRAME ? 5 : 4
        break
      default:
        throw new Error(`sluice: unknown record ${k}`)
    }
  }
}

// ---------------------------------------------------------------------
// Connection (an EventEmitter).

function emit0 (ch, name) {
  try { ch.emit(name) } catch (e) { report(e) }
}
function emit1 (ch, name, a) {
  try { ch.emit(name, a) } catch (e) { report(e) }
}
function emit2 (ch, name, a, b) {
  try { ch.emit(name, a, b) } catch (e) { report(e) }
}
function emit3 (ch, name, a, b, c) {
  try { ch.emit(name, a, b, c) } catch (e) { report(e) }
}

function connection (ch, recs, arena, bigs, flags) {
  const n = recs === undefined ? 0 : recs.length
  const ab = arena === undefined ? undefined : arena.buffer
  const base = arena === undefined ? 0 : arena.byteOffset
  let i = 0
  let big = 0n
  while (i < n) {
    if (ch[kClosed] === true) break
    const k = recs[i]
    let sid = recs[i + 1]
    if (sid !== sid) sid = big // eslint-disable-line no-self-compare
    switch (k) {
      case R_CHUNK: {
        const off = recs[i + 2]
        const len = recs[i + 3]
        i += 4
        emit2(ch, 'chunk', sid, new Slice(ab, base + off, len))
        break
      }
      case R_CHUNK_EXT:
        emit2(ch, 'chunk', sid, bigs[recs[i + 2]])
        i += 3
        break
      case R_INVOKE: {
        const off = recs[i + 2]
        const event = arena.utf8Slice(off, off + recs[i + 3])
        i += 4
        emit2(ch, 'invoke', sid, event)
        break
      }
      case R_CHOKE:
        i += 2
        emit1(ch, 'choke', sid)
        break
      case R_HEARTBEAT:
        i += 2
        emit0(ch, 'heartbeat')
        break
      case R_ERROR: {
        const category = recs[i + 2]
        const off = recs[i + 4]
        const len = recs[i + 5]
        const e = {
          category: category !== category ? undefined : category, // eslint-disable-line no-self-compare
          code: recs[i + 3],
          message: len < 0 ? undefined : arena.utf8Slice(off, off + len)
        }
        i += 6
        emit2(ch, 'sessionError', sid, e)
        break
      }
      case R_TERMINATE: {
        const code = recs[i + 2]
        const off = recs[i + 3]
        const reason = arena.utf8Slice(off, off + recs[i + 4])
        i += 5
        emit2(ch, 'terminate', code, reason)
        break
      }
      case R_HANDSHAKE: {
        const off = recs[i + 2]
        const uuid = arena.utf8Slice(off, off + recs[i + 3])
        i += 4
        emit1(ch, 'handshake', uuid)
        break
      }
      case R_FRAME: {
        const type = recs[i + 2]
        const off = recs[i + 3]
        const end = off + recs[i + 4]
        i += 5
        emit3(ch, 'frame', sid, type, new Slice(ab, base + off, end - off))
        break
      }
      case R_FRAME_EXT:
        emit3(ch, 'frame', sid, recs[i + 2], bigs[recs[i + 3]])
        i += 4
        break
      case R_CONNECT:
        i += 1
        emit0(ch, 'connect')
        break
      case R_DRAIN:
        i += 1
        emit0(ch, 'drain')
        break
      case R_SOCKET_ERROR: {
        i += 2
        ch[kClosed] = true
        if (sid === ESHUTDOWN) {
          // The peer closed the connection: an end, not a failure.
          emit0(ch, 'end')
          break
        }
        const err = errnoError(sid)
        ch[kError] = err
        // Never lost, never an unhandled 'error' for a program that awaits
        // `ready`: emitted when someone listens or no one waits.
        if (ch.listenerCount('error') > 0 || !(flags & F_WAITERS)) emit1(ch, 'error', err)
        break
      }
      case R_BIGSID:
        big = bigSid(recs[i + 1], recs[i + 2])
        i += 3
        break
      default:
        throw new Error(`sluice: unknown record ${k}`)
    }
  }
  if (flags & F_RELEASED) {
    ch[kClosed] = true
    const err = ch[kError]
    if (err === undefined) emit0(ch, 'close')
    else emit1(ch, 'close', err)
  }
}

function server (srv, recs, bigs, flags) {
  const n = recs === undefined ? 0 : recs.length
  for (let i = 0; i < n; i += 2) {
    const conn = bigs[recs[i + 1]]
    if (conn !== undefined) emit1(srv, 'connection', conn)
  }
  if (flags & F_RELEASED) emit0(srv, 'close')
}

// ---------------------------------------------------------------------
// The roles (EventEmitters). An engine's workers and a resume server's
// peers are objects kept by id: records about one are prefixed by R_OBJ.

/** The owner's map of worker / peer objects by id. */
const kObjects = Symbol('sluice.objects')

function emitv (owner, name, args) {
  try { owner.emit(name, ...args) } catch (e) { report(e) }
}

const K_WORKER = 4
const K_ENGINE = 5
const K_RESUME = 7

function role (kind, owner, recs, arena, bigs, flags, news) {
  let objs = owner[kObjects]
  if (objs === undefined) {
    objs = new Map()
    Object.defineProperty(owner, kObjects, { value: objs })
  }
  if (news !== undefined) {
    for (let j = 0; j < news.length; j += 2) objs.set(news[j], news[j + 1])
  }
  const n = recs === undefined ? 0 : recs.length
  const ab = arena === undefined ? undefined : arena.buffer
  const base = arena === undefined ? 0 : arena.byteOffset
  const text = (off, len) => arena.utf8Slice(off, off + len)
  let i = 0
  let big = 0n
  let cur
  while (i < n) {
    if (owner[kClosed] === true) break
    const k = recs[i]
    if (k === R_OBJ) {
      cur = objs.get(recs[i + 1])
      i += 2
      continue
    }
    if (k === R_BIGSID) {
      big = bigSid(recs[i + 1], recs[i + 2])
      i += 3
      continue
    }
    let sid = recs[i + 1]
    if (sid !== sid) sid = big // eslint-disable-line no-self-compare
    // Engine and resume server events name the worker / peer first.
    const pre = cur === undefined ? [] : [cur]
    const about = cur
    cur = undefined
    switch (k) {
      case R_CONNECT:
        i += 1
        emitv(owner, 'connect', [])
        break
      case R_CONNECTED: {
        const resumed = recs[i + 1] === 1
        const endpoint = recs[i + 3] > 0 ? text(recs[i + 2], recs[i + 3]) : ''
        i += 4
        if (kind === K_RESUME) emitv(owner, 'peerConnected', [about, resumed])
        else emitv(owner, 'connect', [endpoint, resumed])
        break
      }
      case R_INVOKE:
        emitv(owner, 'invoke', [...pre, sid, text(recs[i + 2], recs[i + 3])])
        i += 4
        break
      case R_CHUNK:
        emitv(owner, 'chunk', [...pre, sid, new Slice(ab, base + recs[i + 2], recs[i + 3])])
        i += 4
        break
      case R_CHUNK_EXT:
        emitv(owner, 'chunk', [...pre, sid, bigs[recs[i + 2]]])
        i += 3
        break
      case R_CHOKE:
        i += 2
        emitv(owner, 'choke', [...pre, sid])
        break
      case R_HEARTBEAT:
        i += 2
        emitv(owner, 'heartbeat', pre)
        break
      case R_ERROR: {
        const category = recs[i + 2]
        const len = recs[i + 5]
        const e = {
          category: category !== category ? undefined : category, // eslint-disable-line no-self-compare
          code: recs[i + 3],
          message: len < 0 ? undefined : text(recs[i + 4], len)
        }
        i += 6
        emitv(owner, 'sessionError', [...pre, sid, e])
        break
      }
      case R_TERMINATE: {
        const code = recs[i + 2]
        const reason = text(recs[i + 3], recs[i + 4])
        i += 5
        emitv(owner, 'terminate', [...pre, code, reason])
        break
      }
      case R_HANDSHAKE: {
        const uuid = text(recs[i + 2], recs[i + 3])
        i += 4
        emitv(owner, 'handshake', kind === K_ENGINE ? pre : [...pre, uuid])
        break
      }
      case R_FRAME:
        emitv(owner, 'frame', [...pre, sid, recs[i + 2], new Slice(ab, base + recs[i + 3], recs[i + 4])])
        i += 5
        break
      case R_FRAME_EXT:
        emitv(owner, 'frame', [...pre, sid, recs[i + 2], bigs[recs[i + 3]]])
        i += 4
        break
      case R_DRAIN:
        i += 1
        emitv(owner, 'drain', pre)
        break
      case R_DISOWN:
        i += 1
        emitv(owner, 'disown', [])
        break
      case R_REJECTED:
        emitv(owner, 'rejected', [text(recs[i + 1], recs[i + 2])])
        i += 3
        break
      case R_DISCONNECTED: {
        const errno = recs[i + 1]
        const count = recs[i + 2]
        const sessions = []
        for (let j = 0; j < count; j++) {
          const hi = recs[i + 3 + 2 * j]
          const lo = recs[i + 4 + 2 * j]
          sessions.push(hi < 0x200000 ? hi * 0x100000000 + lo : bigSid(hi, lo))
        }
        i += 3 + 2 * count
        const err = errno === 0 ? null : errnoError(errno)
        if (kind === K_WORKER) emitv(owner, 'disconnected', [err, sessions])
        else if (kind === K_ENGINE) {
          emitv(owner, 'gone', [about, err])
          for (const [id, o] of objs) if (o === about) objs.delete(id)
        } else if (kind === K_RESUME) emitv(owner, 'peerDisconnected', [about, err])
        else emitv(owner, 'disconnected', [err])
        break
      }
      case R_RECONNECT: {
        const attempt = recs[i + 1]
        const delay = recs[i + 2]
        const endpoint = text(recs[i + 3], recs[i + 4])
        i += 5
        emitv(owner, 'reconnectAttempt', [attempt, endpoint, delay])
        break
      }
      case R_PEER_GONE:
        i += 1
        emitv(owner, 'peerGone', [about])
        for (const [id, o] of objs) if (o === about) objs.delete(id)
        break
      default:
        throw new Error(`sluice: unknown record ${k}`)
    }
  }
  if (flags & F_RELEASED) {
    owner[kClosed] = true
    objs.clear()
    emitv(owner, 'close', [])
  }
}

function dispatch (kind, ch, recs, arena, bigs, flags, news) {
  switch (kind) {
    case 0:
    case 1:
      if (recs !== undefined) compat(ch, recs, arena, bigs, kind === 1)
      break
    case 2:
      connection(ch, recs, arena, bigs, flags)
      break
    case 3:
      server(ch, recs, bigs, flags)
      break
    default:
      role(kind, ch, recs, arena, bigs, flags, news)
  }
}

module.exports = { dispatch, kClosed, errnoError }

'use strict'
// The JavaScript half of delivery (src/delivery.rs): the addon calls
// `dispatch` once per owner object per batch with
//   kind   the owner's kind (K_*: framework Channel v0 / v1, Connection,
//          Server, Worker, Engine, Session, ResumeServer)
//   owner  the owner object
//   recs   Float64Array of records: [kind, ...fields] one after another
//   arena  one Buffer holding the batch's small payloads and strings
//   bigs   large payloads (external Buffers, no copy), or a server's new
//          Connections
//   flags  F_RELEASED: the owner is finished; F_WAITERS: `ready` has waiters
//   news   [id, object, ...]: engine workers / resume peers not seen yet
// and this file decodes the records once and runs the owner's callbacks.
// The record format is the addon's (src/records.rs), read at load.

const native = require('../sluice.node')

const {
  R_CONNECT, R_HEARTBEAT, R_INVOKE, R_CHUNK, R_CHUNK_EXT, R_CHOKE, R_ERROR, R_TERMINATE, R_HANDSHAKE, R_FRAME, R_FRAME_EXT,
  R_DRAIN, R_DISCONNECT, R_ACCEPT, R_BIGSID, R_ABOUT, R_DISOWN, R_RECONNECT, R_REJECTED, R_GONE,
  K_COMPAT_V0, K_COMPAT_V1, K_CONNECTION, K_SERVER, K_WORKER, K_ENGINE, K_SESSION, K_RESUME,
  F_RELEASED, F_WAITERS
} = native._recordFormat()

const ESHUTDOWN = 108

/** Set on an owner object once it must get no more callbacks. */
const kClosed = Symbol('sluice.closed')
/** The error a Connection ended with (for its 'close' event). */
const kError = Symbol('sluice.error')
/** The owner's map of worker / peer objects by id. */
const kObjects = Symbol('sluice.objects')

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

/**
 * Decodes a batch, once for every owner kind: calls `sink(owner, k, sid, a,
 * b, c, about)` per record (`about`: the worker / peer it concerns).
 */
function decode (owner, recs, arena, bigs, objs, sink) {
  const n = recs === undefined ? 0 : recs.length
  const ab = arena === undefined ? undefined : arena.buffer
  const base = arena === undefined ? 0 : arena.byteOffset
  const text = (i) => recs[i + 1] === 0 ? '' : arena.utf8Slice(recs[i], recs[i] + recs[i + 1])
  const slice = (i) => new Slice(ab, base + recs[i], recs[i + 1])
  let i = 0
  let big = 0n
  let about
  while (i < n) {
    if (owner[kClosed] === true) return
    const k = recs[i]
    let sid = recs[i + 1]
    if (sid !== sid) sid = big // eslint-disable-line no-self-compare
    let a, b, c
    switch (k) {
      case R_BIGSID: big = bigSid(recs[i + 1], recs[i + 2]); i += 3; continue
      case R_ABOUT: about = objs.get(recs[i + 1]); i += 2; continue
      case R_CHUNK: a = slice(i + 2); i += 4; break
      case R_CHUNK_EXT: a = bigs[recs[i + 2]]; i += 3; break
      case R_INVOKE: case R_HANDSHAKE: a = text(i + 2); i += 4; break
      case R_CHOKE: case R_HEARTBEAT: i += 2; break
      case R_ERROR: {
        const category = recs[i + 2]
        a = category !== category ? undefined : category // eslint-disable-line no-self-compare
        b = recs[i + 3]
        c = recs[i + 5] < 0 ? undefined : text(i + 4)
        i += 6
        break
      }
      case R_TERMINATE: a = recs[i + 2]; b = text(i + 3); i += 5; break
      case R_FRAME: a = recs[i + 2]; b = slice(i + 3); i += 5; break
      case R_FRAME_EXT: a = recs[i + 2]; b = bigs[recs[i + 3]]; i += 4; break
      case R_CONNECT: a = recs[i + 1] === 1; b = text(i + 2); i += 4; break
      case R_DISCONNECT: {
        a = recs[i + 1]
        const count = recs[i + 2]
        b = []
        for (let j = i + 3; j < i + 3 + 2 * count; j += 2) {
          b.push(recs[j] < 0x200000 ? recs[j] * 0x100000000 + recs[j + 1] : bigSid(recs[j], recs[j + 1]))
        }
        i += 3 + 2 * count
        break
      }
      case R_RECONNECT: a = recs[i + 1]; b = recs[i + 2]; c = text(i + 3); i += 5; break
      case R_REJECTED: a = text(i + 1); i += 3; break
      case R_ACCEPT: a = bigs[recs[i + 1]]; i += 2; break
      case R_DRAIN: case R_DISOWN: case R_GONE: i += 1; break
      default: throw new Error(`sluice: unknown record ${k}`)
    }
    sink(owner, k, sid, a, b, c, about)
    about = undefined
  }
}

// ---------------------------------------------------------------------
// The framework's Channel: on_* properties, called with `this` = channel.

function call (ch, name, ...args) {
  const f = ch[name]
  if (typeof f === 'function') {
    try { f.apply(ch, args) } catch (e) { report(e) }
  }
}

function compat (v1) {
  return (ch, k, sid, a, b, c) => {
    switch (k) {
      case R_CHUNK: case R_CHUNK_EXT: return call(ch, 'on_chunk', sid, a)
      case R_INVOKE: {
        // v1: the owner's `__sid` (master's highest channel id) follows.
        const owner = ch.owner
        const known = v1 && owner !== null && typeof owner === 'object' && typeof owner.__sid
        if ((known === 'number' || known === 'bigint') && owner.__sid < sid) owner.__sid = sid
        return call(ch, 'on_invoke', sid, a)
      }
      case R_CHOKE: return call(ch, 'on_choke', sid)
      case R_HEARTBEAT: return call(ch, 'on_heartbeat')
      case R_ERROR: return v1 ? call(ch, 'on_error', sid, a, b, c) : call(ch, 'on_error', sid, b, c)
      case R_TERMINATE: return v1 ? call(ch, 'on_terminate', a, b) : call(ch, 'on_terminate', sid, a, b)
      case R_CONNECT: return call(ch, 'on_connect')
      case R_DISCONNECT:
        ch[kClosed] = true
        return call(ch, 'on_socket_error', a)
      // Handshakes, frames and drains are not part of the framework's channel.
    }
  }
}

// ---------------------------------------------------------------------
// The EventEmitters: Connection, Server and the roles. Events about an
// engine's worker or a resume server's peer name it first.

function emit (owner, name, ...args) {
  try { owner.emit(name, ...args) } catch (e) { report(e) }
}

function about (owner, who, name, ...args) {
  if (who === undefined) emit(owner, name, ...args)
  else emit(owner, name, who, ...args)
}

/** What every emitter kind emits alike: the peer's messages and drains. */
function message (owner, k, sid, a, b, c, who) {
  switch (k) {
    case R_INVOKE: return about(owner, who, 'invoke', sid, a)
    case R_CHUNK: case R_CHUNK_EXT: return about(owner, who, 'chunk', sid, a)
    case R_CHOKE: return about(owner, who, 'choke', sid)
    case R_HEARTBEAT: return about(owner, who, 'heartbeat')
    case R_ERROR: return about(owner, who, 'sessionError', sid, { category: a, code: b, message: c })
    case R_TERMINATE: return about(owner, who, 'terminate', a, b)
    case R_HANDSHAKE: return about(owner, who, 'handshake', a)
    case R_FRAME: case R_FRAME_EXT: return about(owner, who, 'frame', sid, a, b)
    case R_DRAIN: return about(owner, who, 'drain')
    case R_DISOWN: return emit(owner, 'disown')
    case R_REJECTED: return emit(owner, 'rejected', a)
    case R_RECONNECT: return emit(owner, 'reconnectAttempt', a, c, b)
    case R_ACCEPT: if (a !== undefined) emit(owner, 'connection', a)
  }
}

function forget (objs, who) {
  for (const [id, o] of objs) if (o === who) objs.delete(id)
}

/** Per emitter kind: its connect and disconnect events (else `message`). */
const EMITTERS = {
  [K_CONNECTION]: (owner, k, sid, a, b, c, who, flags) => {
    if (k === R_CONNECT) return emit(owner, 'connect')
    if (k !== R_DISCONNECT) return message(owner, k, sid, a, b, c, who)
    owner[kClosed] = true
    // The peer closed the connection: an end, not a failure.
    if (a === ESHUTDOWN) return emit(owner, 'end')
    const err = errnoError(a)
    owner[kError] = err
    // Never lost, never an unhandled 'error' for a program that awaits
    // `ready`: emitted when someone listens or no one waits.
    if (owner.listenerCount('error') > 0 || !(flags & F_WAITERS)) emit(owner, 'error', err)
  },
  [K_SERVER]: message,
  [K_WORKER]: (owner, k, sid, a, b, c, who) => {
    if (k === R_CONNECT) return emit(owner, 'connect')
    if (k === R_DISCONNECT) return emit(owner, 'disconnected', a === 0 ? null : errnoError(a), b)
    message(owner, k, sid, a, b, c, who)
  },
  [K_ENGINE]: (owner, k, sid, a, b, c, who, flags, objs) => {
    if (k === R_CONNECT) return emit(owner, 'handshake', who)
    if (k !== R_DISCONNECT) return message(owner, k, sid, a, b, c, who)
    emit(owner, 'gone', who, a === 0 ? null : errnoError(a))
    forget(objs, who)
  },
  [K_SESSION]: (owner, k, sid, a, b, c, who) => {
    if (k === R_CONNECT) return emit(owner, 'connect', b, a)
    if (k === R_DISCONNECT) return emit(owner, 'disconnected', a === 0 ? null : errnoError(a))
    message(owner, k, sid, a, b, c, who)
  },
  [K_RESUME]: (owner, k, sid, a, b, c, who, flags, objs) => {
    if (k === R_CONNECT) return emit(owner, 'peerConnected', who, a)
    if (k === R_DISCONNECT) return emit(owner, 'peerDisconnected', who, a === 0 ? null : errnoError(a))
    if (k !== R_GONE) return message(owner, k, sid, a, b, c, who)
    emit(owner, 'peerGone', who)
    forget(objs, who)
  }
}

const COMPAT = { [K_COMPAT_V0]: compat(false), [K_COMPAT_V1]: compat(true) }

function dispatch (kind, owner, recs, arena, bigs, flags, news) {
  const plain = COMPAT[kind]
  if (plain !== undefined) return decode(owner, recs, arena, bigs, undefined, plain)
  let objs = owner[kObjects]
  if (objs === undefined) {
    objs = new Map()
    Object.defineProperty(owner, kObjects, { value: objs })
  }
  if (news !== undefined) {
    for (let j = 0; j < news.length; j += 2) objs.set(news[j], news[j + 1])
  }
  const on = EMITTERS[kind]
  decode(owner, recs, arena, bigs, objs, (o, k, sid, a, b, c, who) => on(o, k, sid, a, b, c, who, flags, objs))
  if (flags & F_RELEASED) {
    owner[kClosed] = true
    objs.clear()
    const err = owner[kError]
    if (err === undefined) emit(owner, 'close')
    else emit(owner, 'close', err)
  }
}

module.exports = { dispatch, kClosed, errnoError }

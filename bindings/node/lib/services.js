'use strict'
// Cocaine services (src/services/): the error classes, the Call's reply
// stream (events, async iteration, value(), collect()), and the JavaScript
// side of handlers (src/services/serving.rs posts each request here with its
// Responder). Types and documentation: index.d.ts.

const { EventEmitter } = require('node:events')

/** An error a service answered with: `error([category, code], message)`. */
class ServiceError extends Error {
  constructor (category, code, message = '') {
    super(message === '' ? `service error [${category}, ${code}]` : message)
    this.name = 'ServiceError'
    /** The error category (null for v0 services). */
    this.category = category == null ? null : category
    /** The code within the category. */
    this.code = code
    // The message as the service sent it (possibly empty).
    Object.defineProperty(this, 'serviceMessage', { value: message, enumerable: false })
  }
}

/**
 * An error class `name` whose instances have `code` (unless `props.code`
 * gives one) and the listed `fields` of `props`.
 */
function errorClass (name, code, fields) {
  const C = class extends Error {
    constructor (message, props = {}) {
      super(message)
      this.name = name
      this.code = props.code || code
      for (const f of fields) this[f] = props[f]
    }
  }
  Object.defineProperty(C, 'name', { value: name })
  return C
}

const NotFoundError = errorClass('NotFoundError', 'ERR_SERVICE_NOT_FOUND', ['service'])
const UnknownMethodError = errorClass('UnknownMethodError', 'ERR_UNKNOWN_METHOD', ['service', 'method'])
const DisconnectedError = errorClass('DisconnectedError', 'ECONNRESET', ['errno'])
const TimeoutError = errorClass('TimeoutError', 'ETIMEDOUT', [])
/** Its `tried`: each endpoint tried, `{ endpoint, errno, code }`. */
const ConnectError = errorClass('ConnectError', 'ECONNREFUSED', ['errno', 'tried'])

function makeError (kind, message, props) {
  switch (kind) {
    case 'service': return new ServiceError(props.category, props.code, props.message)
    case 'notFound': return new NotFoundError(message, props)
    case 'unknownMethod': return new UnknownMethodError(message, props)
    case 'disconnected': return new DisconnectedError(message, props)
    case 'timeout': return new TimeoutError(message)
    case 'connect': return new ConnectError(message, props)
    default: {
      const e = new Error(message)
      e.code = props.code
      return e
    }
  }
}

// ---------------------------------------------------------------------------
// Calls.

const kState = Symbol('sluice.call')

function state (call) {
  let s = call[kState]
  if (s === undefined) {
    s = { buffer: [], error: null, ended: false, waiters: [], consumed: false }
    call[kState] = s
  }
  return s
}

function wake (s) {
  const w = s.waiters
  s.waiters = []
  for (const f of w) f()
}

// src/services/client.rs: every reply, then 'end'; or an 'error' that ends it.
function onCall (call, kind, payload) {
  const s = state(call)
  if (s.ended) return
  if (kind === 'reply') {
    // Kept for value()/collect()/iteration unless only events are used.
    if (s.consumed || call.listenerCount('reply') === 0) s.buffer.push(payload)
    wake(s)
    call.emit('reply', payload)
    return
  }
  s.ended = true
  if (kind === 'error') {
    s.error = payload
    wake(s)
    if (call.listenerCount('error') > 0) call.emit('error', payload)
    return
  }
  wake(s)
  call.emit('end')
}

function waitFor (s) {
  return new Promise((resolve) => s.waiters.push(resolve))
}

async function next (call) {
  const s = state(call)
  s.consumed = true
  for (;;) {
    if (s.buffer.length > 0) return { value: s.buffer.shift(), done: false }
    if (s.error) throw s.error
    if (s.ended) return { value: undefined, done: true }
    await waitFor(s)
  }
}

function installCall (Call) {
  Object.setPrototypeOf(Call.prototype, EventEmitter.prototype)
  Call.prototype.value = async function value () {
    for (;;) {
      const r = await next(this)
      if (r.done) {
        const e = new Error(`${this.service}.${this.method} ended without a value`)
        e.code = 'ERR_BAD_REPLY'
        throw e
      }
      if (r.value.name === 'value') return r.value.args
      if (r.value.name !== 'write') {
        const e = new Error(`${this.service}.${this.method}: expected a value, got '${r.value.name}'`)
        e.code = 'ERR_BAD_REPLY'
        throw e
      }
    }
  }
  Call.prototype.collect = async function collect () {
    const all = []
    for (;;) {
      const r = await next(this)
      if (r.done) return all
      all.push(r.value)
    }
  }
  Call.prototype[Symbol.asyncIterator] = function () {
    return { next: () => next(this), [Symbol.asyncIterator] () { return this } }
  }
}

// ---------------------------------------------------------------------------
// Handlers.

const kHandlers = Symbol('sluice.handlers')

function valueArgs (v) {
  if (v === undefined) return []
  return Array.isArray(v) ? v : [v]
}

function fail (responder, e) {
  if (!responder.done) {
    try { responder.error(e) } catch (_) { /* the caller is gone */ }
  }
}

// src/services/serving.rs: a call to method `index` of `def`.
function onRequest (def, index, args, responder) {
  const h = def[kHandlers] && def[kHandlers][index]
  if (!h) return fail(responder, new ServiceError(7, 5, 'no handler'))
  let r
  try {
    r = h.kind === 'primitive' ? h.fn(...args) : h.fn(responder, ...args)
  } catch (e) {
    return fail(responder, e)
  }
  if (h.kind === 'primitive') {
    Promise.resolve(r).then(
      (v) => {
        try { responder.value(...valueArgs(v)) } catch (e) { fail(responder, e) }
      },
      (e) => fail(responder, e))
  } else if (r && typeof r.then === 'function') {
    r.then(undefined, (e) => fail(responder, e))
  }
}

function rest (proto, name, fixed) {
  const original = proto[name]
  Object.defineProperty(proto, name, {
    value: { [name] (...a) { return original.call(this, ...a.slice(0, fixed), a.slice(fixed)) } }[name],
    writable: true,
    configurable: true,
    enumerable: false
  })
}

module.exports = function install (native) {
  native._initServices(onCall, onRequest, makeError)
  installCall(native.Call)
  Object.setPrototypeOf(native.Registry.prototype, EventEmitter.prototype)
  Object.setPrototypeOf(native.LocatorServer.prototype, EventEmitter.prototype)
  // Variadic arguments: the addon takes them as one array.
  rest(native.Service.prototype, 'call', 1)
  rest(native.Call.prototype, 'send', 1)
  rest(native.Responder.prototype, 'send', 1)
  rest(native.Responder.prototype, 'value', 0)
  rest(native.Responder.prototype, 'write', 0)
  // Handlers stay on the JavaScript side, by method index.
  for (const kind of ['primitive', 'streaming']) {
    const original = native.ServiceDef.prototype[kind]
    Object.defineProperty(native.ServiceDef.prototype, kind, {
      value: {
        [kind] (name, fn) {
          original.call(this, name, fn)
          if (this[kHandlers] === undefined) {
            Object.defineProperty(this, kHandlers, { value: [], enumerable: false })
          }
          this[kHandlers].push({ kind, fn })
          return this
        }
      }[kind],
      writable: true,
      configurable: true,
      enumerable: false
    })
  }
  return {
    Locator: native.Locator,
    Service: native.Service,
    Call: native.Call,
    Logger: native.Logger,
    ServiceDef: native.ServiceDef,
    Responder: native.Responder,
    Attached: native.Attached,
    Hosted: native.Hosted,
    LocatorServer: native.LocatorServer,
    Registry: native.Registry,
    attach: native.attach,
    host: native.host,
    ServiceError,
    NotFoundError,
    UnknownMethodError,
    DisconnectedError,
    TimeoutError,
    ConnectError
  }
}

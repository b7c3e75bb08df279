'use strict'
// sluice for Node.js. The addon (sluice.node, built from src/ by
// `npm install` / `npm run build`) does the sockets and all decoding on its
// I/O threads; lib/dispatch.js runs the owners' callbacks for each batch of
// events. Types and documentation: index.d.ts (generated from the Rust doc
// comments).

const { EventEmitter } = require('node:events')
const native = require('./sluice.node')
const { dispatch, kClosed } = require('./lib/dispatch.js')

native._init(dispatch)

// Connection and Server are EventEmitters (EventEmitter sets its state up
// lazily, so instances made by the addon need no constructor call).
Object.setPrototypeOf(native.Connection.prototype, EventEmitter.prototype)
Object.setPrototypeOf(native.Server.prototype, EventEmitter.prototype)
// The roles too (src/worker.rs, engine.rs, session.rs, resume.rs).
for (const C of [native.Worker, native.Engine, native.Session, native.ResumeServer]) {
  Object.setPrototypeOf(C.prototype, EventEmitter.prototype)
}

// The dispatcher stops a batch as soon as its owner closes the channel from
// inside a callback: mark the object when close()/destroy() is called, and
// unmark it when the framework Channel connects again.
function marking (proto, name, value) {
  const original = proto[name]
  Object.defineProperty(proto, name, {
    value: { [name] (...args) { this[kClosed] = value; return original.apply(this, args) } }[name],
    writable: true,
    configurable: true,
    enumerable: false
  })
}
marking(native.Channel.prototype, 'close', true)
marking(native.Channel.prototype, 'connect', false)
marking(native.Connection.prototype, 'close', true)
marking(native.Connection.prototype, 'destroy', true)
marking(native.Worker.prototype, 'close', true)
marking(native.Worker.prototype, 'terminate', true)
marking(native.Engine.prototype, 'close', true)
marking(native.Session.prototype, 'stop', true)
marking(native.ResumeServer.prototype, 'close', true)

/**
 * startWorker(options?): the runtime's arguments default to
 * process.argv.slice(2) (what the runtime passed this script).
 */
function startWorker (options) {
  const o = options == null ? {} : options
  if (o.argv === undefined && (o.uuid === undefined || o.endpoint === undefined)) {
    return native.startWorker({ ...o, argv: process.argv.slice(2) })
  }
  return native.startWorker(o)
}

module.exports = {
  Channel: native.Channel,
  // The framework exported its channel under this name too.
  communicator: native.Channel,
  Connection: native.Connection,
  Server: native.Server,
  connect: native.connect,
  listen: native.listen,
  Worker: native.Worker,
  Engine: native.Engine,
  EngineWorker: native.EngineWorker,
  Session: native.Session,
  ResumeServer: native.ResumeServer,
  ResumePeer: native.ResumePeer,
  startWorker,
  listenEngine: native.listenEngine,
  openSession: native.openSession,
  listenResume: native.listenResume,
  version: native.version,
  setIoThreads: native.setIoThreads,
  options: native.options,
  configure: native.configure,
  setting: native.setting,
  settings: native.settings,
  errnoNames: native.errnoNames,
  errnoText: native.errnoText
}

// Cocaine services: Locator, Service, Call, Logger, ServiceDef, attach,
// host, LocatorServer and the errors (src/services/, lib/services.js).
Object.assign(module.exports, require('./lib/services.js')(native))

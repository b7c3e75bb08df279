#!/usr/bin/env node
'use strict'
// An echo worker, started by an engine with the runtime's arguments:
//
//   node examples/worker.js --app NAME --endpoint PATH --protocol 1 --uuid UUID [--locator HOST:PORT]
//
// (no --protocol: the v0 dialect). It connects and hand-shakes, echoes every
// chunk of every session back, ends a session when the engine has ended its
// side, answers the engine's terminate with its own and exits 0. If the
// connection is lost otherwise (engine gone, disowned), it exits 1.

const { startWorker } = require('..')

const worker = startWorker() // reads process.argv.slice(2)

// Replies the send queue refused (EAGAIN), in order, until 'drain'.
const waiting = []

function send (op, sid, data) {
  if (waiting.length > 0) {
    waiting.push([op, sid, data])
    return
  }
  try {
    if (op === 'write') worker.write(sid, data)
    else worker.end(sid)
  } catch (err) {
    if (err.code === 'EAGAIN') waiting.push([op, sid, data])
    else if (err.code !== 'ERR_NO_SESSION' && err.code !== 'ERR_STREAM_ENDED') throw err
  }
}

worker.on('drain', () => {
  const again = waiting.splice(0)
  for (const [op, sid, data] of again) send(op, sid, data)
})
worker.on('chunk', (sid, data) => send('write', sid, data))
worker.on('choke', (sid) => send('end', sid))
worker.on('sessionError', (sid) => send('end', sid))
worker.on('terminate', (code, reason) => {
  worker.terminate(1, `terminated (${code}: ${reason})`)
})
worker.on('disconnected', (err) => {
  process.stderr.write(`worker ${worker.uuid}: disconnected: ${err ? err.message : 'closed'}\n`)
  process.exitCode = 1
})
// After 'close' nothing keeps the process alive: it exits by itself.

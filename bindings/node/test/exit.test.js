'use strict'
// Node exits by itself when no channel or server is open, and stays alive
// while one is (each case runs in a child process).

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { rawPeer, sleep } = require('./helpers')

const PKG = JSON.stringify(path.join(__dirname, '..'))

function child (code, ...args) {
  const p = spawn(process.execPath, ['-e', code, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  p.stdout.on('data', (d) => { out += d })
  let done = false
  const exited = new Promise((resolve) => p.on('exit', (status) => { done = true; resolve({ status, out }) }))
  return { p, exited, running: () => !done }
}

test('loading the addon alone does not keep Node alive', async () => {
  const started = Date.now()
  const { status } = await child(`require(${PKG})`).exited
  assert.equal(status, 0)
  assert.ok(Date.now() - started < 5000)
})

test('an open channel keeps Node alive; its end lets Node exit', async () => {
  const peer = await rawPeer('tcp')
  const c = child(`
    const { Channel } = require(${PKG})
    const ch = new Channel('127.0.0.1', ${peer.port}, { dialect: 'v1' })
    ch.on_connect = () => console.log('up')
    ch.on_socket_error = (e) => console.log('end', e)
  `)
  const sock = await peer.accepted
  await sleep(700)
  assert.ok(c.running(), 'alive while the channel is open')
  sock.end()
  const { status, out } = await c.exited
  assert.equal(status, 0)
  assert.equal(out, 'up\nend 108\n')
  peer.server.close()
})

test('close() lets Node exit once the queue is written', async () => {
  const peer = await rawPeer('tcp')
  const c = child(`
    const { Channel } = require(${PKG})
    const ch = new Channel('127.0.0.1', ${peer.port})
    ch.on_connect = function () { this.send(Buffer.alloc(1 << 20, 1)); this.close() }
  `)
  const sock = await peer.accepted
  let got = 0
  sock.on('data', (d) => { got += d.length })
  const ended = new Promise((resolve) => sock.on('end', resolve))
  const { status } = await c.exited
  assert.equal(status, 0)
  await ended
  assert.equal(got, 1 << 20)
  peer.server.close()
})

test('a failed connect lets Node exit', async () => {
  const { status, out } = await child(`
    const { connect } = require(${PKG})
    const c = connect('/nonexistent/sluice.sock')
    c.ready.catch((e) => console.log(e.code))
  `).exited
  assert.equal(status, 0)
  assert.equal(out, 'ENOENT\n')
})

test('a listening server keeps Node alive until closed, with its connections', async () => {
  const c = child(`
    const { listen, connect } = require(${PKG})
    const srv = listen('127.0.0.1:0')
    srv.on('connection', (conn) => conn.on('handshake', (u) => {
      console.log('handshake', u)
      srv.close()
      setTimeout(() => conn.close(), 300)
    }))
    const w = connect(srv.endpoint)
    w.on('connect', () => w.sendHandshake('abc'))
    w.on('end', () => console.log('worker end'))
  `)
  const { status, out } = await c.exited
  assert.equal(status, 0)
  assert.equal(out, 'handshake abc\nworker end\n')
})

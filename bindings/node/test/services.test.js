'use strict'
// Cocaine services over real sockets: an in-process LocatorServer, services
// defined here in JavaScript (attached and hosted), the demo services, the
// registry, the Logger, errors, failover, and the demo program
// (examples/service.js) as a child process.

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const path = require('node:path')
const readline = require('node:readline')
const { spawn } = require('node:child_process')
const { EventEmitter } = require('node:events')
const {
  Locator, Service, Call, Logger, ServiceDef, Responder, Attached, Hosted, LocatorServer, Registry,
  attach, host, ServiceError, NotFoundError, UnknownMethodError, DisconnectedError, TimeoutError, ConnectError
} = require('..')
const { sleep, once, sockPath } = require('./helpers')

/** Resolves when `f()` holds (checked after each 'change' of `registry`). */
function until (registry, f, ms = 10000) {
  if (f()) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { registry.off('change', check); reject(new Error('condition not reached')) }, ms)
    function check () {
      if (f()) { clearTimeout(t); registry.off('change', check); resolve() }
    }
    registry.on('change', check)
  })
}

function greeter (name = 'greeter') {
  return new ServiceDef(name, 3)
    .primitive('hello', (who) => [`hello, ${who}`])
    .primitive('add', (a, b) => a + b)
    .primitive('nothing', () => undefined)
    .primitive('echo', (...args) => args)
    .primitive('later', async (x) => { await sleep(5); return [x, 'later'] })
    .primitive('throws', () => { throw new Error('plain failure') })
    .primitive('rejects', async () => { throw new ServiceError(42, 9, 'async failure') })
    .primitive('throwsString', () => { throw 'just a string' }) // eslint-disable-line no-throw-literal
    .streaming('count', (out, n) => {
      for (let i = 0; i < n; i++) out.write(i)
      out.close()
    })
    .streaming('slow', (out, n) => {
      let i = 0
      const tick = () => {
        if (i === n) return out.close()
        out.write(i++, 'tick')
        setTimeout(tick, 1)
      }
      tick()
    })
    .streaming('halfway', (out) => {
      out.write('one')
      throw new ServiceError(42, 3, 'stopped halfway')
    })
}

test('classes and errors are exported with their shapes', () => {
  for (const C of [Locator, Service, Call, Logger, ServiceDef, Responder, Attached, Hosted, LocatorServer, Registry]) {
    assert.equal(typeof C, 'function')
  }
  const e = new ServiceError(42, 7, 'x')
  assert.ok(e instanceof Error)
  assert.deepEqual([e.name, e.category, e.code, e.message], ['ServiceError', 42, 7, 'x'])
  assert.throws(() => new ServiceDef('x').primitive('m', 'not a function'), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => new ServiceDef('x').primitive('m', () => 1).streaming('m', () => 1), { code: 'ERR_DUPLICATE_METHOD' })
  assert.deepEqual(new Locator().endpoints, ['localhost:10053'])
})

test('resolve, primitive and streaming calls of an attached JavaScript service', async () => {
  const server = new LocatorServer()
  assert.ok(server instanceof EventEmitter && server.registry instanceof EventEmitter)
  assert.equal(server.registry, server.registry)
  const locator = new Locator(server.endpoint)
  const attached = await attach(locator, greeter())
  try {
    assert.ok(attached instanceof Attached)
    assert.equal(attached.name, 'greeter')
    assert.equal(attached.live, true)

    const r = await locator.resolve('greeter')
    assert.equal(r.name, 'greeter')
    assert.equal(r.version, 3)
    assert.deepEqual(r.endpoints, attached.endpoints)
    assert.deepEqual(r.graph.map((m) => [m.id, m.name]).slice(0, 3), [[0, 'hello'], [1, 'add'], [2, 'nothing']])
    const count = r.graph.find((m) => m.name === 'count')
    assert.equal(count.tx, 'none')
    assert.equal(count.rx, '{0 write*, 1 error, 2 close}')
    assert.match(r.text, /^service greeter \(protocol version 3\)\nendpoints: 127\.0\.0\.1:\d+\nmethods:\n/)
    assert.match(r.text, /hello\s+tx: none\s+rx: \{0 value, 1 error\}/)

    const svc = locator.service('greeter')
    assert.ok(svc instanceof Service)
    assert.equal(svc.name, 'greeter')
    assert.equal(svc.state, 'closed')
    assert.equal(svc.info, null)
    assert.deepEqual(await svc.call('hello', 'node').value(), ['hello, node'])
    assert.equal(svc.state, 'connected')
    assert.equal(svc.info.name, 'greeter')
    assert.deepEqual([svc.connectedTo], attached.endpoints)
    svc.close()
    assert.equal(svc.state, 'closed')
    assert.equal(svc.connectedTo, null)
    assert.deepEqual(await svc.call('add', 2, 40).value(), [42])
    assert.deepEqual(await svc.call('nothing').value(), [])
    assert.deepEqual(await svc.call('later', 7).value(), [7, 'later'])
    assert.deepEqual(await svc.call('count', 3).collect(), [
      { name: 'write', args: [0] }, { name: 'write', args: [1] }, { name: 'write', args: [2] }, { name: 'close', args: [] }])

    // Async iteration, and a handler answering over several turns.
    const seen = []
    for await (const reply of svc.call('slow', 4)) seen.push(reply)
    assert.deepEqual(seen.map((x) => [x.name, ...x.args]), [
      ['write', 0, 'tick'], ['write', 1, 'tick'], ['write', 2, 'tick'], ['write', 3, 'tick'], ['close']])

    // Events, in order.
    const events = []
    const call = svc.call('count', 2)
    assert.ok(call instanceof Call && call instanceof EventEmitter)
    assert.equal(call.service, 'greeter')
    assert.equal(call.method, 'count')
    call.on('reply', (x) => events.push([x.name, ...x.args]))
    await once(call, 'end')
    assert.deepEqual(events, [['write', 0], ['write', 1], ['close']])

    // Many calls in flight on one connection.
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => svc.call('add', i, 1).value()))
    assert.deepEqual(many, Array.from({ length: 200 }, (_, i) => [i + 1]))
  } finally {
    attached.detach()
    server.close()
  }
})

test('values keep their types both ways', async () => {
  const server = new LocatorServer()
  const locator = server.locator()
  const attached = await attach(locator, greeter('values'))
  try {
    const sent = [null, true, false, 0, -1, 2 ** 40, -(2 ** 40), 1.5, 'text', 'ünïcødé', Buffer.from([0, 1, 255]),
      [1, [2, [3]]], { a: 1, b: { c: [null] } }, 2n ** 63n, -(2n ** 62n) - 1n]
    const got = await locator.service('values').call('echo', ...sent).value()
    assert.equal(got.length, sent.length)
    assert.deepEqual(got.slice(0, 10), sent.slice(0, 10))
    assert.ok(Buffer.isBuffer(got[10]))
    assert.deepEqual([...got[10]], [0, 1, 255])
    assert.deepEqual(got[11], [1, [2, [3]]])
    assert.deepEqual(got[12], { a: 1, b: { c: [null] } })
    assert.equal(got[13], 2n ** 63n)
    assert.equal(got[14], -(2n ** 62n) - 1n)
    const m = new Map([[1, 'one'], ['two', 2]])
    const [back] = await locator.service('values').call('echo', m).value()
    assert.ok(back instanceof Map)
    assert.deepEqual([...back], [[1, 'one'], ['two', 2]])
    const cyclic = {}
    cyclic.self = cyclic
    assert.throws(() => locator.service('values').call('echo', cyclic), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => locator.service('values').call('echo', () => 1), { code: 'ERR_INVALID_ARG_TYPE' })
  } finally {
    attached.detach()
    server.close()
  }
})

test('errors: service errors, throwing handlers, unknown method, not found', async () => {
  const server = new LocatorServer()
  server.addDemoServices()
  const locator = server.locator()
  const attached = await attach(locator, greeter())
  try {
    const svc = locator.service('greeter')
    await assert.rejects(svc.call('throws').value(), (e) => {
      assert.ok(e instanceof ServiceError)
      assert.deepEqual([e.category, e.code, e.message], [7, 7, 'plain failure'])
      return true
    })
    await assert.rejects(svc.call('rejects').value(), { name: 'ServiceError', category: 42, code: 9, message: 'async failure' })
    await assert.rejects(svc.call('throwsString').value(), { name: 'ServiceError', category: 7, code: 7, message: 'just a string' })
    // A stream that fails halfway: the replies so far, then the error.
    const got = []
    await assert.rejects(async () => { for await (const r of svc.call('halfway')) got.push(r) }, { category: 42, code: 3, message: 'stopped halfway' })
    assert.deepEqual(got, [{ name: 'write', args: ['one'] }])
    // The 'error' event, when listened to.
    const call = svc.call('throws')
    const [err] = await once(call, 'error')
    assert.ok(err instanceof ServiceError)
    // The service still answers after all that.
    assert.deepEqual(await svc.call('add', 1, 1).value(), [2])

    // The demo services' own errors.
    await assert.rejects(locator.service('echo').call('fail', 5, 'boom').value(), { category: 42, code: 5, message: 'boom' })
    await assert.rejects(locator.service('math').call('div', 1, 0).value(), { category: 42, code: 1, message: 'division by zero' })

    await assert.rejects(svc.call('nope').value(), (e) => {
      assert.ok(e instanceof UnknownMethodError)
      assert.equal(e.code, 'ERR_UNKNOWN_METHOD')
      assert.equal(e.service, 'greeter')
      assert.equal(e.method, 'nope')
      assert.equal(e.message, "service 'greeter' has no method 'nope'")
      return true
    })
    await assert.rejects(locator.resolve('ghost'), (e) => {
      assert.ok(e instanceof NotFoundError)
      assert.equal(e.code, 'ERR_SERVICE_NOT_FOUND')
      assert.equal(e.message, "service 'ghost' is not available")
      return true
    })
    await assert.rejects(locator.service('ghost').call('x').value(), NotFoundError)
    // value() of a streaming method is a clear error, as is sending what the protocol does not allow.
    await assert.rejects(svc.call('count', 1).value(), { code: 'ERR_BAD_REPLY' })
    const relay = locator.service('echo').call('relay')
    relay.send('write', 1)
    relay.send('close')
    assert.deepEqual(await relay.collect(), [{ name: 'write', args: [1] }, { name: 'close', args: [] }])
    assert.throws(() => relay.send('write', 2), { code: 'ERR_NOT_ALLOWED' })
  } finally {
    attached.detach()
    server.close()
  }
})

test('a streaming handler may answer later; sends before the call is open wait', async () => {
  const server = new LocatorServer()
  server.addDemoServices()
  const locator = server.locator()
  let held
  const def = new ServiceDef('deferred').streaming('hold', (out, tag) => { held = { out, tag } })
  const attached = await attach(locator, def)
  try {
    const call = locator.service('deferred').call('hold', 'x')
    const all = call.collect()
    while (!held) await sleep(5)
    assert.ok(held.out instanceof Responder)
    assert.equal(held.out.done, false)
    held.out.write(held.tag, 1)
    await sleep(10)
    held.out.write(held.tag, 2)
    held.out.close()
    assert.equal(held.out.done, true)
    assert.throws(() => held.out.write('late'), { code: 'ERR_CALL_CLOSED' })
    assert.deepEqual(await all, [{ name: 'write', args: ['x', 1] }, { name: 'write', args: ['x', 2] }, { name: 'close', args: [] }])

    // A handler may call services itself (its own included): nothing blocks the JavaScript thread.
    const nested = new ServiceDef('nested')
      .primitive('sum', async (a, b) => locator.service('math').call('add', a, b).value())
      .primitive('twice', async (x) => {
        const [once] = await locator.service('nested').call('sum', x, x).value()
        return [once, (await locator.service('nested').call('sum', once, 0).value())[0]]
      })
    const n = await attach(locator, nested)
    assert.deepEqual(await locator.service('nested').call('twice', 21).value(), [42, 42])
    n.detach()

    // echo.relay: the caller's stream comes back.
    const relay = locator.service('echo').call('relay')
    for (let i = 0; i < 5; i++) relay.send('write', i, 'x')
    relay.send('close')
    const back = await relay.collect()
    assert.deepEqual(back.map((r) => [r.name, ...r.args]), [0, 1, 2, 3, 4].map((i) => ['write', i, 'x']).concat([['close']]))
  } finally {
    attached.detach()
    server.close()
  }
})

test('registry: attach lists online, detach takes offline, re-attach brings back; invoke round-trips', async () => {
  const server = new LocatorServer()
  const { registry } = server
  assert.ok(registry instanceof Registry)
  const changes = []
  registry.on('change', (e) => changes.push([e.name, e.online]))
  const locator = server.locator()
  assert.deepEqual(registry.list().map((e) => e.name), ['locator'])

  let attached = await attach(locator, greeter())
  await until(registry, () => changes.length >= 1)
  let e = registry.get('greeter')
  assert.equal(e.online, true)
  assert.equal(e.version, 3)
  assert.match(e.origin, /^attached by 127\.0\.0\.1:\d+$/)
  assert.deepEqual(e.endpoints, attached.endpoints)
  assert.deepEqual(registry.list().map((x) => x.name), ['greeter', 'locator'])

  // Remote invocation over the attaching connection.
  assert.deepEqual(await registry.invoke('greeter', 'hello', ['registry']).value(), ['hello, registry'])
  assert.deepEqual((await registry.invoke('greeter', 'count', [2]).collect()).map((r) => r.name), ['write', 'write', 'close'])
  await assert.rejects(registry.invoke('greeter', 'throws').value(), { category: 7, code: 7, message: 'plain failure' })
  await assert.rejects(registry.invoke('greeter', 'nope').value(), UnknownMethodError)
  await assert.rejects(registry.invoke('ghost', 'hello').value(), NotFoundError)

  // A second attach of the same name is refused while the first is online.
  await assert.rejects(attach(locator, greeter()), { name: 'ServiceError', category: 10, code: 4 })

  attached.detach()
  assert.equal(attached.live, false)
  await until(registry, () => registry.get('greeter').online === false)
  await assert.rejects(locator.resolve('greeter'), NotFoundError)

  attached = await attach(locator, greeter())
  await until(registry, () => registry.get('greeter').online === true)
  assert.deepEqual(await locator.service('greeter').call('hello', 'again').value(), ['hello, again'])
  attached.detach()
  await until(registry, () => registry.get('greeter').online === false)
  // The events come after the registry changed: wait for the fourth.
  while (changes.filter((c) => c[0] === 'greeter').length < 4) await once(registry, 'change')
  assert.deepEqual(changes.filter((c) => c[0] === 'greeter'), [['greeter', true], ['greeter', false], ['greeter', true], ['greeter', false]])
  assert.equal(registry.get('ghost'), null)
  server.close()
})

test('host, publish and registry.add', async () => {
  const server = new LocatorServer()
  const locator = server.locator()
  const hosted = host(greeter('hosted'), '127.0.0.1:0')
  const local = host(greeter('local'))
  try {
    assert.ok(hosted instanceof Hosted)
    assert.match(hosted.endpoint, /^127\.0\.0\.1:\d+$/)
    await hosted.publish(locator)
    const e = server.registry.get('hosted')
    assert.equal(e.online, true)
    assert.match(e.origin, /^published by /)
    assert.deepEqual(e.endpoints, [hosted.endpoint])
    assert.deepEqual(await locator.service('hosted').call('add', 20, 22).value(), [42])

    server.registry.add(local)
    assert.equal(server.registry.get('local').origin, 'local')
    assert.deepEqual(await locator.service('local').call('hello', 'x').value(), ['hello, x'])

    hosted.unpublish()
    await until(server.registry, () => server.registry.get('hosted').online === false)
  } finally {
    hosted.close()
    local.close()
    server.close()
  }
})

test('the end of a connection fails the calls in progress (DisconnectedError)', async () => {
  let answer
  const def = new ServiceDef('never').streaming('wait', (out) => { answer = out })
  const hosted = host(def)
  const server = new LocatorServer()
  const locator = server.locator()
  await hosted.publish(locator)
  try {
    const call = locator.service('never').call('wait')
    const result = call.collect()
    while (!answer) await sleep(5)
    hosted.close()
    await assert.rejects(result, (e) => {
      assert.ok(e instanceof DisconnectedError)
      assert.match(e.code, /^E[A-Z]+$/)
      assert.equal(typeof e.errno, 'number')
      return true
    })
  } finally {
    server.close()
  }
})

test('Locator failover: the first endpoint is dead', async () => {
  const server = new LocatorServer()
  server.addDemoServices()
  const dead = net.createServer()
  await new Promise((resolve) => dead.listen(0, '127.0.0.1', resolve))
  const deadPort = dead.address().port
  await new Promise((resolve) => dead.close(resolve))
  try {
    const locator = new Locator([`127.0.0.1:${deadPort}`, server.endpoint])
    assert.deepEqual(locator.endpoints, [`127.0.0.1:${deadPort}`, server.endpoint])
    const r = await locator.resolve('math')
    assert.equal(r.name, 'math')
    assert.deepEqual(await locator.service('math').call('mul', 6, 7).value(), [42])
    // Only dead endpoints: a ConnectError naming each.
    await assert.rejects(new Locator([`127.0.0.1:${deadPort}`]).resolve('math'), (e) => {
      assert.ok(e instanceof ConnectError)
      assert.equal(e.code, 'ECONNREFUSED')
      assert.deepEqual(e.tried.map((t) => [t.endpoint, t.code]), [[`127.0.0.1:${deadPort}`, 'ECONNREFUSED']])
      return true
    })
  } finally {
    server.close()
  }
})

test('a LocatorServer on a Unix socket', async () => {
  const where = sockPath('locator')
  const server = new LocatorServer(where)
  server.addDemoServices()
  const locator = new Locator(where)
  const attached = await attach(locator, greeter('unix'))
  try {
    assert.equal(server.endpoint, where)
    assert.deepEqual(await locator.service('math').call('sub', 50, 8).value(), [42])
    assert.deepEqual(await server.locator().service('unix').call('hello', 'socket').value(), ['hello, socket'])
    assert.deepEqual(server.registry.list().map((e) => e.name), ['echo', 'kv', 'logging', 'math', 'unix'])
  } finally {
    attached.detach()
    server.close()
  }
})

test('a Locator that never answers: TimeoutError', async () => {
  const sockets = []
  const mute = net.createServer((s) => sockets.push(s))
  await new Promise((resolve) => mute.listen(0, '127.0.0.1', resolve))
  try {
    const locator = new Locator(`127.0.0.1:${mute.address().port}`, { requestTimeout: 200 })
    await assert.rejects(locator.resolve('x'), (e) => {
      assert.ok(e instanceof TimeoutError)
      assert.equal(e.code, 'ETIMEDOUT')
      return true
    })
  } finally {
    for (const s of sockets) s.destroy()
    mute.close()
  }
  assert.throws(() => new Locator('127.0.0.1:1', { requestTimeout: -1 }), { code: 'ERR_OUT_OF_RANGE' })
})

test('Logger: the demo logging service with verbosity warning', async () => {
  const server = new LocatorServer()
  server.addDemoServices({ verbosity: 'warning' })
  const logs = []
  server.on('log', (r) => logs.push(r))
  const logger = new Logger(server.locator(), 'app/node-test')
  assert.ok(logger instanceof Logger)
  assert.equal(logger.source, 'app/node-test')
  try {
    assert.equal(await logger.info('not sent'), false)
    assert.equal(await logger.debug('not sent either'), false)
    assert.equal(await logger.error('sent', { request: 7 }), true)
    assert.equal(await logger.warning('sent too'), true)
    assert.equal(await logger.emit('info', 'not sent'), false)
    assert.equal(await logger.emit(3, 'by number'), true)
    assert.throws(() => logger.emit('loud', 'x'), { code: 'ERR_INVALID_ARG_TYPE' })
    while (logs.length < 3) await sleep(5)
    assert.deepEqual(logs, [
      { level: 'error', source: 'app/node-test', message: 'sent' },
      { level: 'warning', source: 'app/node-test', message: 'sent too' },
      { level: 'error', source: 'app/node-test', message: 'by number' }])
  } finally {
    server.close()
  }
})

test('long streams arrive whole and in order', async () => {
  const server = new LocatorServer()
  server.addDemoServices()
  const locator = server.locator()
  const attached = await attach(locator, greeter('long'))
  try {
    const n = 20000
    const replies = await locator.service('long').call('count', n).collect()
    assert.equal(replies.length, n + 1)
    for (let i = 0; i < n; i++) assert.equal(replies[i].args[0], i)
    assert.equal(replies[n].name, 'close')
    // The demo echo: one write per argument, through the Locator's proxy too.
    const args = Array.from({ length: 3000 }, (_, i) => `arg-${i}`)
    const echoed = await locator.service('echo').call('echo', ...args).collect()
    assert.deepEqual(echoed.slice(0, -1).map((r) => r.args[0]), args)
    let seen = 0
    for await (const r of server.registry.invoke('long', 'count', [n])) {
      if (r.name === 'write') assert.equal(r.args[0], seen++)
    }
    assert.equal(seen, n)
  } finally {
    attached.detach()
    server.close()
  }
})

test('a streaming handler retries writes refused with EAGAIN: 48 MiB arrive whole', async () => {
  const chunk = Buffer.alloc(1 << 20, 7)
  let refused = 0
  const blobs = (name) => new ServiceDef(name).streaming('blobs', (out, n) => {
    let i = 0
    const go = () => {
      try {
        while (i < n) { out.write(chunk, i); i++ }
        out.close()
      } catch (e) {
        if (e.code !== 'EAGAIN') throw e
        refused++
        setTimeout(go, 1)
      }
    }
    go()
  })
  const server = new LocatorServer()
  const locator = server.locator()
  const hosted = host(blobs('hosted-blobs'))
  await hosted.publish(locator)
  const attached = await attach(locator, blobs('attached-blobs'))
  try {
    const check = (replies) => {
      assert.equal(replies.length, 49)
      replies.slice(0, -1).forEach((r, i) => { assert.equal(r.args[0].length, 1 << 20); assert.equal(r.args[1], i) })
      assert.equal(replies[48].name, 'close')
    }
    check(await locator.service('hosted-blobs').call('blobs', 48).collect())
    // Over the attaching client's own connection.
    check(await server.registry.invoke('attached-blobs', 'blobs', [48]).collect())
    console.log(`# 2 × 48 MiB from handlers: ${refused} writes refused with EAGAIN and retried`)
  } finally {
    attached.detach()
    hosted.close()
    server.close()
  }
})

test('Node exits by itself once servers are closed and services detached; stays while they are open', async () => {
  const pkg = JSON.stringify(path.join(__dirname, '..'))
  const done = spawn(process.execPath, ['-e', `
    const { LocatorServer, ServiceDef, attach, host } = require(${pkg})
    ;(async () => {
      const server = new LocatorServer()
      server.addDemoServices()
      const locator = server.locator()
      const attached = await attach(locator, new ServiceDef('x').primitive('p', () => 1))
      const hosted = host(new ServiceDef('y').primitive('p', () => 2))
      await hosted.publish(locator)
      const a = await locator.service('x').call('p').value()
      const b = await locator.service('y').call('p').value()
      const c = await locator.service('math').call('add', 1, 2).value()
      attached.detach()
      hosted.close()
      server.close()
      console.log('done', a[0], b[0], c[0])
    })()
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  done.stdout.on('data', (d) => { out += d })
  const [status] = await once(done, 'exit', 30000)
  assert.equal(status, 0)
  assert.equal(out, 'done 1 2 3\n')

  const open = spawn(process.execPath, ['-e', `
    const { LocatorServer } = require(${pkg})
    const server = new LocatorServer()
    console.log('listening')
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  let exited = false
  open.on('exit', () => { exited = true })
  await once(open.stdout, 'data')
  await sleep(500)
  assert.equal(exited, false)
  open.kill()
})

const SERVICE_JS = path.join(__dirname, '..', 'examples', 'service.js')

function runService (args) {
  const p = spawn(process.execPath, [SERVICE_JS, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let err = ''
  p.stderr.on('data', (d) => { err += d })
  const lines = readline.createInterface({ input: p.stdout })
  const firstLine = new Promise((resolve) => {
    lines.once('line', resolve)
    lines.once('close', () => resolve(null))
  })
  const exited = new Promise((resolve) => p.on('exit', (status) => resolve({ status, err })))
  return { p, firstLine, exited }
}

test('examples/service.js: attached, its three methods called, detached at stdin EOF', async () => {
  const server = new LocatorServer()
  const locator = server.locator()
  const child = runService(['--locator', server.endpoint, '--name', 'node-echo'])
  try {
    assert.equal(await child.firstLine, 'ready node-echo')
    const e = server.registry.get('node-echo')
    assert.equal(e.online, true)
    assert.equal(e.version, 1)
    assert.match(e.origin, /^attached by /)
    const svc = locator.service('node-echo')
    assert.deepEqual(await svc.call('ping', 1, 'two', [3], null).value(), [1, 'two', [3], null])
    assert.deepEqual(await svc.call('ping').value(), [])
    const chunks = await svc.call('count', 5).collect()
    assert.deepEqual(chunks, [0, 1, 2, 3, 4].map((i) => ({ name: 'write', args: [i] })).concat([{ name: 'close', args: [] }]))
    await assert.rejects(svc.call('fail').value(), { name: 'ServiceError', category: 42, code: 7, message: 'failed on request' })
    assert.deepEqual(await server.registry.invoke('node-echo', 'ping', ['via registry']).value(), ['via registry'])
    child.p.stdin.end()
    const { status } = await child.exited
    assert.equal(status, 0)
    await until(server.registry, () => server.registry.get('node-echo').online === false)
  } finally {
    child.p.kill()
    server.close()
  }
})

test('examples/service.js: killed, its service goes offline; bad arguments and no Locator exit 1', async () => {
  const server = new LocatorServer()
  const child = runService(['--locator', server.endpoint, '--name', 'doomed'])
  assert.equal(await child.firstLine, 'ready doomed')
  assert.equal(server.registry.get('doomed').online, true)
  child.p.kill('SIGKILL')
  await child.exited
  await until(server.registry, () => server.registry.get('doomed').online === false)
  server.close()

  const dead = net.createServer()
  await new Promise((resolve) => dead.listen(0, '127.0.0.1', resolve))
  const port = dead.address().port
  await new Promise((resolve) => dead.close(resolve))
  for (const args of [['--locator', `127.0.0.1:${port}`, '--name', 'x'], ['--name', 'x'], ['--bogus']]) {
    const c = runService(args)
    assert.equal(await c.firstLine, null)
    const { status, err } = await c.exited
    assert.equal(status, 1)
    assert.equal(err.trim().split('\n').length, 1, err)
    assert.match(err, /^service: /)
  }
})

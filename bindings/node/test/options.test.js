'use strict'
// Channel options go through the core's option table (sluice_core::host):
// the shared cases of tests/options/cases.json (also run through C and
// Python) must give the same verdict and error text here, with the Node
// names and milliseconds; its "settings" cases (also run through Python)
// the same through the core's settings table (configure, setting).

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { listen, connect, Channel, options, settings, configure, setting, errnoNames, errnoText } = require('..')

const casesPath = path.join(__dirname, '..', '..', '..', 'tests', 'options', 'cases.json')
const { cases, settings: settingCases } = JSON.parse(fs.readFileSync(casesPath, 'utf8'))
const specs = options()
const jsName = new Map(specs.map((s) => [s.name, s.js]))

/** A case's "set" with the Node names. */
function nodeOptions (set) {
  const o = {}
  for (const [k, v] of Object.entries(set)) {
    assert.ok(jsName.has(k), `cases.json names an option the table does not have: ${k}`)
    o[jsName.get(k)] = v
  }
  return o
}

/** The case's error text in Node's words. */
function nodeError (text) {
  return text.replace(/\{(\w+)\}/g, (m, k) => k === 'unit' ? 'milliseconds' : (jsName.get(k) ?? m))
}

/** Validates `opts` without a peer: a server on a free port, closed at once. */
function check (opts) {
  const srv = listen('127.0.0.1:0', opts)
  srv.close()
}

test('options() lists the core table with both names, kind, default and doc', () => {
  assert.ok(specs.length >= 19)
  const names = specs.map((s) => s.js)
  for (const n of ['maxFrameSize', 'highWaterMark', 'lowWaterMark', 'maxQueued', 'connectTimeout', 'closeLinger',
    'maxPending', 'readSize', 'frameTimeout', 'readIdleTimeout', 'maxSessions', 'zeroCopyThreshold', 'batch',
    'dialect', 'protocol', 'role', 'profile', 'lenient', 'headerTableSize']) {
    assert.ok(names.includes(n), n)
  }
  for (const s of specs) {
    assert.equal(typeof s.name, 'string')
    assert.equal(typeof s.kind, 'string')
    assert.equal(typeof s.default, 'string')
    assert.ok(s.doc.length > 0)
  }
  const mfs = specs.find((s) => s.js === 'maxFrameSize')
  assert.deepEqual([mfs.name, mfs.kind, mfs.min, mfs.max], ['max_frame_size', 'count', 16, 4294967295])
})

for (const [i, c] of cases.entries()) {
  const opts = nodeOptions(c.set)
  test(`cases.json #${i}: ${JSON.stringify(opts)} → ${c.ok ? 'ok' : 'error'}`, () => {
    if (c.ok) {
      check(opts)
    } else {
      assert.throws(() => check(opts), (err) => {
        assert.equal(err.message, nodeError(c.error))
        assert.equal(err.name, 'RangeError')
        assert.equal(err.code, 'ERR_INVALID_ARG_VALUE')
        return true
      })
    }
  })
}

// Settings: names not in the table stay as they are (the cases' unknown
// names); the error's placeholders name settings.
const settingSpecs = settings()
const settingJs = new Map(settingSpecs.map((s) => [s.name, s.js]))
const nodeSettings = (set) => Object.fromEntries(Object.entries(set).map(([k, v]) => [settingJs.get(k) ?? k, v]))
const settingError = (text) => text.replace(/\{(\w+)\}/g, (m, k) => k === 'unit' ? 'milliseconds' : (settingJs.get(k) ?? m))

for (const [i, c] of settingCases.entries()) {
  const set = nodeSettings(c.set)
  test(`cases.json settings #${i}: ${JSON.stringify(set)} → ${c.ok ? 'ok' : 'error'}`, () => {
    const saved = Object.fromEntries(settingSpecs.map((s) => [s.js, setting(s.js)]))
    try {
      if (c.ok) {
        configure(set)
      } else {
        assert.throws(() => configure(set), (err) => {
          assert.equal(err.message, settingError(c.error))
          assert.equal(err.name, 'RangeError')
          assert.equal(err.code, 'ERR_INVALID_ARG_VALUE')
          return true
        })
      }
      for (const [name, value] of Object.entries(nodeSettings(c.get ?? {}))) {
        assert.equal(setting(name), value, name)
      }
    } finally {
      // The cases never change ioThreads, and once the runtime runs it can
      // no longer be set.
      const { ioThreads, ...restore } = saved
      configure(restore)
    }
    assert.deepEqual(Object.fromEntries(settingSpecs.map((s) => [s.js, setting(s.js)])), saved)
  })
}

test('every entry point uses the table: unknown keys, wrong types, watermarks', () => {
  assert.throws(() => check({ nope: 1 }), { name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', message: 'nope: unknown option' })
  assert.throws(() => connect('127.0.0.1:1', { maxFrameSize: 0 }), { message: 'maxFrameSize: must be a whole number from 16 to 4294967295, got 0' })
  assert.throws(() => new Channel('/nonexistent.sock', { readSize: 1.5 }), { message: 'readSize: must be a whole number from 4096 to 1073741824, got 1.5' })
  assert.throws(() => check({ maxFrameSize: {} }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => check({ highWaterMark: 10, lowWaterMark: 11 }), { message: 'lowWaterMark: must not exceed highWaterMark (10), got 11' })
  // undefined is skipped, null leaves the default (timeouts: no limit).
  check({ maxFrameSize: undefined, highWaterMark: null, connectTimeout: null })
  // Inherited properties are not options.
  check(Object.create({ nope: 1 }))
})

test('errno names and texts come from the core', () => {
  const names = errnoNames()
  assert.equal(names[104], 'ECONNRESET')
  assert.equal(names[105], 'ENOBUFS')
  assert.equal(names[74], 'EBADMSG')
  assert.match(errnoText(74), /not a valid frame/)
})

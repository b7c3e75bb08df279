'use strict'
// The process-wide settings: configure({...}) and setting(name) through the
// core's settings table (the one behind C's sluice_set and Python's
// sluice.configure), durations in milliseconds.

const test = require('node:test')
const assert = require('node:assert/strict')
const sluice = require('..')
const { configure, setting, settings } = sluice

test('settings() lists the core settings table', () => {
  const specs = settings()
  assert.deepEqual(specs.map((s) => s.js), ['maxServiceConnections', 'serviceIdleTimeout', 'ioThreads'])
  assert.deepEqual(specs.map((s) => s.name), ['max_service_connections', 'service_idle_timeout', 'io_threads'])
  const max = specs[0]
  assert.deepEqual([max.kind, max.min, max.max], ['count', 1, 4294967295])
  assert.equal(specs[1].kind, 'timeout')
  assert.equal(specs[2].max, 1024)
  for (const s of specs) assert.ok(s.doc.length > 0 && s.default.length > 0)
})

test('serviceIdleTimeout in milliseconds; 0 and null turn it off', () => {
  try {
    configure({ serviceIdleTimeout: 1500 })
    assert.equal(setting('serviceIdleTimeout'), 1500)
    configure({ serviceIdleTimeout: null })
    assert.equal(setting('serviceIdleTimeout'), null)
    configure({ serviceIdleTimeout: 2000 })
    assert.equal(setting('serviceIdleTimeout'), 2000)
    configure({ serviceIdleTimeout: 0 })
    assert.equal(setting('serviceIdleTimeout'), null)
  } finally {
    configure({ serviceIdleTimeout: 300000 })
  }
  assert.equal(setting('serviceIdleTimeout'), 300000)
})

test('counts: set, read back, null leaves them', () => {
  const n = setting('maxServiceConnections')
  assert.ok(Number.isInteger(n) && n >= 1)
  try {
    configure({ maxServiceConnections: n + 1 })
    assert.equal(setting('maxServiceConnections'), n + 1)
    configure({ maxServiceConnections: null, ioThreads: undefined })
    assert.equal(setting('maxServiceConnections'), n + 1)
  } finally {
    configure({ maxServiceConnections: n })
  }
  assert.ok(Number.isInteger(setting('ioThreads')))
})

test('refusals carry the core text', () => {
  const n = setting('maxServiceConnections')
  const refused = (message) => ({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', message })
  assert.throws(() => configure({ maxServiceConnections: 0 }),
    refused('maxServiceConnections: must be a whole number from 1 to 4294967295, got 0'))
  assert.throws(() => configure({ noSuch: 1 }), refused('noSuch: unknown setting'))
  assert.throws(() => setting('noSuch'), refused('noSuch: unknown setting'))
  // The C/Python names are not the Node names.
  assert.throws(() => configure({ service_idle_timeout: 1 }), refused('service_idle_timeout: unknown setting'))
  assert.throws(() => configure({ serviceIdleTimeout: -1 }),
    refused('serviceIdleTimeout: must be a number of milliseconds from 0 to 1000000000 (0 or null: never), got -1'))
  // Keys are checked before anything is set.
  assert.throws(() => configure({ maxServiceConnections: n + 7, noSuch: 1 }), refused('noSuch: unknown setting'))
  assert.equal(setting('maxServiceConnections'), n)
  // Values of a type no setting takes, and no object at all: TypeErrors.
  assert.throws(() => configure({ maxServiceConnections: {} }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => configure({ noSuch: {} }), refused('noSuch: unknown setting'))
  assert.throws(() => configure(5), { name: 'TypeError' })
  configure({})
  assert.equal(setting('maxServiceConnections'), n)
})

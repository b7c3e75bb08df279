'use strict'
// The Node quick start of the top-level README runs as written (saved as
// quickstart.js in bindings/node) and exits by itself.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

test('README quick start', (t) => {
  const readme = path.join(__dirname, '..', '..', '..', 'README.md')
  if (!fs.existsSync(readme)) return t.skip('no README (package used outside the repository)')
  const text = fs.readFileSync(readme, 'utf8')
  const section = text.slice(text.indexOf('### Node (`bindings/node`)'))
  const code = /```js\n([\s\S]*?)```/.exec(section)[1]
  const file = path.join(__dirname, '..', `quickstart-${process.pid}.js`)
  fs.writeFileSync(file, code)
  try {
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20000 })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'worker 6d0b4c1e is up\ninvoke echo on 2\nreply PING\nworker: socket error 108\n')
  } finally {
    fs.unlinkSync(file)
  }
})

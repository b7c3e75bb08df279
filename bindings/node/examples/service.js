'use strict'
// A service provided over a Locator connection: the Node version of the
// demo service program (the Rust, C and Python ones follow the same
// contract).
//
//   usage: node examples/service.js --locator HOST:PORT --name NAME
//
// Attaches the service NAME (version 1) to the Locator with the methods
// ping(args...) (answers value(args...)), count(n) (writes [0] … [n-1], then
// closes) and fail() (answers error([42, 7], "failed on request")); prints
// `ready NAME` once attached, and stays until its stdin reaches end of file,
// then detaches and exits 0. Errors: one line on stderr, exit 1.

const { Locator, ServiceDef, ServiceError, attach } = require('..')

function fail (message) {
  process.stderr.write(`service: ${message}\n`)
  process.exit(1)
}

const usage = 'usage: service --locator HOST:PORT --name NAME'
let locator
let name
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--locator' && i + 1 < argv.length) locator = argv[++i]
  else if (argv[i] === '--name' && i + 1 < argv.length) name = argv[++i]
  else fail(`unknown argument '${argv[i]}' (${usage})`)
}
if (!locator || !name) fail(usage)

const def = new ServiceDef(name, 1)
  .primitive('ping', (...args) => args)
  .streaming('count', (out, n) => {
    const k = Number.isInteger(n) && n > 0 ? n : 0
    for (let i = 0; i < k; i++) out.write(i)
    out.close()
  })
  .primitive('fail', () => { throw new ServiceError(42, 7, 'failed on request') })

let loc
try {
  loc = new Locator(locator, { requestTimeout: 10000 })
} catch (e) {
  fail(`bad locator endpoint '${locator}': ${e.message}`)
}

attach(loc, def).then((attached) => {
  process.stdout.write(`ready ${name}\n`)
  process.stdin.on('data', () => {})
  process.stdin.on('end', () => {
    attached.detach()
    process.exitCode = 0
  })
  process.stdin.resume()
}, (e) => fail(`cannot attach to ${locator}: ${e.message}`))

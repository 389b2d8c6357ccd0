'use strict'
// Errors: each kind its own Error subclass, with the position of the bad key or line.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const tripline = require('..')
const { Engine } = tripline

const write = (name, text) => {
  const p = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tripline-node-')), name)
  fs.writeFileSync(p, text)
  return p
}

const located = (cls, p, line, column) => (err) => {
  assert.ok(err instanceof cls, `${err.name}: ${err.message}`)
  assert.ok(err instanceof tripline.TriplineError && err instanceof Error)
  assert.deepEqual([err.path, err.line, err.column], [p, line, column])
  return true
}

test('an unknown key is a ConfigError at that key', () => {
  const p = write('t.toml', 'stock_rules = true\n\n[[rule]]\nuse = "aws/lambda-errors"\nparms = { function = "f" }\n')
  assert.throws(() => Engine.fromConfig(p), (err) => {
    located(tripline.ConfigError, p, 5, 1)(err)
    assert.equal(err.code, 'ERR_TRIPLINE_CONFIG')
    assert.ok(err.message.startsWith(`${p}:5:1: unknown field \`parms\``), err.message)
    return true
  })
})

test('a bad value points at the value; an unknown rule at its use', () => {
  const p = write('t.toml', '[[rule]]\nuse = "worker/queue-depth"\nfor = "soon"\n[sources.prometheus]\ntype = "prometheus"\nurl = "http://127.0.0.1:9"\n')
  assert.throws(() => Engine.fromConfig(p), located(tripline.ConfigError, p, 3, 7))
  const q = write('t.toml', '\n\n[[rule]]\nname = "x"\nuse = "no/such-rule"\n')
  assert.throws(() => Engine.fromConfig(q), located(tripline.ConfigError, q, 5, 7))
})

test('several problems are each in errors', () => {
  const p = write('t.toml', '[[rule]]\nname = "a"\nuse = "no/one"\n\n[[rule]]\nname = "b"\nuse = "no/two"\n')
  assert.throws(() => Engine.fromConfig(p), (err) => {
    assert.deepEqual(err.errors.map((e) => [e.line, e.column]), [[3, 7], [7, 7]])
    assert.ok(err.errors.every((e) => e instanceof tripline.ConfigError))
    return true
  })
})

test('a missing file is a ConfigError with its cause', () => {
  const p = path.join(os.tmpdir(), 'tripline-absent', 'absent.toml')
  assert.throws(() => Engine.fromConfig(p), (err) => {
    assert.ok(err instanceof tripline.ConfigError)
    assert.equal(err.path, p)
    assert.ok(err.cause instanceof Error)
    return true
  })
})

test('a rule that does not parse is a RuleError at its line', () => {
  assert.throws(
    () => Engine.build({ stockRules: false, ruleSources: [{ origin: 'inline.rhai', text: 'fn evaluate(d, p) {\n  let = 1;\n}\n' }] }),
    (err) => {
      assert.ok(err instanceof tripline.RuleError)
      assert.deepEqual([err.path, err.line, err.code], ['inline.rhai', 2, 'ERR_TRIPLINE_RULE'])
      return true
    },
  )
})

test('builder mistakes are ConfigErrors; a store that cannot open is a StoreError', () => {
  assert.throws(() => Engine.build({ instances: [{ name: 'q', rule: 'worker/queue-depth', params: { treshold: 1 } }] }), /has no parameter/)
  assert.throws(() => Engine.build({ instances: [{ name: 'q', rule: 'worker/queue-depth', for: 'soon' }] }), tripline.ConfigError)
  assert.throws(() => Engine.build({ sources: { prometheus: { type: 'prometheus', ulr: 'x' } } }), (err) => err instanceof tripline.ConfigError && err.path === '<builder>')
  assert.throws(() => Engine.build({ store: os.tmpdir() }), (err) => err instanceof tripline.StoreError && err.code === 'ERR_TRIPLINE_STORE')
})

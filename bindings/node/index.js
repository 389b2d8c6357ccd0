'use strict'
// The `tripline` package: the napi-rs addon (tripline.node, built by `npm run build`) with its
// error classes registered, so every error it throws or rejects with is one of them.

const errors = require('./errors.js')
const native = require('./tripline.node')

native.__registerClasses({
  ...errors,
  // A receiver as the engine calls it: always a Promise, so a throw and a rejection are the
  // same failed delivery (kept in the outbox and retried).
  wrapReceiver: (fn) => (notification) =>
    Promise.resolve()
      .then(() => fn(notification))
      .then(() => undefined),
})

module.exports = {
  Engine: native.Engine,
  testRules: native.testRules,
  ...errors,
}

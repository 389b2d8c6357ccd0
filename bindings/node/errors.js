'use strict'
// Errors thrown (or rejected) by Tripline: each kind its own Error subclass. An error found at a
// place in a file (a config key, a rule's line) carries `path`, `line` and `column` of the first
// problem; `errors` lists each problem when there were several; an I/O failure is its `cause`.

class TriplineError extends Error {
  constructor(message) {
    super(message)
    this.name = new.target.name
    this.code = 'ERR_TRIPLINE_STATE'
    this.path = null
    this.line = null
    this.column = null
    this.errors = []
  }
}

class ConfigError extends TriplineError {}
class RuleError extends TriplineError {}
class SourceError extends TriplineError {}
class StoreError extends TriplineError {}
class InvalidArgument extends TriplineError {}

module.exports = { TriplineError, ConfigError, RuleError, SourceError, StoreError, InvalidArgument }

'use strict'
// index.d.ts = the error classes (errors.js) + the declarations napi-rs generated from the Rust
// source (native.d.ts), so the package's types always follow the addon.
const fs = require('node:fs')
const path = require('node:path')

const dir = path.join(__dirname, '..')
const generated = fs.readFileSync(path.join(dir, 'native.d.ts'), 'utf8')
  .replace(/^export declare function __registerClasses\(.*\): void\n/m, '')
const errors = `
/** Anything Tripline refuses or fails at. */
export declare class TriplineError extends Error {
  /** ERR_TRIPLINE_CONFIG, _RULE, _SOURCE, _STORE, _VALUE or _STATE. */
  code: string
  /** The file of the (first) problem, when it has one. */
  path: string | null
  /** 1-based line of the problem in \`path\`. */
  line: number | null
  /** 1-based column of the problem in \`path\`. */
  column: number | null
  /** Each problem when several were found at once. */
  errors: TriplineError[]
  /** With \`raiseOnFailure\`: the cycle's report. */
  report?: CycleReport
}
/** A config file, or the builder's settings, is invalid. */
export declare class ConfigError extends TriplineError {}
/** A rule does not load, or is used wrongly. */
export declare class RuleError extends TriplineError {}
/** A data source could not be set up or failed. */
export declare class SourceError extends TriplineError {}
/** The alert store failed. */
export declare class StoreError extends TriplineError {}
/** A value passed to Tripline is out of range or of the wrong shape. */
export declare class InvalidArgument extends TriplineError {}
`
fs.writeFileSync(path.join(dir, 'index.d.ts'), generated.trimEnd() + '\n' + errors)
fs.unlinkSync(path.join(dir, 'native.d.ts'))

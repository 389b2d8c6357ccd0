//! The engine through the CLI: check, eval, state across processes, sandboxed rules.

//! End-to-end tests, one binary (ripgrep's habit: faster to build than one binary per file).
//! Each module is an area of the flow; `support` starts the real parts they need.

mod support;

mod aws;
mod backtest;
mod check;
mod daemon;
mod engine;
mod examples;
mod hostile;
mod ingest;
mod notify;
mod sources;
mod store;

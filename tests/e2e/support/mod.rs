//! Starting real parts and running the binary.

pub mod bin;
pub mod postgres;
pub mod prometheus;
pub mod redis;

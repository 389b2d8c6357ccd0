//! Starting real parts and running the binary.

pub mod bin;
pub mod daemon;
pub mod http;
pub mod moto;
pub mod postgres;
pub mod prometheus;
pub mod redis;

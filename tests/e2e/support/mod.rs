//! Starting real parts and running the binary.

pub mod bin;
pub mod daemon;
pub mod http;
pub mod receiver;

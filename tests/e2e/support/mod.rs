//! Starting real parts and running the binary.

pub mod bin;
pub mod receiver;

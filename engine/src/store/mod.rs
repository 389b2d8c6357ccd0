//! Durable state: the implementations of the store traits the stages own (alerts, pipeline
//! state, outbox). SQLite is the embedded default; a DynamoDB implementation serves Lambda and
//! replicas. This module depends on the stages, never the reverse.

pub mod dynamodb;
mod sqlite;

pub use dynamodb::{DynamoStore, DynamodbConfig};
pub use sqlite::{MemoryConfig, SqliteConfig, SqliteStore};

pub use crate::alert::AlertStore;
pub use crate::notify::outbox::OutboxStore;
pub use crate::pipeline::PipelineStore;

/// Everything a whole engine keeps: the store each stage owns (`AlertStore` in `alert`,
/// `PipelineStore` in `pipeline`, `OutboxStore` in `notify::outbox`), in one object. Implemented
/// for every type that implements the three.
pub trait Store: AlertStore + PipelineStore + OutboxStore {}

impl<T: AlertStore + PipelineStore + OutboxStore + ?Sized> Store for T {}

//! The `Store` contract, written once over `Arc<dyn Store>` and run against SQLite and against
//! DynamoDB on a real moto server; then replicas sharing one moto table.

mod contract;
mod halfway;
mod lambda;
mod replicas;

use crate::support::moto::{Moto, REGION};
use std::sync::Arc;
use tripline::store::{DynamoStore, SqliteStore, Store};

pub fn aws(moto: &Moto) -> tripline::aws::AwsConfig {
    tripline::aws::AwsConfig {
        region: Some(REGION.into()),
        endpoint_url: Some(moto.endpoint()),
        ..Default::default()
    }
}

pub fn credentials_in_env() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

/// A DynamoDB store on a fresh table of `moto`.
pub fn dynamo(moto: &Moto, table: &str) -> Arc<dyn Store> {
    credentials_in_env();
    Arc::new(DynamoStore::new(&aws(moto), table, true).expect("a DynamoDB store"))
}

pub fn sqlite() -> Arc<dyn Store> {
    Arc::new(SqliteStore::in_memory().unwrap())
}

//! Data a host program already has (push mode): a Python Lambda or a Node worker that knows its
//! own numbers pushes series and tables by name, and rules read them with `pushed("name")`.

use super::{FetchContext, Source};
use crate::data::{QueryData, QueryOutcome, Series};
use crate::rule::QuerySpec;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Debug, Default)]
pub struct PushedSource {
    data: RwLock<HashMap<String, QueryData>>,
}

impl PushedSource {
    pub fn push(&self, name: impl Into<String>, data: QueryData) {
        self.data
            .write()
            .expect("pushed data lock")
            .insert(name.into(), data);
    }

    pub fn clear(&self) {
        self.data.write().expect("pushed data lock").clear();
    }
}

#[async_trait]
impl Source for PushedSource {
    async fn fetch(&self, specs: &[QuerySpec], _ctx: &FetchContext) -> Vec<QueryOutcome> {
        let data = self.data.read().expect("pushed data lock");
        specs
            .iter()
            .map(|s| {
                let name = s.str("name").unwrap_or_default();
                // Nothing pushed under that name yet is missing data, not a failure.
                Ok(data
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| QueryData::Series(Series::new(name))))
            })
            .collect()
    }
}

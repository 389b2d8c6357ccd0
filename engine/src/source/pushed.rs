//! Data a host program already has (push mode): a Python Lambda or a Node worker that knows its
//! own numbers pushes series and tables by name, and rules read them with `pushed("name")`.

use super::{FetchContext, Source};
use crate::data::QuerySpec;
use crate::data::{QueryData, QueryOutcome, Series};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::RwLock;

/// The query kinds this source answers and their result shapes: data a host program pushes.
pub const KINDS: &[(&str, super::Shape)] = &[("pushed", super::Shape::Series)];

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

/// A pushed series' window ends where every source's does: at the evaluation instant aligned
/// down to the minute (see `Window`), so `verdict` and `slots` count its buckets back from there,
/// and a point of the minute still in progress is not judged yet. The points themselves are kept
/// as pushed (`sum`, `last`, … see everything the host sent). A series pushed with its own `end`
/// keeps it.
fn slide(series: &mut Series, at: i64) {
    if series.end.is_none() && series.period_secs > 0 {
        let end = super::window_end(at, series.period_secs, series.period_secs);
        series.end = chrono::DateTime::from_timestamp(end, 0);
    }
}

#[async_trait]
impl Source for PushedSource {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        let data = self.data.read().expect("pushed data lock");
        let at = ctx.at.timestamp();
        specs
            .iter()
            .map(|s| {
                let name = s.str("name").unwrap_or_default();
                // Nothing pushed under that name yet is missing data, not a failure.
                let mut d = data
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| QueryData::Series(Series::new(name)));
                match &mut d {
                    QueryData::Series(s) => slide(s, at),
                    QueryData::SeriesSet(set) => set.iter_mut().for_each(|s| slide(s, at)),
                    _ => {}
                }
                Ok(d)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn pushed_buckets_count_back_from_the_evaluation_minute() {
        let t = |m: u32, s: u32| chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, m, s).unwrap();
        let src = PushedSource::default();
        // One-minute points at 10:04:00, 10:05:00, 10:06:00 and one in the minute in progress.
        src.push(
            "depth",
            QueryData::Series(Series::new("depth").with_points(
                60,
                [
                    (t(4, 0), 1.0),
                    (t(5, 0), 2.0),
                    (t(6, 0), 3.0),
                    (t(7, 10), 9.0),
                ],
            )),
        );
        let ctx = FetchContext {
            at: t(7, 42),
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(1),
        };
        let spec = QuerySpec::new("pushed", serde_json::json!({"name": "depth"}));
        let out = src.fetch(&[spec], &ctx).await;
        let Ok(QueryData::Series(s)) = &out[0] else {
            panic!("a series: {out:?}")
        };
        assert_eq!(s.end, Some(t(7, 0)));
        assert_eq!(s.slots(3), vec![Some(1.0), Some(2.0), Some(3.0)]);
        // Everything pushed is still there for `last`, `sum`, …
        assert_eq!(s.last(), Some(9.0));
    }
}

//! The Prometheus, HTTP probe, PostgreSQL and Redis sources against the real servers, started
//! by `support` on loopback (skipped with a note when a server's binary is not configured and
//! `TRIPLINE_REQUIRE_REAL_PARTS` is not `1`).

mod config;
mod faults;
mod http;
mod postgres;
mod prometheus;
mod redis;

use tripline::data::{QueryData, QueryOutcome, Series, SourceFailure, Table};
use tripline::rule::QuerySpec;
use tripline::source::{FetchContext, Source};

/// A cycle at the current instant with `secs` to answer.
pub fn ctx(secs: u64) -> FetchContext {
    FetchContext {
        at: chrono::Utc::now(),
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(secs),
    }
}

pub fn spec(kind: &str, params: serde_json::Value) -> QuerySpec {
    QuerySpec::new(kind, params)
}

/// Fetches one spec.
pub async fn fetch_one(src: &dyn Source, s: QuerySpec) -> QueryOutcome {
    src.fetch(&[s], &ctx(20)).await.remove(0)
}

#[track_caller]
pub fn table(o: &QueryOutcome) -> &Table {
    match o {
        Ok(QueryData::Table(t)) => t,
        other => panic!("expected a table, got {other:?}"),
    }
}

#[track_caller]
pub fn series_set(o: &QueryOutcome) -> &[Series] {
    match o {
        Ok(QueryData::SeriesSet(s)) => s,
        other => panic!("expected an array of series, got {other:?}"),
    }
}

#[track_caller]
pub fn series(o: &QueryOutcome) -> &Series {
    match o {
        Ok(QueryData::Series(s)) => s,
        other => panic!("expected a series, got {other:?}"),
    }
}

#[track_caller]
pub fn failure(o: &QueryOutcome) -> &SourceFailure {
    match o {
        Err(f) => f,
        Ok(d) => panic!("expected a source failure, got {d:?}"),
    }
}

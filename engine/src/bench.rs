//! The workload the benchmarks share (criterion's `engine/benches/engine.rs` and
//! `tripline-bench cycle`, which `bench/run.py` sets beside Prometheus): N instances of one
//! threshold rule over pushed in-memory series. Not part of the supported API.

use crate::data::{QueryData, Series};
use crate::{InstanceSpec, Tripline};

/// The threshold rule: `value > threshold`, one pushed series per instance. The Prometheus
/// comparison evaluates `bench_value{series="sI"} > 100`, one alerting rule per instance.
pub const THRESHOLD_RULE: &str = r#"
const RULE = #{ id: "bench/threshold", severity: "warning", params: #{ series: (), threshold: 100 } };
fn query(p) { #{ s: pushed(p.series) } }
fn evaluate(d, p) {
    let v = d.s.last();
    if v != () && v > p.threshold { fire(#{ summary: "over", value: v, labels: #{ series: p.series } }); }
}
"#;

/// The value of series `sI`: one in ten (`i % 10 == 0`) over the rule's threshold (100).
pub fn threshold_value(i: usize) -> f64 {
    if i.is_multiple_of(10) {
        150.0
    } else {
        50.0
    }
}

/// An engine (stock rules off, in-memory store, no receivers) with `n` instances `iI` of
/// [`THRESHOLD_RULE`], each reading pushed series `sI` holding one point 30 s before `at`.
pub fn threshold_engine(n: usize, at: chrono::DateTime<chrono::Utc>) -> crate::Result<Tripline> {
    let mut b = Tripline::builder()
        .stock_rules(false)
        .rule_source("bench.rhai", THRESHOLD_RULE);
    for i in 0..n {
        b = b.instance(
            InstanceSpec::new(format!("i{i}"), "bench/threshold").param("series", format!("s{i}")),
        );
    }
    let t = b.build()?;
    for i in 0..n {
        t.push(
            format!("s{i}"),
            QueryData::Series(Series::new(format!("s{i}")).with_points(
                60,
                [(at - chrono::Duration::seconds(30), threshold_value(i))],
            )),
        );
    }
    Ok(t)
}

//! The range-fetch layer of a backtest: a `Source` wrapping a configured one that fetches each
//! distinct query once over the whole backtest range before the replay, then answers every
//! instant's `QuerySpec` from that data, exactly as the wrapped source would have answered it at
//! that instant. The rules, windows and state machine stay the engine's own: this layer only
//! changes where the points come from.
//!
//! - CloudWatch (`HistorySupport::MetricRange`): one `GetMetricData` window per spec group at the
//!   finest period every instant's buckets align to, within the 100,800-datapoint limit (longer
//!   ranges are cut in chunks) and CloudWatch's retention by period; each instant's buckets are
//!   re-aggregated locally (Sum, SampleCount, Minimum, Maximum; other statistics are fetched per
//!   instant unless the buckets line up exactly).
//! - Prometheus (`PromQlRange`): one `query_range` per spec (chunks of ≤ 11,000 points); an
//!   instant query at `t` is the range's sample at `t`, a range query is its slice.
//! - Fixtures (`AnyInstant`): asked per instant; they are local.
//! - Anything else has no history: the backtest skips the instances that need it and says so.

use crate::clock::Timestamp;
use crate::data::{Point, QueryData, QueryOutcome, Series, SourceFailure};
use crate::rule::QuerySpec;
use crate::source::{FetchContext, HistorySupport, Source, Window};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// GetMetricData's datapoint limit per call.
const MAX_DATAPOINTS: i64 = 100_800;
/// GetMetricData's queries per call.
const MAX_QUERIES: i64 = 500;
/// Prometheus refuses `query_range` with more points than this per series.
const PROM_MAX_POINTS: i64 = 11_000;

/// How a statistic's fine buckets combine into a coarser one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    Sum,
    Max,
    Min,
    /// Only buckets that line up one to one (Average, percentiles).
    Exact,
}

/// One spec's points over the whole range.
#[derive(Debug)]
enum Prefetched {
    Metric {
        data: Result<(bool, Vec<Series>), SourceFailure>,
        /// Seconds per fetched datapoint.
        fine: i64,
        /// Seconds per bucket answered (the spec's period, or coarser where retention forces).
        period: i64,
        combine: Combine,
    },
    PromQl {
        data: Result<Vec<Series>, SourceFailure>,
        /// `Some(step)` for a range spec, `None` for an instant one.
        range_step: Option<i64>,
    },
}

/// What the layer fetched, for the report's charts: (spec key, series over the whole range).
pub type RangeSeries = Vec<(String, Vec<Series>)>;

pub struct HistorySource {
    kind: String,
    inner: Arc<dyn Source>,
    support: HistorySupport,
    prefetched: RwLock<HashMap<String, Arc<Prefetched>>>,
    /// Notes for the report: periods used, specs answered per instant.
    notes: RwLock<Vec<String>>,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

fn ts(s: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(s, 0).unwrap_or_default()
}

/// The finest period CloudWatch still keeps for data `age_secs` old (1-minute data 15 days,
/// 5-minute 63 days, 1-hour 455 days; sub-minute high-resolution data 3 hours).
pub fn retained_period(age_secs: i64) -> Option<i64> {
    const DAY: i64 = 86_400;
    match age_secs {
        a if a <= 3 * 3600 => Some(1),
        a if a <= 15 * DAY => Some(60),
        a if a <= 63 * DAY => Some(300),
        a if a <= 455 * DAY => Some(3600),
        _ => None,
    }
}

/// The time chunk, in datapoints per query, that fetches `points` datapoints for each of
/// `queries` queries in the fewest `GetMetricData` calls (≤ MAX_DATAPOINTS datapoints and
/// ≤ MAX_QUERIES queries a call, one window per call). Chunks of the full length pack
/// ⌊MAX_DATAPOINTS / points⌋ queries a call: a week of 1-minute data (10,081 points with the first
/// window's minute) fits 9 queries, so 100 queries took 12 calls; chunks of 1,008 points fit 100
/// queries a call and take 11, the least ⌈100 × 10,081 / 100,800⌉ allows.
fn chunk_points(points: i64, queries: usize) -> i64 {
    let points = points.max(1);
    let queries = queries.max(1) as i64;
    let mut best = (i64::MAX, MAX_DATAPOINTS.min(points));
    for k in 1..=queries.min(MAX_QUERIES) {
        let c = (MAX_DATAPOINTS / k).min(points);
        let calls = ((points + c - 1) / c).saturating_mul((queries + k - 1) / k);
        // Fewest calls; among equals the longest chunk (fewer windows to merge).
        if calls < best.0 || (calls == best.0 && c > best.1) {
            best = (calls, c);
        }
    }
    best.1
}

/// A copy of `spec` asking for `[end - range, end)` at `period` (`offset` folded in by the caller).
fn respec(spec: &QuerySpec, extra: &[(&str, String)], drop: &[&str]) -> QuerySpec {
    let mut p = spec.params.as_object().cloned().unwrap_or_default();
    for k in drop {
        p.remove(*k);
    }
    for (k, v) in extra {
        p.insert((*k).to_string(), serde_json::Value::String(v.clone()));
    }
    QuerySpec::new(spec.kind.clone(), serde_json::Value::Object(p))
}

fn metric_window(spec: &QuerySpec, at: Timestamp) -> Result<Window, String> {
    if spec.kind == "cloudwatch" {
        crate::source::cloudwatch::spec::parse(spec, at).map(|m| m.window)
    } else {
        Window::of(spec, at)
    }
}

impl HistorySource {
    pub fn new(kind: &str, inner: Arc<dyn Source>) -> Self {
        HistorySource {
            kind: kind.to_string(),
            support: inner.history(),
            inner,
            prefetched: RwLock::default(),
            notes: RwLock::default(),
        }
    }

    pub fn support(&self) -> HistorySupport {
        self.support
    }

    pub fn requests(&self) -> u64 {
        self.inner.requests()
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.read().expect("notes").clone()
    }

    fn note(&self, n: String) {
        let mut notes = self.notes.write().expect("notes");
        if !notes.contains(&n) {
            notes.push(n);
        }
    }

    /// Fetches every spec over the instants it is asked at. `now` decides CloudWatch retention.
    pub async fn prefetch(
        &self,
        asked: &[(QuerySpec, Arc<Vec<Timestamp>>)],
        now: Timestamp,
        deadline: std::time::Instant,
    ) {
        match self.support {
            HistorySupport::MetricRange => self.prefetch_metrics(asked, now, deadline).await,
            HistorySupport::PromQlRange => self.prefetch_promql(asked, deadline).await,
            HistorySupport::AnyInstant | HistorySupport::None => {}
        }
    }

    async fn prefetch_metrics(
        &self,
        asked: &[(QuerySpec, Arc<Vec<Timestamp>>)],
        now: Timestamp,
        deadline: std::time::Instant,
    ) {
        // (fine period, bucket period, end) → specs and their earliest start: one window per
        // group, so the source packs the group's queries into as few calls as its limits allow.
        struct Planned {
            spec: QuerySpec,
            combine: Combine,
        }
        /// (fine, period, end, on the clock grid).
        type GroupKey = (i64, i64, i64, bool);
        // → (start, specs).
        let mut groups: BTreeMap<GroupKey, (i64, Vec<Planned>)> = BTreeMap::new();
        for (spec, instants) in asked {
            let windows: Result<Vec<Window>, String> =
                instants.iter().map(|t| metric_window(spec, *t)).collect();
            let windows = match windows {
                Ok(w) if !w.is_empty() => w,
                // The per-instant path reports the spec's own error at each instant.
                _ => continue,
            };
            let p = windows[0].period_secs;
            let start = windows
                .iter()
                .map(|w| w.start.timestamp())
                .min()
                .unwrap_or(0);
            let end = windows.iter().map(|w| w.end.timestamp()).max().unwrap_or(0);
            let mut fine = p;
            for w in &windows {
                fine = gcd(fine, (w.start.timestamp() - start).rem_euclid(p));
            }
            let stat = spec.str("stat").unwrap_or("Average");
            let combine = match stat {
                "Sum" | "SampleCount" => Combine::Sum,
                "Maximum" => Combine::Max,
                "Minimum" => Combine::Min,
                _ => Combine::Exact,
            };
            let mut period = p;
            // Coarse retained data comes in clock-aligned buckets (CloudWatch rounds an old
            // StartTime to 5 minutes / an hour): then the fetch follows the clock, else the
            // windows' own phase (they slide, so they need not start on a multiple of `fine`).
            let mut clock = false;
            match retained_period((now.timestamp() - start).max(0)) {
                None => {
                    self.note(format!(
                        "{}: the range starts more than 455 days ago; CloudWatch keeps no data that old",
                        spec.key
                    ));
                }
                Some(kept) if kept > fine => {
                    // Coarser datapoints are all there is: buckets of at least that size.
                    fine = kept;
                    clock = true;
                    period = (period.max(kept) + kept - 1) / kept * kept;
                    self.note(format!(
                        "CloudWatch keeps {kept}s datapoints for data as old as the range's start: \
                         {} was answered with {period}s periods instead of {p}s",
                        spec.params.get("metric").and_then(|m| m.as_str()).unwrap_or(&spec.key)
                    ));
                }
                Some(_) => {}
            }
            if combine == Combine::Exact && fine != period {
                self.note(format!(
                    "{}: the {stat} statistic cannot be re-aggregated from finer datapoints; \
                     fetched once per instant",
                    spec.key
                ));
                continue;
            }
            let g = groups
                .entry((fine, period, end, clock))
                .or_insert((start, vec![]));
            g.0 = g.0.min(start);
            g.1.push(Planned {
                spec: spec.clone(),
                combine,
            });
        }
        for ((fine, period, end, clock), (start, specs)) in groups {
            // The fetched range is cut into `fine` buckets in the windows' phase (every window
            // start and end of the group is `end` plus a multiple of `fine`), or on the clock for
            // coarse retained data; rounding outwards.
            let (start, end) = if clock {
                (
                    start - start.rem_euclid(fine),
                    end + (fine - end.rem_euclid(fine)) % fine,
                )
            } else {
                (start - (start - end).rem_euclid(fine), end)
            };
            // Chunks of at most MAX_DATAPOINTS datapoints per query, as long as packs the group's
            // queries into the fewest calls (a call has one window for all its queries).
            let chunk = chunk_points((end - start) / fine.max(1), specs.len()) * fine;
            let mut cuts = vec![];
            let mut e = end;
            while e > start {
                let s = (e - chunk).max(start);
                cuts.push((s, e));
                e = s;
            }
            cuts.reverse();
            let mut merged: Vec<Result<(bool, Vec<Series>), SourceFailure>> =
                specs.iter().map(|_| Ok((false, vec![]))).collect();
            for (s, e) in cuts {
                let range = e - s;
                let respecs: Vec<QuerySpec> = specs
                    .iter()
                    .map(|p| {
                        respec(
                            &p.spec,
                            &[
                                ("period", format!("{fine}s")),
                                ("range", format!("{range}s")),
                            ],
                            &["offset"],
                        )
                    })
                    .collect();
                // The source computes its own window: check it is the one meant.
                let ok = respecs.iter().all(|r| {
                    metric_window(r, ts(e)).is_ok_and(|w| {
                        w.start.timestamp() == s && w.end.timestamp() == e && w.period_secs == fine
                    })
                });
                let outcomes = if ok {
                    let ctx = FetchContext {
                        at: ts(e),
                        deadline,
                    };
                    self.inner.fetch(&respecs, &ctx).await
                } else {
                    respecs
                        .iter()
                        .map(|_| {
                            Err(SourceFailure {
                                source: self.kind.clone(),
                                message: "backtest: the range window does not line up with the source's windows".into(),
                            })
                        })
                        .collect()
                };
                for (m, o) in merged.iter_mut().zip(outcomes) {
                    let Ok((is_set, acc)) = m else { continue };
                    match o {
                        Err(f) => *m = Err(f),
                        Ok(QueryData::Series(one)) => merge_series(acc, vec![one]),
                        Ok(QueryData::SeriesSet(set)) => {
                            *is_set = true;
                            merge_series(acc, set)
                        }
                        Ok(QueryData::Table(_)) => {
                            *m = Err(SourceFailure {
                                source: self.kind.clone(),
                                message: "a metric query answered a table".into(),
                            })
                        }
                    }
                }
            }
            let mut map = self.prefetched.write().expect("prefetched");
            for (p, data) in specs.into_iter().zip(merged) {
                map.insert(
                    p.spec.key.clone(),
                    Arc::new(Prefetched::Metric {
                        data,
                        fine,
                        period,
                        combine: p.combine,
                    }),
                );
            }
        }
    }

    async fn prefetch_promql(
        &self,
        asked: &[(QuerySpec, Arc<Vec<Timestamp>>)],
        deadline: std::time::Instant,
    ) {
        for (spec, instants) in asked {
            let dur = |name: &str| -> Option<i64> {
                spec.str(name)
                    .and_then(|s| crate::clock::parse_duration(s).ok())
                    .map(|d| d.num_seconds())
            };
            let (Some(first), Some(last)) = (instants.first(), instants.last()) else {
                continue;
            };
            let (first, last) = (first.timestamp(), last.timestamp());
            let planned = match spec.params.get("range") {
                Some(_) => {
                    let (Some(range), step) = (dur("range"), dur("step").unwrap_or(60)) else {
                        continue;
                    };
                    if step <= 0 || range <= 0 || range % step != 0 {
                        None
                    } else {
                        let end = last - last.rem_euclid(step);
                        let start = first - first.rem_euclid(step) - range;
                        Some((start, end, step, Some(step)))
                    }
                }
                None => {
                    let mut step = 0;
                    for w in instants.windows(2) {
                        step = gcd(step, w[1].timestamp() - w[0].timestamp());
                    }
                    let step = if step == 0 { 60 } else { step };
                    // The source aligns a range's end down to its step from the epoch.
                    if last.rem_euclid(step) != 0 {
                        None
                    } else {
                        Some((first, last, step, None))
                    }
                }
            };
            let Some((start, end, step, range_step)) = planned else {
                self.note(format!(
                    "{}: instants do not fall on one step grid; fetched once per instant",
                    spec.key
                ));
                continue;
            };
            let mut acc: Result<Vec<Series>, SourceFailure> = Ok(vec![]);
            let chunk = (PROM_MAX_POINTS - 1) * step;
            let mut s = start;
            while s <= end {
                let e = (s + chunk).min(end);
                let r = respec(
                    spec,
                    &[
                        ("range", format!("{}s", e - s)),
                        ("step", format!("{step}s")),
                    ],
                    &[],
                );
                // A zero-length range is refused by the source: one instant is asked as one.
                let r = if e == s {
                    respec(spec, &[], &["range", "step"])
                } else {
                    r
                };
                let ctx = FetchContext {
                    at: ts(e),
                    deadline,
                };
                let out = self.inner.fetch(std::slice::from_ref(&r), &ctx).await;
                match (out.into_iter().next(), &mut acc) {
                    (_, Err(_)) => {}
                    (Some(Ok(QueryData::SeriesSet(set))), Ok(a)) => merge_series(a, set),
                    (Some(Err(f)), _) => acc = Err(f),
                    (_, _) => {
                        acc = Err(SourceFailure {
                            source: self.kind.clone(),
                            message: "prometheus answered something other than series".into(),
                        })
                    }
                }
                s = e + step;
            }
            self.prefetched.write().expect("prefetched").insert(
                spec.key.clone(),
                Arc::new(Prefetched::PromQl {
                    data: acc,
                    range_step,
                }),
            );
        }
    }

    /// The series fetched over the whole range, per spec, for charts.
    pub fn range_series(&self) -> RangeSeries {
        let map = self.prefetched.read().expect("prefetched");
        let mut out: RangeSeries = map
            .iter()
            .filter_map(|(k, p)| match p.as_ref() {
                Prefetched::Metric {
                    data: Ok((_, s)), ..
                } => Some((k.clone(), s.clone())),
                Prefetched::PromQl { data: Ok(s), .. } => Some((k.clone(), s.clone())),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The answer at `at` from prefetched data, or `None` when the spec was not prefetched.
    fn answer(&self, spec: &QuerySpec, at: Timestamp) -> Option<QueryOutcome> {
        let p = self
            .prefetched
            .read()
            .expect("prefetched")
            .get(&spec.key)
            .cloned()?;
        Some(match p.as_ref() {
            Prefetched::Metric {
                data,
                fine,
                period,
                combine,
            } => {
                let (is_set, all) = match data {
                    Ok(d) => d,
                    Err(f) => return Some(Err(f.clone())),
                };
                let w = match metric_window(spec, at) {
                    Ok(w) => w,
                    Err(m) => {
                        return Some(Err(SourceFailure {
                            source: self.kind.clone(),
                            message: m,
                        }))
                    }
                };
                let sliced: Vec<Series> = all
                    .iter()
                    .map(|s| bucket(s, &w, *fine, *period, *combine))
                    .collect();
                if *is_set {
                    Ok(QueryData::SeriesSet(sliced))
                } else {
                    match sliced.into_iter().next() {
                        Some(s) => Ok(QueryData::Series(s)),
                        None => Err(SourceFailure {
                            source: self.kind.clone(),
                            message: "no result for this query".into(),
                        }),
                    }
                }
            }
            Prefetched::PromQl { data, range_step } => {
                let all = match data {
                    Ok(d) => d,
                    Err(f) => return Some(Err(f.clone())),
                };
                let t = at.timestamp();
                let out = match range_step {
                    None => all
                        .iter()
                        .filter_map(|s| {
                            let i = s.points.partition_point(|p| p.ts.timestamp() < t);
                            let p = s.points.get(i).filter(|p| p.ts.timestamp() == t)?;
                            Some(Series {
                                points: vec![*p],
                                period_secs: 0,
                                end: None,
                                ..s.clone()
                            })
                        })
                        .collect(),
                    Some(step) => {
                        let range = spec
                            .str("range")
                            .and_then(|r| crate::clock::parse_duration(r).ok())
                            .map(|d| d.num_seconds())
                            .unwrap_or(0);
                        let end = t - t.rem_euclid(*step);
                        let start = end - range;
                        all.iter()
                            .filter_map(|s| {
                                let a = s.points.partition_point(|p| p.ts.timestamp() < start);
                                let b = s.points.partition_point(|p| p.ts.timestamp() <= end);
                                (a < b).then(|| Series {
                                    points: s.points[a..b].to_vec(),
                                    period_secs: *step,
                                    end: Some(ts(end + step)),
                                    ..s.clone()
                                })
                            })
                            .collect()
                    }
                };
                Ok(QueryData::SeriesSet(out))
            }
        })
    }
}

/// Appends chunked results to what earlier chunks gave, member by member (matched by labels).
fn merge_series(acc: &mut Vec<Series>, more: Vec<Series>) {
    for s in more {
        match acc
            .iter_mut()
            .find(|a| a.labels == s.labels && a.name == s.name)
        {
            Some(a) => {
                a.points.extend(s.points);
                a.end = s.end;
            }
            None => acc.push(s),
        }
    }
    for a in acc.iter_mut() {
        a.points.sort_by_key(|p| p.ts);
        a.points.dedup_by_key(|p| p.ts);
    }
}

/// One instant's series: the fine points of `w` combined into `period` buckets from `w.start`.
fn bucket(s: &Series, w: &Window, fine: i64, period: i64, combine: Combine) -> Series {
    let start = w.start.timestamp();
    let end = w.end.timestamp();
    let period = period.max(w.period_secs).max(fine);
    let a = s.points.partition_point(|p| p.ts.timestamp() < start);
    let b = s.points.partition_point(|p| p.ts.timestamp() < end);
    let mut points: Vec<Point> = Vec::new();
    let mut cur: Option<(i64, f64)> = None;
    for p in &s.points[a..b] {
        let slot = start + (p.ts.timestamp() - start).div_euclid(period) * period;
        cur = match cur {
            Some((t, v)) if t == slot => Some((
                t,
                match combine {
                    Combine::Sum => v + p.value,
                    Combine::Max => v.max(p.value),
                    Combine::Min => v.min(p.value),
                    Combine::Exact => p.value,
                },
            )),
            other => {
                if let Some((t, v)) = other {
                    points.push(Point {
                        ts: ts(t),
                        value: v,
                    });
                }
                Some((slot, p.value))
            }
        };
    }
    if let Some((t, v)) = cur {
        points.push(Point {
            ts: ts(t),
            value: v,
        });
    }
    Series {
        name: s.name.clone(),
        labels: s.labels.clone(),
        period_secs: period,
        points,
        end: Some(w.end),
        missing: s.missing,
    }
}

#[async_trait]
impl Source for HistorySource {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        let mut out: Vec<Option<QueryOutcome>> =
            specs.iter().map(|s| self.answer(s, ctx.at)).collect();
        let rest: Vec<usize> = (0..specs.len()).filter(|i| out[*i].is_none()).collect();
        if !rest.is_empty() {
            if self.support == HistorySupport::None {
                for i in &rest {
                    out[*i] = Some(Err(SourceFailure {
                        source: self.kind.clone(),
                        message: format!(
                            "the {} source keeps no history: it cannot be backtested",
                            self.kind
                        ),
                    }));
                }
            } else {
                let asked: Vec<QuerySpec> = rest.iter().map(|i| specs[*i].clone()).collect();
                for (i, o) in rest.iter().zip(self.inner.fetch(&asked, ctx).await) {
                    out[*i] = Some(o);
                }
            }
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Err(SourceFailure {
                        source: self.kind.clone(),
                        message: "no result for this query".into(),
                    })
                })
            })
            .collect()
    }

    fn requests(&self) -> u64 {
        self.inner.requests()
    }

    fn history(&self) -> HistorySupport {
        self.support
    }

    /// A fleet is expanded with the source's discovery as it stands (today's `ListMetrics`).
    async fn subjects(
        &self,
        spec: &QuerySpec,
        pattern: &str,
        ctx: &FetchContext,
    ) -> Option<Result<Vec<String>, SourceFailure>> {
        self.inner.subjects(spec, pattern, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls a chunk length costs: windows × calls per window (as the planner packs them).
    fn calls(points: i64, queries: i64, c: i64) -> i64 {
        let per_call = (MAX_DATAPOINTS / c).min(MAX_QUERIES);
        (points + c - 1) / c * ((queries + per_call - 1) / per_call)
    }

    #[test]
    fn chunks_pack_queries_into_the_fewest_calls() {
        // A week of 1-minute points (+ the first window's minute) for 100 queries: 11 calls, the
        // ⌈1,008,100 / 100,800⌉ minimum; whole-range chunks fit 9 queries a call and took 12.
        let c = chunk_points(10_081, 100);
        assert_eq!(calls(10_081, 100, c), 11);
        assert_eq!(calls(10_081, 100, 10_081), 12);
        // Short ranges stay one window; 1,200 queries are ⌈1,200 / 500⌉ calls.
        assert_eq!(chunk_points(5, 1_200), 5);
        assert_eq!(calls(5, 1_200, 5), 3);
        // One query over more than a call's datapoints: cut at the limit.
        assert_eq!(chunk_points(300_000, 1), MAX_DATAPOINTS);
        for (p, q) in [
            (1i64, 1i64),
            (10_080, 1),
            (20_160, 7),
            (100_800, 500),
            (250_000, 3),
        ] {
            let c = chunk_points(p, q as usize);
            assert!((1..=MAX_DATAPOINTS.min(p)).contains(&c), "{p} {q} {c}");
            let least = (p * q + MAX_DATAPOINTS - 1) / MAX_DATAPOINTS;
            assert!(calls(p, q, c) >= least.max((q + MAX_QUERIES - 1) / MAX_QUERIES));
            assert!(
                calls(p, q, c) <= calls(p, q, MAX_DATAPOINTS.min(p)),
                "{p} {q}"
            );
        }
    }

    fn series(points: &[(i64, f64)]) -> Series {
        Series {
            name: "Errors".into(),
            labels: Default::default(),
            period_secs: 60,
            points: points
                .iter()
                .map(|(t, v)| Point {
                    ts: ts(*t),
                    value: *v,
                })
                .collect(),
            end: None,
            missing: Default::default(),
        }
    }

    #[test]
    fn fine_points_combine_into_each_instants_buckets() {
        let s = series(&[(0, 1.0), (60, 2.0), (120, 3.0), (300, 4.0), (360, 5.0)]);
        let w = Window {
            start: ts(60),
            end: ts(360),
            period_secs: 300,
        };
        let b = bucket(&s, &w, 60, 300, Combine::Sum);
        assert_eq!(b.points.len(), 1);
        assert_eq!(b.points[0].ts, ts(60));
        assert_eq!(b.points[0].value, 2.0 + 3.0 + 4.0);
        assert_eq!(b.end, Some(ts(360)));
        let b = bucket(&s, &w, 60, 300, Combine::Max);
        assert_eq!(b.points[0].value, 4.0);
        let w2 = Window {
            start: ts(0),
            end: ts(600),
            period_secs: 300,
        };
        let b = bucket(&s, &w2, 60, 300, Combine::Min);
        assert_eq!(
            b.points.iter().map(|p| p.value).collect::<Vec<_>>(),
            vec![1.0, 4.0]
        );
    }

    /// A fixture that answers metric windows the way CloudWatch does (buckets from the window
    /// start), declared as a metric-range source so the history prefetch plans for it.
    struct RangeFixture(crate::source::FixtureSource);

    #[async_trait]
    impl Source for RangeFixture {
        async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
            self.0.fetch(specs, ctx).await
        }
        fn history(&self) -> HistorySupport {
            HistorySupport::MetricRange
        }
    }

    #[tokio::test]
    async fn prefetched_buckets_follow_sliding_windows_off_the_period_grid() {
        use chrono::TimeZone;
        let t = |h, m| chrono::Utc.with_ymd_and_hms(2026, 11, 1, h, m, 0).unwrap();
        let data: crate::source::FixtureData = toml::from_str(
            r#"
            [[series]]
            match = { metric = "Errors" }
            points = [["2026-11-01T09:58:00Z", 1.0], ["2026-11-01T10:03:00Z", 2.0], ["2026-11-01T10:20:00Z", 4.0]]
            "#,
        )
        .unwrap();
        let h = HistorySource::new(
            "cloudwatch",
            Arc::new(RangeFixture(crate::source::FixtureSource::new(data))),
        );
        let spec = QuerySpec::new(
            "cloudwatch",
            serde_json::json!({"namespace": "AWS/Lambda", "metric": "Errors", "stat": "Sum", "period": "5m", "range": "5m"}),
        );
        // Instants at :07 and :22 (a cron of "0 7,22 * * * *"): windows 10:02–10:07 and 10:17–10:22.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        h.prefetch(
            &[(spec.clone(), Arc::new(vec![t(10, 7), t(10, 22)]))],
            t(12, 0),
            deadline,
        )
        .await;
        for (at, want) in [
            (t(10, 7), vec![(t(10, 2), 2.0)]),
            (t(10, 22), vec![(t(10, 17), 4.0)]),
        ] {
            let ctx = FetchContext { at, deadline };
            let out = h.fetch(std::slice::from_ref(&spec), &ctx).await;
            let Ok(QueryData::Series(s)) = &out[0] else {
                panic!("a series: {out:?}")
            };
            let got: Vec<_> = s.points.iter().map(|p| (p.ts, p.value)).collect();
            assert_eq!(got, want, "at {at}");
        }
    }

    #[test]
    fn retention_by_age() {
        assert_eq!(retained_period(3600), Some(1));
        assert_eq!(retained_period(14 * 86_400), Some(60));
        assert_eq!(retained_period(16 * 86_400), Some(300));
        assert_eq!(retained_period(100 * 86_400), Some(3600));
        assert_eq!(retained_period(500 * 86_400), None);
    }
}

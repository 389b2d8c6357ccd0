//! Packs a cycle's metric queries into as few `GetMetricData` calls as CloudWatch allows.
//!
//! A call has one `StartTime`/`EndTime` for all its queries, so queries are grouped by window;
//! each group is cut into calls of at most 500 queries and 100,800 datapoints (a query's
//! datapoints are its window divided by its period). Ids are `q0`, `q1`, … across the whole plan
//! so every result maps back to exactly one query. Pure: no I/O, tested without AWS.

use crate::clock::Timestamp;
use std::collections::BTreeMap;

/// CloudWatch's per-call limits for `GetMetricData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    pub max_queries: usize,
    pub max_datapoints: u64,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            max_queries: 500,
            max_datapoints: 100_800,
        }
    }
}

/// One concrete metric query: fixed dimensions, one statistic, one window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricQuery {
    pub namespace: String,
    pub metric: String,
    pub stat: String,
    pub dimensions: BTreeMap<String, String>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub period_secs: i64,
}

impl MetricQuery {
    pub fn datapoints(&self) -> u64 {
        let secs = (self.end - self.start).num_seconds().max(0);
        (secs as u64).div_ceil(self.period_secs.max(1) as u64)
    }
}

/// One `GetMetricData` call: a window and `(id, query index)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub start: Timestamp,
    pub end: Timestamp,
    pub queries: Vec<(String, usize)>,
}

/// The plan for a cycle: the calls to make, and the queries that cannot be made at all (one
/// query alone over the datapoint limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub calls: Vec<Call>,
    pub rejected: Vec<(usize, String)>,
}

impl Plan {
    /// The id of each query index that is in some call.
    pub fn ids(&self) -> BTreeMap<usize, String> {
        self.calls
            .iter()
            .flat_map(|c| c.queries.iter().map(|(id, i)| (*i, id.clone())))
            .collect()
    }
}

/// Plans `queries` (assumed distinct). Calls come out ordered by window, then by query order.
pub fn plan(queries: &[MetricQuery], limits: CallLimits) -> Plan {
    let mut groups: BTreeMap<(Timestamp, Timestamp), Vec<usize>> = BTreeMap::new();
    let mut out = Plan::default();
    for (i, q) in queries.iter().enumerate() {
        if q.datapoints() > limits.max_datapoints {
            out.rejected.push((
                i,
                format!("{} datapoints ({}s window / {}s period) exceed GetMetricData's {} per call; use a longer period or a shorter range", q.datapoints(), (q.end - q.start).num_seconds(), q.period_secs, limits.max_datapoints),
            ));
            continue;
        }
        groups.entry((q.start, q.end)).or_default().push(i);
    }
    let mut next_id = 0usize;
    for ((start, end), members) in groups {
        let mut call = Call {
            start,
            end,
            queries: vec![],
        };
        let mut points = 0u64;
        for i in members {
            let dp = queries[i].datapoints().max(1);
            if !call.queries.is_empty()
                && (call.queries.len() >= limits.max_queries || points + dp > limits.max_datapoints)
            {
                out.calls.push(std::mem::replace(
                    &mut call,
                    Call {
                        start,
                        end,
                        queries: vec![],
                    },
                ));
                points = 0;
            }
            call.queries.push((format!("q{next_id}"), i));
            next_id += 1;
            points += dp;
        }
        if !call.queries.is_empty() {
            out.calls.push(call);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn q(n: usize, range_min: i64, period_secs: i64) -> MetricQuery {
        let end = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap();
        MetricQuery {
            namespace: "AWS/Lambda".into(),
            metric: "Errors".into(),
            stat: "Sum".into(),
            dimensions: [("FunctionName".to_string(), format!("f{n}"))].into(),
            start: end - chrono::Duration::minutes(range_min),
            end,
            period_secs,
        }
    }

    #[test]
    fn packs_500_queries_per_call() {
        let qs: Vec<_> = (0..1200).map(|n| q(n, 5, 300)).collect();
        let p = plan(&qs, CallLimits::default());
        assert_eq!(
            p.calls.iter().map(|c| c.queries.len()).collect::<Vec<_>>(),
            vec![500, 500, 200]
        );
        assert!(p.rejected.is_empty());
    }

    #[test]
    fn ids_are_unique_and_map_back() {
        let qs: Vec<_> = (0..1200)
            .map(|n| q(n, if n % 2 == 0 { 5 } else { 60 }, 300))
            .collect();
        let p = plan(&qs, CallLimits::default());
        let ids = p.ids();
        assert_eq!(ids.len(), 1200);
        let distinct: std::collections::BTreeSet<_> = ids.values().collect();
        assert_eq!(distinct.len(), 1200);
        // The 60-minute window starts earlier, so its queries (odd indexes) come first.
        assert_eq!(ids[&1], "q0");
        assert_eq!(ids[&0], "q600");
        // Every call holds one window only.
        for c in &p.calls {
            for (_, i) in &c.queries {
                assert_eq!((qs[*i].start, qs[*i].end), (c.start, c.end));
            }
        }
        // Two windows of 600 queries each: 500 + 100 per window.
        assert_eq!(
            p.calls.iter().map(|c| c.queries.len()).collect::<Vec<_>>(),
            vec![500, 100, 500, 100]
        );
    }

    #[test]
    fn respects_the_datapoint_limit() {
        // 1 day at 1 minute = 1,440 datapoints per query: 70 fit in 100,800.
        let qs: Vec<_> = (0..150).map(|n| q(n, 1440, 60)).collect();
        let p = plan(&qs, CallLimits::default());
        assert_eq!(
            p.calls.iter().map(|c| c.queries.len()).collect::<Vec<_>>(),
            vec![70, 70, 10]
        );
        for c in &p.calls {
            let points: u64 = c.queries.iter().map(|(_, i)| qs[*i].datapoints()).sum();
            assert!(points <= 100_800);
        }
    }

    #[test]
    fn rejects_a_query_too_big_for_any_call() {
        // 90 days at 1 minute.
        let qs = vec![q(0, 90 * 1440, 60), q(1, 5, 300)];
        let p = plan(&qs, CallLimits::default());
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].0, 0);
        assert!(p.rejected[0].1.contains("129600 datapoints"));
        assert_eq!(p.calls.len(), 1);
        assert_eq!(p.calls[0].queries, vec![("q0".to_string(), 1)]);
    }

    #[test]
    fn small_limits() {
        let qs: Vec<_> = (0..7).map(|n| q(n, 5, 300)).collect();
        let p = plan(
            &qs,
            CallLimits {
                max_queries: 3,
                max_datapoints: 100,
            },
        );
        assert_eq!(
            p.calls.iter().map(|c| c.queries.len()).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
    }
}

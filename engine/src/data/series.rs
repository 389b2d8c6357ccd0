//! A labelled time series with a fixed period, and the functions rules call on it.

use super::missing::{evaluation_range, m_of_n, MissingData, Verdict};
use crate::clock::Timestamp;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Start of the period this datapoint aggregates (CloudWatch's convention).
    pub ts: Timestamp,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Seconds per datapoint; 0 when unknown (e.g. instant Prometheus vectors).
    pub period_secs: i64,
    /// Sorted by `ts`, one point per period at most.
    pub points: Vec<Point>,
    /// End (exclusive) of the window the points were asked for: the evaluation instant aligned
    /// down to the minute (windows slide); buckets count back from it.
    pub end: Option<Timestamp>,
    pub missing: MissingData,
}

/// A comparison of a datapoint against a threshold, as in CloudWatch's `ComparisonOperator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl std::str::FromStr for Comparison {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "<" => Self::Lt,
            "<=" => Self::Le,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            other => {
                return Err(format!(
                    "unknown comparison {other:?} (use >, >=, <, <=, ==, !=)"
                ))
            }
        })
    }
}

impl Comparison {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
            Self::Eq => value == threshold,
            Self::Ne => value != threshold,
        }
    }
}

impl Series {
    pub fn new(name: impl Into<String>) -> Self {
        Series {
            name: name.into(),
            labels: BTreeMap::new(),
            period_secs: 60,
            points: Vec::new(),
            end: None,
            missing: MissingData::default(),
        }
    }

    pub fn with_points(
        mut self,
        period_secs: i64,
        points: impl IntoIterator<Item = (Timestamp, f64)>,
    ) -> Self {
        self.period_secs = period_secs;
        self.points = points
            .into_iter()
            .map(|(ts, value)| Point { ts, value })
            .collect();
        self.points.sort_by_key(|p| p.ts);
        self
    }

    pub fn with_label(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.points
            .iter()
            .map(|p| p.value)
            .filter(|v| v.is_finite())
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn count(&self) -> usize {
        self.values().count()
    }

    pub fn last(&self) -> Option<f64> {
        self.points.last().map(|p| p.value)
    }

    pub fn first(&self) -> Option<f64> {
        self.points.first().map(|p| p.value)
    }

    /// Sum of the datapoints; 0 for an empty series (a count of nothing is zero).
    pub fn sum(&self) -> f64 {
        self.values().sum()
    }

    pub fn avg(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| self.sum() / n as f64)
    }

    pub fn min(&self) -> Option<f64> {
        self.values().reduce(f64::min)
    }

    pub fn max(&self) -> Option<f64> {
        self.values().reduce(f64::max)
    }

    /// The `p`th percentile (0–100) of the datapoints, by linear interpolation between ranks.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let mut v: Vec<f64> = self.values().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = (p.clamp(0.0, 100.0) / 100.0) * (v.len() - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        Some(v[lo] + (v[hi] - v[lo]) * (rank - lo as f64))
    }

    /// Change between the first and last datapoint.
    pub fn delta(&self) -> Option<f64> {
        Some(self.last()? - self.first()?)
    }

    /// Per-second increase of a counter over the series, tolerating counter resets.
    pub fn rate(&self) -> Option<f64> {
        let (first, last) = (self.points.first()?, self.points.last()?);
        let secs = (last.ts - first.ts).num_milliseconds() as f64 / 1000.0;
        if secs <= 0.0 {
            return None;
        }
        let mut increase = 0.0;
        for w in self.points.windows(2) {
            let d = w[1].value - w[0].value;
            increase += if d < 0.0 { w[1].value } else { d };
        }
        Some(increase / secs)
    }

    /// Point-by-point `self / other` over the timestamps both have; a zero denominator drops the point.
    pub fn ratio(&self, other: &Series) -> Series {
        let theirs: BTreeMap<Timestamp, f64> =
            other.points.iter().map(|p| (p.ts, p.value)).collect();
        let mut out = self.clone();
        out.name = format!("{}/{}", self.name, other.name);
        out.points = self
            .points
            .iter()
            .filter_map(|p| {
                let d = *theirs.get(&p.ts)?;
                (d != 0.0).then(|| Point {
                    ts: p.ts,
                    value: p.value / d,
                })
            })
            .collect();
        out
    }

    /// The last `n` period slots ending at `end`, oldest first: `Some(value)` or `None` if missing.
    pub fn slots(&self, n: usize) -> Vec<Option<f64>> {
        let period = self.period_secs.max(1);
        let end = match self.end.or_else(|| {
            self.points
                .last()
                .map(|p| p.ts + chrono::Duration::seconds(period))
        }) {
            Some(e) => e,
            None => return vec![None; n],
        };
        let by_ts: BTreeMap<i64, f64> = self
            .points
            .iter()
            .map(|p| (p.ts.timestamp(), p.value))
            .collect();
        (1..=n)
            .rev()
            .map(|k| {
                let start = end.timestamp() - k as i64 * period;
                by_ts.range(start..start + period).next().map(|(_, v)| *v)
            })
            .collect()
    }

    /// CloudWatch alarm semantics: at least `m` of `n` datapoints compare true against
    /// `threshold`, judged over the evaluation range (the last [`evaluation_range`]`(n)` periods),
    /// with this series' missing-data treatment deciding what absent datapoints mean. The query
    /// must cover that range (`range: period × evaluation_range(n)`), or the older slots count as
    /// missing.
    pub fn verdict(&self, cmp: Comparison, threshold: f64, m: usize, n: usize) -> Verdict {
        let slots: Vec<Option<bool>> = self
            .slots(evaluation_range(n))
            .into_iter()
            .map(|v| v.map(|v| cmp.holds(v, threshold)))
            .collect();
        m_of_n(&slots, m, n, self.missing)
    }

    /// The series reduced to its `n` most recent real datapoints: the ones a `verdict` over `n`
    /// periods judges when there are at least `n`, so a summary's value comes from them and not
    /// from an older datapoint of the evaluation range.
    pub fn latest(&self, n: usize) -> Series {
        let mut out = self.clone();
        let real: Vec<Point> = self
            .points
            .iter()
            .filter(|p| p.value.is_finite())
            .copied()
            .collect();
        out.points = real[real.len().saturating_sub(n)..].to_vec();
        out
    }

    /// How many of the last `n` datapoints breach (missing ones counted per the treatment).
    pub fn breaching_count(&self, cmp: Comparison, threshold: f64, n: usize) -> usize {
        self.slots(n)
            .into_iter()
            .filter(|v| match v {
                Some(v) => cmp.holds(*v, threshold),
                None => self.missing == MissingData::Breaching,
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> Timestamp {
        chrono::Utc
            .timestamp_opt(1_700_000_000 - 1_700_000_000 % 3600 + min * 60, 0)
            .unwrap()
    }

    fn series(values: &[(i64, f64)]) -> Series {
        Series::new("m").with_points(60, values.iter().map(|(m, v)| (t(*m), *v)))
    }

    #[test]
    fn aggregates() {
        let s = series(&[(0, 1.0), (1, 3.0), (2, 8.0), (3, 4.0)]);
        assert_eq!(s.sum(), 16.0);
        assert_eq!(s.avg(), Some(4.0));
        assert_eq!(s.min(), Some(1.0));
        assert_eq!(s.max(), Some(8.0));
        assert_eq!(s.last(), Some(4.0));
        assert_eq!(s.count(), 4);
        assert_eq!(s.delta(), Some(3.0));
        assert_eq!(s.percentile(50.0), Some(3.5));
        assert_eq!(s.percentile(100.0), Some(8.0));
        assert_eq!(Series::new("e").avg(), None);
        assert_eq!(Series::new("e").sum(), 0.0);
    }

    #[test]
    fn rate_survives_counter_reset() {
        // 0 → 60 → (reset) 30 → 90 over 3 minutes: increase 60 + 30 + 60 = 150.
        let s = series(&[(0, 0.0), (1, 60.0), (2, 30.0), (3, 90.0)]);
        assert_eq!(s.rate(), Some(150.0 / 180.0));
    }

    #[test]
    fn ratio_aligns_timestamps_and_skips_zero_denominators() {
        let a = series(&[(0, 5.0), (1, 10.0), (2, 3.0)]);
        let b = series(&[(0, 10.0), (1, 0.0), (3, 1.0)]);
        let r = a.ratio(&b);
        assert_eq!(r.points.len(), 1);
        assert_eq!(r.points[0].value, 0.5);
    }

    #[test]
    fn slots_are_aligned_to_the_window_end() {
        let mut s = series(&[(0, 1.0), (2, 3.0)]);
        s.end = Some(t(4));
        assert_eq!(s.slots(4), vec![Some(1.0), None, Some(3.0), None]);
    }

    #[test]
    fn verdict_uses_the_series_treatment() {
        let mut s = series(&[(2, 20.0)]);
        s.end = Some(t(3));
        s.missing = MissingData::NotBreaching;
        assert_eq!(s.verdict(Comparison::Gt, 10.0, 1, 1), Verdict::Alarm);
        // N = 1 looks back over a range of 3: the last real datapoint still decides...
        s.end = Some(t(5));
        assert_eq!(s.verdict(Comparison::Gt, 10.0, 1, 1), Verdict::Alarm);
        // ...until it leaves the range; then the treatment does.
        s.end = Some(t(6));
        assert_eq!(s.verdict(Comparison::Gt, 10.0, 1, 1), Verdict::Ok);
        s.missing = MissingData::Breaching;
        assert_eq!(s.verdict(Comparison::Gt, 10.0, 1, 1), Verdict::Alarm);
        assert_eq!(s.breaching_count(Comparison::Gt, 10.0, 3), 3);
    }

    #[test]
    fn latest_keeps_the_most_recent_real_datapoints() {
        let s = series(&[(0, 50.0), (2, f64::NAN), (3, 15.0), (4, 12.0)]);
        assert_eq!(s.latest(1).max(), Some(12.0));
        assert_eq!(s.latest(2).max(), Some(15.0));
        assert_eq!(s.latest(9).max(), Some(50.0));
        assert!(s.latest(0).is_empty());
    }
}

//! The daemon's own metrics, in Prometheus text format. A tiny registry (counters, gauges and
//! histograms with labels) is all Tripline needs; it keeps the dependency tree small. Names and
//! units follow Prometheus's conventions (`_total` counters, `_seconds` histograms); the list is
//! in docs/api.md.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

type LabelSet = Vec<(String, String)>;
type Key = (String, LabelSet);

/// Bucket bounds (seconds) of the duration histograms: from a fixture cycle's milliseconds to a
/// CloudWatch cycle waiting out its quota.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One histogram series: a count per bucket bound (not cumulative), the sum and the count.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Key, f64>>,
    gauges: Mutex<BTreeMap<Key, f64>>,
    histograms: Mutex<BTreeMap<Key, Histogram>>,
    help: Mutex<BTreeMap<String, (&'static str, &'static str)>>,
}

fn render_labels(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    (
        name.to_string(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

impl Metrics {
    pub fn describe(&self, name: &str, kind: &'static str, help: &'static str) {
        self.help
            .lock()
            .expect("metrics")
            .insert(name.to_string(), (kind, help));
    }

    pub fn inc(&self, name: &str, labels: &[(&str, &str)], by: f64) {
        *self
            .counters
            .lock()
            .expect("metrics")
            .entry(key(name, labels))
            .or_default() += by;
    }

    pub fn set(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.gauges
            .lock()
            .expect("metrics")
            .insert(key(name, labels), v);
    }

    /// Records one observation of a histogram with `DURATION_BUCKETS`.
    pub fn observe(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        let mut h = self.histograms.lock().expect("metrics");
        let e = h.entry(key(name, labels)).or_insert_with(|| Histogram {
            buckets: vec![0; DURATION_BUCKETS.len()],
            ..Default::default()
        });
        if let Some(i) = DURATION_BUCKETS.iter().position(|b| v <= *b) {
            e.buckets[i] += 1;
        }
        e.sum += v;
        e.count += 1;
    }

    /// Drops every series of a gauge (before re-setting all of them, e.g. alerts by state).
    pub fn clear(&self, name: &str) {
        self.gauges
            .lock()
            .expect("metrics")
            .retain(|(n, _), _| n != name);
    }

    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let k = key(name, labels);
        self.counters
            .lock()
            .expect("metrics")
            .get(&k)
            .or(self.gauges.lock().expect("metrics").get(&k))
            .copied()
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut all: BTreeMap<String, Vec<(LabelSet, f64)>> = BTreeMap::new();
        for ((n, l), v) in self
            .counters
            .lock()
            .expect("metrics")
            .iter()
            .chain(self.gauges.lock().expect("metrics").iter())
        {
            all.entry(n.clone()).or_default().push((l.clone(), *v));
        }
        let help = self.help.lock().expect("metrics");
        let mut out = String::new();
        for (name, series) in all {
            if let Some((kind, text)) = help.get(&name) {
                let _ = writeln!(out, "# HELP {name} {text}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
            }
            for (labels, v) in series {
                let l = render_labels(&labels);
                if l.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{l}}} {v}");
                }
            }
        }
        let histograms = self.histograms.lock().expect("metrics");
        let mut by_name: BTreeMap<&str, Vec<(&LabelSet, &Histogram)>> = BTreeMap::new();
        for ((n, l), h) in histograms.iter() {
            by_name.entry(n.as_str()).or_default().push((l, h));
        }
        for (name, series) in by_name {
            if let Some((kind, text)) = help.get(name) {
                let _ = writeln!(out, "# HELP {name} {text}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
            }
            for (labels, h) in series {
                let base = render_labels(labels);
                let sep = if base.is_empty() { "" } else { "," };
                let mut cumulative = 0;
                for (bound, n) in DURATION_BUCKETS.iter().zip(&h.buckets) {
                    cumulative += n;
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{base}{sep}le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(out, "{name}_bucket{{{base}{sep}le=\"+Inf\"}} {}", h.count);
                let braces = if base.is_empty() {
                    String::new()
                } else {
                    format!("{{{base}}}")
                };
                let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
                let _ = writeln!(out, "{name}_count{braces} {}", h.count);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format_with_escaped_labels() {
        let m = Metrics::default();
        m.describe("tripline_x_total", "counter", "Things.");
        m.inc("tripline_x_total", &[("rule", "a\"b")], 2.0);
        m.inc("tripline_x_total", &[("rule", "a\"b")], 1.0);
        m.set("tripline_depth", &[], 4.0);
        let text = m.render();
        assert!(
            text.contains("# TYPE tripline_x_total counter\ntripline_x_total{rule=\"a\\\"b\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("tripline_depth 4\n"), "{text}");
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let m = Metrics::default();
        m.describe("tripline_cycle_duration_seconds", "histogram", "Cycles.");
        m.observe("tripline_cycle_duration_seconds", &[], 0.00390625);
        m.observe("tripline_cycle_duration_seconds", &[], 0.25);
        m.observe("tripline_cycle_duration_seconds", &[], 100.0);
        m.observe("tripline_x_seconds", &[("instance", "a")], 0.02);
        let text = m.render();
        for line in [
            "# TYPE tripline_cycle_duration_seconds histogram\n",
            "tripline_cycle_duration_seconds_bucket{le=\"0.005\"} 1\n",
            "tripline_cycle_duration_seconds_bucket{le=\"0.1\"} 1\n",
            "tripline_cycle_duration_seconds_bucket{le=\"0.25\"} 2\n",
            "tripline_cycle_duration_seconds_bucket{le=\"30\"} 2\n",
            "tripline_cycle_duration_seconds_bucket{le=\"+Inf\"} 3\n",
            "tripline_cycle_duration_seconds_sum 100.25390625\n",
            "tripline_cycle_duration_seconds_count 3\n",
            "tripline_x_seconds_bucket{instance=\"a\",le=\"0.025\"} 1\n",
            "tripline_x_seconds_count{instance=\"a\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }
}

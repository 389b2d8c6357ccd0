//! The daemon's own metrics, in Prometheus text format. A tiny registry (counters and gauges
//! with labels) is all Tripline needs; it keeps the dependency tree small.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

type LabelSet = Vec<(String, String)>;
type Key = (String, LabelSet);

#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Key, f64>>,
    gauges: Mutex<BTreeMap<Key, f64>>,
    help: Mutex<BTreeMap<String, (&'static str, &'static str)>>,
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
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}=\"{}\"",
                            v.replace('\\', "\\\\")
                                .replace('"', "\\\"")
                                .replace('\n', "\\n")
                        )
                    })
                    .collect();
                if l.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{}}} {v}", l.join(","));
                }
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
}

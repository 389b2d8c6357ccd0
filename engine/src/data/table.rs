//! Rows of a log-query or SQL result.

use serde_json::Value;
use std::collections::BTreeMap;

pub type Row = BTreeMap<String, Value>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub name: String,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn new(name: impl Into<String>, rows: Vec<Row>) -> Self {
        Table {
            name: name.into(),
            rows,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A column's values as numbers; rows where it is absent or not numeric are skipped.
    pub fn numbers(&self, column: &str) -> Vec<f64> {
        self.rows
            .iter()
            .filter_map(|r| match r.get(column)? {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .collect()
    }

    pub fn sum(&self, column: &str) -> f64 {
        self.numbers(column).iter().sum()
    }

    /// The `n` most frequent values of `column`, most frequent first (ties by value), with counts.
    pub fn top(&self, column: &str, n: usize) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in &self.rows {
            if let Some(v) = r.get(column) {
                let key = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                *counts.entry(key).or_default() += 1;
            }
        }
        let mut v: Vec<(String, usize)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(pairs: &[(&str, Value)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn top_counts_and_orders() {
        let t = Table::new(
            "errors",
            vec![
                row(&[("msg", json!("timeout")), ("n", json!(2))]),
                row(&[("msg", json!("boom")), ("n", json!("3"))]),
                row(&[("msg", json!("timeout"))]),
            ],
        );
        assert_eq!(
            t.top("msg", 5),
            vec![("timeout".into(), 2), ("boom".into(), 1)]
        );
        assert_eq!(t.sum("n"), 5.0);
        assert_eq!(t.len(), 3);
    }
}

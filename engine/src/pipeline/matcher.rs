//! Label matchers as people write them in routes, inhibition rules and silences:
//! `name=value`, `name!=value`, `name=~regex`, `name!~regex`. Regexes are anchored at both ends,
//! as in Alertmanager, and a missing label matches as the empty string.

use crate::alert::{Alert, Labels};
use regex::Regex;

/// What matchers read label values from: a label set, or an alert.
pub trait LabelSource {
    fn label(&self, name: &str) -> Option<&str>;
}

impl LabelSource for Labels {
    fn label(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An alert's labels, plus its severity as `severity` (a label of that name set by the rule
/// wins). Severity is a field, not a label, so that an alert whose severity rises keeps its
/// fingerprint; matchers and `group_by` still see it.
impl LabelSource for Alert {
    fn label(&self, name: &str) -> Option<&str> {
        match self.labels.get(name) {
            Some(v) => Some(v),
            None if name == "severity" => Some(self.severity.as_str()),
            None => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, String> {
        let name = name.into();
        let value = value.into();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid label name {name:?} in matcher"));
        }
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    format!(
                        "invalid regex {value:?} for label {name:?}: {}",
                        regex_error(&e)
                    )
                })?)
            }
            _ => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
        })
    }

    /// Parses `name=value`, `name!=value`, `name=~re` or `name!~re`; the value may be
    /// double-quoted (`team="a b"`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let idx = s
            .find(['=', '!'])
            .ok_or_else(|| format!("matcher {s:?} has no operator (use =, !=, =~ or !~)"))?;
        let name = s[..idx].trim();
        let rest = &s[idx..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Regex, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Equal, v)
        } else {
            return Err(format!(
                "matcher {s:?} has no operator (use =, !=, =~ or !~)"
            ));
        };
        let value = value.trim();
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => value.to_string(),
        };
        Matcher::new(name, op, value)
    }

    pub fn matches(&self, labels: &impl LabelSource) -> bool {
        let v = labels.label(&self.name).unwrap_or("");
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// The gist of a `regex` error (its last line, without the `error: ` prefix).
pub fn regex_error(e: &regex::Error) -> String {
    first_line(&e.to_string())
        .trim_start_matches("error: ")
        .to_string()
}

fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// All must match (an empty list matches everything).
pub fn all_match(matchers: &[Matcher], labels: &impl LabelSource) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_four_operators() {
        let labels = l(&[("severity", "critical"), ("team", "db")]);
        assert!(Matcher::parse("severity=critical")
            .unwrap()
            .matches(&labels));
        assert!(Matcher::parse("severity!=warning")
            .unwrap()
            .matches(&labels));
        assert!(Matcher::parse("team=~d.").unwrap().matches(&labels));
        assert!(
            !Matcher::parse("team=~d").unwrap().matches(&labels),
            "regexes are anchored"
        );
        assert!(Matcher::parse("team!~web|api").unwrap().matches(&labels));
        assert!(
            Matcher::parse("missing=").unwrap().matches(&labels),
            "a missing label is empty"
        );
        assert!(Matcher::parse(r#"team = "db""#).unwrap().matches(&labels));
    }

    #[test]
    fn bad_matchers_say_why() {
        assert!(Matcher::parse("team").unwrap_err().contains("no operator"));
        assert!(Matcher::parse("team=~(")
            .unwrap_err()
            .contains("invalid regex"));
        assert!(Matcher::parse("te am=x")
            .unwrap_err()
            .contains("invalid label name"));
    }

    #[test]
    fn display_round_trips() {
        let m = Matcher::parse("team=~db|web").unwrap();
        assert_eq!(m.to_string(), r#"team=~"db|web""#);
        assert_eq!(Matcher::parse(&m.to_string()).unwrap(), m);
    }
}

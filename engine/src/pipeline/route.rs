//! The routing tree: which receivers (or escalation policy) an alert goes to, and how its
//! notifications are grouped and timed. Matching follows Alertmanager: depth first, the first
//! matching child wins unless it has `continue`, and a node none of whose children match takes
//! the alert itself. Every option but the matchers is inherited from the parent.

use super::matcher::{all_match, LabelSource, Matcher};
use chrono::Duration;
use std::collections::BTreeSet;

/// A route's notification timing (inherited like every option but the matchers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            group_wait: Duration::seconds(30),
            group_interval: Duration::minutes(5),
            repeat_interval: Duration::hours(4),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum GroupBy {
    /// `["..."]`: every label; each distinct alert its own group.
    All,
    /// These labels (an empty list puts every alert of the route in one group).
    Labels(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Path of matchers from the root, as Alertmanager keys routes: `{}`, `{}/{severity="critical"}`.
    /// Adding or reordering sibling routes keeps the others' ids (and so their groups and
    /// notification log); a sibling with the same matchers gets `#N` appended.
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub receiver: Option<String>,
    pub escalation: Option<String>,
    pub group_by: GroupBy,
    pub timers: Timers,
    pub continue_: bool,
    pub routes: Vec<Route>,
}

impl Route {
    /// A root with default timers sending to `receiver`.
    pub fn root(receiver: Option<String>) -> Route {
        Route {
            id: "{}".into(),
            matchers: vec![],
            receiver,
            escalation: None,
            group_by: GroupBy::Labels(vec![]),
            timers: Timers::default(),
            continue_: false,
            routes: vec![],
        }
    }

    /// The routes that take an alert with these labels (at least the root, for the root).
    pub fn matching(&self, labels: &impl LabelSource) -> Vec<&Route> {
        if !all_match(&self.matchers, labels) {
            return vec![];
        }
        let mut out = Vec::new();
        for child in &self.routes {
            let m = child.matching(labels);
            if !m.is_empty() {
                out.extend(m);
                if !child.continue_ {
                    break;
                }
            }
        }
        if out.is_empty() {
            out.push(self);
        }
        out
    }

    /// Every node, depth first.
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = vec![self];
        for c in &self.routes {
            out.extend(c.walk());
        }
        out
    }
}

pub(crate) fn unknown(what: &str, name: &str, known: &BTreeSet<String>) -> String {
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown {what} {name:?} (none is defined)")
    } else {
        format!("unknown {what} {name:?} (defined: {})", known.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Labels;
    use crate::config::Config;
    use std::path::Path;

    fn tree(text: &str) -> Result<Route, String> {
        let cfg =
            Config::parse(Path::new("c.toml"), text.to_string()).map_err(|e| e.to_string())?;
        let receivers: BTreeSet<String> = ["slack", "pd", "db-team"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let policies: BTreeSet<String> = ["oncall".to_string()].into();
        let mut errors = vec![];
        let r = Route::from_config(
            &cfg,
            cfg.raw.route.as_ref().unwrap(),
            &receivers,
            &policies,
            &mut errors,
        );
        if errors.is_empty() {
            Ok(r)
        } else {
            Err(errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"))
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn receivers(r: &Route, l: &[(&str, &str)]) -> Vec<String> {
        r.matching(&labels(l))
            .iter()
            .map(|r| r.receiver.clone().or(r.escalation.clone()).unwrap())
            .collect()
    }

    const TREE: &str = r#"
[route]
receiver = "slack"
group_by = ["alertname"]
group_wait = "10s"

[[route.routes]]
matchers = ["severity=critical"]
escalation = "oncall"
continue = true

[[route.routes]]
matchers = ["team=~db|data"]
receiver = "db-team"
group_interval = "1m"

  [[route.routes.routes]]
  matchers = ["env!=prod"]
  receiver = "slack"
"#;

    #[test]
    fn first_match_wins_unless_continue() {
        let r = tree(TREE).unwrap();
        assert_eq!(
            receivers(
                &r,
                &[("severity", "critical"), ("team", "db"), ("env", "prod")]
            ),
            ["oncall", "db-team"]
        );
        assert_eq!(
            receivers(&r, &[("team", "data"), ("env", "dev")]),
            ["slack"]
        );
        assert_eq!(receivers(&r, &[("team", "web")]), ["slack"]);
        let db = r.matching(&labels(&[("team", "db"), ("env", "prod")]))[0];
        assert_eq!(db.id, "{}/{team=~db|data}");
        assert_eq!(
            db.timers.group_wait,
            chrono::Duration::seconds(10),
            "inherited"
        );
        assert_eq!(db.timers.group_interval, chrono::Duration::minutes(1));
        assert_eq!(db.group_by, GroupBy::Labels(vec!["alertname".into()]));
    }

    #[test]
    fn group_by_all_is_alertmanagers_dots() {
        // docs/notifications.md documents `group_by = "all"`; Alertmanager spells it ["..."].
        for spelling in ["\"all\"", "\"...\"", "[\"...\"]"] {
            let r = tree(&format!(
                "[route]\nreceiver = \"slack\"\ngroup_by = {spelling}\n"
            ))
            .unwrap();
            assert_eq!(r.group_by, GroupBy::All, "{spelling}");
        }
        let e = tree("[route]\nreceiver = \"slack\"\ngroup_by = \"alertname\"\n").unwrap_err();
        assert!(e.contains("give a list of labels"), "{e}");
    }

    #[test]
    fn problems_are_located() {
        let text = "[route]\nreceiver = \"slack\"\n\n[[route.routes]]\nmatchers = [\"team=~(\"]\nreceiver = \"nobody\"\ngroup_wait = \"5\"\n";
        let e = tree(text).unwrap_err();
        assert!(
            e.contains("c.toml:5:20: invalid matcher \"team=~(\": invalid regex \"(\""),
            "{e}"
        );
        assert!(
            e.contains("c.toml:6:12: unknown receiver \"nobody\" (defined: db-team, pd, slack)"),
            "{e}"
        );
        assert!(e.contains("c.toml:7:14: invalid duration"), "{e}");
    }
}

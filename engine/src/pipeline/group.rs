//! Grouping: alerts of one route that share the route's `group_by` labels become one
//! notification. Timers follow Alertmanager: a new group waits `group_wait` before its first
//! flush (so alerts that fire together arrive together), then flushes every `group_interval`;
//! unchanged groups are repeated after `repeat_interval` (decided by the notification log).
//!
//! Timers are not in-memory: a group's next flush instant is kept in the store and `tick` is
//! called with "now", so a one-shot `tripline eval` every minute and a long-running daemon behave
//! the same.

use super::matcher::LabelSource;
pub use super::route::Timers;
use super::route::{GroupBy, Route};
use crate::alert::Labels;
use crate::clock::Timestamp;
use chrono::Duration;
use serde::{Deserialize, Serialize};

/// A group's persisted timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub key: String,
    pub created_at: Timestamp,
    pub next_flush: Timestamp,
    /// For a group on an escalating route: when each firing alert entered it, where its
    /// escalation clock starts (`escalate::entered`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub joined: std::collections::BTreeMap<String, Timestamp>,
}

/// What the timer says at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub flush: bool,
    /// `None`: the group is gone (no state to keep).
    pub state: Option<GroupState>,
}

/// Advances one group's timer. `has_firing`: whether the group holds a firing alert now.
pub fn tick(
    prev: Option<&GroupState>,
    key: &str,
    has_firing: bool,
    t: &Timers,
    at: Timestamp,
) -> Tick {
    match prev {
        None if !has_firing => Tick {
            flush: false,
            state: None,
        },
        None => {
            let mut s = GroupState {
                key: key.to_string(),
                created_at: at,
                next_flush: at + t.group_wait,
                joined: Default::default(),
            };
            let flush = at >= s.next_flush;
            if flush {
                s.next_flush = at + t.group_interval;
            }
            Tick {
                flush,
                state: Some(s),
            }
        }
        Some(p) if at < p.next_flush => Tick {
            flush: false,
            state: Some(p.clone()),
        },
        Some(p) => {
            if !has_firing {
                // Last flush of a group whose alerts all resolved: announce, then forget it.
                return Tick {
                    flush: true,
                    state: None,
                };
            }
            let mut s = p.clone();
            // Stay on the group's own beat (first flush + k·interval) even if flushes were missed.
            if t.group_interval > Duration::zero() {
                while s.next_flush <= at {
                    s.next_flush += t.group_interval;
                }
            } else {
                s.next_flush = at;
            }
            Tick {
                flush: true,
                state: Some(s),
            }
        }
    }
}

/// The labels that identify an alert's group on a route.
/// The labels a route groups an alert by. `group_by = ["..."]` reads them as matchers do (from an
/// alert: `severity` too); `group_by = "all"` takes the alert's own `labels`, so a severity change
/// does not move an alert to another group.
pub fn group_labels(route: &Route, labels: &Labels, source: &impl LabelSource) -> Labels {
    match &route.group_by {
        GroupBy::All => labels.clone(),
        GroupBy::Labels(names) => names
            .iter()
            .filter_map(|n| source.label(n).map(|v| (n.clone(), v.to_string())))
            .collect(),
    }
}

/// An alert's group on a route told apart without building its key: the route and the values of
/// its `group_by` labels, borrowed. `None` for `group_by = "all"` (the alert's own labels: build
/// the key).
pub type GroupValues<'a> = (*const Route, Vec<Option<&'a str>>);

pub fn group_values<'a>(route: &Route, source: &'a impl LabelSource) -> Option<GroupValues<'a>> {
    match &route.group_by {
        GroupBy::All => None,
        GroupBy::Labels(names) => Some((
            route as *const Route,
            names.iter().map(|n| source.label(n)).collect(),
        )),
    }
}

/// `route-id:{a="1",b="2"}`: unique per route and group labels, readable in logs.
pub fn group_key(route: &Route, labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}:{{{}}}", route.id, inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testutil::t;

    #[test]
    fn wait_then_interval_then_forget() {
        let timers = Timers {
            group_wait: Duration::seconds(30),
            group_interval: Duration::minutes(5),
            ..Default::default()
        };
        let first = tick(None, "g", true, &timers, t(0));
        assert!(!first.flush);
        let s = first.state.unwrap();
        assert_eq!(s.next_flush, t(0) + Duration::seconds(30));
        let second = tick(Some(&s), "g", true, &timers, t(0) + Duration::seconds(29));
        assert!(!second.flush);
        let third = tick(Some(&s), "g", true, &timers, t(1));
        assert!(third.flush);
        let s = third.state.unwrap();
        assert_eq!(s.next_flush, t(5) + Duration::seconds(30));
        // Missed beats are skipped, the phase kept.
        let late = tick(Some(&s), "g", true, &timers, t(17)).state.unwrap();
        assert_eq!(late.next_flush, t(20) + Duration::seconds(30));
        // All resolved: flush once more, then drop the state.
        let gone = tick(Some(&late), "g", false, &timers, t(21));
        assert_eq!(
            gone,
            Tick {
                flush: true,
                state: None
            }
        );
        assert_eq!(
            tick(None, "g", false, &timers, t(22)),
            Tick {
                flush: false,
                state: None
            }
        );
    }

    #[test]
    fn zero_wait_flushes_at_once() {
        let timers = Timers {
            group_wait: Duration::zero(),
            group_interval: Duration::zero(),
            ..Default::default()
        };
        let first = tick(None, "g", true, &timers, t(0));
        assert!(first.flush);
        assert!(tick(first.state.as_ref(), "g", true, &timers, t(0)).flush);
    }
}

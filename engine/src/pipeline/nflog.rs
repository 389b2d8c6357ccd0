//! The notification log: what each receiver was last told about each group. It makes dedup
//! survive restarts (a restarted process neither re-pages nor forgets to resolve) and decides,
//! as Alertmanager's dedup stage does, whether a group needs a new notification.

use crate::alert::Severity;
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NflogEntry {
    pub group_key: String,
    pub receiver: String,
    /// Firing alerts in the last notification, with their severity then: a change of severity is
    /// news worth a notification.
    pub firing: BTreeMap<String, Severity>,
    pub resolved: BTreeSet<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::ts")]
    pub sent_at: Timestamp,
}

/// Whether a group with these firing and resolved alerts needs a notification now. The
/// fingerprints may be borrowed (`&str`), so a group with nothing new allocates none.
pub fn needs_update<K: Borrow<str> + Ord>(
    entry: Option<&NflogEntry>,
    firing: &BTreeMap<K, Severity>,
    resolved: &BTreeSet<K>,
    send_resolved: bool,
    repeat_interval: chrono::Duration,
    at: Timestamp,
) -> bool {
    let Some(e) = entry else {
        // Never told: only firing alerts are news.
        return !firing.is_empty();
    };
    if firing
        .iter()
        .any(|(fp, sev)| e.firing.get(fp.borrow()) != Some(sev))
    {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell a receiver that was told of firing alerts (also clears the
        // log when it does not want resolves), nobody else.
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.iter().all(|fp| e.resolved.contains(fp.borrow())) {
        return true;
    }
    e.sent_at
        .checked_add_signed(repeat_interval)
        .is_some_and(|t| t <= at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn t(m: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::minutes(m)
    }

    fn firing(fps: &[(&str, Severity)]) -> BTreeMap<String, Severity> {
        fps.iter().map(|(f, s)| (f.to_string(), *s)).collect()
    }

    #[test]
    fn alertmanager_dedup_rules() {
        let w = Severity::Warning;
        let rep = Duration::hours(4);
        let none = BTreeSet::new();
        assert!(needs_update(
            None,
            &firing(&[("a", w)]),
            &none,
            true,
            rep,
            t(0)
        ));
        assert!(!needs_update(
            None,
            &firing(&[]),
            &["a".to_string()].into(),
            true,
            rep,
            t(0)
        ));
        let e = NflogEntry {
            group_key: "g".into(),
            receiver: "r".into(),
            firing: firing(&[("a", w)]),
            resolved: none.clone(),
            sent_at: t(0),
        };
        assert!(
            !needs_update(Some(&e), &firing(&[("a", w)]), &none, true, rep, t(5)),
            "nothing new"
        );
        assert!(
            needs_update(
                Some(&e),
                &firing(&[("a", w), ("b", w)]),
                &none,
                true,
                rep,
                t(5)
            ),
            "new alert"
        );
        assert!(
            needs_update(
                Some(&e),
                &firing(&[("a", Severity::Critical)]),
                &none,
                true,
                rep,
                t(5)
            ),
            "severity rose"
        );
        assert!(
            needs_update(
                Some(&e),
                &firing(&[]),
                &["a".into()].into(),
                false,
                rep,
                t(5)
            ),
            "all resolved"
        );
        assert!(
            needs_update(Some(&e), &firing(&[("a", w)]), &none, true, rep, t(240)),
            "repeat"
        );
        let e2 = NflogEntry {
            firing: firing(&[("a", w), ("b", w)]),
            ..e.clone()
        };
        assert!(
            needs_update(
                Some(&e2),
                &firing(&[("a", w)]),
                &["b".into()].into(),
                true,
                rep,
                t(5)
            ),
            "one resolved"
        );
        assert!(
            !needs_update(
                Some(&e2),
                &firing(&[("a", w)]),
                &["b".into()].into(),
                false,
                rep,
                t(5)
            ),
            "resolves not wanted"
        );
    }
}

//! Which rule instances are due, from their cron schedules. Pure: given the schedules, when each
//! instance last ran and the current instant, it says what to run now and how many ticks were
//! missed (a pause, a slow cycle), so missed ticks are counted and evaluated once, not in a burst.

use crate::clock::Timestamp;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Due {
    /// Instances with at least one tick in (last run, now].
    pub instances: Vec<String>,
    /// Ticks beyond the first that fell in that interval, summed over instances.
    pub missed: u64,
}

/// Counts ticks of `schedule` in (after, until], stopping at `cap`.
fn ticks_between(schedule: &cron::Schedule, after: Timestamp, until: Timestamp, cap: u64) -> u64 {
    schedule
        .after(&after)
        .take_while(|t| *t <= until)
        .take(cap as usize)
        .count() as u64
}

/// What is due at `now`. `last_run` holds each instance's last evaluation; an instance that never
/// ran is due at its first tick after `started`.
pub fn due(
    schedules: &[(String, cron::Schedule)],
    last_run: &HashMap<String, Timestamp>,
    started: Timestamp,
    now: Timestamp,
) -> Due {
    let mut out = Due::default();
    for (name, schedule) in schedules {
        let since = last_run.get(name).copied().unwrap_or(started);
        let n = ticks_between(schedule, since, now, 10_000);
        if n > 0 {
            out.instances.push(name.clone());
            out.missed += n - 1;
        }
    }
    out
}

/// The next instant any instance is due after `now`.
pub fn next_tick(schedules: &[(String, cron::Schedule)], now: Timestamp) -> Option<Timestamp> {
    schedules
        .iter()
        .filter_map(|(_, s)| s.after(&now).next())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::parse_schedule;
    use chrono::{Duration, TimeZone, Utc};

    fn t(s: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap() + Duration::seconds(s)
    }

    #[test]
    fn missed_ticks_are_counted_and_run_once() {
        let every_10s = vec![
            ("a".to_string(), parse_schedule("*/10 * * * * *").unwrap()),
            ("b".to_string(), parse_schedule("0 * * * * *").unwrap()),
        ];
        let mut last = HashMap::new();
        // Nothing due before the first tick.
        assert_eq!(due(&every_10s, &last, t(1), t(5)), Due::default());
        assert_eq!(due(&every_10s, &last, t(1), t(10)).instances, vec!["a"]);
        last.insert("a".to_string(), t(10));
        // A 65 s pause: a missed 6 ticks (ran once for 7), b's minute tick came once.
        let d = due(&every_10s, &last, t(1), t(75));
        assert_eq!(d.instances, vec!["a", "b"]);
        assert_eq!(d.missed, 5);
        assert_eq!(next_tick(&every_10s, t(75)), Some(t(80)));
    }
}

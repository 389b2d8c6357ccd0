//! Time comes from a `Clock`, so cycles, `for` durations and escalations are testable at any instant.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

pub mod rfc3339;

pub type Timestamp = DateTime<Utc>;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests and backtests.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        ManualClock(Mutex::new(at))
    }
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().expect("clock lock") = at;
    }
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().expect("clock lock");
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// A clock that starts at a given instant and moves in real time: a one-shot run evaluated at
/// `--at` (or an event's time) paces its deliveries as the receivers see them, in real seconds.
#[derive(Debug)]
pub struct RunningClock {
    start: Timestamp,
    started: std::time::Instant,
}

impl RunningClock {
    pub fn from(start: Timestamp) -> Self {
        RunningClock {
            start,
            started: std::time::Instant::now(),
        }
    }
}

impl Clock for RunningClock {
    fn now(&self) -> Timestamp {
        let gone = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.start.checked_add_signed(gone).unwrap_or(self.start)
    }
}

/// The longest duration accepted: what fits in i64 nanoseconds (about 292 years), the limit
/// Prometheus and Go's `time.Duration` have too. Any instant the engine sees plus or minus this
/// stays far inside chrono's range, so no arithmetic on a parsed duration can overflow.
pub const MAX_DURATION_MS: i64 = i64::MAX / 1_000_000;

/// Parses durations written the way rule authors write them: `90s`, `5m`, `1h30m`, `1d`, `2w`.
/// A duration longer than [`MAX_DURATION_MS`] is an error, never an overflow.
pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(chrono::Duration::zero());
    }
    let too_large = || format!("duration {s:?} is too large (at most 106751d, about 292 years)");
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut seen_unit = false;
    let bytes: Vec<char> = s.chars().collect();
    let mut i = 0;
    // Byte offset of bytes[i] in s, for slicing out a (possibly multi-byte) unit.
    let mut at = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() {
            num.push(c);
            i += 1;
            at += 1;
            continue;
        }
        let (unit, len, bytes_len) = if c == 'm' && bytes.get(i + 1) == Some(&'s') {
            ("ms", 2, 2)
        } else {
            (&s[at..at + c.len_utf8()], 1, c.len_utf8())
        };
        if num.is_empty() {
            return Err(format!("invalid duration {s:?}: a unit without a number"));
        }
        // Only digits are in `num`, so the one way to fail is a number beyond i64.
        let n: i64 = num.parse().map_err(|_| too_large())?;
        let per_unit: i64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            other => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {other:?} (use ms, s, m, h, d, w)"
                ))
            }
        };
        total = n
            .checked_mul(per_unit)
            .and_then(|ms| total.checked_add(ms))
            .filter(|t| *t <= MAX_DURATION_MS)
            .ok_or_else(too_large)?;
        num.clear();
        seen_unit = true;
        i += len;
        at += bytes_len;
    }
    if !num.is_empty() || !seen_unit {
        return Err(format!("invalid duration {s:?}: missing unit (e.g. 5m)"));
    }
    Ok(chrono::Duration::milliseconds(total))
}

/// Formats a duration compactly (`1h30m`), the inverse of `parse_duration` for whole seconds.
pub fn format_duration(d: chrono::Duration) -> String {
    let mut secs = d.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out.push_str(&format!("{}{}", secs / len, unit));
            secs %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_compound_units() {
        assert_eq!(parse_duration("90s").unwrap().num_seconds(), 90);
        assert_eq!(parse_duration("1h30m").unwrap().num_seconds(), 5400);
        assert_eq!(parse_duration("1d").unwrap().num_seconds(), 86_400);
        assert_eq!(parse_duration("250ms").unwrap().num_milliseconds(), 250);
        assert_eq!(parse_duration("0").unwrap().num_seconds(), 0);
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5y").unwrap_err().contains("unknown unit"));
        assert_eq!(format_duration(parse_duration("1h30m").unwrap()), "1h30m");
    }

    #[test]
    fn durations_beyond_292_years_are_errors_not_overflows() {
        for s in [
            "99999999999999999h",
            "9223372036854775807s",
            "5000000000000000000ms",
            "99999999999999999999999999s",
            "106752d",
            "106751d1d",
        ] {
            assert_eq!(
                parse_duration(s).unwrap_err(),
                format!("duration {s:?} is too large (at most 106751d, about 292 years)")
            );
        }
        assert_eq!(parse_duration("106751d").unwrap().num_days(), 106_751);
        assert_eq!(
            parse_duration(&format!("{MAX_DURATION_MS}ms"))
                .unwrap()
                .num_milliseconds(),
            MAX_DURATION_MS
        );
    }

    #[test]
    fn multi_byte_units_are_named_not_sliced_through() {
        assert_eq!(
            parse_duration("5µs5s").unwrap_err(),
            "invalid duration \"5µs5s\": unknown unit \"µ\" (use ms, s, m, h, d, w)"
        );
        assert_eq!(
            parse_duration("é").unwrap_err(),
            "invalid duration \"é\": a unit without a number"
        );
    }
}

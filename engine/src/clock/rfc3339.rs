//! RFC 3339 text of an instant, byte for byte as chrono writes it (`to_rfc3339_opts(format,
//! true)`, and chrono's `Serialize`, which is `AutoSi`), built in a stack buffer. chrono writes
//! through `fmt` a character at a time, and its `Serialize` goes through `collect_str`, so
//! serde_json escapes every one of those pieces: an alert's JSON carries four instants, and at a
//! storm's 100,000 alerts that was a fifth of the time spent writing the outbox.

use super::Timestamp;
use chrono::{Datelike, SecondsFormat, Timelike};
use serde::{Serialize, Serializer};

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` at its longest.
const LONGEST: usize = 30;

/// The text of one instant (`Rfc3339::of`), as a `&str` or serialized as a JSON string.
pub struct Rfc3339(Repr);

enum Repr {
    Inline([u8; LONGEST], u8),
    /// Years outside 0..=9999 (written with a sign) and formats chrono may add: chrono's own.
    Other(String),
    Literal(&'static str),
}

impl Rfc3339 {
    pub fn of(t: &Timestamp, format: SecondsFormat) -> Self {
        // UTC: the naive instant is the local one (each accessor of `t` would add the offset).
        let (date, time) = (t.naive_utc().date(), t.naive_utc().time());
        let year = date.year();
        let mut nano = time.nanosecond();
        let mut sec = time.second();
        // A leap second: chrono keeps it as second 59 with 1e9 or more nanoseconds.
        if nano >= 1_000_000_000 {
            sec += 1;
            nano -= 1_000_000_000;
        }
        let digits = match format {
            SecondsFormat::Secs => 0,
            SecondsFormat::Millis => 3,
            SecondsFormat::Micros => 6,
            SecondsFormat::Nanos => 9,
            SecondsFormat::AutoSi if nano == 0 => 0,
            SecondsFormat::AutoSi if nano % 1_000_000 == 0 => 3,
            SecondsFormat::AutoSi if nano % 1_000 == 0 => 6,
            SecondsFormat::AutoSi => 9,
            _ => return Rfc3339(Repr::Other(t.to_rfc3339_opts(format, true))),
        };
        if !(0..=9999).contains(&year) {
            return Rfc3339(Repr::Other(t.to_rfc3339_opts(format, true)));
        }
        let mut b = [0u8; LONGEST];
        let two = |b: &mut [u8], at: usize, v: u32| {
            b[at] = b'0' + (v / 10 % 10) as u8;
            b[at + 1] = b'0' + (v % 10) as u8;
        };
        let year = year as u32;
        two(&mut b, 0, year / 100);
        two(&mut b, 2, year % 100);
        b[4] = b'-';
        two(&mut b, 5, date.month());
        b[7] = b'-';
        two(&mut b, 8, date.day());
        b[10] = b'T';
        two(&mut b, 11, time.hour());
        b[13] = b':';
        two(&mut b, 14, time.minute());
        b[16] = b':';
        two(&mut b, 17, sec);
        let mut len = 19;
        if digits > 0 {
            b[len] = b'.';
            let mut v = nano / 10u32.pow(9 - digits as u32);
            for i in (0..digits).rev() {
                b[len + 1 + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
            len += 1 + digits;
        }
        b[len] = b'Z';
        Rfc3339(Repr::Inline(b, (len + 1) as u8))
    }

    /// A fixed text where an instant goes (Alertmanager's zero time for "not ended").
    pub const fn literal(s: &'static str) -> Self {
        Rfc3339(Repr::Literal(s))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only ASCII digits and separators were written.
            Repr::Inline(b, len) => std::str::from_utf8(&b[..*len as usize]).unwrap_or_default(),
            Repr::Other(s) => s,
            Repr::Literal(s) => s,
        }
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `#[serde(serialize_with = "crate::clock::rfc3339::ts")]`: what chrono's `Serialize` writes.
pub fn ts<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    Rfc3339::of(t, SecondsFormat::AutoSi).serialize(s)
}

/// `ts` for an optional instant (as chrono's `Option<DateTime>` serializes).
pub fn opt_ts<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&Rfc3339::of(t, SecondsFormat::AutoSi)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Instants across chrono's whole range, with every shape of sub-second part, and leap
    /// seconds: the same text as chrono's, in every format and through serde.
    #[test]
    fn writes_what_chrono_writes() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (lo, hi) = (
            chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp(),
            chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp(),
        );
        let near = chrono::Utc
            .with_ymd_and_hms(2026, 12, 4, 0, 0, 0)
            .unwrap()
            .timestamp();
        let (mut checked, mut leaps) = (0, 0);
        for i in 0..20_000u64 {
            let r = next();
            let secs = match i % 4 {
                0 => lo + (r % (hi - lo) as u64) as i64,
                1 => (r % 20_000_000_000) as i64 - 5_000_000_000,
                _ => near + (r % 10_000_000) as i64 - 5_000_000,
            };
            let nanos = match (r >> 40) % 6 {
                0 => 0,
                1 => ((r >> 8) % 1000) as u32 * 1_000_000,
                2 => ((r >> 8) % 1_000_000) as u32 * 1_000,
                3 => ((r >> 8) % 1_000_000_000) as u32,
                4 => ((r >> 8) % 10) as u32 * 100_000_000,
                _ => 1_000_000_000 + ((r >> 8) % 1_000_000_000) as u32,
            };
            // A leap-second nanosecond is only valid at second 59.
            let secs = if nanos >= 1_000_000_000 {
                secs - secs.rem_euclid(60) + 59
            } else {
                secs
            };
            let Some(t) = chrono::DateTime::from_timestamp(secs, nanos) else {
                continue;
            };
            for f in [
                SecondsFormat::Secs,
                SecondsFormat::Millis,
                SecondsFormat::Micros,
                SecondsFormat::Nanos,
                SecondsFormat::AutoSi,
            ] {
                assert_eq!(Rfc3339::of(&t, f).as_str(), t.to_rfc3339_opts(f, true));
            }
            assert_eq!(
                serde_json::to_string(&Rfc3339::of(&t, SecondsFormat::AutoSi)).unwrap(),
                serde_json::to_string(&t).unwrap()
            );
            checked += 1;
            leaps += usize::from(t.nanosecond() >= 1_000_000_000);
        }
        assert!(checked > 19_000, "{checked} instants checked");
        assert!(leaps > 2_000, "{leaps} leap seconds checked");
    }
}

//! CloudWatch's four missing-data treatments and the "M of N datapoints" alarm evaluation over an
//! *evaluation range* longer than N.
//!
//! Semantics follow the CloudWatch user guide ("How alarm state is evaluated when data is
//! missing" and "Avoiding premature transitions to alarm state"):
//! - CloudWatch fetches an evaluation range of more datapoints than N (5 for N = 3; see
//!   [`evaluation_range`]).
//! - With at least N real datapoints in the range, the N most recent real ones decide, whatever
//!   the treatment.
//! - With none, `missing` gives INSUFFICIENT_DATA, `ignore` keeps the current state, `breaching`
//!   alarms and `notBreaching` is OK.
//! - With fewer than N, every real datapoint counts and missing ones are filled with the
//!   treatment's meaning only as often as needed to make N (`breaching` fills are bad,
//!   `notBreaching` fills are good, `missing` and `ignore` fills take no side).
//! - Premature transitions: when every real datapoint in the range breaches and the oldest of
//!   them is at least M periods old, the alarm goes to ALARM under `missing` (the guide's
//!   `- - X - -`), and keeps its state under `ignore`; a single recent breach (`- - - - X`) alone
//!   never alarms.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MissingData {
    /// CloudWatch's default: missing points are not considered; all missing → insufficient data.
    #[default]
    Missing,
    /// Missing points are bad.
    Breaching,
    /// Missing points are good.
    NotBreaching,
    /// Missing points are not considered; all missing → the alert keeps its current state.
    Ignore,
}

impl std::str::FromStr for MissingData {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "missing" => Ok(Self::Missing),
            "breaching" => Ok(Self::Breaching),
            "notBreaching" | "not_breaching" => Ok(Self::NotBreaching),
            "ignore" => Ok(Self::Ignore),
            other => Err(format!(
                "unknown missing-data treatment {other:?} (use missing, breaching, notBreaching or ignore)"
            )),
        }
    }
}

impl MissingData {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Breaching => "breaching",
            Self::NotBreaching => "notBreaching",
            Self::Ignore => "ignore",
        }
    }
}

/// The outcome of an M-of-N evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Alarm,
    Ok,
    /// No datapoints and treatment `missing`: neither firing nor healthy.
    InsufficientData,
    /// No datapoints and treatment `ignore`: whatever state the alert had, it keeps.
    Retain,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "alarm",
            Self::Ok => "ok",
            Self::InsufficientData => "insufficient_data",
            Self::Retain => "retain",
        }
    }
}

/// How many datapoints CloudWatch retrieves for an alarm of `n` evaluation periods. The guide
/// documents only N = 3 → 5; every other N gets the same two extra datapoints (N + 2), so an
/// alarm of N periods can always look past two missing ones, as the documented case does.
pub fn evaluation_range(n: usize) -> usize {
    n.max(1).saturating_add(2)
}

/// Evaluates "at least `m` of `n` datapoints breach" over an evaluation range. `range` holds,
/// oldest first, `Some(true)` for a breaching datapoint, `Some(false)` for a healthy one and
/// `None` for a missing one; it is normally [`evaluation_range`]`(n)` long.
pub fn m_of_n(range: &[Option<bool>], m: usize, n: usize, treatment: MissingData) -> Verdict {
    let n = n.max(1);
    let m = m.clamp(1, n);
    let real: Vec<(usize, bool)> = range
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|b| (i, b)))
        .collect();
    if real.len() >= n {
        // Enough real datapoints: the N most recent decide, the treatment is not needed.
        let breaching = real[real.len() - n..].iter().filter(|(_, b)| *b).count();
        return if breaching >= m {
            Verdict::Alarm
        } else {
            Verdict::Ok
        };
    }
    if real.is_empty() {
        return match treatment {
            MissingData::Breaching => Verdict::Alarm,
            MissingData::NotBreaching => Verdict::Ok,
            MissingData::Missing => Verdict::InsufficientData,
            MissingData::Ignore => Verdict::Retain,
        };
    }
    // Fewer real datapoints than N: all of them count, plus as few filled ones as make N.
    let fill = n - real.len();
    let breaching = real.iter().filter(|(_, b)| *b).count();
    // The guide's premature-transition rule: every real datapoint breaches and the oldest is at
    // least M datapoints old (age 1 = the most recent slot of the range).
    let oldest_age = range.len() - real[0].0;
    let premature = breaching == real.len() && oldest_age >= m;
    match treatment {
        MissingData::Breaching if breaching + fill >= m => Verdict::Alarm,
        _ if breaching >= m => Verdict::Alarm,
        MissingData::Missing if premature => Verdict::Alarm,
        MissingData::Ignore if premature => Verdict::Retain,
        _ => Verdict::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MissingData::*;
    use Verdict::*;

    /// `0` healthy, `X` breaching, `-` missing; oldest first, like CloudWatch's tables.
    fn slots(s: &str) -> Vec<Option<bool>> {
        s.split_whitespace()
            .map(|c| match c {
                "0" => Some(false),
                "X" => Some(true),
                "-" => None,
                _ => panic!("bad slot {c}"),
            })
            .collect()
    }

    /// Verdicts under missing, ignore, breaching, notBreaching for N = 3 over a range of 5.
    fn row(s: &str, m: usize) -> [Verdict; 4] {
        let v = slots(s);
        [Missing, Ignore, Breaching, NotBreaching].map(|t| m_of_n(&v, m, 3, t))
    }

    #[test]
    fn the_guides_three_of_three_table() {
        assert_eq!(evaluation_range(3), 5);
        assert_eq!(row("0 - X - X", 3), [Ok, Ok, Ok, Ok]);
        assert_eq!(row("0 - - - -", 3), [Ok, Ok, Ok, Ok]);
        assert_eq!(row("- - - - -", 3), [InsufficientData, Retain, Alarm, Ok]);
        assert_eq!(row("0 X X - X", 3), [Alarm, Alarm, Alarm, Alarm]);
        assert_eq!(row("- - X - -", 3), [Alarm, Retain, Alarm, Ok]);
    }

    #[test]
    fn the_guides_two_of_three_table() {
        assert_eq!(row("0 - X - X", 2), [Alarm, Alarm, Alarm, Alarm]);
        assert_eq!(row("0 0 X 0 X", 2), [Alarm, Alarm, Alarm, Alarm]);
        assert_eq!(row("0 - X - -", 2), [Ok, Ok, Alarm, Ok]);
        assert_eq!(row("- - - - 0", 2), [Ok, Ok, Alarm, Ok]);
        assert_eq!(row("- - - X -", 2), [Alarm, Retain, Alarm, Ok]);
    }

    #[test]
    fn a_recent_lone_breach_is_not_a_premature_alarm() {
        assert_eq!(row("- - - - X", 3), [Ok, Ok, Alarm, Ok]);
        assert_eq!(row("- - - X -", 3), [Ok, Ok, Alarm, Ok]);
        assert_eq!(row("- - - X 0", 3), [Ok, Ok, Ok, Ok]);
        assert_eq!(row("- - X - 0", 3), [Ok, Ok, Ok, Ok]);
    }

    #[test]
    fn treatment_names_parse() {
        assert_eq!("notBreaching".parse::<MissingData>().unwrap(), NotBreaching);
        assert!("sometimes"
            .parse::<MissingData>()
            .unwrap_err()
            .contains("unknown missing-data"));
    }
}

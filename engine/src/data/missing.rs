//! CloudWatch's four missing-data treatments and the "M of N datapoints" alarm evaluation.
//!
//! Semantics follow CloudWatch's documentation ("Configuring how CloudWatch alarms treat missing
//! data"): real datapoints always count; when fewer real datapoints than M are present, missing
//! ones are filled with the treatment's meaning only as often as needed to reach M; when every
//! datapoint in the range is missing, `missing` gives INSUFFICIENT_DATA, `ignore` keeps the current
//! state, `breaching` alarms and `notBreaching` is OK.

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

/// Evaluates "at least `m` of the last `n` slots breach". `slots` holds, oldest first, `Some(true)`
/// for a breaching datapoint, `Some(false)` for a healthy one and `None` for a missing one.
pub fn m_of_n(slots: &[Option<bool>], m: usize, treatment: MissingData) -> Verdict {
    let m = m.max(1);
    let present = slots.iter().filter(|s| s.is_some()).count();
    let breaching = slots.iter().filter(|s| **s == Some(true)).count();
    if present == 0 {
        return match treatment {
            MissingData::Breaching if slots.len() >= m => Verdict::Alarm,
            MissingData::Breaching | MissingData::NotBreaching => Verdict::Ok,
            MissingData::Missing => Verdict::InsufficientData,
            MissingData::Ignore => Verdict::Retain,
        };
    }
    if present >= m {
        return if breaching >= m {
            Verdict::Alarm
        } else {
            Verdict::Ok
        };
    }
    // Fewer real datapoints than M: fill just enough missing ones to reach M.
    let fill = (m - present).min(slots.len() - present);
    let alarm = match treatment {
        MissingData::Breaching => breaching + fill >= m,
        MissingData::NotBreaching => false,
        // Filled points take no side, so the real ones decide: all of them must breach.
        MissingData::Missing | MissingData::Ignore => breaching == present,
    };
    if alarm {
        Verdict::Alarm
    } else {
        Verdict::Ok
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

    fn row(s: &str, m: usize) -> [Verdict; 4] {
        let v = slots(s);
        [Missing, Ignore, Breaching, NotBreaching].map(|t| m_of_n(&v, m, t))
    }

    #[test]
    fn three_of_three_table() {
        // Evaluation periods 3, datapoints to alarm 3: columns missing, ignore, breaching, notBreaching.
        assert_eq!(row("0 X X", 3), [Ok, Ok, Ok, Ok]);
        assert_eq!(row("X X X", 3), [Alarm, Alarm, Alarm, Alarm]);
        assert_eq!(row("0 - -", 3), [Ok, Ok, Ok, Ok]);
        assert_eq!(row("- - -", 3), [InsufficientData, Retain, Alarm, Ok]);
        assert_eq!(row("- - X", 3), [Alarm, Alarm, Alarm, Ok]);
        assert_eq!(row("0 X -", 3), [Ok, Ok, Ok, Ok]);
        assert_eq!(row("X X -", 3), [Alarm, Alarm, Alarm, Ok]);
    }

    #[test]
    fn two_of_three_uses_real_points_first() {
        // Two real datapoints are enough for M=2, so the missing one is never filled.
        assert_eq!(row("X - 0", 2), [Ok, Ok, Ok, Ok]);
        assert_eq!(row("X - X", 2), [Alarm, Alarm, Alarm, Alarm]);
        // One real breaching point, one fill needed.
        assert_eq!(row("- - X", 2), [Alarm, Alarm, Alarm, Ok]);
        assert_eq!(row("- 0 -", 2), [Ok, Ok, Ok, Ok]);
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

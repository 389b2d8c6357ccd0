//! Silences: a person's "I know, stop telling me" for alerts matching some labels, between a start
//! and an end. Kept in the store, so `tripline silence add` in one process mutes the daemon in
//! another. An expired silence stops muting at the instant it ends.

use super::matcher::{all_match, Matcher};
use crate::alert::{Alert, AlertState};
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    /// Matchers as written (`team=db`, `function=~prd-.*`), all of which must match.
    pub matchers: Vec<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    pub created_at: Timestamp,
    /// Whether the "expired while its alerts still fire" notice was given.
    #[serde(default)]
    pub expiry_noticed: bool,
}

impl Silence {
    /// A new silence with an id derived from its content and creation instant.
    pub fn new(
        matchers: &[Matcher],
        starts_at: Timestamp,
        ends_at: Timestamp,
        created_by: impl Into<String>,
        comment: impl Into<String>,
        created_at: Timestamp,
    ) -> Result<Self, String> {
        if matchers.is_empty() {
            return Err("a silence needs at least one matcher".into());
        }
        // As Alertmanager's API: a silence over by the time it is made mutes nothing, and
        // accepting it without a word hides a typo in the date.
        if ends_at <= created_at {
            return Err(format!(
                "the silence would end at {}, which has already passed",
                ends_at.to_rfc3339()
            ));
        }
        if ends_at <= starts_at {
            return Err("a silence must end after it starts".into());
        }
        let matchers: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
        let seed = format!(
            "{}|{}|{}|{}",
            matchers.join(","),
            created_at.timestamp_nanos_opt().unwrap_or_default(),
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        Ok(Silence {
            id: crate::alert::fingerprint("silence", &[("seed".to_string(), seed)].into()),
            matchers,
            starts_at,
            ends_at,
            created_by: created_by.into(),
            comment: comment.into(),
            created_at,
            expiry_noticed: false,
        })
    }

    /// A silence from the body of `POST /api/v1/silences` at `now`: `{"matchers": ["team=db"],
    /// "duration": "2h" | "ends_at": RFC 3339, "starts_at"?, "created_by"?, "comment"?}`. Every
    /// error is the request's fault (a 400), never a panic.
    pub fn from_request(body: &str, now: Timestamp) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NewSilence {
            matchers: Vec<String>,
            starts_at: Option<Timestamp>,
            ends_at: Option<Timestamp>,
            duration: Option<String>,
            #[serde(default)]
            created_by: String,
            #[serde(default)]
            comment: String,
        }
        let req: NewSilence = serde_json::from_str(body).map_err(|e| e.to_string())?;
        let matchers = parse_matchers(&req.matchers)?;
        let starts_at = req.starts_at.unwrap_or(now);
        let ends_at = match (req.ends_at, &req.duration) {
            (Some(t), _) => t,
            (None, Some(d)) => starts_at
                .checked_add_signed(crate::clock::parse_duration(d)?)
                .ok_or("`duration` is out of range")?,
            (None, None) => return Err("give `ends_at` or `duration`".into()),
        };
        Silence::new(
            &matchers,
            starts_at,
            ends_at,
            req.created_by,
            req.comment,
            now,
        )
    }

    pub fn is_active(&self, at: Timestamp) -> bool {
        self.starts_at <= at && at < self.ends_at
    }

    pub fn is_expired(&self, at: Timestamp) -> bool {
        self.ends_at <= at
    }

    /// The parsed matchers; a stored silence whose matcher no longer parses matches nothing.
    pub fn parsed(&self) -> Option<Vec<Matcher>> {
        self.matchers
            .iter()
            .map(|m| Matcher::parse(m))
            .collect::<Result<Vec<_>, _>>()
            .ok()
    }

    pub fn mutes(&self, alert: &Alert) -> bool {
        self.parsed().is_some_and(|ms| all_match(&ms, alert))
    }
}

/// The most matchers one silence may have. Every active silence's matchers are compiled on each
/// notification pass, so what one request may store is bounded (issue #17).
pub const MAX_MATCHERS: usize = 64;
/// The longest matcher, as written (`function=~prd-(a|b|c)`), in bytes: room for long
/// alternations of names, not for a megabyte regex.
pub const MAX_MATCHER_LEN: usize = 4096;

/// Parses the matchers of a new silence (from the API or the CLI), refusing more or longer ones
/// than the limits above before compiling any. Each string may hold one matcher or a list in
/// Alertmanager's grammar (`{team="db", env=~"prod|stage"}`), as `amtool silence add` takes.
pub fn parse_matchers(written: &[String]) -> Result<Vec<Matcher>, String> {
    if written.len() > MAX_MATCHERS {
        return Err(format!(
            "a silence has at most {MAX_MATCHERS} matchers, not {}",
            written.len()
        ));
    }
    if let Some(long) = written.iter().find(|m| m.len() > MAX_MATCHER_LEN) {
        return Err(format!(
            "a matcher is at most {MAX_MATCHER_LEN} bytes; one is {}",
            long.len()
        ));
    }
    let mut out = Vec::new();
    for w in written {
        out.extend(super::matcher::parse_matchers(w).map_err(|e| e.to_string())?);
    }
    if out.len() > MAX_MATCHERS {
        return Err(format!(
            "a silence has at most {MAX_MATCHERS} matchers, not {}",
            out.len()
        ));
    }
    Ok(out)
}

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The silence stage: which alerts the active silences mute at `at`.
#[derive(Debug, Clone, Default)]
pub struct SilenceStage {
    /// Let the resolve of a silenced alert through (someone may still have the firing message).
    pub send_resolved: bool,
}

impl SilenceStage {
    /// Fingerprints muted now, each with the id of a silence muting it.
    pub fn muted<A: Borrow<Alert>>(
        &self,
        alerts: &[A],
        silences: &[Silence],
        at: Timestamp,
    ) -> BTreeSet<String> {
        let active: Vec<(&Silence, Vec<Matcher>)> = silences
            .iter()
            .filter(|s| s.is_active(at))
            .filter_map(|s| s.parsed().map(|m| (s, m)))
            .collect();
        alerts
            .iter()
            .map(Borrow::borrow)
            .filter(|a: &&Alert| !(self.send_resolved && a.state == AlertState::Resolved))
            .filter(|a| active.iter().any(|(_, ms)| all_match(ms, *a)))
            .map(|a| a.fingerprint.clone())
            .collect()
    }

    /// Silences that have ended while alerts they muted still fire: worth telling someone. An
    /// alert that started firing after the silence ended was never muted by it and does not count.
    pub fn expired_over_firing<'a, A: Borrow<Alert>>(
        &self,
        alerts: &[A],
        silences: &'a [Silence],
        at: Timestamp,
    ) -> Vec<(&'a Silence, Vec<String>)> {
        silences
            .iter()
            .filter(|s| s.is_expired(at))
            .filter_map(|s| {
                let firing: Vec<String> = alerts
                    .iter()
                    .map(Borrow::borrow)
                    .filter(|a: &&Alert| {
                        a.state == AlertState::Firing
                            && a.starts_at.unwrap_or(a.active_since) < s.ends_at
                            && s.mutes(a)
                    })
                    .map(|a| a.fingerprint.clone())
                    .collect();
                (!firing.is_empty()).then_some((s, firing))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testutil::{alert, t};

    #[test]
    fn mutes_only_while_active() {
        let s = Silence::new(
            &[Matcher::parse("team=db").unwrap()],
            t(0),
            t(60),
            "ann",
            "maintenance",
            t(0),
        )
        .unwrap();
        let a = alert("x", &[("team", "db")], AlertState::Firing);
        let b = alert("y", &[("team", "web")], AlertState::Firing);
        let stage = SilenceStage::default();
        let all = [a.clone(), b];
        assert_eq!(
            stage.muted(&all, std::slice::from_ref(&s), t(10)),
            [a.fingerprint.clone()].into()
        );
        assert!(
            stage
                .muted(&all, std::slice::from_ref(&s), t(60))
                .is_empty(),
            "ends_at is exclusive"
        );
        assert_eq!(
            stage
                .expired_over_firing(&all, std::slice::from_ref(&s), t(60))
                .len(),
            1
        );
    }

    #[test]
    fn a_silence_needs_matchers_and_an_end_after_its_start() {
        let m = [Matcher::parse("a=b").unwrap()];
        assert!(Silence::new(&[], t(0), t(1), "a", "", t(0))
            .unwrap_err()
            .contains("at least one matcher"));
        assert!(Silence::new(&m, t(1), t(1), "a", "", t(0))
            .unwrap_err()
            .contains("end after"));
        let (x, y) = (
            Silence::new(&m, t(0), t(1), "a", "", t(0)).unwrap(),
            Silence::new(&m, t(0), t(1), "a", "", t(0)).unwrap(),
        );
        assert_ne!(x.id, y.id, "ids are unique");
        // Made at t(5) to run from t(0) to t(1): already over.
        assert!(Silence::new(&m, t(0), t(1), "a", "", t(5))
            .unwrap_err()
            .contains("already passed"));
    }

    #[test]
    fn new_silences_have_bounded_matchers() {
        let many = vec!["a=b".to_string(); MAX_MATCHERS + 1];
        assert_eq!(
            parse_matchers(&many).unwrap_err(),
            "a silence has at most 64 matchers, not 65"
        );
        assert_eq!(parse_matchers(&many[1..]).unwrap().len(), MAX_MATCHERS);
        let long = format!("a=~{}", "x".repeat(MAX_MATCHER_LEN));
        assert_eq!(
            parse_matchers(&[long]).unwrap_err(),
            "a matcher is at most 4096 bytes; one is 4099"
        );
        let longest = format!("a=~{}", "x".repeat(MAX_MATCHER_LEN - 3));
        assert!(parse_matchers(&[longest]).is_ok());
    }

    #[test]
    fn resolved_alerts_pass_when_asked() {
        let s = Silence::new(
            &[Matcher::parse("team=db").unwrap()],
            t(0),
            t(60),
            "ann",
            "",
            t(0),
        )
        .unwrap();
        let a = alert("x", &[("team", "db")], AlertState::Resolved);
        assert_eq!(
            SilenceStage {
                send_resolved: false
            }
            .muted(std::slice::from_ref(&a), std::slice::from_ref(&s), t(1))
            .len(),
            1
        );
        assert!(SilenceStage {
            send_resolved: true
        }
        .muted(&[a], &[s], t(1))
        .is_empty());
    }
}

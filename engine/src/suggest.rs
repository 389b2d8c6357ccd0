//! "did you mean …?": the closest of some known names to a mistyped one, by edit distance.

/// Levenshtein distance in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The known name closest to `wrong`, if it is close enough to be the one meant: within a third
/// of the longer name's length (at least 2 edits), or `wrong` a prefix/extension of it
/// (`fire_alert` → `fire`, `lambda-throttle` → `lambda-throttles`). Ties go to the first.
pub fn closest<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    for k in known {
        if k == wrong {
            return Some(k);
        }
        let d = edit_distance(wrong, k);
        let len = wrong.chars().count().max(k.chars().count());
        let related = d <= (len / 3).max(2)
            || (k.len() >= 3 && (wrong.starts_with(k) || k.starts_with(wrong)));
        if related && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

/// `; did you mean `x`?` for `wrong` among `known`, or nothing.
pub fn did_you_mean<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(wrong, known)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("fire", "fire"), 0);
    }

    #[test]
    fn suggestions() {
        let fns = ["fire", "query", "metric", "now", "resolve"];
        assert_eq!(closest("fire_alert", fns), Some("fire"));
        assert_eq!(closest("fier", fns), Some("fire"));
        assert_eq!(closest("completely_else", fns), None);
        let rules = [
            "aws/lambda-throttles",
            "aws/lambda-errors",
            "aws/lambda-timeouts",
        ];
        assert_eq!(
            closest("aws/lambda-throttle", rules),
            Some("aws/lambda-throttles")
        );
        assert_eq!(
            did_you_mean("thresold", ["threshold", "period"]),
            "; did you mean `threshold`?"
        );
    }
}

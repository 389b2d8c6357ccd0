//! A stable identity for an alert: the same rule instance and labels always give the same
//! fingerprint, across processes, machines and releases.

use super::Labels;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(FNV_PRIME);
    }
}

/// FNV-1a over the rule id and the labels in sorted order, separated by a byte that cannot occur
/// in UTF-8 text so that `a=bc` and `ab=c` differ. Severity is deliberately not part of it: a
/// warning that becomes critical stays the same alert.
pub fn fingerprint(rule: &str, labels: &Labels) -> String {
    let mut h = FNV_OFFSET;
    fnv1a(&mut h, rule.as_bytes());
    for (k, v) in labels {
        fnv1a(&mut h, &[0xff]);
        fnv1a(&mut h, k.as_bytes());
        fnv1a(&mut h, &[0xfe]);
        fnv1a(&mut h, v.as_bytes());
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn stable_and_order_independent() {
        let a = fingerprint("r", &labels(&[("a", "1"), ("b", "2")]));
        let b = fingerprint("r", &labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(a, b);
        // Pinned so that a change of algorithm (which would orphan every stored alert) is noticed.
        assert_eq!(
            fingerprint("aws/lambda-errors", &labels(&[("function", "f")])),
            "d0837485c4a5bfd9"
        );
    }

    #[test]
    fn boundaries_between_keys_and_values_matter() {
        assert_ne!(
            fingerprint("r", &labels(&[("a", "bc")])),
            fingerprint("r", &labels(&[("ab", "c")]))
        );
        assert_ne!(
            fingerprint("r1", &labels(&[])),
            fingerprint("r2", &labels(&[]))
        );
    }
}

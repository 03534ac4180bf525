//! Telephone numbers: E.164 (`+` and 8–15 digits, country code not 0,
//! optionally grouped by spaces, dashes, dots or parentheses), North
//! American numbers (`(415) 555-0123`, `415-555-0123`, `415.555.0123`,
//! optionally after `1`/`+1`; area code and exchange start with 2–9) and
//! national numbers with a trunk prefix 0 printed in groups (`020 7946
//! 0958`, `01 23 45 67 89`). Ten bare digits count only in a column whose
//! name says phone.

use super::{Classifier, digits_with, name_has};

/// The telephone number classifier.
pub(super) struct Phone;

const SEPARATORS: &[char] = &[' ', '-', '.', '(', ')'];

fn nanp(digits: &str) -> bool {
    let d = digits.as_bytes();
    d.len() == 10 && d[0] >= b'2' && d[3] >= b'2'
}

/// The digit groups of `value` split at separators (parentheses count as
/// separators).
fn groups(value: &str) -> Vec<&str> {
    value.split(SEPARATORS).filter(|g| !g.is_empty()).collect()
}

fn balanced_parentheses(value: &str) -> bool {
    let open = value.matches('(').count();
    let close = value.matches(')').count();
    open == close && open <= 1 && value.find('(') <= value.find(')')
}

impl Classifier for Phone {
    fn name(&self) -> &str {
        "phone"
    }
    fn tag(&self) -> String {
        "Discovered.Telephone Number".into()
    }
    fn specificity(&self) -> u32 {
        50
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(
            column,
            &[
                "phone",
                "telephone",
                "tel",
                "mobile",
                "cell",
                "fax",
                "msisdn",
                "phone_number",
            ],
        )
    }
    fn matches(&self, value: &str, named: bool) -> bool {
        if !balanced_parentheses(value) || value.contains("--") || value.contains("  ") {
            return false;
        }
        if let Some(rest) = value.strip_prefix('+') {
            let Some(digits) = digits_with(rest, SEPARATORS) else {
                return false;
            };
            return (8..=15).contains(&digits.len()) && !digits.starts_with('0');
        }
        let Some(digits) = digits_with(value, SEPARATORS) else {
            return false;
        };
        let g = groups(value);
        let separated = g.len() > 1;
        // North American: [1] NXX NXX XXXX, groups 3-3-4.
        let nanp_digits = match digits.len() {
            11 if digits.starts_with('1') => &digits[1..],
            _ => digits.as_str(),
        };
        let group_lens: Vec<usize> = g.iter().map(|x| x.len()).collect();
        let nanp_shape = matches!(group_lens.as_slice(), [3, 3, 4] | [1, 3, 3, 4]);
        if nanp(nanp_digits) && (nanp_shape || (named && g.len() == 1)) {
            return true;
        }
        // National with trunk prefix 0, printed in groups.
        digits.starts_with('0')
            && !digits.starts_with("00")
            && (10..=11).contains(&digits.len())
            && (separated || named)
            && g.iter().all(|x| x.len() >= 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        let c = Phone;
        for good in [
            "+1 415 555 0123",
            "+44 20 7946 0958",
            "+4915112345678",
            "(415) 555-0123",
            "415-555-0123",
            "415.555.0123",
            "1-415-555-0123",
            "020 7946 0958",
            "01 23 45 67 89",
        ] {
            assert!(c.matches(good, false), "{good}");
        }
        assert!(c.matches("4155550123", true));
        for bad in [
            "4155550123",
            "2024-01-15",
            "+0123456789",
            "+123",
            "PN-4821-XK",
            "123-456-7890",
            "4111111111111111",
            "(415 555-0123",
            "12345",
        ] {
            assert!(!c.matches(bad, false), "{bad}");
        }
    }
}

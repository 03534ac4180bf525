//! Credit card numbers: 13–19 digits (optionally in groups separated by
//! spaces or dashes) that pass the Luhn check and start with a known issuer
//! identification number (Visa, Mastercard, American Express, Discover,
//! JCB, Diners Club, UnionPay, Maestro).

use super::{Classifier, digits_with, name_has};

/// The credit card classifier.
pub(super) struct CreditCard;

/// The Luhn (mod 10) check over a string of ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether `digits` (13–19 of them) start with an issuer prefix valid for
/// their length.
fn known_iin(digits: &str) -> bool {
    let len = digits.len();
    let prefix = |n: usize| {
        digits
            .get(..n)
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    // Visa
    (p1 == 4 && matches!(len, 13 | 16 | 19))
        // Mastercard
        || ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16
        // American Express
        || matches!(p2, 34 | 37) && len == 15
        // Discover
        || (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6))
            && (16..=19).contains(&len)
        // JCB
        || (3528..=3589).contains(&p4) && (16..=19).contains(&len)
        // Diners Club
        || ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&len)
        // UnionPay
        || p2 == 62 && (16..=19).contains(&len)
        // Maestro
        || matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763)
            && (12..=19).contains(&len)
}

impl Classifier for CreditCard {
    fn name(&self) -> &str {
        "credit_card"
    }
    fn tag(&self) -> String {
        "Discovered.Credit Card Number".into()
    }
    fn specificity(&self) -> u32 {
        90
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(
            column,
            &[
                "card",
                "cc",
                "pan",
                "credit_card",
                "card_number",
                "ccnum",
                "cc_number",
            ],
        )
    }
    fn matches(&self, value: &str, _named: bool) -> bool {
        let Some(digits) = digits_with(value, &[' ', '-']) else {
            return false;
        };
        // Separators only between digits, never leading or doubled.
        if value.starts_with([' ', '-']) || value.ends_with([' ', '-']) {
            return false;
        }
        (13..=19).contains(&digits.len()) && known_iin(&digits) && luhn_valid(&digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_need_luhn_and_an_issuer() {
        let c = CreditCard;
        for good in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "5500-0000-0000-0004",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "2223003122003222",
        ] {
            assert!(c.matches(good, false), "{good}");
        }
        for bad in [
            "4111111111111112", // Luhn fails
            "1234567812345670", // Luhn passes, no issuer
            "41111111111111",   // 14 digits for Visa
            "4111-1111-1111-111x",
            "-4111111111111111",
            "",
        ] {
            assert!(!c.matches(bad, true), "{bad}");
        }
    }
}

//! US Social Security numbers: `AAA-GG-SSSS` (or nine bare digits in a
//! column whose name says SSN) whose area is not 000, 666 or 900–999,
//! group not 00 and serial not 0000; numbers the SSA voided after they were
//! published (078-05-1120, 219-09-9999) do not count.

use super::{Classifier, name_has};

/// The US SSN classifier.
pub(super) struct Ssn;

fn valid_parts(area: &str, group: &str, serial: &str) -> bool {
    let (Ok(a), Ok(g), Ok(s)) = (
        area.parse::<u32>(),
        group.parse::<u32>(),
        serial.parse::<u32>(),
    ) else {
        return false;
    };
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    all_digits(area)
        && all_digits(group)
        && all_digits(serial)
        && a != 0
        && a != 666
        && a < 900
        && g != 0
        && s != 0
        && !matches!((a, g, s), (78, 5, 1120) | (219, 9, 9999))
}

impl Classifier for Ssn {
    fn name(&self) -> &str {
        "us_ssn"
    }
    fn tag(&self) -> String {
        "Discovered.US Social Security Number".into()
    }
    fn specificity(&self) -> u32 {
        80
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(
            column,
            &[
                "ssn",
                "social_security",
                "social_security_number",
                "ss_number",
                "tax_id",
                "tin",
            ],
        )
    }
    fn matches(&self, value: &str, named: bool) -> bool {
        let parts: Vec<&str> = value.split(['-', ' ']).collect();
        match parts.as_slice() {
            [a, g, s] if a.len() == 3 && g.len() == 2 && s.len() == 4 => {
                let sep = value.as_bytes()[3];
                // One separator style throughout.
                value.as_bytes()[6] == sep && valid_parts(a, g, s)
            }
            [bare] if named && bare.len() == 9 => valid_parts(&bare[..3], &bare[3..5], &bare[5..]),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssn_area_group_serial() {
        let c = Ssn;
        assert!(c.matches("123-45-6789", false));
        assert!(c.matches("123 45 6789", false));
        assert!(c.matches("123456789", true));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "901-12-3456",
            "123-00-4567",
            "123-45-0000",
            "078-05-1120",
            "123-45 6789",
            "12-345-6789",
            "123456789",
        ] {
            assert!(!c.matches(bad, false), "{bad}");
        }
    }
}

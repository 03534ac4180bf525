//! Postal codes: US ZIP+4 (`94105-1804`), UK postcodes (`SW1A 1AA`, the
//! Royal Mail format including `GIR 0AA`) and Canadian postal codes
//! (`K1A 0B1`, letters D F I O Q U never used). Bare five-digit ZIP codes
//! count only in a column whose name says zip or postal code: alone they
//! look like any five-digit number.

use regex::Regex;

use super::{Classifier, name_has};

/// The postal code classifier.
pub(super) struct PostalCode {
    uk: Option<Regex>,
    ca: Option<Regex>,
}

impl PostalCode {
    pub(super) fn new() -> Self {
        // Constant patterns, checked by the unit tests; `None` would only
        // turn the UK/CA forms off, never panic.
        Self {
            uk: Regex::new(
                r"^(?:GIR ?0AA|[A-PR-UWYZ](?:[0-9][0-9]?|[A-HK-Y][0-9][0-9]?|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY]) ?[0-9][ABD-HJLNP-UW-Z]{2})$",
            )
            .ok(),
            ca: Regex::new(r"^[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z] ?[0-9][ABCEGHJ-NPRSTV-Z][0-9]$").ok(),
        }
    }
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

impl Classifier for PostalCode {
    fn name(&self) -> &str {
        "postal_code"
    }
    fn tag(&self) -> String {
        "Discovered.Postal Code".into()
    }
    fn specificity(&self) -> u32 {
        40
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(
            column,
            &[
                "zip",
                "zipcode",
                "zip_code",
                "postal",
                "postal_code",
                "postcode",
                "post_code",
            ],
        )
    }
    fn matches(&self, value: &str, named: bool) -> bool {
        if let Some((zip, plus4)) = value.split_once('-') {
            return zip.len() == 5 && plus4.len() == 4 && all_digits(zip) && all_digits(plus4);
        }
        if value.len() == 5 && all_digits(value) {
            return named;
        }
        self.uk.as_ref().is_some_and(|r| r.is_match(value))
            || self.ca.as_ref().is_some_and(|r| r.is_match(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postal_codes() {
        let c = PostalCode::new();
        assert!(c.uk.is_some() && c.ca.is_some());
        for good in [
            "94105-1804",
            "SW1A 1AA",
            "EC1A 1BB",
            "M1 1AE",
            "B33 8TH",
            "GIR 0AA",
            "K1A 0B1",
            "H2X3Y7",
        ] {
            assert!(c.matches(good, false), "{good}");
        }
        assert!(c.matches("94105", true));
        for bad in [
            "94105",
            "9410-51804",
            "QQ1 1AA",
            "D1A 0B1",
            "PN-4821",
            "12345-678",
        ] {
            assert!(!c.matches(bad, false), "{bad}");
        }
    }
}

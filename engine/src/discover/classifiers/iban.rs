//! International Bank Account Numbers: a country with its registered IBAN
//! length (ISO 13616), two check digits and an alphanumeric account part,
//! in electronic form or printed in groups of four; valid when the
//! mod-97 check gives 1.

use super::{Classifier, name_has};

/// The IBAN classifier.
pub(super) struct Iban;

/// IBAN lengths by country (the SWIFT IBAN registry).
const LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// Whether `value` is a valid IBAN (spaces between groups allowed).
pub fn iban_valid(value: &str) -> bool {
    let compact: String = value.chars().filter(|c| *c != ' ').collect();
    let bytes = compact.as_bytes();
    if bytes.len() < 15 || bytes.len() > 34 || !compact.is_ascii() {
        return false;
    }
    let (country, rest) = compact.split_at(2);
    let Some(&(_, length)) = LENGTHS.iter().find(|(c, _)| *c == country) else {
        return false;
    };
    if bytes.len() != length
        || !rest[..2].bytes().all(|b| b.is_ascii_digit())
        || !rest
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        return false;
    }
    // Move the first four characters to the end, letters → 10..35, mod 97.
    let rearranged = compact[4..].bytes().chain(compact[..4].bytes());
    let mut remainder: u32 = 0;
    for b in rearranged {
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        remainder = if v >= 10 {
            (remainder * 100 + v) % 97
        } else {
            (remainder * 10 + v) % 97
        };
    }
    remainder == 1
}

impl Classifier for Iban {
    fn name(&self) -> &str {
        "iban"
    }
    fn tag(&self) -> String {
        "Discovered.IBAN".into()
    }
    fn specificity(&self) -> u32 {
        90
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(column, &["iban", "account", "bank_account"])
    }
    fn matches(&self, value: &str, _named: bool) -> bool {
        // Printed form: groups of four separated by single spaces.
        if value.contains(' ')
            && value
                .split(' ')
                .enumerate()
                .any(|(i, g)| g.is_empty() || (g.len() != 4 && i + 1 != value.split(' ').count()))
        {
            return false;
        }
        iban_valid(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iban_mod_97() {
        let c = Iban;
        for good in [
            "DE89370400440532013000",
            "GB29NWBK60161331926819",
            "GB29 NWBK 6016 1331 9268 19",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
        ] {
            assert!(c.matches(good, false), "{good}");
        }
        for bad in [
            "DE89370400440532013001", // check digits wrong
            "GB29NWBK6016133192681",  // too short for GB
            "XX89370400440532013000", // no such country
            "de89370400440532013000",
            "GB29  NWBK 6016 1331 9268 19",
        ] {
            assert!(!c.matches(bad, false), "{bad}");
        }
    }
}

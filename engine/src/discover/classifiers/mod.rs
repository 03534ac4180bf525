//! The classifiers `veil discover` runs: one file per family of built-in
//! classifier (each validating values, not only matching their shape) and
//! the workspace's own ([`custom`]). A classifier answers two questions:
//! does this column's *name* hint at the type (evidence, never enough
//! alone), and does this *value* hold the type.

mod card;
pub mod custom;
mod dob;
mod email;
mod iban;
mod ip;
mod person_name;
mod phone;
mod postal;
mod ssn;
mod url;

pub use card::luhn_valid;
pub use iban::iban_valid;

/// One classifier.
pub trait Classifier: Send + Sync {
    /// Its short name (`email`, `credit_card`, or a custom classifier's name).
    fn name(&self) -> &str;
    /// The tag it gives a qualifying column (`Discovered.<Type>`).
    fn tag(&self) -> String;
    /// How specific a match is: when several classifiers qualify a column,
    /// the highest wins (then the first in [`builtins`] order).
    fn specificity(&self) -> u32;
    /// Whether a column named `column` (lower-cased) hints at this type.
    fn name_signal(&self, column: &str) -> bool;
    /// Whether `value` (trimmed, non-empty) holds this type; `named` says
    /// whether the column name hints at it (some shapes, such as a bare
    /// five-digit number, count only then).
    fn matches(&self, value: &str, named: bool) -> bool;
}

/// The built-in classifiers, most specific first.
pub fn builtins() -> Vec<Box<dyn Classifier>> {
    vec![
        Box::new(card::CreditCard),
        Box::new(iban::Iban),
        Box::new(email::Email),
        Box::new(ssn::Ssn),
        Box::new(ip::IpAddress),
        Box::new(dob::DateOfBirth),
        Box::new(url::Url),
        Box::new(phone::Phone),
        Box::new(postal::PostalCode::new()),
        Box::new(person_name::PersonName::new()),
    ]
}

/// Whether the lower-cased column name contains one of `words` as a
/// whole `_`-separated word (or run of words): `home_phone` has `phone`,
/// `telephone` does not have `tel` unless listed.
pub(crate) fn name_has(column: &str, words: &[&str]) -> bool {
    let parts: Vec<&str> = column
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .collect();
    let joined = parts.join("_");
    words.iter().any(|w| {
        parts.iter().any(|p| p == w)
            || joined == *w
            || joined.starts_with(&format!("{w}_"))
            || joined.ends_with(&format!("_{w}"))
            || joined.contains(&format!("_{w}_"))
    })
}

/// The ASCII digits of `value` when it is digits separated only by the
/// characters in `separators`.
pub(crate) fn digits_with(value: &str, separators: &[char]) -> Option<String> {
    let mut digits = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !separators.contains(&c) {
            return None;
        }
    }
    Some(digits)
}

//! E-mail addresses: a dot-atom local part (RFC 5322, at most 64 octets), an
//! `@`, and a domain of at least two DNS labels (letters, digits, inner
//! hyphens, at most 63 octets each) ending in an alphabetic top-level
//! domain.

use super::{Classifier, name_has};

/// The e-mail address classifier.
pub(super) struct Email;

fn local_ok(local: &str) -> bool {
    const SPECIAL: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || SPECIAL.contains(c))
}

fn domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

impl Classifier for Email {
    fn name(&self) -> &str {
        "email"
    }
    fn tag(&self) -> String {
        "Discovered.Electronic Mail Address".into()
    }
    fn specificity(&self) -> u32 {
        85
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(column, &["email", "e_mail", "mail", "email_address"])
    }
    fn matches(&self, value: &str, _named: bool) -> bool {
        match value.rsplit_once('@') {
            Some((local, domain)) => local_ok(local) && domain_ok(domain),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        let c = Email;
        for good in [
            "a@example.com",
            "first.last+tag@mail.example.co.uk",
            "x_y@a-b.io",
        ] {
            assert!(c.matches(good, false), "{good}");
        }
        for bad in [
            "a@b",
            "@example.com",
            "a..b@example.com",
            "a@-x.com",
            "a@example.c0m",
            "true",
            "a b@example.com",
        ] {
            assert!(!c.matches(bad, false), "{bad}");
        }
    }
}

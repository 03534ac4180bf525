//! Person names: one to four capitalised words of letters (apostrophes, hyphens and a
//! trailing initial's dot allowed, `Last, First` too) of which at least one
//! is a given or family name in Veil's shipped dictionary (`names.txt`:
//! common given and family names, lower-case).

use std::collections::HashSet;

use super::{Classifier, name_has};

/// The person name classifier.
pub(super) struct PersonName {
    names: HashSet<&'static str>,
}

const NAMES: &str = include_str!("names.txt");

impl PersonName {
    pub(super) fn new() -> Self {
        Self {
            names: NAMES
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect(),
        }
    }
}

fn is_word(w: &str) -> bool {
    let w = w.strip_suffix('.').unwrap_or(w);
    !w.is_empty()
        && w.chars().next().is_some_and(char::is_uppercase)
        && w.chars()
            .all(|c| c.is_alphabetic() || c == '\'' || c == '-')
}

impl Classifier for PersonName {
    fn name(&self) -> &str {
        "person_name"
    }
    fn tag(&self) -> String {
        "Discovered.Person Name".into()
    }
    fn specificity(&self) -> u32 {
        30
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(
            column,
            &[
                "name",
                "first_name",
                "last_name",
                "full_name",
                "given_name",
                "family_name",
                "surname",
                "firstname",
                "lastname",
                "fname",
                "lname",
            ],
        )
    }
    fn matches(&self, value: &str, _named: bool) -> bool {
        let words: Vec<&str> = value
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() || words.len() > 4 || !words.iter().all(|w| is_word(w)) {
            return false;
        }
        words.iter().any(|w| {
            let lower = w.to_lowercase().replace('\'', "");
            self.names.contains(lower.as_str())
                || lower.split('-').any(|part| self.names.contains(part))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_names_from_the_dictionary() {
        let c = PersonName::new();
        for good in [
            "Maria",
            "John Smith",
            "Smith, John",
            "Mary-Anne O'Brien",
            "J. Garcia",
            "Wei Zhang",
        ] {
            assert!(c.matches(good, false), "{good}");
        }
        for bad in [
            "Widget Pro 3000",
            "active",
            "john smith",
            "PN-4821-XK",
            "a@b.com",
            "Quantum Flux",
            "",
        ] {
            assert!(!c.matches(bad, false), "{bad}");
        }
    }
}

//! URLs: parsed by the `url` crate (the WHATWG URL standard), with a web or
//! file-transfer scheme and a host.

use super::{Classifier, name_has};

/// The URL classifier.
pub(super) struct Url;

const SCHEMES: &[&str] = &["http", "https", "ftp", "ftps", "sftp", "ws", "wss"];

impl Classifier for Url {
    fn name(&self) -> &str {
        "url"
    }
    fn tag(&self) -> String {
        "Discovered.URL".into()
    }
    fn specificity(&self) -> u32 {
        60
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(
            column,
            &[
                "url", "uri", "link", "website", "homepage", "web_site", "href",
            ],
        )
    }
    fn matches(&self, value: &str, _named: bool) -> bool {
        if value.contains(char::is_whitespace) {
            return false;
        }
        match ::url::Url::parse(value) {
            Ok(u) => {
                SCHEMES.contains(&u.scheme())
                    && u.host_str()
                        .is_some_and(|h| h.contains('.') || h == "localhost")
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = Url;
        for good in [
            "https://example.com/a?b=c",
            "http://localhost:8080/",
            "ftp://files.example.org/x.csv",
        ] {
            assert!(c.matches(good, false), "{good}");
        }
        for bad in [
            "example.com",
            "mailto:a@example.com",
            "https://",
            "http://exa mple.com",
            "javascript:alert(1)",
        ] {
            assert!(!c.matches(bad, false), "{bad}");
        }
    }
}

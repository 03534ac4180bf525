//! IPv4 and IPv6 addresses, parsed by the standard library (which rejects
//! octets over 255, leading-zero octets and malformed IPv6 groups).

use std::net::IpAddr;

use super::{Classifier, name_has};

/// The IP address classifier.
pub(super) struct IpAddress;

impl Classifier for IpAddress {
    fn name(&self) -> &str {
        "ip_address"
    }
    fn tag(&self) -> String {
        "Discovered.IP Address".into()
    }
    fn specificity(&self) -> u32 {
        80
    }
    fn name_signal(&self, column: &str) -> bool {
        name_has(
            column,
            &[
                "ip",
                "ip_address",
                "ipaddr",
                "ipv4",
                "ipv6",
                "client_ip",
                "remote_addr",
                "host_address",
            ],
        )
    }
    fn matches(&self, value: &str, _named: bool) -> bool {
        value.parse::<IpAddr>().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses() {
        let c = IpAddress;
        for good in ["192.168.0.1", "8.8.8.8", "::1", "2001:db8::8a2e:370:7334"] {
            assert!(c.matches(good, false), "{good}");
        }
        for bad in [
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "2001:db8:::1",
            "v1.2.3.4",
        ] {
            assert!(!c.matches(bad, false), "{bad}");
        }
    }
}

//! What `veil serve` is told: listeners, how logins authenticate, limits.
//! Shared by every protocol; each server adds its own listener field.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::credentials::Credentials;
use crate::error::{Result, ServeError};

/// The PostgreSQL listener's default address.
pub const DEFAULT_PG_LISTEN: &str = "127.0.0.1:5433";

/// The default limit of concurrent connections (all protocols).
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;

/// The default statement timeout of every connection's session.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How logins prove who they are.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// Passwords checked against `veil passwd` verifiers (SCRAM-SHA-256 on
    /// the PostgreSQL protocol).
    Credentials(Arc<Credentials>),
    /// No passwords: the login name is believed. Only on loopback listeners.
    Trust,
}

/// A server's options.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The PostgreSQL wire protocol listener (`--listen`).
    pub pg_listen: SocketAddr,
    /// How logins authenticate.
    pub authentication: Authentication,
    /// How many connections may be open at once (`--max-connections`);
    /// one more is refused with SQLSTATE 53300.
    pub max_connections: usize,
    /// How long one statement may run (`--statement-timeout`).
    pub statement_timeout: Duration,
}

impl ServeOptions {
    /// Options with defaults for `authentication`.
    pub fn new(authentication: Authentication) -> Self {
        Self {
            pg_listen: SocketAddr::from(([127, 0, 0, 1], 5433)),
            authentication,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
        }
    }

    /// Checks the options against every address the process will listen on
    /// (`--trust` only when all are loopback addresses) and returns the
    /// warning to print for `--trust`.
    pub fn check(&self, listeners: &[SocketAddr]) -> Result<Option<String>> {
        if self.max_connections == 0 {
            return Err(ServeError::Options(
                "--max-connections must be at least 1.".into(),
            ));
        }
        if !matches!(self.authentication, Authentication::Trust) {
            return Ok(None);
        }
        if let Some(open) = listeners.iter().find(|a| !a.ip().is_loopback()) {
            return Err(ServeError::Options(format!(
                "--trust accepts any login without a password, so every listener must be on a loopback address; {open} is not (use --credentials FILE)."
            )));
        }
        Ok(Some(
            "--trust: logins are not authenticated; anyone who can connect to this machine can log in as any workspace user.".into(),
        ))
    }
}

/// Parses a duration as `--statement-timeout` takes it: `30s`, `500ms`,
/// `2m`, `1h`, or a number of seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 30s, 500ms, 2m)"))?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => return Err(format!("'{other}' is not a duration unit (ms, s, m, h)")),
    };
    if d.is_zero() {
        return Err("the duration must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_only_on_loopback() {
        let o = ServeOptions::new(Authentication::Trust);
        let lo: SocketAddr = "127.0.0.1:5433".parse().unwrap();
        let lo6: SocketAddr = "[::1]:5433".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:5433".parse().unwrap();
        assert!(o.check(&[lo, lo6]).unwrap().is_some());
        let e = o.check(&[lo, any]).unwrap_err().to_string();
        assert!(e.contains("0.0.0.0:5433 is not"), "{e}");
        let c = ServeOptions::new(Authentication::Credentials(Arc::new(Credentials::empty())));
        assert!(c.check(&[any]).unwrap().is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }
}

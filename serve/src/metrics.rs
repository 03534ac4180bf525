//! What the servers count for operators (SPEC §9 "Operations"): statements
//! and denials by user and reason, statement latency, active connections,
//! authentication failures, the policy version in force and failed reloads,
//! in Prometheus' exposition format (`/metrics`, served by [`crate::ops`]).
//!
//! Labels stay bounded: `user` is only ever an authenticated workspace
//! user (a failed login is counted by protocol, never by the name the
//! client sent), and `reason` is one of a few fixed words.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use veil_engine::Engine;

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Protocol {
    /// The PostgreSQL wire protocol.
    Postgres,
    /// Snowflake's connector protocol.
    Snowflake,
}

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and its rows were sent.
    Ok,
    /// Access was denied: the statement kind is refused or an object does
    /// not exist or is not authorized.
    Denied(DenialReason),
    /// It failed for another reason (syntax, timeout, cancel, execution).
    Failed(FailureReason),
}

/// Why access was denied.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum DenialReason {
    /// `42501`: does not exist or not authorized.
    NotAuthorized,
    /// `0A000`: a statement kind users may not run (DDL, DML, `SET` ...).
    RefusedStatement,
}

/// Why a statement failed other than by a denial.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum FailureReason {
    /// `42601`: the SQL does not parse.
    Syntax,
    /// `57014`: cancelled by the client or by the statement timeout.
    Cancelled,
    /// `57P01`: refused because the server is shutting down.
    Shutdown,
    /// Anything else.
    Error,
}

impl Outcome {
    /// The outcome a PostgreSQL SQLSTATE stands for (`None`: success).
    pub fn from_sqlstate(code: Option<&str>) -> Self {
        match code {
            None => Self::Ok,
            Some("42501") => Self::Denied(DenialReason::NotAuthorized),
            Some("0A000") => Self::Denied(DenialReason::RefusedStatement),
            Some("42601") => Self::Failed(FailureReason::Syntax),
            Some("57014") => Self::Failed(FailureReason::Cancelled),
            Some("57P01") => Self::Failed(FailureReason::Shutdown),
            Some(_) => Self::Failed(FailureReason::Error),
        }
    }

    fn status(self) -> Status {
        match self {
            Self::Ok => Status::Ok,
            Self::Denied(_) => Status::Denied,
            Self::Failed(_) => Status::Failed,
        }
    }
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum Status {
    Ok,
    Denied,
    Failed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    user: String,
    status: Status,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabels {
    user: String,
    reason: DenialReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    user: String,
    reason: FailureReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: Protocol,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    outcome: ReloadOutcome,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum ReloadOutcome {
    Applied,
    Failed,
}

/// Label values as lower-case words (`not_authorized`), as Prometheus
/// conventions have them.
macro_rules! label_words {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                encoder.write_str(match self {
                    $(Self::$v => $s),*
                })
            }
        }
    };
}

label_words!(Protocol { Postgres => "postgres", Snowflake => "snowflake" });
label_words!(DenialReason { NotAuthorized => "not_authorized", RefusedStatement => "refused_statement" });
label_words!(FailureReason { Syntax => "syntax", Cancelled => "cancelled", Shutdown => "shutdown", Error => "error" });
label_words!(Status { Ok => "ok", Denied => "denied", Failed => "failed" });
label_words!(ReloadOutcome { Applied => "applied", Failed => "failed" });

/// The servers' metrics, shared by every listener (cheap to clone).
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    queries: Family<QueryLabels, Counter>,
    denials: Family<DenialLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    latency: Histogram,
    connections: Family<ProtocolLabels, Gauge>,
    auth_failures: Family<ProtocolLabels, Counter>,
    policy_version: Gauge,
    reloads: Family<ReloadLabels, Counter>,
    engine: OnceLock<Engine>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, every counter at zero and no engine attached yet.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("veil");
        let queries = Family::<QueryLabels, Counter>::default();
        registry.register(
            "statements",
            "Statements run, by authenticated user and status (ok, denied, failed)",
            queries.clone(),
        );
        let denials = Family::<DenialLabels, Counter>::default();
        registry.register(
            "denials",
            "Statements denied, by user and reason (not_authorized, refused_statement)",
            denials.clone(),
        );
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "statement_failures",
            "Statements that failed other than by a denial, by user and reason",
            failures.clone(),
        );
        // 0.5 ms .. ~33 s in doublings: point lookups to the statement timeout.
        let latency = Histogram::new(exponential_buckets(0.0005, 2.0, 17));
        registry.register(
            "statement_duration_seconds",
            "Wall time of each statement, from receipt to its last row or error",
            latency.clone(),
        );
        let connections = Family::<ProtocolLabels, Gauge>::default();
        registry.register(
            "active_connections",
            "Client connections open now, by protocol",
            connections.clone(),
        );
        let auth_failures = Family::<ProtocolLabels, Counter>::default();
        registry.register(
            "authentication_failures",
            "Failed logins (wrong password, unknown, staged or disabled user), by protocol",
            auth_failures.clone(),
        );
        let policy_version = Gauge::default();
        registry.register(
            "policy_version",
            "The policy version in force (0 while none is loaded)",
            policy_version.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Workspace reloads after a file change, by outcome (applied, failed)",
            reloads.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                queries,
                denials,
                failures,
                latency,
                connections,
                auth_failures,
                policy_version,
                reloads,
                engine: OnceLock::new(),
            }),
        }
    }

    /// Reports the engine whose policy version `/health` and `/metrics`
    /// show. Until it is attached, no valid version is loaded.
    pub fn attach(&self, engine: &Engine) {
        // A second engine is never attached by the servers; the first stays.
        let _ = self.inner.engine.set(engine.clone());
    }

    /// The policy version in force, `None` while no engine is loaded.
    pub fn policy_version(&self) -> Option<u64> {
        self.inner.engine.get().map(Engine::version)
    }

    /// Counts one statement of `user` (an authenticated login) that ended
    /// with `outcome` after `elapsed`.
    pub fn statement(&self, user: &str, outcome: Outcome, elapsed: Duration) {
        let i = &self.inner;
        i.queries
            .get_or_create(&QueryLabels {
                user: user.to_string(),
                status: outcome.status(),
            })
            .inc();
        match outcome {
            Outcome::Ok => {}
            Outcome::Denied(reason) => {
                i.denials
                    .get_or_create(&DenialLabels {
                        user: user.to_string(),
                        reason,
                    })
                    .inc();
            }
            Outcome::Failed(reason) => {
                i.failures
                    .get_or_create(&FailureLabels {
                        user: user.to_string(),
                        reason,
                    })
                    .inc();
            }
        }
        i.latency.observe(elapsed.as_secs_f64());
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub fn connection(&self, protocol: Protocol) -> ConnectionGuard {
        let gauge = self
            .inner
            .connections
            .get_or_create_owned(&ProtocolLabels { protocol });
        gauge.inc();
        ConnectionGuard { gauge }
    }

    /// Connections of `protocol` open now.
    pub fn active_connections(&self, protocol: Protocol) -> i64 {
        self.inner
            .connections
            .get(&ProtocolLabels { protocol })
            .map_or(0, |g| g.get())
    }

    /// Counts one failed login.
    pub fn authentication_failure(&self, protocol: Protocol) {
        self.inner
            .auth_failures
            .get_or_create(&ProtocolLabels { protocol })
            .inc();
    }

    /// Counts a workspace reload that installed a new version.
    pub fn reload_applied(&self) {
        self.reload(ReloadOutcome::Applied);
    }

    /// Counts a workspace reload that was refused (the version in force
    /// stays).
    pub fn reload_failed(&self) {
        self.reload(ReloadOutcome::Failed);
    }

    fn reload(&self, outcome: ReloadOutcome) {
        self.inner
            .reloads
            .get_or_create(&ReloadLabels { outcome })
            .inc();
    }

    /// Reloads refused so far.
    pub fn reload_failures(&self) -> u64 {
        self.inner
            .reloads
            .get(&ReloadLabels {
                outcome: ReloadOutcome::Failed,
            })
            .map_or(0, |c| c.get())
    }

    /// Everything in Prometheus' text exposition format (OpenMetrics).
    pub fn encode(&self) -> String {
        let version = self.policy_version().unwrap_or(0);
        self.inner
            .policy_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

/// Keeps one connection counted in `veil_active_connections`.
#[derive(Debug)]
pub struct ConnectionGuard {
    gauge: Gauge,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn statements_are_counted_by_user_status_and_reason() {
        let m = Metrics::new();
        m.statement("ALICE", Outcome::Ok, Duration::from_millis(3));
        m.statement("ALICE", Outcome::Ok, Duration::from_millis(4));
        m.statement(
            "BOB",
            Outcome::from_sqlstate(Some("42501")),
            Duration::from_millis(1),
        );
        m.statement(
            "BOB",
            Outcome::from_sqlstate(Some("0A000")),
            Duration::from_millis(1),
        );
        m.statement(
            "BOB",
            Outcome::from_sqlstate(Some("42601")),
            Duration::from_millis(1),
        );
        let text = m.encode();
        assert!(
            text.contains(r#"veil_statements_total{user="ALICE",status="ok"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"veil_statements_total{user="BOB",status="denied"} 2"#));
        assert!(text.contains(r#"veil_denials_total{user="BOB",reason="not_authorized"} 1"#));
        assert!(text.contains(r#"veil_denials_total{user="BOB",reason="refused_statement"} 1"#));
        assert!(text.contains(r#"veil_statement_failures_total{user="BOB",reason="syntax"} 1"#));
        assert!(!text.contains(r#"veil_denials_total{user="ALICE""#));
        assert_eq!(
            line_of(&text, "veil_statement_duration_seconds_count"),
            Some("veil_statement_duration_seconds_count 5")
        );
    }

    #[test]
    fn connections_are_counted_while_open() {
        let m = Metrics::new();
        let a = m.connection(Protocol::Postgres);
        let b = m.connection(Protocol::Postgres);
        assert_eq!(m.active_connections(Protocol::Postgres), 2);
        drop(a);
        assert_eq!(m.active_connections(Protocol::Postgres), 1);
        assert!(
            m.encode()
                .contains(r#"veil_active_connections{protocol="postgres"} 1"#)
        );
        drop(b);
        assert_eq!(m.active_connections(Protocol::Postgres), 0);
    }

    #[test]
    fn failed_logins_and_reloads_are_counted_without_names() {
        let m = Metrics::new();
        m.authentication_failure(Protocol::Postgres);
        m.reload_failed();
        m.reload_failed();
        m.reload_applied();
        let text = m.encode();
        assert!(text.contains(r#"veil_authentication_failures_total{protocol="postgres"} 1"#));
        assert!(text.contains(r#"veil_policy_reloads_total{outcome="failed"} 2"#));
        assert!(text.contains(r#"veil_policy_reloads_total{outcome="applied"} 1"#));
        assert_eq!(m.reload_failures(), 2);
    }

    #[test]
    fn policy_version_is_zero_until_an_engine_is_attached() {
        let m = Metrics::new();
        assert_eq!(m.policy_version(), None);
        assert!(m.encode().contains("veil_policy_version 0\n"));
    }
}

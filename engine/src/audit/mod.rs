//! The audit log (SPEC §7): one JSON record per query — allowed or denied —
//! and per policy or entitlement change, as JSON Lines.
//!
//! Records follow the shape of Immuta's universal audit model: `action`,
//! `actor`, `actionStatus` and `actionStatusReason`, `targetType` and
//! `targets`, plus what a policy simulator needs (`sql`, `policiesApplied`,
//! `rowsReturned`, `durationMs`, `policyVersion`).
//!
//! Appending is safe for concurrent sessions and processes: the file is
//! opened in append mode and each record is one complete line written with a
//! single `write`, so lines never interleave. A crash mid-write can at worst
//! leave a torn last line; the next writer ends it first, and readers skip
//! it, so every record is either complete or absent. Administrators read the
//! log as the SQL table `veil.audit` (also `VEIL.SYSTEM.AUDIT`).

mod changes;
pub mod client;
mod log;
mod record;
mod table;

pub use changes::describe_changes;
pub use client::{ClientInfo, with_client};
pub use log::{AuditHandle, AuditLog, prepare_log_dir, read_log};
pub use record::{Actor, AuditRecord, QueryAudit};
pub use table::AuditTable;

/// Name of the audit table (`veil.audit`, `VEIL.SYSTEM.AUDIT`).
pub const AUDIT_TABLE: &str = "AUDIT";

//! The old home of the engine and sessions, kept as re-exports while other
//! branches move over: everything here now lives in [`crate::enforce`]
//! (use `veil_engine::{Engine, Session, SessionOptions, ...}` or
//! `veil_engine::enforce::...`). To be removed once nothing names
//! `veil_engine::session::...`.

pub use crate::enforce::{
    DEFAULT_DECISION_TTL, DEFAULT_STATEMENT_TIMEOUT, Engine, EngineVersion, PlanTimings,
    PolicyBarrierExec, PolicyScanCheck, PolicyTable, Session, SessionOptions, SnowflakeTypePlanner,
    profile_table_name,
};

//! The options a session is opened with: who (user, role, secondary
//! roles), under which purpose and enforcement mode, and how long one
//! statement may run. Plain data; the engine resolves them against a
//! workspace when it binds the session.

use std::time::Duration;

use super::EnforcementMode;

/// Options for opening a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionOptions {
    /// User name (Snowflake rules: unquoted is upper-cased).
    pub user: String,
    /// Primary role; the user's default role when `None`.
    pub role: Option<String>,
    /// Purpose to act under.
    pub purpose: Option<String>,
    /// Override the workspace's enforcement mode.
    pub mode: Option<EnforcementMode>,
    /// The secondary roles activated in the session (each must be granted
    /// to the user). `None`: the workspace's `secondary_roles` setting.
    pub secondary_roles: Option<Vec<String>>,
    /// How long one statement may run before it is cancelled (planning and
    /// execution; dropping the future cancels it too). `None`: 5 minutes.
    pub statement_timeout: Option<Duration>,
}

/// The statement timeout of sessions that set none.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);

impl SessionOptions {
    /// Options for `user` with defaults.
    pub fn user(user: &str) -> Self {
        Self {
            user: user.to_string(),
            ..Default::default()
        }
    }
}

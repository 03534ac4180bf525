//! Veil's errors: one enum for the library, each message one sentence naming
//! the file and line, table, column or user at fault.

use datafusion::error::DataFusionError;

/// Result alias for Veil.
pub type Result<T, E = VeilError> = std::result::Result<T, E>;

/// Everything that can go wrong in Veil.
#[derive(Debug, thiserror::Error)]
pub enum VeilError {
    /// The workspace (manifest, data files, policies) is invalid.
    #[error("{location}: {message}")]
    Workspace {
        /// `file:line` (or just the file) at fault.
        location: String,
        /// What is wrong, one sentence.
        message: String,
    },
    /// The table does not exist or the session may not read it. The text is
    /// identical either way so existence does not leak (SPEC rule 8).
    #[error("Object '{0}' does not exist or not authorized.")]
    NotAuthorized(String),
    /// The session cannot be opened (unknown, staged or disabled user, role
    /// not granted, purpose not acknowledged).
    #[error("{0}")]
    Session(String),
    /// A statement kind that user queries may not run (SPEC rule 10).
    #[error("{0} statements are not allowed: Veil user queries are read-only.")]
    StatementNotAllowed(String),
    /// The query is refused (internal functions, raw entitlement tables).
    #[error("{0}")]
    Refused(String),
    /// The SQL does not parse.
    #[error("SQL syntax error: {0}")]
    Parse(String),
    /// A policy could not be compiled or evaluated: the query fails closed.
    #[error("{0}")]
    PolicyFailure(String),
    /// `veil bench` could not run or found a wrong result.
    #[error("benchmark: {0}")]
    Bench(String),
    /// An error from DataFusion while planning or running the query.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    /// An error from Arrow (formatting results).
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// The statement ran longer than the session's statement timeout.
    #[error("The statement was cancelled after {0:?}, the session's statement timeout.")]
    Timeout(std::time::Duration),
    /// A failure whose details are for administrators only (the audit
    /// record); the text is one sentence for the user.
    #[error("{0}")]
    QueryFailed(String),
    /// A panic inside Veil or DataFusion, caught before it reached the
    /// caller. The text is the panic message, for the audit record; users
    /// see [`VeilError::QueryFailed`] instead (see `guard::user_error`).
    #[error("internal error: {0}")]
    Internal(String),
}

impl VeilError {
    /// A workspace error at `location` (`file` or `file:line`).
    pub fn workspace(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Workspace {
            location: location.into(),
            message: message.into(),
        }
    }

    /// Whether this is a workspace or session setup error (CLI exit code 2)
    /// rather than a query error (exit code 1).
    pub fn is_setup_error(&self) -> bool {
        matches!(self, Self::Workspace { .. } | Self::Session(_))
    }
}

impl From<VeilError> for DataFusionError {
    fn from(e: VeilError) -> Self {
        match e {
            VeilError::DataFusion(inner) => inner,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// Unwraps Veil errors that travelled through DataFusion, and strips
/// DataFusion's layer prefixes so users read one clear sentence.
pub fn from_datafusion(e: DataFusionError) -> VeilError {
    let root = e.find_root();
    if let DataFusionError::External(inner) = root
        && let Some(veil) = inner.downcast_ref::<VeilError>()
    {
        return match veil {
            VeilError::NotAuthorized(t) => VeilError::NotAuthorized(t.clone()),
            VeilError::PolicyFailure(m) => VeilError::PolicyFailure(m.clone()),
            VeilError::Refused(m) => VeilError::Refused(m.clone()),
            VeilError::Timeout(d) => VeilError::Timeout(*d),
            other => VeilError::Refused(other.to_string()),
        };
    }
    VeilError::DataFusion(e)
}

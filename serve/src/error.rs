//! The servers' errors: one enum for the crate, each message one sentence
//! naming the file and line, address or user at fault. What a client sees
//! of a statement error is decided per protocol (`pg/errors.rs`); these are
//! the errors of starting and running a server.

use std::path::PathBuf;

use veil_engine::VeilError;

/// Result alias for the servers.
pub type Result<T, E = ServeError> = std::result::Result<T, E>;

/// Everything that can stop a server from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The credentials file is malformed: `origin:line` and what is wrong.
    #[error("{location}: {message}")]
    Credentials {
        /// `file:line` (or just the file) at fault.
        location: String,
        /// What is wrong, one sentence.
        message: String,
    },
    /// The credentials file can be read by its group or by others.
    #[error(
        "{}: the credentials file is readable by group or others (mode {mode:o}); run `chmod 600 {}`.",
        path.display(),
        path.display()
    )]
    CredentialsPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file could not be read.
    #[error("{}: cannot read the file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server's options do not fit together (`--trust` on a
    /// non-loopback listener, no credentials, ...).
    #[error("{0}")]
    Options(String),
    /// A listener could not be bound or failed.
    #[error("{addr}: cannot listen: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The workspace could not be loaded or a session could not be opened.
    #[error("{0}")]
    Veil(#[from] VeilError),
}

impl ServeError {
    /// A credentials error at `location` (`file` or `file:line`).
    pub fn credentials(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Credentials {
            location: location.into(),
            message: message.into(),
        }
    }
}

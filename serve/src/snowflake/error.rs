//! Errors as Snowflake's connector expects them: `success: false` with a
//! six-digit `code`, a `sqlState` and one sentence of `message`. Every
//! failure of the Snowflake listener — a refused statement, a bad login, a
//! malformed or oversized request — becomes one of these, never a panic and
//! never a bare HTTP error page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use veil_engine::VeilError;

/// One error in Snowflake's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfError {
    /// HTTP status (Snowflake answers most errors with 200 and
    /// `success: false`; authentication failures with 401).
    pub status: StatusCode,
    /// Snowflake's six-digit error code (`002003`).
    pub code: &'static str,
    /// SQLSTATE (`42S02`).
    pub sql_state: &'static str,
    /// One sentence for the user.
    pub message: String,
}

impl SfError {
    fn new(code: &'static str, sql_state: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::OK,
            code,
            sql_state,
            message: message.into(),
        }
    }

    /// A wrong password, an unknown, staged or disabled user: one error for
    /// all, so a login attempt learns nothing about which users exist.
    pub fn bad_login() -> Self {
        Self::new(
            "390100",
            "08004",
            "Incorrect username or password was specified.",
        )
    }

    /// The login asked for a role the user is not granted.
    pub fn role_not_granted(role: &str) -> Self {
        Self::new(
            "390189",
            "08004",
            format!("Role '{role}' specified in the connect string is not granted to this user."),
        )
    }

    /// No `Authorization: Snowflake Token="…"` header.
    pub fn no_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            ..Self::new(
                "390101",
                "08001",
                "Authorization header not found in the request data.",
            )
        }
    }

    /// A token no session has (never issued, closed, or from another
    /// server).
    pub fn unknown_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            ..Self::new(
                "390104",
                "08001",
                "User must login again to access the service.",
            )
        }
    }

    /// The request body is not what the endpoint takes.
    pub fn bad_request(what: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            ..Self::new("390400", "08P01", what)
        }
    }

    /// The request body is larger than the listener accepts.
    pub fn too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            ..Self::new(
                "390413",
                "08P01",
                format!("The request body is larger than {limit} bytes."),
            )
        }
    }

    /// An endpoint this server does not serve.
    pub fn not_found(path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::new(
                "390404",
                "08P01",
                format!("Veil does not serve {path} of Snowflake's API."),
            )
        }
    }

    /// A SQL syntax error (Snowflake's 001003).
    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new("001003", "42000", message)
    }

    /// An object that does not exist or is not authorized (Snowflake's
    /// 002003): the same words either way, so existence does not leak.
    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new("002003", "42S02", message)
    }

    /// `USE ROLE` of a role the login is not granted (Snowflake says
    /// 002003 / 02000 for it).
    pub fn role_unavailable(role: &str) -> Self {
        Self::new(
            "002003",
            "02000",
            format!("SQL compilation error: Role '{role}' does not exist or not authorized."),
        )
    }

    /// A statement kind users may not run (SPEC rule 10), or a refused
    /// function: Snowflake's "insufficient privileges" (003001 / 42501).
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new("003001", "42501", message)
    }

    /// A statement Veil's Snowflake listener does not support.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new("002040", "0A000", message)
    }

    /// Bindings that do not fit the statement.
    pub fn binding(message: impl Into<String>) -> Self {
        Self::new("002049", "22023", message)
    }

    /// The statement ran past its timeout, or was aborted.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new("000604", "57014", message)
    }

    /// Any other failure while running a statement (the message has passed
    /// Veil's sanitizer).
    pub fn query_failed(message: impl Into<String>) -> Self {
        Self::new("100000", "22000", message)
    }

    /// The JSON body Snowflake sends with an error.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "data": {
                "errorCode": self.code,
                "sqlState": self.sql_state,
                "internalError": false,
            },
            "code": self.code,
            "message": self.message,
            "success": false,
            "headers": null,
        })
    }
}

impl From<VeilError> for SfError {
    /// Veil's errors (already sanitized by the session) in Snowflake's
    /// codes.
    fn from(e: VeilError) -> Self {
        let message = e.to_string();
        match e {
            VeilError::NotAuthorized(_) => Self::not_authorized(message),
            VeilError::Parse(_) => Self::syntax(message),
            VeilError::StatementNotAllowed(_) | VeilError::Refused(_) => Self::refused(message),
            VeilError::Timeout(_) => Self::cancelled(message),
            VeilError::Session(_) => Self::refused(message),
            _ => Self::query_failed(message),
        }
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_authorized_keeps_snowflake_codes() {
        let e = SfError::from(VeilError::NotAuthorized("ANALYTICS.PUBLIC.NOPE".into()));
        assert_eq!((e.code, e.sql_state), ("002003", "42S02"));
        assert_eq!(
            e.message,
            "Object 'ANALYTICS.PUBLIC.NOPE' does not exist or not authorized."
        );
        let body = e.body();
        assert_eq!(body["success"], false);
        assert_eq!(body["data"]["sqlState"], "42S02");
    }

    #[test]
    fn syntax_errors_are_001003() {
        let e = SfError::from(VeilError::Parse("Expected: an expression".into()));
        assert_eq!((e.code, e.sql_state), ("001003", "42000"));
    }
}

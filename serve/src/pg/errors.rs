//! What a PostgreSQL client sees of an error: one `ErrorResponse` with the
//! SQLSTATE that matches Veil's error kind (SPEC §9). The text is Veil's own
//! sentence — already sanitized by the engine — never a plan, a policy body
//! or a file path.

use pgwire::error::{ErrorInfo, PgWireError};
use veil_engine::VeilError;

/// `insufficient_privilege`: does not exist or not authorized (SPEC rule 8).
pub(crate) const NOT_AUTHORIZED: &str = "42501";
/// `syntax_error`.
pub(crate) const SYNTAX: &str = "42601";
/// `feature_not_supported`: a statement kind Veil user queries may not run.
pub(crate) const REFUSED: &str = "0A000";
/// `query_canceled`: a cancel request or the statement timeout.
pub(crate) const CANCELED: &str = "57014";
/// `invalid_password`: any failed login.
pub(crate) const BAD_LOGIN: &str = "28P01";
/// `too_many_connections`.
pub(crate) const TOO_MANY_CONNECTIONS: &str = "53300";
/// `invalid_parameter_value`.
pub(crate) const INVALID_PARAMETER: &str = "22023";
/// `undefined_function`, `undefined_column` and other planning errors
/// (`42000`, syntax error or access rule violation).
pub(crate) const ACCESS_RULE: &str = "42000";
/// `data_exception`: a failure while running.
pub(crate) const DATA_EXCEPTION: &str = "22000";
/// `internal_error`.
pub(crate) const INTERNAL: &str = "XX000";
/// The server is shutting down.
pub(crate) const ADMIN_SHUTDOWN: &str = "57P01";

/// An `ERROR` with `code` and `message`.
pub(crate) fn error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// A `FATAL` error: the server closes the connection after sending it.
pub(crate) fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// The one error every failed login gets, whatever failed (PostgreSQL's
/// text): wrong password, unknown, staged or disabled user look the same.
pub(crate) fn bad_login(user: &str) -> PgWireError {
    fatal(
        BAD_LOGIN,
        format!("password authentication failed for user \"{user}\""),
    )
}

/// The canceled-statement error.
pub(crate) fn canceled() -> PgWireError {
    error(CANCELED, "canceling statement due to user request")
}

/// The SQLSTATE of a Veil error.
pub(crate) fn sqlstate(e: &VeilError) -> &'static str {
    match e {
        VeilError::NotAuthorized(_) => NOT_AUTHORIZED,
        VeilError::Parse(_) => SYNTAX,
        VeilError::StatementNotAllowed(_) | VeilError::Refused(_) => REFUSED,
        VeilError::Timeout(_) => CANCELED,
        VeilError::Session(_) => NOT_AUTHORIZED,
        VeilError::PolicyFailure(_) => NOT_AUTHORIZED,
        VeilError::DataFusion(_) => ACCESS_RULE,
        VeilError::Arrow(_) | VeilError::QueryFailed(_) => DATA_EXCEPTION,
        VeilError::Workspace { .. } | VeilError::Bench(_) | VeilError::Internal(_) => INTERNAL,
    }
}

/// A statement error as the client sees it.
pub(crate) fn from_veil(e: &VeilError) -> PgWireError {
    error(sqlstate(e), e.to_string())
}

/// An error that came out of a result stream: Veil errors travel there
/// inside DataFusion's.
pub(crate) fn from_stream(e: datafusion::error::DataFusionError) -> PgWireError {
    let veil = veil_engine::error::from_datafusion(e);
    from_veil(&veil)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veil_errors_map_to_postgresql_sqlstates() {
        let e = VeilError::NotAuthorized("ANALYTICS.PUBLIC.SECRET".into());
        match from_veil(&e) {
            PgWireError::UserError(info) => {
                assert_eq!(info.code, "42501");
                assert_eq!(
                    info.message,
                    "Object 'ANALYTICS.PUBLIC.SECRET' does not exist or not authorized."
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sqlstate(&VeilError::Parse("x".into())), "42601");
        assert_eq!(
            sqlstate(&VeilError::StatementNotAllowed("INSERT".into())),
            "0A000"
        );
        assert_eq!(
            sqlstate(&VeilError::Timeout(std::time::Duration::from_secs(1))),
            "57014"
        );
    }
}

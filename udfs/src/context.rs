//! Session context functions bound to one session's identity:
//! `CURRENT_USER()`, `CURRENT_ROLE()`, `INVOKER_ROLE()`,
//! `CURRENT_AVAILABLE_ROLES()`, `IS_ROLE_IN_SESSION(role)` and Veil's
//! `veil_current_purpose()`.
//!
//! The identity comes from the host (CLI flag, library call, server login),
//! never from SQL: each session registers its own instances, and `simplify`
//! folds them to literals at planning time.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, BooleanArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};

/// The identity a session runs as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionIdentity {
    /// The user name (upper case unless quoted).
    pub user: String,
    /// The primary role.
    pub role: String,
    /// Every role active in the session: primary and secondary roles and all
    /// roles they inherit, upper case.
    pub roles_in_session: Vec<String>,
    /// Roles the user may use (granted roles), upper case.
    pub available_roles: Vec<String>,
    /// The purpose the session acts under, if any.
    pub purpose: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    CurrentUser,
    CurrentRole,
    InvokerRole,
    AvailableRoles,
    IsRoleInSession,
    Purpose,
}

/// One context function of one session.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SessionContextFunc {
    kind: Kind,
    signature: Signature,
    identity: Arc<SessionIdentity>,
}

/// Snowflake's identifier rule for a name written as text: upper case,
/// unless written as a quoted identifier (`"Mixed"`), which stays exact with
/// each doubled quote (`""`) read as one. The one copy of the rule: the
/// engine's `normalize_ident` calls it too.
pub fn normalize_identifier(name: &str) -> String {
    let trimmed = name.trim();
    if trimmed.len() >= 2 && trimmed.starts_with('"') && trimmed.ends_with('"') {
        trimmed[1..trimmed.len() - 1].replace("\"\"", "\"")
    } else {
        trimmed.to_uppercase()
    }
}

/// Normalizes a role name given as a string the way Snowflake does
/// ([`normalize_identifier`]).
pub fn normalize_role_name(name: &str) -> String {
    normalize_identifier(name)
}

impl SessionContextFunc {
    fn new(kind: Kind, identity: Arc<SessionIdentity>) -> Self {
        let signature = match kind {
            Kind::IsRoleInSession => Signature::any(1, Volatility::Stable),
            _ => Signature::nullary(Volatility::Stable),
        };
        Self {
            kind,
            signature,
            identity,
        }
    }

    /// The session identity this function answers from.
    pub fn identity(&self) -> &SessionIdentity {
        &self.identity
    }

    fn value(&self) -> ScalarValue {
        let id = &self.identity;
        match self.kind {
            Kind::CurrentUser => ScalarValue::Utf8(Some(id.user.clone())),
            Kind::CurrentRole | Kind::InvokerRole => ScalarValue::Utf8(Some(id.role.clone())),
            Kind::AvailableRoles => {
                let quoted: Vec<String> = id
                    .available_roles
                    .iter()
                    .map(|r| format!("\"{r}\""))
                    .collect();
                ScalarValue::Utf8(Some(format!("[{}]", quoted.join(","))))
            }
            Kind::Purpose => ScalarValue::Utf8(id.purpose.clone()),
            Kind::IsRoleInSession => ScalarValue::Boolean(None),
        }
    }

    fn has_role(&self, name: &str) -> bool {
        let wanted = normalize_role_name(name);
        self.identity.roles_in_session.contains(&wanted)
    }
}

impl ScalarUDFImpl for SessionContextFunc {
    fn name(&self) -> &str {
        match self.kind {
            Kind::CurrentUser => "current_user",
            Kind::CurrentRole => "current_role",
            Kind::InvokerRole => "invoker_role",
            Kind::AvailableRoles => "current_available_roles",
            Kind::IsRoleInSession => "is_role_in_session",
            Kind::Purpose => "veil_current_purpose",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::IsRoleInSession => DataType::Boolean,
            _ => DataType::Utf8,
        })
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        match self.kind {
            Kind::IsRoleInSession => match args.first() {
                Some(Expr::Literal(
                    ScalarValue::Utf8(Some(r))
                    | ScalarValue::Utf8View(Some(r))
                    | ScalarValue::LargeUtf8(Some(r)),
                    _,
                )) => Ok(ExprSimplifyResult::Simplified(lit(self.has_role(r)))),
                _ => Ok(ExprSimplifyResult::Original(args)),
            },
            _ => Ok(ExprSimplifyResult::Simplified(Expr::Literal(
                self.value(),
                None,
            ))),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match self.kind {
            Kind::IsRoleInSession => {
                let Some(arg) = args.args.first() else {
                    return exec_err!("IS_ROLE_IN_SESSION needs a role name");
                };
                let array = datafusion::arrow::compute::cast(
                    &arg.clone().into_array(args.number_rows)?,
                    &DataType::Utf8,
                )?;
                let names = array.as_string::<i32>();
                let out: BooleanArray = names.iter().map(|n| n.map(|n| self.has_role(n))).collect();
                if matches!(arg, ColumnarValue::Scalar(_)) && out.len() == 1 {
                    return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
                }
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            _ => Ok(ColumnarValue::Scalar(self.value())),
        }
    }
}

/// The context functions for one session.
pub fn context_functions(identity: SessionIdentity) -> Vec<Arc<ScalarUDF>> {
    let identity = Arc::new(identity);
    [
        Kind::CurrentUser,
        Kind::CurrentRole,
        Kind::InvokerRole,
        Kind::AvailableRoles,
        Kind::IsRoleInSession,
        Kind::Purpose,
    ]
    .into_iter()
    .map(|k| {
        Arc::new(ScalarUDF::new_from_impl(SessionContextFunc::new(
            k,
            Arc::clone(&identity),
        )))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_follow_identifier_rules() {
        assert_eq!(normalize_role_name("analyst"), "ANALYST");
        assert_eq!(normalize_role_name("\"Mixed\""), "Mixed");
        assert_eq!(normalize_role_name(" \"A\"\"B\" "), "A\"B");
        assert_eq!(normalize_identifier("\"\"\"\""), "\"");
    }

    #[test]
    fn is_role_in_session_checks_the_hierarchy() {
        let f = SessionContextFunc::new(
            Kind::IsRoleInSession,
            Arc::new(SessionIdentity {
                user: "ALICE".into(),
                role: "ANALYST".into(),
                roles_in_session: vec!["ANALYST".into(), "PUBLIC".into()],
                available_roles: vec!["ANALYST".into()],
                purpose: None,
            }),
        );
        assert!(f.has_role("analyst"));
        assert!(f.has_role("PUBLIC"));
        assert!(!f.has_role("ADMIN"));
    }
}

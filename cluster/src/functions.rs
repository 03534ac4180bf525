//! Veil's functions on the wire. A plan Veil sends to a cluster names each
//! of its functions and carries what the receiver needs to rebuild it: the
//! randomized-response domains of the policy version, the session's
//! `VEIL_UNMASK` grants, the session's identity for the context functions —
//! never the secret. The receiver keys the masks with its own secret
//! (`VEIL_SECRET` on `veil executor`), and every function carries a
//! one-way check of the sender's secret, so an executor keyed differently
//! refuses the work instead of hashing differently.
//!
//! The scheduler has no secret: it rebuilds each function as a stand-in
//! that keeps the original's signature and wire form but refuses to run.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use serde::{Deserialize, Serialize};
use veil_udfs::context::SessionContextFunc;
use veil_udfs::keys::{KeyPurpose, derive_key};
use veil_udfs::mask_rr::{MaskRrFunc, RrDomains};
use veil_udfs::unmask::{UnmaskGrant, UnmaskKind, VeilUnmaskFunc};
use veil_udfs::{SessionIdentity, all_functions, context_functions};

/// How a process holds Veil's functions: keyed with its secret (a client,
/// an executor) or not at all (the scheduler).
#[derive(Clone)]
pub struct Functions {
    /// The secret (empty for the scheduler, whose functions never run).
    secret: Arc<str>,
    /// The check of `secret` this process sends and expects; `None` for
    /// the scheduler.
    check: Option<String>,
    /// The masks keyed with `secret`, built once: a task decoding a mask
    /// gets this process's instance (and its warm regex and FF1 memos).
    masks: Arc<Vec<Arc<ScalarUDF>>>,
}

impl fmt::Debug for Functions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Functions")
            .field("keyed", &self.check.is_some())
            .finish()
    }
}

/// What one function needs besides its name and the secret.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum State {
    /// A mask built from its name and the receiver's secret alone.
    Keyed,
    /// `veil_mask_rr` with its policy version's domains.
    RandomizedResponse {
        categorical: BTreeMap<String, Vec<String>>,
        numeric: BTreeMap<String, (f64, f64)>,
    },
    /// `veil_unmask` with the session's grants.
    Unmask { grants: BTreeMap<String, Grant> },
    /// A context function (`CURRENT_USER()`, ...) with the session identity.
    Context {
        user: String,
        role: String,
        roles_in_session: Vec<String>,
        available_roles: Vec<String>,
        purpose: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct Grant {
    format_preserving: bool,
    scope: String,
    policy: String,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The sender's secret check (hex).
    check: String,
    state: State,
}

/// Marks Veil's function payloads (a plan may hold other codecs' too).
const MAGIC: &[u8] = b"veil-fn/1\n";

impl Functions {
    /// Functions keyed with `secret` (a client or an executor).
    pub fn keyed(secret: &str, memo_capacity: usize) -> Self {
        Self {
            secret: Arc::from(secret),
            check: Some(secret_check(secret)),
            masks: Arc::new(all_functions(secret, memo_capacity)),
        }
    }

    /// Functions without a secret: stand-ins that refuse to run (the
    /// scheduler, which only splits plans into stages).
    pub fn unkeyed() -> Self {
        Self {
            secret: Arc::from(""),
            check: None,
            masks: Arc::new(all_functions("", 0)),
        }
    }

    /// Every Veil mask keyed with this process's secret, for an executor's
    /// function registry (empty without a secret).
    pub fn registry(&self) -> Vec<Arc<ScalarUDF>> {
        match &self.check {
            Some(_) => self.masks.as_ref().clone(),
            None => Vec::new(),
        }
    }

    /// Writes `udf`'s wire form into `buf` when it is one of Veil's
    /// functions; returns whether it was.
    pub fn encode(&self, udf: &ScalarUDF, buf: &mut Vec<u8>) -> Result<bool> {
        let inner = udf.inner();
        if let Some(relayed) = inner.downcast_ref::<Relayed>() {
            buf.extend_from_slice(&relayed.payload);
            return Ok(true);
        }
        let state = if let Some(rr) = inner.downcast_ref::<MaskRrFunc>() {
            rr_state(rr.domains())
        } else if let Some(unmask) = inner.downcast_ref::<VeilUnmaskFunc>() {
            unmask_state(unmask.grants())
        } else if let Some(context) = inner.downcast_ref::<SessionContextFunc>() {
            context_state(context.identity())
        } else if udf.name().starts_with("veil_") {
            State::Keyed
        } else {
            return Ok(false);
        };
        let Some(check) = &self.check else {
            return plan_err!(
                "function {} cannot be sent without a secret check",
                udf.name()
            );
        };
        let envelope = Envelope {
            check: check.clone(),
            state,
        };
        buf.extend_from_slice(MAGIC);
        serde_json::to_writer(&mut *buf, &envelope)
            .map_err(|e| datafusion::common::DataFusionError::External(Box::new(e)))?;
        Ok(true)
    }

    /// Rebuilds the function `name` from its wire form; `None` when `buf`
    /// is not a Veil function's.
    pub fn decode(&self, name: &str, buf: &[u8]) -> Result<Option<Arc<ScalarUDF>>> {
        let Some(json) = buf.strip_prefix(MAGIC) else {
            return Ok(None);
        };
        let envelope: Envelope = match serde_json::from_slice(json) {
            Ok(e) => e,
            Err(e) => return plan_err!("function {name} arrived garbled: {e}"),
        };
        let Some(check) = &self.check else {
            // The scheduler: the original's signature, not its work.
            let inner = self.build(name, envelope.state)?;
            return Ok(Some(Arc::new(ScalarUDF::new_from_impl(Relayed {
                inner,
                payload: buf.to_vec(),
            }))));
        };
        if *check != envelope.check {
            return exec_err!(
                "this executor's secret differs from the one the statement was planned with; set the same VEIL_SECRET on every executor as in the workspace"
            );
        }
        self.build(name, envelope.state).map(Some)
    }

    /// The function `name` with `state`, keyed with this process's secret.
    fn build(&self, name: &str, state: State) -> Result<Arc<ScalarUDF>> {
        let secret = self.secret.as_ref();
        let found = match state {
            State::Keyed => self.masks.iter().find(|f| f.name() == name).cloned(),
            State::RandomizedResponse {
                categorical,
                numeric,
            } => {
                let domains = RrDomains {
                    categorical: categorical
                        .into_iter()
                        .map(|(k, v)| (k, Arc::new(v)))
                        .collect(),
                    numeric: numeric.into_iter().collect(),
                };
                Some(veil_udfs::mask_rr::mask_rr(secret, Arc::new(domains)))
                    .filter(|f| f.name() == name)
            }
            State::Unmask { grants } => {
                let grants = grants
                    .into_iter()
                    .map(|(k, g)| {
                        let kind = if g.format_preserving {
                            UnmaskKind::FormatPreserving
                        } else {
                            UnmaskKind::Reversible
                        };
                        let grant = UnmaskGrant {
                            kind,
                            scope: g.scope,
                            policy: g.policy,
                        };
                        (k, grant)
                    })
                    .collect();
                Some(veil_udfs::unmask::veil_unmask(secret, grants)).filter(|f| f.name() == name)
            }
            State::Context {
                user,
                role,
                roles_in_session,
                available_roles,
                purpose,
            } => context_functions(SessionIdentity {
                user,
                role,
                roles_in_session,
                available_roles,
                purpose,
            })
            .into_iter()
            .find(|f| f.name() == name),
        };
        match found {
            Some(f) => Ok(f),
            None => plan_err!("no Veil function named {name} matches what the plan carries"),
        }
    }
}

/// The one-way check of `secret` processes compare (hex of 16 bytes of an
/// HKDF output of its own purpose).
fn secret_check(secret: &str) -> String {
    let mut out = [0u8; 16];
    derive_key(secret, KeyPurpose::SecretCheck, "", "", &mut out);
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn rr_state(domains: &RrDomains) -> State {
    State::RandomizedResponse {
        categorical: domains
            .categorical
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref().clone()))
            .collect(),
        numeric: domains
            .numeric
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    }
}

fn unmask_state(grants: &HashMap<String, UnmaskGrant>) -> State {
    State::Unmask {
        grants: grants
            .iter()
            .map(|(k, g)| {
                let grant = Grant {
                    format_preserving: g.kind == UnmaskKind::FormatPreserving,
                    scope: g.scope.clone(),
                    policy: g.policy.clone(),
                };
                (k.clone(), grant)
            })
            .collect(),
    }
}

fn context_state(identity: &SessionIdentity) -> State {
    State::Context {
        user: identity.user.clone(),
        role: identity.role.clone(),
        roles_in_session: identity.roles_in_session.clone(),
        available_roles: identity.available_roles.clone(),
        purpose: identity.purpose.clone(),
    }
}

/// A function as the scheduler holds it: the original's name, signature
/// and return type (planning needs them) and its wire form (stages are
/// sent on to executors), but no secret and so no work.
#[derive(Debug)]
struct Relayed {
    inner: Arc<ScalarUDF>,
    payload: Vec<u8>,
}

impl PartialEq for Relayed {
    fn eq(&self, other: &Self) -> bool {
        self.payload == other.payload && self.inner.name() == other.inner.name()
    }
}

impl Eq for Relayed {}

impl std::hash::Hash for Relayed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.payload.hash(state);
    }
}

impl ScalarUDFImpl for Relayed {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!(
            "{} reached a process without Veil's secret; only `veil executor` runs Veil's functions",
            self.inner.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name(name: &str) -> Arc<ScalarUDF> {
        all_functions("s3cr3t-value", 16)
            .into_iter()
            .find(|f| f.name() == name)
            .unwrap()
    }

    #[test]
    fn a_mask_travels_without_the_secret_and_comes_back_keyed() {
        let client = Functions::keyed("s3cr3t-value", 16);
        let mut buf = Vec::new();
        assert!(client.encode(&by_name("veil_mask_hash"), &mut buf).unwrap());
        let text = String::from_utf8_lossy(&buf);
        assert!(!text.contains("s3cr3t-value"), "{text}");
        let executor = Functions::keyed("s3cr3t-value", 16);
        let f = executor.decode("veil_mask_hash", &buf).unwrap().unwrap();
        assert_eq!(f.name(), "veil_mask_hash");
    }

    #[test]
    fn an_executor_with_another_secret_refuses() {
        let client = Functions::keyed("one", 0);
        let mut buf = Vec::new();
        client.encode(&by_name("veil_mask_hash"), &mut buf).unwrap();
        let err = Functions::keyed("two", 0)
            .decode("veil_mask_hash", &buf)
            .unwrap_err()
            .to_string();
        assert!(err.contains("VEIL_SECRET"), "{err}");
    }

    #[test]
    fn the_scheduler_relays_the_same_bytes_and_cannot_run_them() {
        let client = Functions::keyed("k", 0);
        let grants = HashMap::from([(
            "DB\0S\0T\0C".to_string(),
            UnmaskGrant {
                kind: UnmaskKind::Reversible,
                scope: "DB.S.T".into(),
                policy: "P".into(),
            },
        )]);
        let unmask = veil_udfs::unmask::veil_unmask("k", grants);
        let mut sent = Vec::new();
        client.encode(&unmask, &mut sent).unwrap();
        let scheduler = Functions::unkeyed();
        let relayed = scheduler.decode("veil_unmask", &sent).unwrap().unwrap();
        let mut again = Vec::new();
        assert!(scheduler.encode(&relayed, &mut again).unwrap());
        assert_eq!(sent, again);
        let rebuilt = Functions::keyed("k", 0)
            .decode("veil_unmask", &again)
            .unwrap()
            .unwrap();
        let grants = rebuilt
            .inner()
            .downcast_ref::<VeilUnmaskFunc>()
            .unwrap()
            .grants();
        assert_eq!(grants.len(), 1);
    }

    #[test]
    fn other_functions_and_payloads_are_not_veils() {
        let f = Functions::keyed("k", 0);
        let upper = datafusion::functions::string::upper();
        assert!(!f.encode(&upper, &mut Vec::new()).unwrap());
        assert!(f.decode("upper", b"something else").unwrap().is_none());
        assert!(f.decode("veil_mask_hash", b"veil-fn/1\n{not json").is_err());
    }
}

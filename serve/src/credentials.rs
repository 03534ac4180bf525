//! The credentials file: one SCRAM-SHA-256 verifier per login, as `veil
//! passwd USER` prints them and PostgreSQL stores them
//! (`USER:SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>`, base64).
//! No password, and nothing a password can be recovered from without
//! guessing, is ever kept: a verifier checks a SCRAM proof (PostgreSQL wire
//! protocol) or a presented password (Snowflake's login request).
//!
//! User names follow Snowflake's identifier rules, as workspace users do:
//! `alice` and `ALICE` are the user `ALICE`; `"alice"` is exactly `alice`.
//! Lines starting with `#` and blank lines are ignored. A file that its
//! group or others may read is refused, and every error names `file:line`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pgwire::api::auth::sasl::scram::{ScramSecret, gen_salted_password};
use subtle::ConstantTimeEq;
use veil_engine::ident::normalize_ident;

use crate::error::{Result, ServeError};

/// The mechanism name at the start of every verifier.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Iterations `veil passwd` uses (PostgreSQL's default, RFC 7677's minimum).
pub const DEFAULT_ITERATIONS: usize = 4096;

/// The most iterations a verifier may ask for: checking a password costs
/// one PBKDF2 run of this length, and a login attempt must stay cheap.
pub const MAX_ITERATIONS: usize = 1_000_000;

/// Salt length `veil passwd` draws, in bytes (PostgreSQL uses 16).
const SALT_LEN: usize = 16;

/// Length of SHA-256 keys in a verifier.
const KEY_LEN: usize = 32;

/// One login's SCRAM-SHA-256 verifier: salt, iteration count, StoredKey
/// (`SHA-256(HMAC(SaltedPassword, "Client Key"))`) and ServerKey
/// (`HMAC(SaltedPassword, "Server Key")`), as RFC 5802 defines them.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    salt: Vec<u8>,
    iterations: usize,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys stay out of logs; salt and iterations are public in SCRAM.
        f.debug_struct("ScramVerifier")
            .field("salt", &STANDARD.encode(&self.salt))
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramVerifier {
    /// The verifier of `password` with `salt` and `iterations`, computed
    /// with the same PBKDF2/HMAC code the SCRAM exchange checks against
    /// (pgwire's, which applies SASLprep as PostgreSQL does).
    pub fn derive(password: &str, salt: &[u8], iterations: usize) -> Self {
        let salted = gen_salted_password(password, salt, iterations);
        match ScramSecret::verifier_from_salted_password(salt.to_vec(), salted, iterations) {
            ScramSecret::Verifier {
                salt,
                iterations,
                stored_key,
                server_key,
            } => Self {
                salt,
                iterations,
                stored_key,
                server_key,
            },
            // `verifier_from_salted_password` returns a verifier; anything
            // else gets keys no password can match.
            ScramSecret::SaltedPassword { salt, .. } => Self {
                salt,
                iterations,
                stored_key: Vec::new(),
                server_key: Vec::new(),
            },
        }
    }

    /// A fresh verifier for `password` with a random salt.
    pub fn new(password: &str) -> Self {
        let salt: [u8; SALT_LEN] = rand::random();
        Self::derive(password, &salt, DEFAULT_ITERATIONS)
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// `SHA-256(ClientKey)`.
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }

    /// `HMAC(SaltedPassword, "Server Key")`.
    pub fn server_key(&self) -> &[u8] {
        &self.server_key
    }

    /// The verifier as pgwire's SCRAM exchange takes it.
    pub fn scram_secret(&self) -> ScramSecret {
        ScramSecret::Verifier {
            salt: self.salt.clone(),
            iterations: self.iterations,
            stored_key: self.stored_key.clone(),
            server_key: self.server_key.clone(),
        }
    }

    /// Whether `password` derives this verifier; the keys are compared in
    /// constant time.
    pub fn matches(&self, password: &str) -> bool {
        let presented = Self::derive(password, &self.salt, self.iterations);
        let stored = presented.stored_key.ct_eq(&self.stored_key);
        let server = presented.server_key.ct_eq(&self.server_key);
        bool::from(stored & server) && self.stored_key.len() == KEY_LEN
    }

    /// PostgreSQL's text form:
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn to_text(&self) -> String {
        format!(
            "{SCRAM_SHA_256}${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
        )
    }

    /// Parses PostgreSQL's text form; the error is one sentence without the
    /// location.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let shape = "expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>";
        let rest = text
            .strip_prefix(SCRAM_SHA_256)
            .and_then(|r| r.strip_prefix('$'))
            .ok_or_else(|| {
                format!("the verifier does not start with {SCRAM_SHA_256}$ ({shape})")
            })?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or_else(|| format!("the verifier has no keys ({shape})"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or_else(|| format!("the verifier has no salt ({shape})"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or_else(|| format!("the verifier has no ServerKey ({shape})"))?;
        let iterations: usize = iterations
            .parse()
            .map_err(|_| format!("the iteration count '{iterations}' is not a number"))?;
        if !(DEFAULT_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "the iteration count {iterations} is outside {DEFAULT_ITERATIONS}..={MAX_ITERATIONS}"
            ));
        }
        let decode = |what: &str, b64: &str| {
            STANDARD
                .decode(b64)
                .map_err(|_| format!("the {what} is not valid base64"))
        };
        let salt = decode("salt", salt)?;
        let stored_key = decode("StoredKey", stored)?;
        let server_key = decode("ServerKey", server)?;
        if salt.is_empty() {
            return Err("the salt is empty".into());
        }
        if stored_key.len() != KEY_LEN || server_key.len() != KEY_LEN {
            return Err(format!(
                "StoredKey and ServerKey must be {KEY_LEN} bytes (SHA-256)"
            ));
        }
        Ok(Self {
            salt,
            iterations,
            stored_key,
            server_key,
        })
    }
}

/// The logins a server accepts: user (Snowflake identifier rules) → verifier.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    users: HashMap<String, ScramVerifier>,
}

/// A verifier no password is checked against in earnest: unknown users
/// cost the same PBKDF2 run as known ones.
fn decoy() -> &'static ScramVerifier {
    static DECOY: OnceLock<ScramVerifier> = OnceLock::new();
    DECOY.get_or_init(|| {
        let secret: [u8; 32] = rand::random();
        ScramVerifier::new(&STANDARD.encode(secret))
    })
}

impl Credentials {
    /// Reads a credentials file. Refuses a file its group or others may
    /// access (on Unix), and names `file:line` in every error.
    pub fn load(path: &Path) -> Result<Credentials> {
        let metadata = std::fs::metadata(path).map_err(|source| ServeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(ServeError::CredentialsPermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = metadata;
        let text = std::fs::read_to_string(path).map_err(|source| ServeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses credentials text; `origin` names it in errors (`origin:line`).
    pub fn parse(text: &str, origin: &str) -> Result<Credentials> {
        let mut users: HashMap<String, ScramVerifier> = HashMap::new();
        let mut lines_of: HashMap<String, usize> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let location = format!("{origin}:{line_no}");
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, verifier) =
                split_user(line).map_err(|m| ServeError::credentials(&location, m))?;
            let verifier = ScramVerifier::parse(verifier.trim())
                .map_err(|m| ServeError::credentials(&location, format!("user {user}: {m}.")))?;
            if let Some(first) = lines_of.get(&user) {
                return Err(ServeError::credentials(
                    location,
                    format!("user {user} already has a verifier on line {first}."),
                ));
            }
            lines_of.insert(user.clone(), line_no);
            users.insert(user, verifier);
        }
        Ok(Credentials { users })
    }

    /// An empty set: nobody can log in with a password.
    pub fn empty() -> Credentials {
        Credentials::default()
    }

    /// Adds or replaces `user`'s verifier (tests, embedding).
    pub fn insert(&mut self, user: &str, verifier: ScramVerifier) {
        self.users.insert(normalize_ident(user), verifier);
    }

    /// How many logins have a verifier.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no login has a verifier.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `user`'s. The comparison is constant-time and
    /// an unknown user costs the same work before `false`.
    pub fn verify_password(&self, user: &str, password: &str) -> bool {
        match self.verifier(user) {
            Some(v) => v.matches(password),
            None => {
                let _ = decoy().matches(password);
                false
            }
        }
    }

    /// `user`'s verifier (Snowflake identifier rules on `user`).
    pub fn verifier(&self, user: &str) -> Option<&ScramVerifier> {
        self.users.get(&normalize_ident(user))
    }

    /// A verifier for a login that has none: SCRAM then runs to the end
    /// and fails, so a client cannot tell unknown users from wrong
    /// passwords.
    pub fn decoy_verifier() -> &'static ScramVerifier {
        decoy()
    }
}

/// Splits `USER:VERIFIER`; `USER` may be a quoted identifier (with `""` for
/// a quote) that contains `:`. Returns the normalized user.
fn split_user(line: &str) -> std::result::Result<(String, &str), String> {
    if let Some(body) = line.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if matches!(chars.peek(), Some((_, '"'))) {
                    chars.next();
                    name.push('"');
                    continue;
                }
                let rest = &body[i + 1..];
                let verifier = rest
                    .strip_prefix(':')
                    .ok_or("expected ':' after the quoted user name")?;
                if name.is_empty() {
                    return Err("the user name is empty".into());
                }
                return Ok((name, verifier));
            }
            name.push(c);
        }
        return Err("the quoted user name has no closing quote".into());
    }
    let (user, verifier) = line
        .split_once(':')
        .ok_or("expected USER:SCRAM-SHA-256$... (a line of `veil passwd USER`)")?;
    let user = user.trim();
    if user.is_empty() {
        return Err("the user name is empty".into());
    }
    Ok((normalize_ident(user), verifier))
}

/// How `user` is written in a credentials file: bare when Snowflake would
/// read it back unchanged, quoted otherwise.
fn file_user(user: &str) -> String {
    let name = normalize_ident(user);
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if bare {
        name
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// One credentials line for `user` with a fresh random salt:
/// `USER:SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>`.
pub fn passwd_line(user: &str, password: &str) -> String {
    format!(
        "{}:{}",
        file_user(user),
        ScramVerifier::new(password).to_text()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_line_round_trips_and_verifies() {
        let line = passwd_line("alice", "s3cret");
        assert!(line.starts_with("ALICE:SCRAM-SHA-256$4096:"), "{line}");
        assert!(!line.contains("s3cret"));
        let creds = Credentials::parse(&line, "creds").unwrap();
        assert!(creds.verify_password("alice", "s3cret"));
        assert!(creds.verify_password("ALICE", "s3cret"));
        assert!(!creds.verify_password("alice", "s3cret "));
        assert!(!creds.verify_password("bob", "s3cret"));
        assert!(!creds.verify_password("\"alice\"", "s3cret"));
    }

    #[test]
    fn salts_differ_between_lines() {
        assert_ne!(passwd_line("a", "p"), passwd_line("a", "p"));
    }

    #[test]
    fn matches_postgresql_verifier() {
        // RFC 7677's example password and salt; the keys were computed
        // independently with Python's hashlib.pbkdf2_hmac and hmac.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = ScramVerifier::derive("pencil", &salt, 4096);
        assert_eq!(
            v.to_text(),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn quoted_users_keep_case() {
        let line = passwd_line("\"mixed:Case\"", "pw");
        assert!(line.starts_with("\"mixed:Case\":SCRAM"), "{line}");
        let creds = Credentials::parse(&line, "f").unwrap();
        assert!(creds.verify_password("\"mixed:Case\"", "pw"));
        assert!(creds.verifier("MIXED:CASE").is_none());
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = format!(
            "# logins\n\n{}\nBOB:SCRAM-SHA-256$4096:abc",
            passwd_line("bob", "x")
        );
        let e = Credentials::parse(&text, "creds.txt")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("creds.txt:4: user BOB"), "{e}");
        let dup = format!("{}\n{}", passwd_line("bob", "x"), passwd_line("BOB", "y"));
        let e = Credentials::parse(&dup, "c").unwrap_err().to_string();
        assert_eq!(e, "c:2: user BOB already has a verifier on line 1.");
        let e = Credentials::parse("no colon here", "c")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c:1: expected USER:"), "{e}");
        let e = Credentials::parse("BOB:SCRAM-SHA-256$10:AAAA$AAAA:AAAA", "c")
            .unwrap_err()
            .to_string();
        assert!(e.contains("iteration count 10"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn load_refuses_group_readable_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds");
        std::fs::write(&path, passwd_line("bob", "pw")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Credentials::load(&path).unwrap_err().to_string();
        assert!(e.contains("readable by group or others"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            Credentials::load(&path)
                .unwrap()
                .verify_password("bob", "pw")
        );
    }
}

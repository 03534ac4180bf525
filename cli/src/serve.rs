//! `veil passwd` (a credentials line for a login) and `veil serve` (the
//! servers of SPEC §9). The flags live here; the servers are library code
//! in `veil-serve`.

use std::io::{IsTerminal, Read};

use crate::Failure;

/// `veil passwd USER`: reads the password on stdin (the first line, without
/// its line ending) and prints one credentials line — a salted
/// SCRAM-SHA-256 verifier, never the password.
pub(crate) fn passwd(user: &str) -> Result<(), Failure> {
    if user.trim().is_empty() {
        return Err(Failure::Usage("the user name is empty.".into()));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Password for {user} (one line; it is not printed):");
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| Failure::Usage(format!("cannot read the password from stdin: {e}")))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(Failure::Usage(format!(
            "no password for {user} on stdin: pipe one line, e.g. `printf '%s\\n' \"$PW\" | veil passwd {user}`."
        )));
    }
    crate::emit_line(veil_serve::passwd_line(user, password))
}

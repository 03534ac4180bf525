//! `veil shell`: an interactive SQL session as one user.
//!
//! [`Shell`] is the read-eval part, fed one input line at a time from any
//! source (the binary reads a terminal through a line editor with history,
//! or plain lines from a pipe), so a script or test drives it exactly as a
//! person would. SQL statements may span lines and end with `;`. Meta
//! commands stand on a line of their own:
//!
//! | command | what it does |
//! | --- | --- |
//! | `\dt` | the tables the user may see (`SHOW TABLES`) |
//! | `\d TABLE` | a table's columns as the user sees them (`DESCRIBE TABLE`) |
//! | `\explain SQL` | the rewritten SQL and the policy behind each table and column |
//! | `\user NAME [ROLE]` | continue as another user (and primary role) |
//! | `\timing` | print each statement's wall time (toggles) |
//! | `\q` | quit |
//! | `\?` | this list |
//!
//! Results print with [`crate::output::table`], as `veil query` does.
//! Errors go to the error stream and the shell goes on.

use std::io::Write;
use std::time::Instant;

use crate::enforce::{Engine, Session, SessionOptions};
use crate::error::Result;
use crate::output;

/// What the caller should do after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read the next line.
    Continue,
    /// The user asked to quit.
    Quit,
}

/// The meta commands, for `\?`.
pub const HELP: &str = "\
\\dt                 tables you may see
\\d TABLE            a table's columns
\\explain SQL        the rewritten SQL and the policies behind it
\\user NAME [ROLE]   continue as another user
\\timing             toggle statement timing
\\q                  quit
SQL statements end with ';' and may span lines.
";

/// An interactive session: the engine, the current identity, the statement
/// being typed.
pub struct Shell {
    engine: Engine,
    options: SessionOptions,
    session: Session,
    buffer: String,
    timing: bool,
    colour: bool,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("user", &self.session.user())
            .field("timing", &self.timing)
            .finish()
    }
}

impl Shell {
    /// A shell acting as `options`' user. `colour` turns on ANSI colour for
    /// prompts and errors (only for a terminal).
    pub fn new(engine: Engine, options: SessionOptions, colour: bool) -> Result<Self> {
        let session = engine.session_with(options.clone())?;
        Ok(Self {
            engine,
            options,
            session,
            buffer: String::new(),
            timing: false,
            colour,
        })
    }

    /// The prompt for the next line: `USER> `, or `   -> ` inside a
    /// statement.
    pub fn prompt(&self) -> String {
        let text = if self.buffer.is_empty() {
            format!("{}> ", self.session.user())
        } else {
            format!("{}-> ", " ".repeat(self.session.user().chars().count()))
        };
        if self.colour {
            format!("\x1b[1;36m{text}\x1b[0m")
        } else {
            text
        }
    }

    /// Whether a statement is being typed (lines without its `;` yet).
    pub fn in_statement(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Drops the statement being typed (Ctrl-C on a terminal).
    pub fn discard(&mut self) {
        self.buffer.clear();
    }

    /// Handles one input line: a meta command, or part of a statement (run
    /// once a line ends with `;`). Results go to `out`, errors to `err`;
    /// only a failing writer is an error here.
    pub async fn line(
        &mut self,
        line: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> std::io::Result<Step> {
        let trimmed = line.trim();
        if self.buffer.is_empty() {
            if trimmed.is_empty() {
                return Ok(Step::Continue);
            }
            if let Some(meta) = trimmed.strip_prefix('\\') {
                return self.meta(meta, out, err).await;
            }
        }
        if !self.buffer.is_empty() {
            self.buffer.push('\n');
        }
        self.buffer.push_str(line.trim_end_matches(['\r', '\n']));
        if trimmed.ends_with(';') {
            self.finish(out, err).await?;
        }
        Ok(Step::Continue)
    }

    /// Runs a statement typed without its closing `;` (at end of input).
    pub async fn finish(
        &mut self,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> std::io::Result<()> {
        let text = std::mem::take(&mut self.buffer);
        let sql = text.trim().trim_end_matches(';').trim();
        if sql.is_empty() {
            return Ok(());
        }
        self.run(sql, out, err).await
    }

    async fn run(
        &self,
        sql: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> std::io::Result<()> {
        let started = Instant::now();
        let result = self.session.sql(sql).await;
        let elapsed = started.elapsed();
        match result.and_then(|b| Ok((output::table(&b)?, output::row_count(&b)))) {
            Ok((table, rows)) => {
                writeln!(out, "{table}")?;
                writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
            }
            Err(e) => self.error(err, &e.to_string())?,
        }
        if self.timing {
            writeln!(out, "Time: {:.1} ms", elapsed.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }

    fn error(&self, err: &mut dyn Write, message: &str) -> std::io::Result<()> {
        if self.colour {
            writeln!(err, "\x1b[31merror:\x1b[0m {message}")
        } else {
            writeln!(err, "error: {message}")
        }
    }

    async fn meta(
        &mut self,
        meta: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> std::io::Result<Step> {
        let (command, rest) = match meta.split_once(char::is_whitespace) {
            Some((c, r)) => (c, r.trim()),
            None => (meta, ""),
        };
        match (command, rest) {
            ("q" | "quit", _) => return Ok(Step::Quit),
            ("?" | "h" | "help", _) => write!(out, "{HELP}")?,
            ("dt", "") => self.run("SHOW TABLES", out, err).await?,
            ("d", "") => self.error(err, "\\d needs a table name: \\d TABLE")?,
            ("d", table) => {
                self.run(&format!("DESCRIBE TABLE {table}"), out, err)
                    .await?
            }
            ("explain", "") => self.error(err, "\\explain needs a statement: \\explain SQL")?,
            ("explain", sql) => match self.session.explain(sql.trim_end_matches(';')) {
                Ok(e) => write!(out, "{e}")?,
                Err(e) => self.error(err, &e.to_string())?,
            },
            ("timing", "") => {
                self.timing = !self.timing;
                writeln!(out, "Timing is {}.", if self.timing { "on" } else { "off" })?;
            }
            ("user", rest) => {
                let mut words = rest.split_whitespace();
                let (Some(user), role, None) = (words.next(), words.next(), words.next()) else {
                    self.error(
                        err,
                        "\\user takes a user name and an optional role: \\user NAME [ROLE]",
                    )?;
                    return Ok(Step::Continue);
                };
                let options = SessionOptions {
                    user: user.to_string(),
                    role: role.map(str::to_string),
                    purpose: None,
                    ..self.options.clone()
                };
                match self.engine.session_with(options.clone()) {
                    Ok(session) => {
                        self.session = session;
                        self.options = options;
                        writeln!(
                            out,
                            "You are now {} with role {}.",
                            self.session.user(),
                            self.session.role()
                        )?;
                    }
                    Err(e) => self.error(err, &e.to_string())?,
                }
            }
            _ => self.error(
                err,
                &format!("\\{command} is not a shell command (\\? lists them)"),
            )?,
        }
        Ok(Step::Continue)
    }
}

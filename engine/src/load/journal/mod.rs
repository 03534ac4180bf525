//! The catalog journal on disk: `state/catalog.jsonl` in the workspace, one
//! JSON event per line (SPEC §7.1), read when the workspace loads and folded
//! over the YAML and DDL tags ([`crate::model::journal::fold`]).
//!
//! ```text
//! {"time":"2026-12-03T06:30:00Z","actor":"ADMIN","kind":"tag_added","column":"CRM.CORE.CUSTOMER.EMAIL","tag":"PII.Email","source":"manual","batch":2}
//! {"time":"2026-12-03T06:30:00Z","actor":"ADMIN","kind":"tag_propagated","column":"CRM.CORE.CUSTOMER_2.EMAIL","tag":"PII.Email","source":"lineage","origin":"CRM.CORE.CUSTOMER.EMAIL"}
//! {"time":"2026-12-03T07:00:00Z","actor":"ERIN","kind":"access_requested","table":"ANALYTICS.PUBLIC.ORDERS","request":"R1","user":"ERIN","reason":"quarterly audit"}
//! {"time":"2026-12-03T07:05:00Z","actor":"DANA","kind":"access_approved","table":"ANALYTICS.PUBLIC.ORDERS","request":"R1","user":"ERIN"}
//! ```
//!
//! Access events (`access_requested`, `access_approved`, `access_denied`)
//! name a table instead of a column; their actor is who filed the request
//! or the data owner who decided it.
//!
//! Appends are atomic per change: the events of one change (a tag and its
//! propagations) are written with one `write` under an exclusive file lock,
//! and the first line of a change with more than one event says how many
//! lines it has (`"batch": n`). A crash mid-write leaves at most a torn or
//! short last change: the reader skips it with a warning and the next
//! writer cuts it off, so the change is lost whole and the file is never
//! corrupt. Anything unreadable before the end is an error naming the line,
//! and nothing of the journal is applied.
//!
//! Changes go through [`record`]: it takes the lock, folds what other
//! processes appended since the workspace was loaded, runs a
//! [`Recorder`] on a copy of the workspace, and appends what it recorded.
//! [`access_history`] reads Snowflake's column lineage; [`access`] records
//! access requests and their approvals.

pub mod access;
pub mod access_history;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, VeilError};
use crate::model::journal::{CatalogChange, CatalogEvent, fold};
use crate::model::{
    ColumnRef, CreatedTable, Recorder, SnowflakeType, TableName, TagSource, Workspace,
};

pub use crate::model::journal::JOURNAL_FILE;

/// Where the catalog journal of the workspace in `dir` is.
pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join(JOURNAL_FILE)
}

/// One line as written.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    time: String,
    actor: String,
    kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    column: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    columns: Vec<LineColumn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
}

/// A column of a `table_created` line.
#[derive(Debug, Serialize, Deserialize)]
struct LineColumn {
    name: String,
    #[serde(rename = "type")]
    declared: String,
}

/// Parses `DB.SCHEMA.TABLE.COLUMN` by Snowflake identifier rules.
pub fn parse_column(text: &str) -> std::result::Result<ColumnRef, String> {
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.');
    let parts: Vec<String> = if plain {
        text.split('.').map(str::to_ascii_uppercase).collect()
    } else {
        crate::sql::ident::parse_name_parts(text)?
    };
    match <[String; 4]>::try_from(parts) {
        Ok([database, schema, table, column])
            if [&database, &schema, &table, &column]
                .iter()
                .all(|p| !p.is_empty()) =>
        {
            Ok(ColumnRef::new(
                TableName {
                    database,
                    schema,
                    table,
                },
                column,
            ))
        }
        _ => Err(format!(
            "'{text}' is not a column name (DB.SCHEMA.TABLE.COLUMN)"
        )),
    }
}

fn encode(event: &CatalogEvent, batch: Option<usize>) -> Line {
    let mut line = Line {
        time: event.time.clone(),
        actor: event.actor.clone(),
        kind: event.change.kind().to_string(),
        column: event
            .change
            .column()
            .map(ToString::to_string)
            .unwrap_or_default(),
        table: String::new(),
        request: None,
        user: None,
        reason: None,
        location: None,
        columns: Vec::new(),
        tag: None,
        source: None,
        origin: None,
        sources: Vec::new(),
        query_id: None,
        batch,
    };
    match &event.change {
        CatalogChange::TagAdded {
            tag,
            source,
            origin,
            ..
        } => {
            line.tag = Some(tag.clone());
            line.source = Some(source.as_str().to_string());
            line.origin = origin.as_ref().map(ToString::to_string);
        }
        CatalogChange::TagRemoved { tag, origin, .. } => {
            line.tag = Some(tag.clone());
            line.origin = origin.as_ref().map(ToString::to_string);
        }
        CatalogChange::Lineage {
            sources, query_id, ..
        } => {
            line.sources = sources.iter().map(ToString::to_string).collect();
            line.query_id.clone_from(query_id);
        }
        CatalogChange::TableCreated(created) => {
            line.table = created.name.to_string();
            line.location = Some(created.location.clone());
            line.columns = created
                .columns
                .iter()
                .map(|(name, declared)| LineColumn {
                    name: name.clone(),
                    declared: declared.to_string(),
                })
                .collect();
            line.query_id.clone_from(&created.query_id);
        }
        CatalogChange::AccessRequested {
            request,
            user,
            table,
            reason,
        } => {
            line.table = table.to_string();
            line.request = Some(request.clone());
            line.user = Some(user.clone());
            line.reason = Some(reason.clone());
        }
        CatalogChange::AccessDecided {
            request,
            user,
            table,
            ..
        } => {
            line.table = table.to_string();
            line.request = Some(request.clone());
            line.user = Some(user.clone());
        }
    }
    line
}

/// Parses `DB.SCHEMA.TABLE` by Snowflake identifier rules.
pub fn parse_table(text: &str) -> std::result::Result<TableName, String> {
    let parts = crate::sql::ident::parse_name_parts(text)?;
    match <[String; 3]>::try_from(parts) {
        Ok([database, schema, table])
            if [&database, &schema, &table].iter().all(|p| !p.is_empty()) =>
        {
            Ok(TableName {
                database,
                schema,
                table,
            })
        }
        _ => Err(format!("'{text}' is not a table name (DB.SCHEMA.TABLE)")),
    }
}

/// The change of an access event line (`access_requested`,
/// `access_approved`, `access_denied`).
fn decode_access(line: &Line) -> std::result::Result<CatalogChange, String> {
    let field = |value: &Option<String>, name: &str| {
        value
            .clone()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| format!("an {} event needs a {name}", line.kind))
    };
    let table = parse_table(&line.table)?;
    let request = field(&line.request, "request")?;
    let user = field(&line.user, "user")?;
    Ok(match line.kind.as_str() {
        "access_requested" => CatalogChange::AccessRequested {
            request,
            user,
            table,
            reason: field(&line.reason, "reason")?,
        },
        kind => CatalogChange::AccessDecided {
            request,
            user,
            table,
            approved: kind == "access_approved",
        },
    })
}

/// The table of a `table_created` line.
fn created_table(line: &Line) -> std::result::Result<CreatedTable, String> {
    let name = parse_table(&line.table)?;
    let location = line
        .location
        .clone()
        .filter(|l| !l.trim().is_empty())
        .ok_or("a table_created event needs a location")?;
    if Path::new(&location).is_absolute() || location.split('/').any(|p| p == "..") {
        return Err(format!(
            "location '{location}' must be a path inside the workspace"
        ));
    }
    if line.columns.is_empty() {
        return Err("a table_created event needs columns".to_string());
    }
    let mut columns: Vec<(String, SnowflakeType)> = Vec::with_capacity(line.columns.len());
    for c in &line.columns {
        if c.name.is_empty() || columns.iter().any(|(n, _)| *n == c.name) {
            return Err(format!("column name '{}' is empty or repeated", c.name));
        }
        columns.push((c.name.clone(), SnowflakeType::parse(&c.declared)?));
    }
    Ok(CreatedTable {
        name,
        location,
        columns,
        query_id: line.query_id.clone(),
    })
}

fn decode(line: Line) -> std::result::Result<CatalogEvent, String> {
    if chrono::DateTime::parse_from_rfc3339(&line.time).is_err() {
        return Err(format!("time '{}' is not an RFC 3339 time", line.time));
    }
    if matches!(
        line.kind.as_str(),
        "access_requested" | "access_approved" | "access_denied"
    ) {
        let change = decode_access(&line)?;
        return Ok(CatalogEvent {
            time: line.time,
            actor: line.actor,
            change,
        });
    }
    if line.kind == "table_created" {
        let created = created_table(&line)?;
        return Ok(CatalogEvent {
            time: line.time,
            actor: line.actor,
            change: CatalogChange::TableCreated(Box::new(created)),
        });
    }
    let column = parse_column(&line.column)?;
    let tag = || {
        line.tag
            .clone()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| format!("a {} event needs a tag", line.kind))
    };
    let origin = || line.origin.as_deref().map(parse_column).transpose();
    let change = match line.kind.as_str() {
        "tag_added" | "tag_propagated" => {
            let source_name = line.source.as_deref().unwrap_or("manual");
            let source = TagSource::parse(source_name).ok_or_else(|| {
                format!("source '{source_name}' must be manual, snowflake, discovered or lineage")
            })?;
            let origin = origin()?;
            if (line.kind == "tag_propagated") != origin.is_some()
                || (source == TagSource::Lineage) != origin.is_some()
            {
                return Err(
                    "a propagated tag has source lineage and an origin; no other tag has either"
                        .to_string(),
                );
            }
            CatalogChange::TagAdded {
                column,
                tag: tag()?,
                source,
                origin,
            }
        }
        "tag_removed" | "propagation_removed" => {
            let origin = origin()?;
            if (line.kind == "propagation_removed") != origin.is_some() {
                return Err("propagation_removed, and only it, names an origin".to_string());
            }
            CatalogChange::TagRemoved {
                column,
                tag: tag()?,
                origin,
            }
        }
        "lineage" => {
            if line.sources.is_empty() {
                return Err("a lineage event needs sources".to_string());
            }
            CatalogChange::Lineage {
                column,
                sources: line
                    .sources
                    .iter()
                    .map(|s| parse_column(s))
                    .collect::<std::result::Result<_, _>>()?,
                query_id: line.query_id,
            }
        }
        other => {
            return Err(format!(
                "kind '{other}' must be tag_added, tag_propagated, tag_removed, propagation_removed, lineage, table_created, access_requested, access_approved or access_denied"
            ));
        }
    };
    Ok(CatalogEvent {
        time: line.time,
        actor: line.actor,
        change,
    })
}

/// The journal lines for `events`, one change (a batch).
pub fn encode_batch(events: &[CatalogEvent]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(events.len() * 160);
    for (i, e) in events.iter().enumerate() {
        let batch = (i == 0 && events.len() > 1).then_some(events.len());
        serde_json::to_writer(&mut out, &encode(e, batch)).map_err(|e| {
            VeilError::workspace(JOURNAL_FILE, format!("cannot encode an event: {e}"))
        })?;
        out.push(b'\n');
    }
    Ok(out)
}

/// What [`read_events`] found.
#[derive(Debug, Default)]
pub struct JournalRead {
    /// The complete events after the starting offset, in order.
    pub events: Vec<CatalogEvent>,
    /// Byte offset just after the last complete change.
    pub end: u64,
    /// A torn or short last change that was skipped.
    pub warnings: Vec<String>,
}

/// Reads the events of `text` (a whole journal) from byte offset `from`
/// (the start of a line). A torn last line or a last change shorter than
/// its `batch` is skipped with a warning; anything else unreadable is an
/// error naming the line.
pub fn read_events(text: &[u8], from: u64) -> Result<JournalRead> {
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(text.len());
    let mut line_no = text[..from].iter().filter(|b| **b == b'\n').count();
    let mut read = JournalRead {
        end: from as u64,
        ..JournalRead::default()
    };
    // The open change: its first line, events so far, lines still expected.
    let mut open: Option<(usize, Vec<CatalogEvent>, usize)> = None;
    let mut pos = from;
    let at = |line: usize, message: String| {
        VeilError::workspace(format!("{JOURNAL_FILE}:{line}"), message)
    };
    while pos < text.len() {
        line_no += 1;
        let Some(len) = text[pos..].iter().position(|b| *b == b'\n') else {
            read.warnings.push(format!(
                "{JOURNAL_FILE}:{line_no}: the last line is incomplete (a write was interrupted); it is skipped{}",
                if open.is_some() { ", with the change it belongs to" } else { "" }
            ));
            return Ok(read);
        };
        let raw = &text[pos..pos + len];
        pos += len + 1;
        if raw.iter().all(u8::is_ascii_whitespace) {
            if open.is_none() {
                read.end = pos as u64;
            }
            continue;
        }
        let line: Line = serde_json::from_slice(raw).map_err(|e| {
            at(
                line_no,
                format!("not a catalog event ({e}); the journal is not applied"),
            )
        })?;
        let batch = line.batch;
        let event =
            decode(line).map_err(|m| at(line_no, format!("{m}; the journal is not applied")))?;
        match (&mut open, batch) {
            (Some((first, _, _)), Some(_)) => {
                return Err(at(
                    line_no,
                    format!(
                        "a new change starts before the change of line {first} has all its lines; the journal is not applied"
                    ),
                ));
            }
            (Some((_, events, left)), None) => {
                events.push(event);
                *left -= 1;
            }
            (None, Some(n)) if n > 1 => open = Some((line_no, vec![event], n - 1)),
            (None, _) => {
                read.events.push(event);
                read.end = pos as u64;
            }
        }
        if let Some((_, events, 0)) = &mut open {
            read.events.append(events);
            read.end = pos as u64;
            open = None;
        }
    }
    if let Some((first, events, left)) = open {
        read.warnings.push(format!(
            "{JOURNAL_FILE}:{first}: the last change is missing {left} of its {} lines (a write was interrupted); it is skipped",
            events.len() + left
        ));
    }
    Ok(read)
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> VeilError {
    VeilError::workspace(
        path.display().to_string(),
        format!("cannot {what} the catalog journal: {e}"),
    )
}

/// Folds the workspace's journal (if it has one) into `ws`: its tags onto
/// the columns, its lineage into [`crate::model::CatalogJournal`]. Called by
/// [`crate::load::load_workspace`] after the DDL scripts.
pub fn apply_journal(ws: &mut Workspace) -> Result<()> {
    let path = journal_path(&ws.dir);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(&path, "read", e)),
    };
    let read = read_events(&text, 0)?;
    fold(ws, &read.events);
    ws.journal.bytes = read.end;
    ws.warnings.extend(read.warnings);
    Ok(())
}

/// What [`record`] did.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The workspace with the change folded in.
    pub workspace: Workspace,
    /// The events appended (empty: nothing changed, nothing written).
    pub events: Vec<CatalogEvent>,
    /// Torn changes cut off the end of the journal before appending.
    pub warnings: Vec<String>,
}

impl Recorded {
    /// The propagation events (one audit record each).
    pub fn propagations(&self) -> impl Iterator<Item = &CatalogEvent> {
        self.events.iter().filter(|e| e.is_propagation())
    }
}

/// Makes sure `state/` exists for the journal and that Git sees the
/// journal: a `.gitignore` of `*` there (which the audit log's directory
/// gets) is given a `!catalog.jsonl` exception.
fn prepare_dir(path: &Path) -> Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| io_error(path, "create the directory of", e))?;
    let ignore = dir.join(".gitignore");
    if let Ok(text) = std::fs::read_to_string(&ignore)
        && text.lines().any(|l| l.trim() == "*")
        && !text.lines().any(|l| l.trim() == "!catalog.jsonl")
    {
        let mut text = text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("!catalog.jsonl\n");
        std::fs::write(&ignore, text)
            .map_err(|e| io_error(path, "update the .gitignore beside", e))?;
    }
    Ok(())
}

/// Records a change to the catalog of `ws` (loaded from its directory):
/// under an exclusive lock on the journal, folds what was appended since
/// `ws` was loaded, runs `change` on a [`Recorder`] over a copy, and
/// appends the events it recorded as one change. If `change` fails,
/// nothing is written and `ws` is untouched.
pub fn record<F>(ws: &Workspace, actor: &str, change: F) -> Result<Recorded>
where
    F: FnOnce(&mut Recorder<'_>) -> Result<()>,
{
    let path = journal_path(&ws.dir);
    prepare_dir(&path)?;
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_error(&path, "open", e))?;
    file.lock().map_err(|e| io_error(&path, "lock", e))?;
    let result = record_locked(&mut file, &path, ws, actor, change);
    // Closing the file releases the lock either way.
    drop(file);
    result
}

fn record_locked<F>(
    file: &mut File,
    path: &Path,
    ws: &Workspace,
    actor: &str,
    change: F,
) -> Result<Recorded>
where
    F: FnOnce(&mut Recorder<'_>) -> Result<()>,
{
    let mut text = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut text))
        .map_err(|e| io_error(path, "read", e))?;
    if (text.len() as u64) < ws.journal.bytes {
        return Err(VeilError::workspace(
            JOURNAL_FILE,
            "the catalog journal is shorter than when the workspace was loaded (it was rewritten); load the workspace again",
        ));
    }
    let read = read_events(&text, ws.journal.bytes)?;
    let mut copy = ws.clone();
    fold(&mut copy, &read.events);
    copy.journal.bytes = read.end;
    let mut recorder = Recorder::new(&mut copy, actor);
    change(&mut recorder)?;
    let events = recorder.finish();
    let mut warnings = read.warnings;
    if events.is_empty() {
        return Ok(Recorded {
            workspace: copy,
            events,
            warnings,
        });
    }
    let bytes = encode_batch(&events)?;
    if read.end < text.len() as u64 {
        // A torn change at the end: cut it off so the new one stands alone.
        file.set_len(read.end)
            .map_err(|e| io_error(path, "repair", e))?;
        warnings.push(format!(
            "{JOURNAL_FILE}: an interrupted change at the end ({} bytes) was removed before appending",
            text.len() as u64 - read.end
        ));
    }
    file.write_all(&bytes)
        .and_then(|_| file.sync_data())
        .map_err(|e| io_error(path, "append to", e))?;
    copy.journal.bytes = read.end + bytes.len() as u64;
    Ok(Recorded {
        workspace: copy,
        events,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_follow_snowflake_rules() {
        let c = parse_column("crm.core.customer.email").unwrap();
        assert_eq!(c.to_string(), "CRM.CORE.CUSTOMER.EMAIL");
        let q = parse_column("CRM.CORE.\"My T\".\"e-mail\"").unwrap();
        assert_eq!(q.table.table, "My T");
        assert_eq!(q.column, "e-mail");
        assert!(parse_column("CRM.CORE.CUSTOMER").is_err());
        assert!(parse_column("CRM..CUSTOMER.EMAIL").is_err());
    }

    #[test]
    fn access_events_encode_and_decode() {
        let table = parse_table("sales.public.orders").unwrap();
        let events = [
            CatalogEvent::new(
                "ERIN",
                CatalogChange::AccessRequested {
                    request: "R1".into(),
                    user: "ERIN".into(),
                    table: table.clone(),
                    reason: "Q3 audit".into(),
                },
            ),
            CatalogEvent::new(
                "DANA",
                CatalogChange::AccessDecided {
                    request: "R1".into(),
                    user: "ERIN".into(),
                    table,
                    approved: false,
                },
            ),
        ];
        let mut text = Vec::new();
        for e in &events {
            text.extend(encode_batch(std::slice::from_ref(e)).unwrap());
        }
        let read = read_events(&text, 0).unwrap();
        assert_eq!(read.events, events);
        let line = String::from_utf8(text).unwrap();
        assert!(line.contains(r#""kind":"access_denied""#), "{line}");
        assert!(!line.contains(r#""column""#), "{line}");
    }

    #[test]
    fn access_events_without_a_request_name_their_line() {
        let text = b"{\"time\":\"2026-12-03T07:00:00Z\",\"actor\":\"ERIN\",\"kind\":\"access_requested\",\"table\":\"S.P.T\",\"user\":\"ERIN\",\"reason\":\"x\"}\n";
        let e = read_events(text, 0).unwrap_err().to_string();
        assert!(
            e.contains("catalog.jsonl:1")
                && e.contains("an access_requested event needs a request"),
            "{e}"
        );
    }
}

//! The audit file: appends that never interleave, reads that skip a torn
//! last line, and the handle sessions share.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{Result, VeilError};

use super::record::AuditRecord;

/// An append-only JSON Lines audit file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> VeilError {
    VeilError::workspace(
        path.display().to_string(),
        format!("cannot {what} the audit log: {e}"),
    )
}

impl AuditLog {
    /// Opens (or creates) the log at `path` for appending. If a crash left a
    /// torn last line, it is ended first so the next record stands alone.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| io_error(path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| io_error(path, "read", e))?
            .len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(|e| io_error(path, "read", e))?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .map_err(|e| io_error(path, "write", e))?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one complete line.
    pub fn append(&self, record: &AuditRecord) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|e| {
            VeilError::workspace(
                self.path.display().to_string(),
                format!("cannot encode an audit record: {e}"),
            )
        })?;
        line.push(b'\n');
        let mut file = match self.file.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        file.write_all(&line)
            .map_err(|e| io_error(&self.path, "append to", e))
    }

    /// Makes every record appended so far durable (`fsync`), as a server
    /// does when it shuts down.
    pub fn flush(&self) -> Result<()> {
        let file = match self.file.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        file.sync_data()
            .map_err(|e| io_error(&self.path, "flush", e))
    }

    /// Every complete record in the log (torn lines are skipped).
    pub fn records(&self) -> Result<Vec<AuditRecord>> {
        Ok(read_log(&self.path)?.0)
    }
}

/// Makes sure the directory of the audit log at `path` exists. A directory
/// created here (the workspace's `state/`, by default) gets a `.gitignore`
/// of `*`, so audit records never land in the workspace's repository.
pub fn prepare_log_dir(path: &Path) -> Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error(path, "create the directory of", e))?;
    std::fs::write(dir.join(".gitignore"), "*\n")
        .map_err(|e| io_error(path, "write a .gitignore beside", e))
}

/// Reads a log: the complete records, and how many lines were torn or
/// unreadable (skipped).
pub fn read_log(path: &Path) -> Result<(Vec<AuditRecord>, usize)> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, "read", e))?;
    let mut records = Vec::new();
    let mut torn = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<AuditRecord>(line) {
            Ok(r) => records.push(r),
            Err(_) => torn += 1,
        }
    }
    Ok((records, torn))
}

/// The engine's audit log, shared with the `veil.audit` table of every
/// version.
#[derive(Debug, Clone, Default)]
pub struct AuditHandle(Arc<RwLock<Option<Arc<AuditLog>>>>);

impl AuditHandle {
    /// The log, if set.
    pub fn get(&self) -> Option<Arc<AuditLog>> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sets the log.
    pub fn set(&self, log: AuditLog) {
        let mut slot = match self.0.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Some(Arc::new(log));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: u64) -> AuditRecord {
        AuditRecord::policy_change(
            "ADMIN",
            "POLICY_CHANGE",
            n,
            n + 1,
            vec![format!("policy p{n} (added)")],
        )
    }

    #[test]
    fn a_torn_last_line_is_ended_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.append(&change(1)).unwrap();
        drop(log);
        // A crash mid-write: half a record, no newline.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"id":"torn","timest"#).unwrap();
        drop(f);
        let log = AuditLog::open(&path).unwrap();
        log.append(&change(2)).unwrap();
        let (records, torn) = read_log(&path).unwrap();
        assert_eq!(torn, 1);
        assert_eq!(records, vec![records[0].clone(), records[1].clone()]);
        assert_eq!(records[0].targets, vec!["policy p1 (added)"]);
        assert_eq!(records[1].targets, vec!["policy p2 (added)"]);
    }

    #[test]
    fn concurrent_appends_keep_every_line_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        // Two handles on one file, as two processes would have.
        let a = Arc::new(AuditLog::open(&path).unwrap());
        let b = Arc::new(AuditLog::open(&path).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let log = if i % 2 == 0 {
                    Arc::clone(&a)
                } else {
                    Arc::clone(&b)
                };
                std::thread::spawn(move || {
                    for n in 0..200 {
                        log.append(&change(i * 1000 + n)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (records, torn) = read_log(&path).unwrap();
        assert_eq!(torn, 0);
        assert_eq!(records.len(), 1600);
    }
}

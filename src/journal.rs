//! The journal of a sync's transaction (`bits-tls.state.json.journal`, beside the state): written and
//! fsynced after every new file is ready and every old one kept as an undo copy, before the first file
//! is replaced; removed when the transaction is complete. While it exists, a transaction was cut short
//! (killed, out of power): the next `sync` finishes or undoes it (`apply::recover`), and `check` reports
//! it as drift.
//!
//! Whether it is finished or undone is decided by the state, the commit point: if the state on disk is
//! the one the journal was about to write, the change took effect and is finished (hooks run again, the
//! history line appended if it is missing, backups rotated); otherwise every file is put back from its
//! undo copy and the hooks run so that derived files (`postmap`'s `.db`) match the restored files.

use crate::source::seconds_utc;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub version: u32,
    #[serde(with = "seconds_utc")]
    pub started: DateTime<Utc>,
    /// The files being replaced, in the order they are renamed.
    pub files: Vec<JournalFile>,
    /// Every hook of the transaction in order, the reload last.
    pub hooks: Vec<JournalHook>,
    pub state: PathBuf,
    pub history: PathBuf,
    /// SHA-256 of the state file before the transaction (`None`: there was none).
    pub previous_state_sha256: Option<String>,
    /// SHA-256 of the state the transaction writes: its commit point.
    pub state_sha256: String,
    /// The history line it appends after the state.
    pub history_line: String,
    /// Backups kept of each file once committed.
    pub backups: usize,
}

/// One file of the transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalFile {
    /// The output's path as configured (what hooks were given).
    pub path: PathBuf,
    /// The file actually replaced (`path` with symbolic links followed).
    pub real: PathBuf,
    /// It existed before, and its undo copy is beside it.
    pub existed: bool,
}

/// A hook, with the output file it belongs to (none for the reload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalHook {
    pub argv: Vec<String>,
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("could not read the journal `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the journal `{}` of an interrupted sync cannot be read", .path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl JournalError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            JournalError::Corrupt { .. } => "compare the output files with their `.bits-tls-undo` copies beside them, put back what is right, then remove the journal; `bits-tls check` tells whether the files match the state".into(),
            JournalError::Read { .. } => return None,
        })
    }
}

/// The journal's path for a state file: `STATE.journal`.
pub fn path_for(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".journal");
    PathBuf::from(p)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// SHA-256 of the file at `path`, `None` when it does not exist.
pub fn file_sha256(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(sha256_hex(&b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Journal {
    /// The journal at `path`, if a transaction is pending.
    pub fn load(path: &Path) -> Result<Option<Journal>, JournalError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(JournalError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| JournalError::Corrupt {
                path: path.into(),
                source,
            })
    }

    /// Writes it atomically and durably (temp, fsync, rename, fsync of the directory).
    pub fn save(&self, path: &Path) -> Result<(), crate::write::WriteError> {
        let mut text = serde_json::to_string_pretty(self).expect("journal serialises");
        text.push('\n');
        crate::write::write_atomic(path, text.as_bytes())
    }

    /// Has the transaction reached its commit point (the state on disk is the one it writes)?
    pub fn committed(&self) -> std::io::Result<bool> {
        let now = file_sha256(&self.state)?;
        Ok(now.as_deref() == Some(self.state_sha256.as_str())
            && self.previous_state_sha256.as_deref() != Some(self.state_sha256.as_str()))
    }
}

/// Removes the journal durably.
pub fn remove(path: &Path) -> Result<(), crate::write::WriteError> {
    match std::fs::remove_file(path) {
        Ok(()) => crate::write::sync_dir(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::write::io(path)(e)),
    }
}

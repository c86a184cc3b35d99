//! Local state: the list as last applied, where it came from, HTTP validators and when it was checked
//! and changed (a versioned JSON file, committed like a lock file in a mail-config repository), and the
//! history: one JSON line per change, the audit trail for the quarterly rule.

use crate::domain::Domain;
use crate::list::{Participant, Warning};
use crate::source::{seconds_utc, Provenance, SourceValidators};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const VERSION: u32 = 1;
pub const DEFAULT_FILE: &str = "bits-tls.state.json";
pub const DEFAULT_HISTORY: &str = "bits-tls.history.jsonl";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    pub source: Provenance,
    /// The participants as fetched (before own domains, exclusions and additions are applied).
    pub participants: Vec<Participant>,
    /// Warnings met when that list was read.
    #[serde(default)]
    pub warnings: Vec<Warning>,
    #[serde(default)]
    pub validators: SourceValidators,
    /// How the list was read (see `ParseOptions::fingerprint`); unchanged bytes read the same way are not
    /// parsed again.
    #[serde(default)]
    pub parse_options: String,
    /// Where the list the files were rendered from came from, when it differs from `source`: a later
    /// change moved or re-encoded the list without changing a participant, and no file was rewritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered_from: Option<Provenance>,
    /// The last successful fetch (a 304 Not Modified counts).
    #[serde(with = "seconds_utc")]
    pub last_checked: DateTime<Utc>,
    /// The last sync that changed the list or a file.
    #[serde(with = "seconds_utc")]
    pub last_changed: DateTime<Utc>,
    /// What the shrink guard also measures against (see `plan::changes::Baseline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<crate::plan::Baseline>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("could not read the state `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state `{}` is not valid", .path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the state `{}` has version {found}; this bits-tls reads version {VERSION}", .path.display())]
    FutureVersion { path: PathBuf, found: u64 },
    #[error("there is no state at `{}`", .path.display())]
    Missing { path: PathBuf },
}

impl StateError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            StateError::Corrupt { .. } => {
                "the file is left as it is; restore it from version control or a backup (it is never replaced silently)".into()
            }
            StateError::FutureVersion { .. } => "a newer bits-tls wrote it; upgrade bits-tls".into(),
            StateError::Missing { .. } => "run `bits-tls sync` first, or point --state at the right file".into(),
            StateError::Read { .. } => return None,
        })
    }
}

impl State {
    /// Reads the state; `Ok(None)` when the file does not exist yet.
    pub fn load(path: &Path) -> Result<Option<State>, StateError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        // The version is checked first, so a newer format gives a clear message, not a parse error.
        #[derive(Deserialize)]
        struct Probe {
            version: Option<u64>,
        }
        let probe: Probe =
            serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                path: path.into(),
                source,
            })?;
        if let Some(v) = probe.version.filter(|v| *v > VERSION as u64) {
            return Err(StateError::FutureVersion {
                path: path.into(),
                found: v,
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Corrupt {
                path: path.into(),
                source,
            })
    }

    pub fn require(path: &Path) -> Result<State, StateError> {
        State::load(path)?.ok_or_else(|| StateError::Missing { path: path.into() })
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("state serialises");
        s.push('\n');
        s
    }
}

/// One line of the history file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    #[serde(with = "seconds_utc")]
    pub time: DateTime<Utc>,
    pub source: HistorySource,
    pub domains_added: Vec<Domain>,
    pub domains_removed: Vec<Domain>,
    pub participants_joined: Vec<String>,
    pub participants_left: Vec<String>,
    /// Output files written.
    pub files: Vec<String>,
    /// The Exchange scripts among `files`: written, not applied. Nothing changes on an Exchange server
    /// or tenant until someone runs them (and `exchange-verify` shows whether they did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts_written: Vec<String>,
    /// A safety guard was overridden with --force.
    pub forced: bool,
    /// Only the list's source changed (same participants): no file was written, no hook run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provenance_only: bool,
    /// The local adjustments in force (`excluded bank.no: reason (until 2026-12-31)`), so that an audit
    /// sees every participant this server does not force, and why.
    #[serde(default)]
    pub local: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistorySource {
    pub page: Option<String>,
    pub csv: Option<String>,
    pub sha256: String,
    pub page_updated: Option<chrono::NaiveDate>,
}

impl HistoryEntry {
    /// The entry as one history line, with its line break.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("history entry serialises");
        line.push('\n');
        line
    }
}

/// Appends one line and syncs it to disk. Returns the number of bytes of a torn last line that were
/// removed first (see [`append_history_line`]).
pub fn append_history(path: &Path, entry: &HistoryEntry) -> std::io::Result<u64> {
    append_history_line(path, &entry.to_line())
}

/// Appends `line` (ending in a line break) and syncs it. A last line without its line break — what a
/// crash or a full disk mid-append leaves — is removed first (never glued to the new line), and the
/// number of its bytes returned so the caller can warn. If this append itself fails part-way, the file
/// is cut back to where it was, so it never ends in a torn line of ours.
pub fn append_history_line(path: &Path, line: &str) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    let mut text = Vec::new();
    f.read_to_end(&mut text)?;
    let mut torn = 0;
    if !text.is_empty() && !text.ends_with(b"\n") {
        let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        torn = (text.len() - keep) as u64;
        f.set_len(keep as u64)?;
        text.truncate(keep);
    }
    let start = text.len() as u64;
    f.seek(SeekFrom::Start(start))?;
    let written = f.write_all(line.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = f.set_len(start);
        let _ = f.sync_all();
        return Err(e);
    }
    Ok(torn)
}

/// Whether the history holds exactly this line (with its line break).
pub fn history_has_line(path: &Path, line: &str) -> std::io::Result<bool> {
    match std::fs::read(path) {
        Ok(text) => Ok(text
            .split_inclusive(|b| *b == b'\n')
            .any(|l| l == line.as_bytes())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The history's entries; a line that cannot be read (a torn or hand-edited one) is skipped and
/// reported by its line number instead.
pub fn read_history(path: &Path) -> std::io::Result<(Vec<HistoryEntry>, Vec<u64>)> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(e) => entries.push(e),
            Err(_) => bad.push(i as u64 + 1),
        }
    }
    Ok((entries, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            version: VERSION,
            source: Provenance {
                page: None,
                csv: Some("liste.csv".into()),
                sha256: "ab".repeat(32),
                page_updated: None,
                fetched_at: DateTime::UNIX_EPOCH,
            },
            participants: vec![],
            rendered_from: None,
            warnings: vec![],
            validators: SourceValidators::default(),
            parse_options: String::new(),
            last_checked: DateTime::UNIX_EPOCH,
            last_changed: DateTime::UNIX_EPOCH,
            baseline: None,
        }
    }

    #[test]
    fn round_trip_missing_corrupt_and_future() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        assert!(State::load(&p).unwrap().is_none());
        assert!(matches!(
            State::require(&p),
            Err(StateError::Missing { .. })
        ));
        std::fs::write(&p, sample().to_json()).unwrap();
        assert_eq!(State::load(&p).unwrap(), Some(sample()));
        std::fs::write(&p, "{ not json").unwrap();
        assert!(matches!(State::load(&p), Err(StateError::Corrupt { .. })));
        std::fs::write(&p, r#"{"version": 7}"#).unwrap();
        assert!(matches!(
            State::load(&p),
            Err(StateError::FutureVersion { found: 7, .. })
        ));
        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["participants"] = serde_json::json!([{"organization": "x", "org_number": null, "domains": ["Not.Normal"], "enrolled": null, "enforces_inbound_tls": null}]);
        std::fs::write(&p, v.to_string()).unwrap();
        assert!(
            matches!(State::load(&p), Err(StateError::Corrupt { .. })),
            "domains in state are validated too"
        );
    }

    fn entry(n: u32) -> HistoryEntry {
        HistoryEntry {
            time: DateTime::UNIX_EPOCH + chrono::Duration::seconds(n.into()),
            source: HistorySource {
                page: None,
                csv: Some("liste.csv".into()),
                sha256: "ab".repeat(32),
                page_updated: None,
            },
            domains_added: vec![],
            domains_removed: vec![],
            participants_joined: vec![format!("P{n}")],
            participants_left: vec![],
            files: vec![],
            scripts_written: vec![],
            forced: false,
            provenance_only: false,
            local: vec![],
        }
    }

    /// A crash or a full disk mid-append leaves a last line without its line break: the next append
    /// removes it instead of gluing the new entry onto it, and says how much it removed.
    #[test]
    fn a_torn_last_history_line_is_repaired_not_glued() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("h.jsonl");
        assert_eq!(append_history(&h, &entry(1)).unwrap(), 0);
        let torn = &entry(2).to_line()[..30];
        std::fs::OpenOptions::new()
            .append(true)
            .open(&h)
            .unwrap()
            .write_all(torn.as_bytes())
            .unwrap();
        assert_eq!(
            read_history(&h).unwrap().1,
            vec![2],
            "the torn line is skipped"
        );
        assert_eq!(append_history(&h, &entry(3)).unwrap(), 30);
        let (entries, bad) = read_history(&h).unwrap();
        assert_eq!(entries, vec![entry(1), entry(3)]);
        assert!(bad.is_empty());
        assert!(history_has_line(&h, &entry(3).to_line()).unwrap());
        assert!(!history_has_line(&h, &entry(2).to_line()).unwrap());
    }
}

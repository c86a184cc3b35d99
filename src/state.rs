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
    /// The last successful fetch (a 304 Not Modified counts).
    #[serde(with = "seconds_utc")]
    pub last_checked: DateTime<Utc>,
    /// The last sync that changed the list or a file.
    #[serde(with = "seconds_utc")]
    pub last_changed: DateTime<Utc>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistorySource {
    pub page: Option<String>,
    pub csv: Option<String>,
    pub sha256: String,
    pub page_updated: Option<chrono::NaiveDate>,
}

/// Appends one line and syncs it to disk.
pub fn append_history(path: &Path, entry: &HistoryEntry) -> std::io::Result<()> {
    let mut line = serde_json::to_string(entry).expect("history entry serialises");
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(line.as_bytes())?;
    f.sync_all()
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
            warnings: vec![],
            validators: SourceValidators::default(),
            parse_options: String::new(),
            last_checked: DateTime::UNIX_EPOCH,
            last_changed: DateTime::UNIX_EPOCH,
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
}

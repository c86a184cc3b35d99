//! Local state: the list as last applied, where it came from, HTTP validators and when it was checked
//! and changed (a versioned JSON file, committed like a lock file in a mail-config repository), and the
//! history: one JSON line per change, the audit trail for the quarterly rule.

use crate::domain::Domain;
use crate::list::{Participant, Warning};
use crate::source::{seconds_utc, Provenance, SourceValidators};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// Per output path, what its file was rendered from and what was written (see [`Rendered`]): an
    /// output whose inputs and file are both unchanged is not rendered again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rendered: BTreeMap<String, Rendered>,
}

/// One output as last written: the SHA-256 of what it was rendered from (the list, the local
/// adjustments, the source named in its header, the options, the templates and this bits-tls's
/// version: `render::digest`) and the SHA-256 of the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rendered {
    pub inputs: String,
    pub file: String,
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
        // Parsed once; only a state that does not parse is looked at again, for its version, so a
        // newer format gives a clear message, not a parse error.
        serde_json::from_slice(&bytes).map(Some).map_err(|source| {
            #[derive(Deserialize)]
            struct Probe {
                version: Option<u64>,
            }
            let newer = serde_json::from_slice::<Probe>(&bytes)
                .ok()
                .and_then(|p| p.version)
                .filter(|v| *v > VERSION as u64);
            match newer {
                Some(found) => StateError::FutureVersion {
                    path: path.into(),
                    found,
                },
                None => StateError::Corrupt {
                    path: path.into(),
                    source,
                },
            }
        })
    }

    pub fn require(path: &Path) -> Result<State, StateError> {
        State::load(path)?.ok_or_else(|| StateError::Missing { path: path.into() })
    }

    /// The state as written: compact JSON on one line (a pretty-printed state, as earlier versions
    /// wrote it, reads the same).
    pub fn to_json(&self) -> String {
        StateRef::from(self).to_json()
    }
}

/// A state to write, borrowing its fields (the participants above all: 100,000 of them need not be
/// copied to be written). Serialises exactly as [`State`] does.
#[derive(Debug, Serialize)]
pub struct StateRef<'a> {
    pub version: u32,
    pub source: &'a Provenance,
    pub participants: &'a [Participant],
    pub warnings: &'a [Warning],
    pub validators: &'a SourceValidators,
    pub parse_options: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendered_from: Option<&'a Provenance>,
    #[serde(with = "seconds_utc")]
    pub last_checked: DateTime<Utc>,
    #[serde(with = "seconds_utc")]
    pub last_changed: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<&'a crate::plan::Baseline>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rendered: &'a BTreeMap<String, Rendered>,
}

impl<'a> From<&'a State> for StateRef<'a> {
    fn from(s: &'a State) -> StateRef<'a> {
        // Every field named: a field added to `State` and not here does not compile.
        let State {
            version,
            source,
            participants,
            warnings,
            validators,
            parse_options,
            rendered_from,
            last_checked,
            last_changed,
            baseline,
            rendered,
        } = s;
        StateRef {
            version: *version,
            source,
            participants,
            warnings,
            validators,
            parse_options,
            rendered_from: rendered_from.as_ref(),
            last_checked: *last_checked,
            last_changed: *last_changed,
            baseline: baseline.as_ref(),
            rendered,
        }
    }
}

impl StateRef<'_> {
    /// See [`State::to_json`].
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(self).expect("state serialises");
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
    /// Set when a list above held more than [`HISTORY_LIST_AT_MOST`] names and keeps only the first of
    /// them (a first sync of 100,000 participants would otherwise be one line of megabytes): how many
    /// there were. The list itself is the one with `source.sha256`, and the state holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<HistoryTotals>,
}

/// Past this many names, a history line's `domains_added`, `domains_removed`, `participants_joined`
/// and `participants_left` keep the first ones and `totals` says how many there were.
pub const HISTORY_LIST_AT_MOST: usize = 1000;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HistoryTotals {
    pub domains_added: usize,
    pub domains_removed: usize,
    pub participants_joined: usize,
    pub participants_left: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistorySource {
    pub page: Option<String>,
    pub csv: Option<String>,
    pub sha256: String,
    pub page_updated: Option<chrono::NaiveDate>,
}

impl HistoryEntry {
    /// The entry with each list cut to its first [`HISTORY_LIST_AT_MOST`] names and `totals` set, when
    /// one is longer; otherwise as it is.
    pub fn summarised(mut self) -> HistoryEntry {
        let totals = HistoryTotals {
            domains_added: self.domains_added.len(),
            domains_removed: self.domains_removed.len(),
            participants_joined: self.participants_joined.len(),
            participants_left: self.participants_left.len(),
        };
        let longest = [
            totals.domains_added,
            totals.domains_removed,
            totals.participants_joined,
            totals.participants_left,
        ];
        if longest.into_iter().all(|n| n <= HISTORY_LIST_AT_MOST) {
            return self;
        }
        self.domains_added.truncate(HISTORY_LIST_AT_MOST);
        self.domains_removed.truncate(HISTORY_LIST_AT_MOST);
        self.participants_joined.truncate(HISTORY_LIST_AT_MOST);
        self.participants_left.truncate(HISTORY_LIST_AT_MOST);
        self.totals = Some(totals);
        self
    }

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
            rendered: BTreeMap::new(),
        }
    }

    /// The borrowed view writes what the state's own serialisation writes, every field set.
    #[test]
    fn the_borrowed_view_writes_the_state() {
        let d = |s: &str| Domain::try_from(s.to_string()).unwrap();
        let list = crate::list::ParticipantList {
            participants: vec![Participant {
                organization: "Bits AS".into(),
                org_number: Some("916960190".into()),
                domains: vec![d("bits.no"), d("xn--blbr-roah.no")],
                enrolled: chrono::NaiveDate::from_ymd_opt(2017, 2, 1),
                enforces_inbound_tls: Some(true),
            }],
            warnings: vec![Warning::at(3, "a note"), Warning::general("another")],
        };
        let mut state = sample();
        state.participants = list.participants.clone();
        state.warnings = list.warnings.clone();
        state.rendered_from = Some(state.source.clone());
        state.validators.requested = Some("liste.csv".into());
        state.parse_options = "columns=;wildcards=no".into();
        state.last_changed = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        state.baseline = Some(crate::plan::changes::next_baseline(
            None,
            &list,
            false,
            state.last_changed,
            30,
        ));
        state.rendered.insert(
            "out/policy".into(),
            Rendered {
                inputs: "in".into(),
                file: "f".into(),
            },
        );
        let own = serde_json::to_string(&state).unwrap() + "\n";
        assert_eq!(StateRef::from(&state).to_json(), own);
        assert_eq!(
            sample().to_json(),
            serde_json::to_string(&sample()).unwrap() + "\n"
        );
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
        assert_eq!(
            sample().to_json().lines().count(),
            1,
            "written compact, on one line"
        );
        std::fs::write(&p, serde_json::to_string_pretty(&sample()).unwrap()).unwrap();
        assert_eq!(
            State::load(&p).unwrap(),
            Some(sample()),
            "the pretty form earlier versions wrote still reads"
        );
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
            totals: None,
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

    /// A history line past the limit keeps the first names of each list and their totals; one under
    /// it is left as it is.
    #[test]
    fn a_long_history_line_is_summarised_with_totals() {
        let small = entry(1);
        assert_eq!(small.clone().summarised(), small);
        let mut big = entry(2);
        big.participants_joined = (0..HISTORY_LIST_AT_MOST + 5)
            .map(|i| format!("P{i}"))
            .collect();
        let cut = big.summarised();
        assert_eq!(cut.participants_joined.len(), HISTORY_LIST_AT_MOST);
        assert_eq!(cut.participants_joined[0], "P0");
        let totals = cut.totals.unwrap();
        assert_eq!(totals.participants_joined, HISTORY_LIST_AT_MOST + 5);
        assert_eq!(totals.domains_added, 0);
        let line = cut.to_line();
        assert!(line.contains(&format!(
            r#""totals":{{"domains_added":0,"domains_removed":0,"participants_joined":{},"participants_left":0}}"#,
            HISTORY_LIST_AT_MOST + 5
        )));
        assert_eq!(serde_json::from_str::<HistoryEntry>(&line).unwrap(), cut);
    }
}

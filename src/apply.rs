//! Applying a plan: write the changed files (all or none), run their hooks and the reload, then record
//! the state and a history line, leaving every file and the state as they were on any failure.

use crate::plan::{FileChange, Job, Plan};
use crate::state::{self, HistoryEntry, HistorySource, State};
use crate::write::{self, FileWrite, Hook, Lock};
use chrono::{DateTime, SubsecRound, Utc};
use std::path::PathBuf;
use std::time::Duration;

/// What `apply` did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub files_written: Vec<PathBuf>,
    pub hooks_run: Vec<String>,
    /// The list or a file changed (a history line was written).
    pub changed: bool,
}

/// Writes the changed files, runs hooks, then records state (and history when something changed).
/// On any failure every file and the state are as they were before.
pub fn apply(job: &Job, p: &Plan, forced: bool, now: DateTime<Utc>) -> anyhow::Result<Outcome> {
    let now = now.trunc_subsecs(0);
    let changed_files: Vec<&FileChange> = p.files.iter().filter(|f| f.changed()).collect();
    let writes: Vec<FileWrite> = changed_files
        .iter()
        .map(|f| FileWrite {
            path: f.path().to_path_buf(),
            content: f.after.clone().into_bytes(),
        })
        .collect();
    let applied = write::apply(&writes, job.backups)?;
    let mut hooks: Vec<Hook> = changed_files
        .iter()
        .filter_map(|f| f.output.hook.as_ref().map(|h| Hook::new(h, f.path())))
        .collect();
    if !changed_files.is_empty() {
        if let Some(r) = &job.reload {
            hooks.push(Hook { argv: r.clone() });
        }
    }
    write::run_hooks(&hooks, &applied)?;

    let changed = p.list_changed() || !changed_files.is_empty();
    let new_state = State {
        version: state::VERSION,
        source: p.provenance.clone(),
        participants: p.list.participants.clone(),
        warnings: p.list.warnings.clone(),
        validators: p.validators.clone(),
        parse_options: job.fetch.parse.fingerprint(),
        last_checked: now,
        last_changed: if changed {
            now
        } else {
            p.previous.as_ref().map_or(now, |s| s.last_changed)
        },
    };
    let undo = |e: anyhow::Error| -> anyhow::Error {
        applied.restore();
        for h in &hooks {
            let _ = h.run();
        }
        e
    };
    write::write_atomic(&job.state_path, new_state.to_json().as_bytes())
        .map_err(|e| undo(e.into()))?;
    if changed {
        let entry = HistoryEntry {
            time: now,
            source: HistorySource {
                page: p.provenance.page.clone(),
                csv: p.provenance.csv.clone(),
                sha256: p.provenance.sha256.clone(),
                page_updated: p.provenance.page_updated,
            },
            domains_added: p.changes.domains_added.clone(),
            domains_removed: p.changes.domains_removed.clone(),
            participants_joined: p
                .changes
                .joined
                .iter()
                .map(|x| x.organization.clone())
                .collect(),
            participants_left: p
                .changes
                .left
                .iter()
                .map(|x| x.organization.clone())
                .collect(),
            files: changed_files
                .iter()
                .map(|f| f.path().display().to_string())
                .collect(),
            scripts_written: changed_files
                .iter()
                .filter(|f| f.output.target.is_script())
                .map(|f| f.path().display().to_string())
                .collect(),
            forced,
        };
        if let Err(e) = state::append_history(&job.history_path, &entry) {
            // Put the state back too: the audit trail must not miss a change that took effect.
            let restored = match &p.previous {
                Some(s) => write::write_atomic(&job.state_path, s.to_json().as_bytes())
                    .map_err(anyhow::Error::from),
                None => std::fs::remove_file(&job.state_path).map_err(anyhow::Error::from),
            };
            let err = anyhow::Error::new(e).context(format!(
                "appending to the history `{}`",
                job.history_path.display()
            ));
            return Err(undo(match restored {
                Ok(()) => err,
                Err(r) => err.context(format!("and the previous state could not be put back: {r}")),
            }));
        }
    }
    Ok(Outcome {
        files_written: changed_files
            .iter()
            .map(|f| f.path().to_path_buf())
            .collect(),
        hooks_run: hooks.iter().map(Hook::display).collect(),
        changed,
    })
}

/// The lock that serialises syncs: beside the state file.
pub fn lock(job: &Job) -> Result<Lock, write::WriteError> {
    let mut p = job.state_path.clone().into_os_string();
    p.push(".lock");
    Lock::acquire(&PathBuf::from(p), Duration::from_secs(job.lock_timeout))
}

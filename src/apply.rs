//! Applying a plan as one transaction: every new file is written and fsynced beside its target, every
//! old one kept as an undo copy, and the journal (`journal.rs`) written, before the first file is
//! replaced; then the files are renamed into place, the hooks and the reload run (each with a time
//! limit), the state is written — the commit point —, the history line appended, and the undo copies
//! become the backups. On any failure, or a stop signal, before the commit point every file is put back
//! and the hooks run again on the restored files. A transaction cut short by a kill is found by the
//! next run ([`recover`]) and finished or undone.

use crate::fault;
use crate::journal::{self, Journal, JournalFile, JournalHook};
use crate::plan::{FileChange, Job, Plan};
use crate::signals::{self, StopGuard};
use crate::state::{self, HistoryEntry, HistorySource};
use crate::write::{self, Hook, Lock, WriteError};
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
    /// Things that went wrong after the commit and did not undo it (a backup that could not be
    /// rotated, a torn history line that was repaired).
    pub warnings: Vec<String>,
}

/// What [`recover`] did with a transaction an earlier run left unfinished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// It had committed: its hooks ran again, its history line is there, its backups rotated.
    Finished {
        started: DateTime<Utc>,
        files: Vec<PathBuf>,
    },
    /// It had not: its files were put back and their hooks run again.
    Undone {
        started: DateTime<Utc>,
        files: Vec<PathBuf>,
    },
}

impl Recovery {
    /// One sentence for the log.
    pub fn describe(&self) -> String {
        let names = |files: &[PathBuf]| {
            files
                .iter()
                .map(|f| format!("`{}`", f.display()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Recovery::Finished { started, files } => format!(
                "a sync started {} was interrupted after it took effect; it was finished (hooks run again, history completed){}",
                started.format("%Y-%m-%d %H:%M:%S UTC"),
                if files.is_empty() { String::new() } else { format!(" for {}", names(files)) }
            ),
            Recovery::Undone { started, files } => format!(
                "a sync started {} was interrupted before it took effect; it was undone (previous files put back, hooks run again){}",
                started.format("%Y-%m-%d %H:%M:%S UTC"),
                if files.is_empty() { String::new() } else { format!(" for {}", names(files)) }
            ),
        }
    }
}

fn hook_timeout(job: &Job) -> Duration {
    Duration::from_secs(job.hook_timeout)
}

/// Writes the changed files, runs hooks, then records state (and history when something changed).
/// On any failure every file and the state are as they were before.
pub fn apply(job: &Job, p: &Plan, forced: bool, now: DateTime<Utc>) -> anyhow::Result<Outcome> {
    let now = now.trunc_subsecs(0);
    let changed_files: Vec<&FileChange> = p.files.iter().filter(|f| f.changed()).collect();
    let changed = p.list_changed() || !changed_files.is_empty();
    let parse_options = job.fetch.parse.fingerprint();
    let baseline = crate::plan::changes::next_baseline(
        p.previous.as_ref().and_then(|s| s.baseline.as_ref()),
        &p.list,
        forced,
        now,
        job.guard.baseline_days,
    );
    // Written from the plan's own fields: the list is not copied to be written.
    let new_state = state::StateRef {
        version: state::VERSION,
        source: &p.provenance,
        participants: &p.list.participants,
        rendered_from: p.rendered_from.as_ref(),
        warnings: &p.list.warnings,
        validators: &p.validators,
        parse_options: &parse_options,
        last_checked: now,
        last_changed: if changed {
            now
        } else {
            p.previous.as_ref().map_or(now, |s| s.last_changed)
        },
        baseline: Some(&baseline),
        rendered: &p.rendered,
    };
    let state_json = new_state.to_json();
    if !changed {
        // Only the time of the check: one atomic write, nothing to undo.
        write::write_atomic(&job.state_path, state_json.as_bytes())?;
        return Ok(Outcome::default());
    }
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
        provenance_only: p.provenance_only(),
        local: p.local.iter().map(|a| a.to_string()).collect(),
        totals: None,
    }
    .summarised();
    let mut hooks: Vec<JournalHook> = changed_files
        .iter()
        .filter_map(|f| {
            f.output.hook.as_ref().map(|h| JournalHook {
                argv: Hook::new(h, f.path()).argv,
                file: Some(f.path().to_path_buf()),
            })
        })
        .collect();
    if !changed_files.is_empty() {
        if let Some(r) = &job.reload {
            hooks.push(JournalHook {
                argv: r.clone(),
                file: None,
            });
        }
    }

    // 1. Everything that can fail before a target is touched: the new contents, fsynced beside their
    //    targets with the old files' owner, group, mode and labels.
    let mut staged = Vec::new();
    for f in &changed_files {
        let real = write::resolve(f.path()).map_err(write::io(f.path()))?;
        let keep = write::Keep::of(&real)?;
        let temp = write::write_temp(&real, &f.content, keep.as_ref())?;
        let file = JournalFile {
            path: f.path().to_path_buf(),
            real,
            existed: keep.is_some(),
        };
        staged.push((file, temp));
    }
    fault::point("after-temps");
    // 2. The old files, kept as undo copies.
    let files: Vec<JournalFile> = staged.iter().map(|(f, _)| f.clone()).collect();
    let drop_undo = || {
        for f in files.iter().filter(|f| f.existed) {
            let _ = std::fs::remove_file(write::undo_path(&f.real));
        }
    };
    for f in files.iter().filter(|f| f.existed) {
        if let Err(e) = write::make_undo(&f.real) {
            drop_undo();
            return Err(e.into());
        }
    }
    fault::point("after-undo");
    // 3. The journal: from here on, a kill is finished or undone by the next run.
    let previous_state = match std::fs::read(&job.state_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            drop_undo();
            return Err(write::io(&job.state_path)(e).into());
        }
    };
    let j = Journal {
        version: journal::VERSION,
        started: now,
        files: files.clone(),
        hooks,
        state: job.state_path.clone(),
        history: job.history_path.clone(),
        previous_state_sha256: previous_state.as_deref().map(journal::sha256_hex),
        state_sha256: journal::sha256_hex(state_json.as_bytes()),
        history_line: entry.to_line(),
        backups: job.backups,
    };
    let jpath = journal::path_for(&job.state_path);
    if let Err(e) = j.save(&jpath) {
        drop_undo();
        let _ = journal::remove(&jpath);
        return Err(e.into());
    }
    fault::point("after-journal");
    let _stop = StopGuard::install();
    let timeout = hook_timeout(job);
    let fail = |e: WriteError| -> anyhow::Error {
        let restore_failed = undo(&j, &jpath, timeout);
        let e = match e {
            WriteError::Hook {
                command,
                status,
                output,
                ..
            } => WriteError::Hook {
                command,
                status,
                output,
                restore_failed: restore_failed.clone(),
            },
            other => other,
        };
        let err = anyhow::Error::new(e);
        match (&err.downcast_ref::<WriteError>(), restore_failed.is_empty()) {
            (Some(WriteError::Hook { .. }), _) | (_, true) => err,
            (_, false) => err.context(format!(
                "and putting the previous files back was not complete: {restore_failed}; the next sync tries again"
            )),
        }
    };
    let interrupted = || {
        signals::stop_requested().map(|s| WriteError::Interrupted {
            signal: s.to_string(),
        })
    };

    // 4. The renames.
    for (f, temp) in staged {
        if let Some(e) = interrupted() {
            return Err(fail(e));
        }
        if let Err(e) = temp.persist(&f.real) {
            return Err(fail(write::io(&f.real)(e.error)));
        }
        write::sync_dir(&f.real).map_err(&fail)?;
        fault::point("after-rename");
    }
    // 5. The hooks and the reload.
    for h in &j.hooks {
        let hook = Hook {
            argv: h.argv.clone(),
        };
        if let Err(failure) = hook.run_for(timeout) {
            return Err(fail(WriteError::Hook {
                command: hook.display(),
                status: failure.status,
                output: failure.output,
                restore_failed: String::new(),
            }));
        }
        fault::point("after-hook");
    }
    if let Some(e) = interrupted() {
        return Err(fail(e));
    }
    // 6. The state: the commit point.
    write::write_atomic(&job.state_path, state_json.as_bytes()).map_err(&fail)?;
    fault::point("after-state");
    let mut warnings = Vec::new();
    // 7. The history line. Should it fail, the state is put back too: the audit trail must not miss
    //    a change that took effect.
    match state::append_history_line(&job.history_path, &j.history_line) {
        Ok(torn) => warnings.extend(torn_warning(&job.history_path, torn)),
        Err(e) => {
            let restored = match &previous_state {
                Some(s) => write::write_atomic(&job.state_path, s).map_err(anyhow::Error::from),
                None => std::fs::remove_file(&job.state_path).map_err(anyhow::Error::from),
            };
            let err = anyhow::Error::new(e).context(format!(
                "appending to the history `{}`",
                job.history_path.display()
            ));
            return Err(match restored {
                Ok(()) => {
                    let restore_failed = undo(&j, &jpath, timeout);
                    if restore_failed.is_empty() {
                        err.context("the previous files and state were put back")
                    } else {
                        err.context(format!("the previous state was put back, but putting the files back was not complete: {restore_failed}; the next sync tries again"))
                    }
                }
                // The state says the change happened: the next run finishes it (and its history line).
                Err(r) => err.context(format!(
                    "the previous state could not be put back ({r}); the next sync finishes the change and its history line"
                )),
            });
        }
    }
    fault::point("after-history");
    // 8. Committed: the undo copies become the newest backups; then the journal goes.
    warnings.extend(finish(&j));
    if let Err(e) = journal::remove(&jpath) {
        warnings.push(format!("{e}; the next sync removes it"));
    }
    Ok(Outcome {
        files_written: j.files.iter().map(|f| f.path.clone()).collect(),
        hooks_run: j
            .hooks
            .iter()
            .map(|h| {
                Hook {
                    argv: h.argv.clone(),
                }
                .display()
            })
            .collect(),
        changed,
        warnings,
    })
}

fn torn_warning(history: &std::path::Path, torn: u64) -> Option<String> {
    (torn > 0).then(|| {
        format!(
            "the history `{}` ended in a torn line ({torn} bytes, from an interrupted write); it was removed before the new line was added",
            history.display()
        )
    })
}

/// Backups of a committed transaction. Returns warnings: a backup that cannot be made does not undo it.
fn finish(j: &Journal) -> Vec<String> {
    let mut warnings = Vec::new();
    for f in &j.files {
        if let Err(e) = write::commit_backup(&f.real, j.backups) {
            warnings.push(format!(
                "{e}: the previous version is kept as its undo copy"
            ));
        }
        fault::point("after-backup");
    }
    warnings
}

/// Puts every file of `j` back, runs the hooks again (those whose file still exists, and the reload) so
/// derived files match, and removes the journal when all of that worked. Returns what did not.
fn undo(j: &Journal, jpath: &std::path::Path, timeout: Duration) -> String {
    let mut failed = Vec::new();
    for f in j.files.iter().rev() {
        if let Err(e) = write::restore(&f.real, f.existed) {
            failed.push(e.to_string());
        }
    }
    fault::point("recovery-after-restore");
    for h in &j.hooks {
        if h.file.as_ref().is_some_and(|f| !f.exists()) {
            continue;
        }
        let hook = Hook {
            argv: h.argv.clone(),
        };
        if let Err(f) = hook.run_to_restore(timeout) {
            failed.push(format!("{} ({})", hook.display(), f.status));
        }
    }
    if failed.is_empty() {
        if let Err(e) = journal::remove(jpath) {
            failed.push(e.to_string());
        }
    }
    failed.join(", ")
}

/// Every file a sync writes beside its outputs and state, for [`write::remove_leftovers`].
fn managed_paths(job: &Job) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = job.outputs.iter().map(|o| o.path.clone()).collect();
    paths.push(job.state_path.clone());
    paths.push(journal::path_for(&job.state_path));
    paths
}

/// Finishes or undoes a transaction an earlier run left unfinished, then removes the temporary files
/// killed runs left behind. Call with the lock held, before planning. Returns what was done and
/// warnings to show.
pub fn recover(job: &Job) -> anyhow::Result<(Option<Recovery>, Vec<String>)> {
    let jpath = journal::path_for(&job.state_path);
    let mut warnings = Vec::new();
    let Some(j) = Journal::load(&jpath)? else {
        write::remove_leftovers(&managed_paths(job), true);
        return Ok((None, warnings));
    };
    let _stop = StopGuard::install();
    let timeout = hook_timeout(job);
    let files: Vec<PathBuf> = j.files.iter().map(|f| f.path.clone()).collect();
    let committed = j
        .committed()
        .map_err(|e| anyhow::Error::new(e).context("reading the state"))?;
    let done = if committed {
        if !state::history_has_line(&j.history, &j.history_line)? {
            let torn = state::append_history_line(&j.history, &j.history_line).map_err(|e| {
                anyhow::Error::new(e).context(format!(
                    "finishing an interrupted sync: appending to the history `{}`",
                    j.history.display()
                ))
            })?;
            warnings.extend(torn_warning(&j.history, torn));
        }
        for h in &j.hooks {
            let hook = Hook {
                argv: h.argv.clone(),
            };
            if let Err(f) = hook.run_for(timeout) {
                let e = WriteError::Hook {
                    command: hook.display(),
                    status: f.status,
                    output: f.output,
                    restore_failed: String::new(),
                };
                return Err(anyhow::Error::new(e).context(format!(
                    "an interrupted sync (started {}) took effect, but its hooks could not be run again; the next sync tries again",
                    j.started.format("%Y-%m-%d %H:%M:%S UTC")
                )));
            }
            fault::point("recovery-after-hook");
        }
        warnings.extend(finish(&j));
        journal::remove(&jpath)?;
        Recovery::Finished {
            started: j.started,
            files,
        }
    } else {
        let failed = undo(&j, &jpath, timeout);
        if !failed.is_empty() {
            anyhow::bail!(
                "an interrupted sync (started {}) could not be undone completely: {failed}; the next sync tries again",
                j.started.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        Recovery::Undone {
            started: j.started,
            files,
        }
    };
    write::remove_leftovers(&managed_paths(job), true);
    Ok((Some(done), warnings))
}

/// The transaction an earlier run left unfinished, if any (for `check`: drift until a sync recovers it).
pub fn pending(job: &Job) -> anyhow::Result<Option<Journal>> {
    Ok(Journal::load(&journal::path_for(&job.state_path))?)
}

/// What `check` must report besides file contents: an unfinished transaction, and a derived table
/// (`postmap`'s `.db`, `.lmdb`, `.cdb`) older than the file it was made from.
pub fn integrity(job: &Job) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    if let Some(j) = pending(job)? {
        problems.push(format!(
            "a sync started {} was interrupted and is unfinished ({} file(s)); `bits-tls sync` finishes or undoes it",
            j.started.format("%Y-%m-%d %H:%M:%S UTC"),
            j.files.len()
        ));
    }
    for o in job.outputs.iter().filter(|o| o.hook.is_some()) {
        let Ok(source) = std::fs::metadata(&o.path).and_then(|m| m.modified()) else {
            continue;
        };
        for ext in ["db", "lmdb", "cdb"] {
            let mut derived = o.path.clone().into_os_string();
            derived.push(format!(".{ext}"));
            let derived = PathBuf::from(derived);
            if let Ok(t) = std::fs::metadata(&derived).and_then(|m| m.modified()) {
                if t < source {
                    problems.push(format!(
                        "`{}` is older than `{}`: its hook has not run since the file changed",
                        derived.display(),
                        o.path.display()
                    ));
                }
            }
        }
    }
    Ok(problems)
}

fn lock_path(job: &Job) -> PathBuf {
    let mut p = job.state_path.clone().into_os_string();
    p.push(".lock");
    PathBuf::from(p)
}

/// The lock that serialises syncs: beside the state file.
pub fn lock(job: &Job) -> Result<Lock, WriteError> {
    Lock::acquire(&lock_path(job), Duration::from_secs(job.lock_timeout))
}

/// The same lock, shared: `check` waits for a sync to finish rather than see its files half-way.
pub fn lock_shared(job: &Job) -> Result<Option<Lock>, WriteError> {
    Lock::acquire_shared(&lock_path(job), Duration::from_secs(job.lock_timeout))
}

/// Paths a sync must never write an output to: the state, the history, the lock, the journal and the
/// source. Returns a message naming the clash.
pub fn check_output_paths(job: &Job) -> Result<(), String> {
    let canon = |p: &std::path::Path| -> PathBuf {
        let real = write::resolve(p).unwrap_or_else(|_| p.to_path_buf());
        let abs = std::path::absolute(&real).unwrap_or(real);
        match (abs.parent(), abs.file_name()) {
            (Some(d), Some(n)) => std::fs::canonicalize(d)
                .map(|d| d.join(n))
                .unwrap_or(abs.clone()),
            _ => abs,
        }
    };
    let mut reserved: Vec<(&str, PathBuf)> = vec![
        ("the state", job.state_path.clone()),
        ("the history", job.history_path.clone()),
        ("the lock", lock_path(job)),
        ("the journal", journal::path_for(&job.state_path)),
    ];
    if let crate::source::Location::File(src) = &job.location {
        reserved.push(("the source", src.clone()));
    }
    for o in &job.outputs {
        let out = canon(&o.path);
        for (what, p) in &reserved {
            if canon(p) == out {
                return Err(format!(
                    "the output `{}` is {what} (`{}`); give it a path of its own",
                    o.path.display(),
                    p.display()
                ));
            }
        }
    }
    let mut seen: Vec<(PathBuf, &std::path::Path)> = Vec::new();
    for o in &job.outputs {
        let out = canon(&o.path);
        if let Some((_, other)) = seen.iter().find(|(p, _)| *p == out) {
            return Err(format!(
                "the outputs `{}` and `{}` are the same file",
                other.display(),
                o.path.display()
            ));
        }
        seen.push((out, &o.path));
    }
    Ok(())
}

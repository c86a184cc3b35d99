//! The sync engine: prepare a plan (fetch or read the state, apply local adjustments, render every
//! output, compare with the state and the files on disk, check the guards), then apply it (write the
//! files, run the hooks, record the state and history), leaving everything as it was on any failure.

use crate::config::{Output, Safety};
use crate::list::{ParticipantList, Warning};
use crate::plan::{self, Adjustments, FileChange, ListChanges};
use crate::render::options::RenderOptions;
use crate::render::{RenderInput, Renderer, Target};
use crate::source::{self, Fetch, FetchOptions, Location, Previous, Provenance, SourceValidators};
use crate::state::{self, HistoryEntry, HistorySource, State};
use crate::write::{self, FileWrite, Hook, Lock};
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use std::path::PathBuf;
use std::time::Duration;

/// Everything a diff, sync or check needs, already merged and checked.
#[derive(Debug, Clone)]
pub struct Job {
    pub location: Location,
    pub fetch: FetchOptions,
    pub render: RenderOptions,
    pub templates_dir: Option<PathBuf>,
    pub outputs: Vec<Output>,
    pub reload: Option<Vec<String>>,
    pub adjustments: Adjustments,
    pub safety: Safety,
    pub state_path: PathBuf,
    pub history_path: PathBuf,
    pub today: NaiveDate,
}

/// Where the list for a plan comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFrom {
    /// The source, conditionally when the state has validators.
    Source,
    /// The state only (no network): `check`.
    State,
}

/// A plan, ready to show or apply.
#[derive(Debug)]
pub struct Prepared {
    pub previous: Option<State>,
    /// The list as fetched (or as in the state when unchanged or offline).
    pub list: ParticipantList,
    pub provenance: Provenance,
    pub validators: SourceValidators,
    /// The source answered "not modified".
    pub not_modified: bool,
    /// The list the outputs are rendered from.
    pub effective: ParticipantList,
    pub changes: ListChanges,
    pub files: Vec<FileChange>,
    /// Why applying needs `--force`, if it does.
    pub guard: Option<String>,
    /// Warnings about the configuration (expired entries, vanished own domains).
    pub config_warnings: Vec<Warning>,
}

impl Prepared {
    pub fn files_changed(&self) -> bool {
        self.files.iter().any(FileChange::changed)
    }

    /// Anything to do: the list or a file differs.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || self.files_changed()
    }

    /// The list itself differs from the state (new digest or other participants).
    pub fn list_changed(&self) -> bool {
        match &self.previous {
            None => true,
            Some(s) => s.source.sha256 != self.provenance.sha256 || !self.changes.is_empty(),
        }
    }
}

pub fn prepare(job: &Job, from: ListFrom, log: &dyn Fn(String)) -> anyhow::Result<Prepared> {
    let previous = match from {
        ListFrom::State => Some(State::require(&job.state_path)?),
        ListFrom::Source => State::load(&job.state_path)?,
    };
    let renderer = Renderer::new(job.templates_dir.as_deref())?;
    let (list, provenance, validators, not_modified) = match (from, &previous) {
        (ListFrom::State, Some(s)) => {
            (state_list(s), s.source.clone(), s.validators.clone(), false)
        }
        _ => {
            let prev = previous.as_ref().map(|s| Previous {
                provenance: &s.source,
                validators: &s.validators,
                parse_options: &s.parse_options,
            });
            match source::fetch_since(&job.location, &job.fetch, prev, log)? {
                Fetch::Fresh(f) => (f.list, f.provenance, f.validators, false),
                Fetch::NotModified(fresh) => {
                    let s = previous
                        .as_ref()
                        .expect("not modified implies a previous state");
                    let validators = fresh.unwrap_or_else(|| s.validators.clone());
                    (state_list(s), s.source.clone(), validators, true)
                }
            }
        }
    };
    let (effective, mut config_warnings) = plan::effective(&list, &job.adjustments, job.today);
    let targets = job.outputs.iter().map(|o| &o.target);
    config_warnings.extend(crate::render::postfix::setup_warnings(&job.render, targets));
    let mut files = Vec::new();
    let ctx = Renderer::context(
        RenderInput {
            provenance: &provenance,
            list: &effective,
        },
        &job.render,
    )?;
    for out in &job.outputs {
        let rendered = renderer.render_with(&out.target, &ctx, &job.render)?;
        let before = match std::fs::read(&out.path) {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("reading `{}`", out.path.display()))
                )
            }
        };
        let blocks = !matches!(out.target, Target::Template(_));
        let after = plan::merge_managed(before.as_deref(), &rendered, blocks);
        files.push(FileChange::new(
            out.target.name().to_string(),
            out.path.clone(),
            before,
            after,
        ));
    }
    let before = previous.as_ref().map(|s| s.participants.as_slice());
    // An unchanged list (304 or the same bytes) is the state's list: there is nothing to compare.
    let changes = if not_modified {
        ListChanges::default()
    } else {
        plan::list_changes(before.unwrap_or(&[]), &list.participants)
    };
    // The guard compares lists; an unchanged list can only trip it by being empty.
    let guard = plan::guard(
        before.filter(|_| !not_modified),
        &list,
        plan::Guard {
            max_removed_percent: job.safety.max_removed_percent,
            min_domains: job.safety.min_domains_for_guard,
        },
    );
    Ok(Prepared {
        previous,
        list,
        provenance,
        validators,
        not_modified,
        effective,
        changes,
        files,
        guard,
        config_warnings,
    })
}

fn state_list(s: &State) -> ParticipantList {
    ParticipantList {
        participants: s.participants.clone(),
        warnings: s.warnings.clone(),
    }
}

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
pub fn apply(job: &Job, p: &Prepared, forced: bool, now: DateTime<Utc>) -> anyhow::Result<Outcome> {
    let now = now.trunc_subsecs(0);
    let changed_files: Vec<(&FileChange, &Output)> = p
        .files
        .iter()
        .zip(&job.outputs)
        .filter(|(f, _)| f.changed())
        .collect();
    let writes: Vec<FileWrite> = changed_files
        .iter()
        .map(|(f, _)| FileWrite {
            path: f.path.clone(),
            content: f.after.clone().into_bytes(),
        })
        .collect();
    let applied = write::apply(&writes, job.safety.backups)?;
    let mut hooks: Vec<Hook> = changed_files
        .iter()
        .filter_map(|(f, o)| o.hook.as_ref().map(|h| Hook::new(h, &f.path)))
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
                .map(|(f, _)| f.path.display().to_string())
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
        files_written: changed_files.iter().map(|(f, _)| f.path.clone()).collect(),
        hooks_run: hooks.iter().map(Hook::display).collect(),
        changed,
    })
}

/// The lock that serialises syncs: beside the state file.
pub fn lock(job: &Job) -> Result<Lock, write::WriteError> {
    let mut p = job.state_path.clone().into_os_string();
    p.push(".lock");
    Lock::acquire(
        &PathBuf::from(p),
        Duration::from_secs(job.safety.lock_timeout),
    )
}

//! The plan: what a sync would do. Fetch the list (or read it from the state), apply the local
//! adjustments (`effective`), compare it with the state (`changes`, with the guards), and render every
//! output and compare it with the file on disk (`files`). `diff` shows a plan, `check` compares one made
//! from the state, `sync` applies one (`crate::apply`).

pub mod changes;
pub mod effective;
pub mod files;
mod line_diff;
mod patience;

pub use changes::{guard, list_changes, Baseline, Guard, ListChanges, ParticipantChange};
pub use effective::{effective, Adjustment, AdjustmentKind, Adjustments, DomainEntry};
pub use files::{merge_managed, FileChange, FileStatus, Output};

use crate::list::{ParticipantList, Warning};
use crate::render::options::RenderOptions;
use crate::render::{RenderInput, Renderer};
use crate::source::{self, Fetch, FetchOptions, Location, Previous, Provenance, SourceValidators};
use crate::state::State;
use chrono::NaiveDate;
use std::path::PathBuf;

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
    pub guard: Guard,
    /// Backups kept of each output file (`file.bak.1` is the newest); 0 keeps none.
    pub backups: usize,
    /// Seconds a sync waits for another one to finish.
    pub lock_timeout: u64,
    /// Seconds a hook may run before it is ended and the sync rolled back.
    pub hook_timeout: u64,
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
pub struct Plan {
    pub previous: Option<State>,
    /// The list as fetched (or as in the state when unchanged or offline).
    pub list: ParticipantList,
    pub provenance: Provenance,
    pub validators: SourceValidators,
    /// The source answered "not modified".
    pub not_modified: bool,
    /// The list the outputs are rendered from.
    /// The list the outputs are rendered from, when the local adjustments make it other than `list`
    /// (see [`Plan::effective`]).
    pub adjusted: Option<ParticipantList>,
    /// The local adjustments in force (exclusions, additions, overrides, own domains).
    pub local: Vec<Adjustment>,
    pub changes: ListChanges,
    pub files: Vec<FileChange>,
    /// When the files keep an earlier source in their headers: the list is the same and only its source
    /// changed (moved, re-encoded, a new page date), so no file is rewritten and no hook runs.
    pub rendered_from: Option<Provenance>,
    /// Per output path, what its file is rendered from and its bytes' digest, for the state.
    pub rendered: std::collections::BTreeMap<String, crate::state::Rendered>,
    /// Why applying needs `--force`, if it does.
    pub guard: Option<String>,
    /// Warnings about the configuration (expired entries, vanished own domains).
    pub config_warnings: Vec<Warning>,
}

impl Plan {
    /// The list the outputs are rendered from: own domains and exclusions taken out, additions added.
    pub fn effective(&self) -> &ParticipantList {
        self.adjusted.as_ref().unwrap_or(&self.list)
    }

    pub fn files_changed(&self) -> bool {
        self.files.iter().any(FileChange::changed)
    }

    /// Anything to do: the list or a file differs.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || self.files_changed()
    }

    /// Only where the list came from changed: the same participants, no file to write.
    pub fn provenance_only(&self) -> bool {
        self.rendered_from.is_some() && self.changes.is_empty() && !self.files_changed()
    }

    /// The list or where it came from differs from the state (other participants, a new digest, a new
    /// address or page date): worth a history line.
    pub fn list_changed(&self) -> bool {
        match &self.previous {
            None => true,
            Some(s) => {
                let (a, b) = (&s.source, &self.provenance);
                a.sha256 != b.sha256
                    || a.csv != b.csv
                    || a.page != b.page
                    || a.page_updated != b.page_updated
                    || !self.changes.is_empty()
            }
        }
    }
}

/// The hook and reload programs that cannot be run: a name not found on `PATH`, or a path that is not
/// an executable file. `diff` warns; `sync` refuses before writing anything, since a hook that cannot
/// run would roll every file back after the fact.
pub fn missing_programs(job: &Job) -> Vec<String> {
    let argvs = job
        .outputs
        .iter()
        .filter_map(|o| o.hook.as_ref())
        .chain(job.reload.as_ref());
    let mut missing: Vec<String> = argvs
        .filter_map(|argv| argv.first())
        .filter(|program| !runnable(program))
        .cloned()
        .collect();
    missing.dedup();
    missing
}

fn runnable(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(std::path::Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(program))))
}

/// Makes the plan for `job`, with the list from the source or the state.
pub fn prepare(job: &Job, from: ListFrom, log: &dyn Fn(String)) -> anyhow::Result<Plan> {
    let mut previous = match from {
        ListFrom::State => Some(State::require(&job.state_path)?),
        ListFrom::Source => State::load(&job.state_path)?,
    };
    let renderer = Renderer::new(job.templates_dir.as_deref())?;
    let (list, provenance, validators, not_modified) = match (from, &mut previous) {
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
                        .as_mut()
                        .expect("not modified implies a previous state");
                    let validators = fresh.unwrap_or_else(|| s.validators.clone());
                    (state_list(s), s.source.clone(), validators, true)
                }
            }
        }
    };
    let (adjusted, mut config_warnings, mut local) =
        effective::adjusted(&list, &job.adjustments, job.today);
    let effective = adjusted.as_ref().unwrap_or(&list);
    let (overrides, unused) = effective::overrides(&job.render, effective);
    local.extend(overrides);
    config_warnings.extend(unused);
    let targets = job.outputs.iter().map(|o| &o.target);
    config_warnings.extend(crate::render::postfix::setup_warnings(&job.render, targets));
    for program in missing_programs(job) {
        config_warnings.push(Warning::general(format!(
            "the hook program `{program}` cannot be run here (not found on PATH, or not executable)"
        )));
    }
    // An unchanged list (304 or the same bytes) is the state's list, moved out of it: there is nothing
    // to compare. Nor is there for `check`, whose list is the state's.
    let from_state = not_modified || from == ListFrom::State;
    let before = previous
        .as_ref()
        .map(|s| s.participants.as_slice())
        .filter(|_| !from_state);
    let changes = if from_state {
        ListChanges::default()
    } else {
        list_changes(before.unwrap_or(&[]), &list.participants)
    };
    // The guard compares lists; an unchanged list can only trip it by being empty.
    let guard = changes::guard(before, &list, job.guard).or_else(|| {
        let baseline = previous.as_ref().and_then(|s| s.baseline.as_ref());
        changes::guard_baseline(
            baseline.filter(|_| !not_modified),
            &list,
            job.guard,
            job.today,
        )
    });
    let recorded = previous.as_ref().map(|s| &s.rendered);
    let render_files = |provenance: &Provenance| -> anyhow::Result<RenderedFiles> {
        let input = RenderInput {
            provenance,
            list: effective,
            local: &local,
        };
        let inputs = crate::render::digest::inputs(input, &job.render);
        // The current files, and for each whether it must be rendered: an output whose inputs are
        // those recorded when its file was written, and whose file still has the bytes written then,
        // is that rendering already (a file changed or removed since is rendered and restored).
        let mut current = Vec::new();
        for out in &job.outputs {
            let digest = renderer.digest(&out.target, &inputs)?;
            // Through a symbolic link: the file it points to is what is compared and written.
            let before = match std::fs::read(&out.path) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("reading `{}`", out.path.display()))
                    )
                }
            };
            let key = out.path.display().to_string();
            // The file's digest when it is that rendering already, else None.
            let kept = match (recorded.and_then(|r| r.get(&key)), &before) {
                (Some(r), Some(b)) if r.inputs == digest => {
                    let file = crate::journal::sha256_hex(b);
                    // Lines outside a managed block are checked against the rendered entries.
                    (r.file == file && files::outside_block(b).is_empty()).then_some(file)
                }
                _ => None,
            };
            current.push((out, key, digest, before, kept));
        }
        let to_render = current
            .iter()
            .filter(|c| c.4.is_none())
            .map(|c| &c.0.target);
        let ctx = match to_render.clone().next() {
            Some(_) => Some(renderer.context_for(to_render, input, &job.render)?),
            None => None,
        };
        // Each output is rendered, checked, merged and compared on its own: the outputs are made side
        // by side, one per core, and taken in their order (the first error in that order is the one
        // reported).
        let made = map_parallel(current, |(out, key, digest, before, kept)| {
            let (change, file, warnings) = match (kept, before, &ctx) {
                (Some(file), Some(bytes), _) => {
                    (FileChange::unchanged(out.clone(), bytes), file, Vec::new())
                }
                (_, before, Some(ctx)) => {
                    let rendered = renderer.render_with(&out.target, ctx, &job.render)?;
                    files::check_no_markers(&rendered).map_err(anyhow::Error::msg)?;
                    let blocks = out.target.uses_managed_block();
                    let (after, merged_from) =
                        files::merge_managed_owned(before.as_deref(), rendered, blocks);
                    // A file that is the rendering whole has no line outside a block.
                    let warnings = merged_from
                        .map(|r| files::shadowing_lines(out, &after, &r))
                        .unwrap_or_default();
                    let file = crate::journal::sha256_hex(&after);
                    (FileChange::new(out.clone(), before, after), file, warnings)
                }
                _ => unreachable!("a context is made whenever an output is rendered"),
            };
            anyhow::Ok((key, digest, change, file, warnings))
        });
        let mut files = Vec::new();
        let mut warnings = Vec::new();
        let mut digests = std::collections::BTreeMap::new();
        for made in made {
            let (key, digest, change, file, shadowing) = made?;
            warnings.extend(shadowing);
            digests.insert(
                key,
                crate::state::Rendered {
                    inputs: digest,
                    file,
                },
            );
            files.push(change);
        }
        Ok((files, warnings, digests))
    };
    // The files were rendered from `rendered_from` (the state's source unless a provenance-only change
    // was recorded since). When the participants are the same, the files are expected to be exactly
    // that rendering: a list that only moved or was re-encoded changes no file, runs no hook, and is
    // recorded as such; a real change (or `check` finding drift) renders with the current source.
    let rendered_from = previous
        .as_ref()
        .map(|s| s.rendered_from.clone().unwrap_or_else(|| s.source.clone()));
    let same_participants =
        from == ListFrom::State || not_modified || (previous.is_some() && changes.is_empty());
    let ((files, shadowing, rendered), rendered_from) =
        match rendered_from.filter(|_| same_participants) {
            Some(old) if old != provenance => {
                let kept = render_files(&old)?;
                if from == ListFrom::State || !kept.0.iter().any(FileChange::changed) {
                    (kept, Some(old))
                } else {
                    (render_files(&provenance)?, None)
                }
            }
            _ => (render_files(&provenance)?, None),
        };
    config_warnings.extend(shadowing);
    Ok(Plan {
        previous,
        list,
        provenance,
        validators,
        not_modified,
        adjusted,
        local,
        changes,
        files,
        rendered_from,
        rendered,
        guard,
        config_warnings,
    })
}

/// `f` of every item, on up to as many threads as the machine has cores (one thread on one core), the
/// results in the items' order.
fn map_parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let items: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = items.get(i) else { break };
                let item = slot.lock().expect("no lock holder panics").take();
                let r = f(item.expect("each item is taken once"));
                *results[i].lock().expect("no lock holder panics") = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner().ok().flatten().expect(
                "every item was mapped (a thread that panicked ends the scope with its panic)",
            )
        })
        .collect()
}

/// The files a plan would write, warnings about them, and what each is rendered from.
type RenderedFiles = (
    Vec<FileChange>,
    Vec<Warning>,
    std::collections::BTreeMap<String, crate::state::Rendered>,
);

/// The state's list, moved out of it: a plan whose list is the state's compares no lists, and keeps
/// only the state's other fields (its time of change, its baseline).
fn state_list(s: &mut State) -> ParticipantList {
    ParticipantList {
        participants: std::mem::take(&mut s.participants),
        warnings: std::mem::take(&mut s.warnings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results come in the items' order whatever order the threads finish in.
    #[test]
    fn parallel_results_keep_the_items_order() {
        let items: Vec<u64> = (0..40).collect();
        let out = map_parallel(items.clone(), |i| {
            std::thread::sleep(std::time::Duration::from_millis((40 - i) % 7));
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(map_parallel(Vec::<u8>::new(), |i| i), Vec::<u8>::new());
    }
    use crate::domain::{Domain, DomainRules};
    use crate::list::Participant;

    fn p(name: &str, nr: Option<&str>, domains: &[&str]) -> Participant {
        Participant {
            organization: name.into(),
            org_number: nr.map(String::from),
            domains: domains
                .iter()
                .map(|d| Domain::parse(d, DomainRules::default()).unwrap())
                .collect(),
            enrolled: None,
            enforces_inbound_tls: None,
        }
    }

    fn list(ps: Vec<Participant>) -> ParticipantList {
        ParticipantList {
            participants: ps,
            warnings: vec![],
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn entry(d: &str, expires: Option<&str>) -> DomainEntry {
        DomainEntry {
            domain: Domain::parse(d, DomainRules::default()).unwrap(),
            reason: "because".into(),
            expires: expires.map(day),
        }
    }

    #[test]
    fn effective_list() {
        let l = list(vec![
            p("A", None, &["a.no", "own.no"]),
            p("B", None, &["b.no"]),
            p("C", None, &["c.no"]),
        ]);
        let adj = Adjustments {
            own_domains: vec![
                Domain::parse("own.no", DomainRules::default()).unwrap(),
                Domain::parse("gone.no", DomainRules::default()).unwrap(),
            ],
            exclude: vec![
                entry("b.no", Some("2030-01-01")),
                entry("c.no", Some("2020-01-01")),
            ],
            extra: vec![
                entry("x.no", None),
                entry("old.no", Some("2020-01-01")),
                entry("a.no", None),
            ],
        };
        let (eff, warnings, local) = effective(&l, &adj, day("2026-11-23"));
        let shown: Vec<String> = local.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            shown,
            [
                "excluded b.no: because (until 2030-01-01)",
                "added x.no: because",
                "own domain own.no"
            ]
        );
        let doms: Vec<String> = eff.domains().iter().map(|d| d.to_string()).collect();
        assert_eq!(doms, ["a.no", "c.no", "x.no"]);
        assert_eq!(
            eff.participants.last().unwrap().organization,
            "Local addition: because"
        );
        let w: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(w.len(), 4, "{w:#?}");
        assert!(w[0].contains("`gone.no` is not on the list"));
        assert!(w[1].contains("exclusion of `c.no` expired after 2020-01-01"));
        assert!(w[2].contains("`old.no` expired"));
        assert!(w[3].contains("`a.no` is on the list now"));
    }

    #[test]
    fn changes_by_identity() {
        let before = vec![
            p("A", Some("916960190"), &["a.no"]),
            p("B", None, &["b.no"]),
            p("Gone", None, &["g.no"]),
        ];
        let after = vec![
            p("A renamed", Some("916960190"), &["a.no", "a2.no"]),
            p("b", None, &["b.no"]),
            p("New", None, &["n.no"]),
        ];
        let ch = list_changes(&before, &after);
        assert_eq!(ch.joined.len(), 1);
        assert_eq!(ch.left[0].organization, "Gone");
        assert_eq!(ch.changed.len(), 2, "renamed A and re-cased b");
        let added: Vec<String> = ch.domains_added.iter().map(|d| d.to_string()).collect();
        assert_eq!(added, ["a2.no", "n.no"]);
        assert_eq!(ch.domains_removed.len(), 1);
        assert!(list_changes(&before, &before).is_empty());
    }

    #[test]
    fn guard_trips_on_empty_and_large_removals() {
        let g = Guard {
            max_removed_percent: 10,
            min_domains: 10,
            max_added_percent: 50,
            baseline_days: 30,
        };
        let many: Vec<Participant> = (0..20)
            .map(|i| p(&format!("P{i}"), None, &[&format!("d{i}.no")]))
            .collect();
        assert!(guard(None, &list(vec![]), g)
            .unwrap()
            .contains("no domains"));
        assert_eq!(guard(None, &list(many.clone()), g), None);
        assert_eq!(
            guard(Some(&many), &list(many[2..].to_vec()), g),
            None,
            "2 of 20 is 10 %"
        );
        assert!(guard(Some(&many), &list(many[3..].to_vec()), g)
            .unwrap()
            .contains("removes 3 of 20 domains (15 %)"));
        assert!(guard(Some(&many[..10]), &list(many.clone()), g)
            .unwrap()
            .contains("adds 10 domains to the 10 listed (100 %)"));
        assert_eq!(
            guard(Some(&many[..14]), &list(many[..20].to_vec()), g),
            None
        );
        let few = many[..5].to_vec();
        assert_eq!(
            guard(Some(&few), &list(few[..1].to_vec()), g),
            None,
            "under 10 domains the share is not checked"
        );
    }

    #[test]
    fn managed_blocks_keep_foreign_bytes() {
        let rendered = "# Generated by bits-tls 0.1.0\nbits.no verify\n";
        assert_eq!(merge_managed(None, rendered, true), rendered);
        assert_eq!(
            merge_managed(
                Some("# Generated by bits-tls 0.0.9\nold.no verify\n"),
                rendered,
                true
            ),
            rendered
        );
        let foreign = "# my own entries\nlocal.example verify\r\nno-newline-at-end";
        let merged = merge_managed(Some(foreign), rendered, true);
        assert!(merged.starts_with(
            "# my own entries\nlocal.example verify\r\nno-newline-at-end\n# BEGIN bits-tls"
        ));
        let again = merge_managed(
            Some(&merged),
            "# Generated by bits-tls 0.1.0\nfno.no verify\n",
            true,
        );
        assert!(again.starts_with(foreign));
        assert!(
            again.contains(&format!("fno.no verify\n{}\n", files::END))
                && !again.contains("bits.no verify")
        );
        let with_tail = format!("{merged}# trailing own line\n");
        let again = merge_managed(Some(&with_tail), rendered, true);
        assert!(again.ends_with(&format!("{}\n# trailing own line\n", files::END)));
        assert_eq!(
            merge_managed(Some(foreign), rendered, false),
            rendered,
            "templates replace whole files"
        );
    }
}

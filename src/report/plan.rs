//! The plan (`diff`, `sync --dry-run`, and `sync` when a guard refuses): the list, what changed since
//! the state, what every output file would become, and whether a guard trips.

use super::{
    describe_change, diff_for_terminal, domains, list_size, md_code, md_diff, source_line, who,
    JSON_VERSION,
};
use crate::domain::Domain;
use crate::list::{Participant, Warning};
use crate::plan::{Adjustment, FileChange, FileStatus, ListChanges, Plan};
use crate::sanitize::for_terminal;
use crate::source::Provenance;
use serde::Serialize;
use std::io::{self, Write};

/// The formats a plan is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: the list, the changes, every file's diff
    Text,
    /// For scripts: the list in the `fetch` shape plus changes, files and guard
    Json,
    /// For a merge-request comment or change ticket
    Markdown,
}

pub fn write(out: &mut impl Write, p: &Plan, format: Format) -> io::Result<()> {
    match format {
        Format::Text => text(out, p),
        Format::Json => json(out, p),
        Format::Markdown => markdown(out, p),
    }
}

fn text(out: &mut impl Write, p: &Plan) -> io::Result<()> {
    writeln!(
        out,
        "List: {} ({}){}",
        list_size(p.list.participants.len(), p.list.domains().len()),
        source_line(&p.provenance),
        if p.not_modified {
            "; not modified since the last run"
        } else {
            ""
        }
    )?;
    if p.previous.is_none() {
        writeln!(out, "No state yet: everything is new.")?;
    }
    if p.provenance_only() {
        writeln!(out, "{PROVENANCE_ONLY}")?;
    }
    text_local(out, &p.local)?;
    text_changes(out, &p.changes)?;
    writeln!(out, "Files:")?;
    if p.files.is_empty() {
        writeln!(
            out,
            "  (no outputs configured: add [[output]] entries or --output TARGET=PATH)"
        )?;
    }
    for f in &p.files {
        writeln!(out, "  {}", file_line(f))?;
    }
    for f in p.files.iter().filter(|f| f.changed()) {
        writeln!(out)?;
        out.write_all(diff_for_terminal(&f.diff).as_bytes())?;
    }
    if let Some(reason) = &p.guard {
        writeln!(
            out,
            "\nGuard: a sync would be refused: {reason} (override with --force)"
        )?;
    }
    Ok(())
}

/// Said when only the list's source changed.
pub const PROVENANCE_ONLY: &str = "Source: the list moved or was re-encoded, with the same participants: no file changes and no hook runs; a sync records the new source";

/// The local adjustments in force, one line each (also `check`).
pub fn text_local(out: &mut impl Write, local: &[Adjustment]) -> io::Result<()> {
    if local.is_empty() {
        return Ok(());
    }
    writeln!(out, "Local adjustments:")?;
    for a in local {
        writeln!(out, "  {}", for_terminal(&a.to_string()))?;
    }
    Ok(())
}

/// The local adjustments as Markdown list items.
pub fn markdown_local(out: &mut impl Write, local: &[Adjustment]) -> io::Result<()> {
    if local.is_empty() {
        return Ok(());
    }
    writeln!(out, "Local adjustments:\n")?;
    for a in local {
        writeln!(out, "- {}", md_code(&a.to_string()))?;
    }
    writeln!(out)
}

/// `2 joined, 0 left, 1 changed; domains: 3 added, 0 removed`.
pub fn change_counts(ch: &ListChanges) -> String {
    format!(
        "{} joined, {} left, {} changed; domains: {} added, {} removed",
        ch.joined.len(),
        ch.left.len(),
        ch.changed.len(),
        ch.domains_added.len(),
        ch.domains_removed.len()
    )
}

/// The participants' changes, one line each (also `check --online`).
pub fn text_changes(out: &mut impl Write, ch: &ListChanges) -> io::Result<()> {
    if ch.is_empty() {
        writeln!(out, "Participants: no change")?;
        return Ok(());
    }
    writeln!(out, "Participants: {}", change_counts(ch))?;
    for p in &ch.joined {
        writeln!(out, "  + {}: {}", who(p), domains(p))?;
    }
    for p in &ch.left {
        writeln!(out, "  - {}: {}", who(p), domains(p))?;
    }
    for c in &ch.changed {
        writeln!(
            out,
            "  ~ {}: {}",
            who(&c.after),
            describe_change(c).join("; ")
        )?;
    }
    Ok(())
}

fn file_line(f: &FileChange) -> String {
    let (a, r) = f.counts();
    let path = for_terminal(&f.path().display().to_string());
    match f.status {
        FileStatus::Create => format!("create {path} ({}, {a} lines)", f.target()),
        FileStatus::Update => format!("update {path} ({}, +{a} -{r} lines)", f.target()),
        FileStatus::Unchanged => format!("unchanged {path} ({})", f.target()),
    }
}

/// A participant's change in JSON.
#[derive(Serialize)]
pub struct ChangeJson<'a> {
    pub before: &'a Participant,
    pub after: &'a Participant,
}

/// What changed in the list, in JSON.
#[derive(Serialize)]
pub struct ChangesJson<'a> {
    pub joined: &'a [Participant],
    pub left: &'a [Participant],
    pub changed: Vec<ChangeJson<'a>>,
    pub domains_added: &'a [Domain],
    pub domains_removed: &'a [Domain],
}

impl<'a> ChangesJson<'a> {
    pub fn new(ch: &'a ListChanges) -> ChangesJson<'a> {
        ChangesJson {
            joined: &ch.joined,
            left: &ch.left,
            changed: ch
                .changed
                .iter()
                .map(|c| ChangeJson {
                    before: &c.before,
                    after: &c.after,
                })
                .collect(),
            domains_added: &ch.domains_added,
            domains_removed: &ch.domains_removed,
        }
    }
}

/// One output file in JSON.
#[derive(Serialize)]
pub struct FileJson<'a> {
    pub target: &'static str,
    pub path: String,
    pub status: FileStatus,
    /// Unified diff, empty when unchanged.
    pub diff: &'a str,
}

impl<'a> FileJson<'a> {
    pub fn new(f: &'a FileChange) -> FileJson<'a> {
        FileJson {
            target: f.target(),
            path: f.path().display().to_string(),
            status: f.status,
            diff: &f.diff,
        }
    }
}

/// `diff --format json`: the `fetch` document plus the plan.
#[derive(Serialize)]
pub struct PlanJson<'a> {
    pub version: u32,
    pub source: &'a Provenance,
    pub participants: &'a [Participant],
    pub warnings: Vec<&'a Warning>,
    pub not_modified: bool,
    /// Only the list's source changed: nothing to write.
    pub provenance_only: bool,
    /// Local adjustments in force: exclusions, additions, overrides, own domains.
    pub local: &'a [Adjustment],
    pub changes: ChangesJson<'a>,
    pub files: Vec<FileJson<'a>>,
    pub guard: &'a Option<String>,
}

fn json(out: &mut impl Write, p: &Plan) -> io::Result<()> {
    let doc = PlanJson {
        version: JSON_VERSION,
        source: &p.provenance,
        participants: &p.list.participants,
        warnings: p.list.warnings.iter().chain(&p.config_warnings).collect(),
        not_modified: p.not_modified,
        provenance_only: p.provenance_only(),
        local: &p.local,
        changes: ChangesJson::new(&p.changes),
        files: p.files.iter().map(FileJson::new).collect(),
        guard: &p.guard,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

fn markdown(out: &mut impl Write, p: &Plan) -> io::Result<()> {
    let ch = &p.changes;
    writeln!(out, "### bits-tls: changes from the Bits forced-TLS list\n")?;
    writeln!(
        out,
        "List: {} ({}).\n",
        list_size(p.list.participants.len(), p.list.domains().len()),
        source_line(&p.provenance)
    )?;
    if let Some(reason) = &p.guard {
        writeln!(
            out,
            "> **Refused by a safety guard:** {}. Review before applying with `--force`.\n",
            crate::sanitize::one_line(reason)
        )?;
    }
    if p.provenance_only() {
        writeln!(out, "{PROVENANCE_ONLY}.\n")?;
    }
    markdown_local(out, &p.local)?;
    writeln!(out, "| | participants | domains |\n|---|---|---|")?;
    writeln!(
        out,
        "| added | {} | {} |",
        ch.joined.len(),
        ch.domains_added.len()
    )?;
    writeln!(
        out,
        "| removed | {} | {} |",
        ch.left.len(),
        ch.domains_removed.len()
    )?;
    writeln!(out, "| changed | {} | |\n", ch.changed.len())?;
    for p in &ch.joined {
        writeln!(
            out,
            "- joined: {} {}",
            md_code(&p.organization),
            md_code(&domains(p))
        )?;
    }
    for p in &ch.left {
        writeln!(
            out,
            "- left: {} {}",
            md_code(&p.organization),
            md_code(&domains(p))
        )?;
    }
    for c in &ch.changed {
        writeln!(
            out,
            "- changed: {} {}",
            md_code(&c.after.organization),
            md_code(&describe_change(c).join("; "))
        )?;
    }
    if !ch.is_empty() {
        writeln!(out)?;
    }
    for f in &p.files {
        let (a, r) = f.counts();
        let status = match f.status {
            FileStatus::Create => "create",
            FileStatus::Update => "update",
            FileStatus::Unchanged => "unchanged",
        };
        writeln!(
            out,
            "- {status} {} ({}): +{a} -{r}",
            md_code(&f.path().display().to_string()),
            f.target()
        )?;
    }
    for f in p.files.iter().filter(|f| f.changed()) {
        out.write_all(md_diff(&f.path().display().to_string(), &f.diff).as_bytes())?;
    }
    Ok(())
}

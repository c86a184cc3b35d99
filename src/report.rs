//! Showing a plan: text for people, JSON for scripts (the participant part in the `fetch` shape), and
//! Markdown for a merge-request comment. Text from the list is escaped for each medium.

use crate::engine::Prepared;
use crate::list::{Participant, Warning};
use crate::plan::{FileChange, FileStatus, ListChanges, ParticipantChange};
use crate::sanitize::for_terminal;
use crate::source::Provenance;
use serde::Serialize;
use std::io::{self, Write};

fn who(p: &Participant) -> String {
    match &p.org_number {
        Some(n) => format!("{} ({n})", for_terminal(&p.organization)),
        None => for_terminal(&p.organization),
    }
}

fn domains(p: &Participant) -> String {
    p.domains
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn flag(f: Option<bool>) -> &'static str {
    match f {
        Some(true) => "Ja",
        Some(false) => "Nei",
        None => "-",
    }
}

/// What changed about one participant, in words.
fn describe_change(c: &ParticipantChange) -> Vec<String> {
    let (b, a) = (&c.before, &c.after);
    let mut parts = Vec::new();
    let added: Vec<&str> = a
        .domains
        .iter()
        .filter(|d| !b.domains.contains(d))
        .map(|d| d.as_str())
        .collect();
    let removed: Vec<&str> = b
        .domains
        .iter()
        .filter(|d| !a.domains.contains(d))
        .map(|d| d.as_str())
        .collect();
    if !added.is_empty() {
        parts.push(format!("+{}", added.join(" +")));
    }
    if !removed.is_empty() {
        parts.push(format!("-{}", removed.join(" -")));
    }
    if b.organization != a.organization {
        parts.push(format!("name was `{}`", for_terminal(&b.organization)));
    }
    if b.org_number != a.org_number {
        parts.push(format!(
            "org.nr {} → {}",
            b.org_number.as_deref().unwrap_or("-"),
            a.org_number.as_deref().unwrap_or("-")
        ));
    }
    if b.enforces_inbound_tls != a.enforces_inbound_tls {
        parts.push(format!(
            "5.2.4 {} → {}",
            flag(b.enforces_inbound_tls),
            flag(a.enforces_inbound_tls)
        ));
    }
    if b.enrolled != a.enrolled {
        parts.push("enrolment date changed".into());
    }
    parts
}

fn source_line(p: &Provenance) -> String {
    let mut s = format!("sha256 {}", &p.sha256[..p.sha256.len().min(16)]);
    if let Some(d) = p.page_updated {
        s.push_str(&format!(", page updated {d}"));
    }
    s
}

pub fn text(out: &mut impl Write, p: &Prepared) -> io::Result<()> {
    let ch = &p.changes;
    writeln!(
        out,
        "List: {} participants, {} domains ({}){}",
        p.list.participants.len(),
        p.list.domains().len(),
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
    text_changes(out, ch)?;
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
        out.write_all(for_terminal_lines(&f.diff).as_bytes())?;
    }
    if let Some(reason) = &p.guard {
        writeln!(
            out,
            "\nGuard: a sync would be refused: {reason} (override with --force)"
        )?;
    }
    Ok(())
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
    let path = for_terminal(&f.path.display().to_string());
    match f.status {
        FileStatus::Create => format!("create {path} ({}, {a} lines)", f.target),
        FileStatus::Update => format!("update {path} ({}, +{a} -{r} lines)", f.target),
        FileStatus::Unchanged => format!("unchanged {path} ({})", f.target),
    }
}

/// Escapes each line of a diff for the terminal, keeping the line structure.
fn for_terminal_lines(text: &str) -> String {
    text.lines()
        .map(|l| format!("{}\n", for_terminal(l)))
        .collect()
}

#[derive(Serialize)]
struct PlanJson<'a> {
    source: &'a Provenance,
    participants: &'a [Participant],
    warnings: Vec<&'a Warning>,
    not_modified: bool,
    changes: &'a ListChanges,
    files: &'a [FileChange],
    guard: &'a Option<String>,
}

pub fn json(out: &mut impl Write, p: &Prepared) -> io::Result<()> {
    let doc = PlanJson {
        source: &p.provenance,
        participants: &p.list.participants,
        warnings: p.list.warnings.iter().chain(&p.config_warnings).collect(),
        not_modified: p.not_modified,
        changes: &p.changes,
        files: &p.files,
        guard: &p.guard,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

/// Inline code for Markdown: no backticks or line breaks inside, so list text cannot format, link or
/// mention anyone.
fn md_code(s: &str) -> String {
    format!("`{}`", crate::sanitize::one_line(s).replace('`', "'"))
}

/// A fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

pub fn markdown(out: &mut impl Write, p: &Prepared) -> io::Result<()> {
    let ch = &p.changes;
    writeln!(out, "### bits-tls: changes from the Bits forced-TLS list\n")?;
    writeln!(
        out,
        "List: {} participants, {} domains ({}).\n",
        p.list.participants.len(),
        p.list.domains().len(),
        source_line(&p.provenance)
    )?;
    if let Some(reason) = &p.guard {
        writeln!(
            out,
            "> **Refused by a safety guard:** {}. Review before applying with `--force`.\n",
            crate::sanitize::one_line(reason)
        )?;
    }
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
            md_code(&f.path.display().to_string()),
            f.target
        )?;
    }
    for f in p.files.iter().filter(|f| f.changed()) {
        let fence = fence(&f.diff);
        writeln!(
            out,
            "\n<details><summary>{}</summary>\n\n{fence}diff\n{}{fence}\n\n</details>",
            md_code(&f.path.display().to_string()),
            f.diff
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes() {
        assert_eq!(md_code("@all <b>x</b> `y`\nz"), "`@all <b>x</b> 'y' z`");
        assert_eq!(fence("a ``` b ```` c"), "`````");
        assert_eq!(fence("plain"), "```");
    }
}
